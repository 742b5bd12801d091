"""Every Prometheus metric, defined once: ``forwarder_<name>_<unit>[_total]``, bounded labels only.

Labels are config-bounded (source, sink, channel, event type, reason class); never ids, users or ips.
Add new metrics here, in the section of their component.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# --- sources -------------------------------------------------------------------------------------------
records_received = Counter(
    "forwarder_records_received_total", "Raw records read from Salesforce.", ["source"]
)
source_errors = Counter(
    "forwarder_source_errors_total", "Errors while reading a source, by class.", ["source", "error"]
)
stream_replay_gaps = Counter(
    "forwarder_stream_replay_gaps_total",
    "Stale or expired replay ids: the channel resumed from the earliest retained event.",
    ["channel"],
)
stream_reconnects = Counter(
    "forwarder_stream_reconnects_total", "CometD re-handshakes, by reason.", ["reason"]
)
stream_subscribed = Gauge(
    "forwarder_stream_subscribed",
    "1 while a configured CometD channel is subscribed, 0 while it is not (never silently lost).",
    ["channel"],
)
elf_schema_drift = Counter(
    "forwarder_eventlogfile_schema_drift_total",
    "Changes of LogFileFieldNames for an event type.",
    ["event_type"],
)
source_gaps = Counter(
    "forwarder_source_gaps_total",
    "Data that could not be read and was reported as a named gap (too late, missing file).",
    ["source"],
)
elf_duplicate_rows = Counter(
    "forwarder_eventlogfile_duplicate_rows_total",
    "EventLogFile rows skipped because a re-issued file repeated them (same content hash).",
    ["event_type"],
)
salesforce_api_usage_ratio = Gauge(
    "forwarder_salesforce_api_usage_ratio", "Share of the daily API request limit used (Sforce-Limit-Info)."
)
salesforce_api_requests = Counter(
    "forwarder_salesforce_api_requests_total", "REST requests sent to Salesforce, by outcome.", ["outcome"]
)

# --- ingest / journal ----------------------------------------------------------------------------------
events_ingested = Counter(
    "forwarder_events_ingested_total", "Normalised events appended to the journal.", ["source", "lane"]
)
records_rejected = Counter(
    "forwarder_records_rejected_total", "Records that failed normalisation (dead-lettered).", ["source"]
)
journal_append_seconds = Histogram("forwarder_journal_append_seconds", "Time to append one batch durably.")
journal_bytes = Gauge("forwarder_journal_bytes", "Size of the journal on disk.")
journal_dropped = Counter(
    "forwarder_journal_dropped_events_total",
    "Events deleted unread by when_full: drop_oldest.",
    ["lane"],
)
journal_blocked_seconds = Counter(
    "forwarder_journal_blocked_seconds_total", "Time sources waited on a full journal (when_full: block)."
)

# --- delivery / sinks ----------------------------------------------------------------------------------
sent_events = Counter("forwarder_sent_events_total", "Events a sink acknowledged.", ["sink"])
sent_bytes = Counter("forwarder_sent_bytes_total", "Encoded bytes a sink acknowledged.", ["sink"])
sink_errors = Counter(
    "forwarder_sink_errors_total",
    "Failed sends, by class (retryable, permanent, too_large).",
    ["sink", "error"],
)
sink_retries = Counter(
    "forwarder_sink_retries_total", "Batches sent again after a retryable error.", ["sink"]
)
dead_letters = Counter(
    "forwarder_dead_letters_total", "Events dead-lettered, by consumer (sink name or ingest).", ["consumer"]
)
dead_letters_stored = Gauge(
    "forwarder_dead_letters_stored",
    "Dead letters kept in the journal, by consumer (sink name or ingest), awaiting replay or purge.",
    ["consumer"],
)
sink_lag = Gauge("forwarder_sink_lag_events", "Events in the journal not yet delivered.", ["sink", "lane"])
send_seconds = Histogram("forwarder_sink_send_seconds", "Duration of one send.", ["sink"])

# --- HTTP sinks (splunk_hec, datadog) ------------------------------------------------------------------
hec_ack_wait_seconds = Histogram(
    "forwarder_hec_ack_wait_seconds",
    "Time from a HEC 200 to its indexer acknowledgement (only with acknowledgements on).",
    ["sink"],
    buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600),
)
hec_ack_timeouts = Counter(
    "forwarder_hec_ack_timeouts_total",
    "HEC batches not acknowledged in time (resent, never counted).",
    ["sink"],
)
datadog_truncated_events = Counter(
    "forwarder_datadog_truncated_events_total",
    "Events over Datadog's 1 MB log limit, truncated and flagged.",
    ["sink"],
)
datadog_late_events = Counter(
    "forwarder_datadog_late_events_total",
    "Events older than Datadog's 18-hour window, by the configured policy applied.",
    ["sink", "policy"],
)

# --- syslog sink ---------------------------------------------------------------------------------------
syslog_truncated = Counter(
    "forwarder_syslog_truncated_total",
    "Syslog messages over the size limit, by remedy (raw_dropped keeps valid JSON; cut loses the tail).",
    ["sink", "how"],
)
syslog_connections = Counter(
    "forwarder_syslog_connections_total",
    "Syslog TCP/TLS connection attempts, by outcome.",
    ["sink", "outcome"],
)

# --- webhook sink (generic, slack, pagerduty) ---------------------------------------------------------
webhook_paced_seconds = Counter(
    "forwarder_webhook_paced_seconds_total",
    "Time alerts waited for their slot under the sink's pace (Slack: 1 message/s per webhook).",
    ["sink"],
)

# --- alert rules (forwarder/alerts) --------------------------------------------------------------------
alerts_events_evaluated = Counter(
    "forwarder_alerts_events_evaluated_total", "Documents the rule engine evaluated.", ["lane"]
)
alerts_late_events = Counter(
    "forwarder_alerts_late_events_total",
    "Documents older than their lane's watermark minus the allowed lateness: not evaluated.",
    ["lane"],
)
alerts_fired = Counter("forwarder_alerts_fired_total", "Alerts appended to the journal, by rule.", ["rule"])
alerts_suppressed = Counter(
    "forwarder_alerts_suppressed_total", "Alerts counted but not sent (suppress: for/by), by rule.", ["rule"]
)
alerts_state_groups = Gauge(
    "forwarder_alerts_state_groups", "Windows, occurrences and suppressions held, by rule.", ["rule"]
)
alerts_groups_evicted = Counter(
    "forwarder_alerts_groups_evicted_total",
    "State entries evicted at the per-rule cap (rules.max_groups), oldest first, by rule.",
    ["rule"],
)
alerts_evaluation_lag = Gauge(
    "forwarder_alerts_evaluation_lag_seconds",
    "Seconds from journal append (event.ingested) to evaluation, for the last evaluated batch.",
)
