"""Splunk HTTP Event Collector sink: concatenated JSON envelopes to ``/services/collector/event``, the HEC
reply-code table, and optional indexer acknowledgement (a batch counts only once Splunk says it is indexed).
Facts: ../shared/reference/sinks-and-protocols.md §1 (Splunk "HTTP Event Collector REST API endpoints").
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

import orjson
import structlog
from pydantic import Field, SecretStr, field_validator

from forwarder import metrics
from forwarder.errors import PermanentError, RetryableError
from forwarder.events import EventDoc, get_path
from forwarder.settings import Settings, TlsConfig
from sinks import SinkConfig, SinkLimits
from sinks._http import (
    HttpClient,
    Outcome,
    Response,
    check_http_url,
    gzip_off_loop,
    http_outcome,
    raise_for,
)

log = structlog.get_logger()

#: One channel per process (Splunk "About HEC Indexer Acknowledgment"): harmless without acks, required
#: with them (400 code 10 "Data channel is missing"), reference §1.1.
PROCESS_CHANNEL = str(uuid.uuid4())

# HEC reply codes (reference §1.3, Splunk "Troubleshoot HTTP Event Collector").
_CODE_SERVER_ERROR, _CODE_BUSY = 8, 9
_CODES_CHANNEL = {10, 11}  # channel missing / invalid: fix the channel and resend
_CODE_ACK_DISABLED = 14


class AckSettings(Settings):
    """Indexer acknowledgement (Splunk Enterprise; must be enabled on the token too)."""

    enabled: bool = Field(
        False, description="Wait for indexer acknowledgement before a batch counts as sent."
    )
    poll_interval: float = Field(
        2.0, gt=0, description="Seconds between polls of /services/collector/ack (Vector polls every 10 s)."
    )
    timeout: float = Field(
        300.0,
        gt=0,
        description="Seconds to wait for an ack before resending. Splunk may hold partial indexing batches "
        "for ~2 minutes, so below 300 s duplicates grow (kafka-connect-splunk#122).",
    )


class SplunkHecConfig(SinkConfig):
    """A Splunk HTTP Event Collector endpoint."""

    type: Literal["splunk_hec"] = Field(description="Sink type.")
    url: str = Field(description="HEC base URL, e.g. https://splunk.example:8088 (path is added).")
    token: SecretStr = Field(description="HEC token (sent as 'Authorization: Splunk <token>').")
    index: str | None = Field(None, description="Target index; unset: the token's default index.")
    host: str = Field(default_factory=socket.gethostname, description="The 'host' of every event.")
    source: str = Field("sf-forwarder", description="The 'source' of every event.")
    sourcetype: str = Field(
        "salesforce:{dataset}",
        description="Sourcetype template; {dataset} is event.dataset without its 'salesforce.' prefix.",
    )
    sourcetypes: dict[str, str] = Field(
        default_factory=dict,
        description="Per-dataset sourcetype overrides, e.g. {salesforce.login: sfdc:login}.",
    )
    fields: dict[str, str] = Field(default_factory=dict, description="Extra static indexed fields.")
    acknowledgements: AckSettings = Field(default_factory=AckSettings, description="Indexer acknowledgement.")
    channel: str | None = Field(None, description="Fixed channel GUID; unset: a random one per process.")
    compression: bool = Field(True, description="gzip request bodies.")
    timeout: float = Field(60.0, gt=0, description="Seconds one request may take in total.")
    connect_timeout: float = Field(10.0, gt=0, description="Seconds to establish a connection.")
    tls: TlsConfig = Field(default_factory=TlsConfig, description="TLS client options.")

    _url = field_validator("url")(check_http_url)


# --- pure encoding ---------------------------------------------------------------------------------------


def epoch_seconds(timestamp: Any) -> float | None:
    """HEC ``time``: epoch seconds with milliseconds as the fraction (reference §1.2; integer ms is wrong)."""
    if not isinstance(timestamp, str):
        return None
    try:
        moment = datetime.fromisoformat(timestamp)
    except ValueError:
        return None
    return round(moment.timestamp(), 3) if moment.tzinfo else None


def sourcetype_for(config: SplunkHecConfig, dataset: str) -> str:
    """The configured sourcetype of a dataset: an explicit mapping first, then the template."""
    if dataset in config.sourcetypes:
        return config.sourcetypes[dataset]
    return config.sourcetype.replace("{dataset}", dataset.removeprefix("salesforce."))


def indexed_fields(config: SplunkHecConfig, doc: EventDoc) -> dict[str, str]:
    """Flat string indexed fields (nested values give 400 code 15, reference §1.2)."""
    event = doc.get("event")
    event = event if isinstance(event, dict) else {}
    org = doc.get("organization")
    found = {
        "event_id": event.get("id"),
        "org_id": org.get("id") if isinstance(org, dict) else None,
        "dataset": event.get("dataset"),
        "event_kind": event.get("kind"),
    }
    fields = {k: str(v) for k, v in found.items() if v is not None and not isinstance(v, dict | list)}
    return {**config.fields, **fields} if config.fields else fields


def envelope(config: SplunkHecConfig, doc: EventDoc) -> dict[str, Any]:
    """The HEC event envelope of one event document (the reference form; ``EnvelopeEncoder`` writes the
    same JSON faster)."""
    out: dict[str, Any] = _metadata(config, _dataset(doc))
    when = epoch_seconds(doc.get("@timestamp"))
    if when is not None:  # without ``time`` Splunk uses the receive time
        out["time"] = when
    out["fields"] = indexed_fields(config, doc)
    out["event"] = doc
    return out


def _dataset(doc: EventDoc) -> str:
    return str(get_path(doc, "event.dataset", "unknown"))


def _metadata(config: SplunkHecConfig, dataset: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "host": config.host,
        "source": config.source,
        "sourcetype": sourcetype_for(config, dataset),
    }
    if config.index:
        out["index"] = config.index
    return out


_fromisoformat = datetime.fromisoformat
_dumps = orjson.dumps


class EnvelopeEncoder:
    """Writes ``envelope()`` as bytes without building the envelope dict: the metadata and the indexed
    fields other than the event id are cached per (dataset, org, kind), and the event document is
    serialised once and spliced in (the encoder is the sink's hot path)."""

    _MAX_CACHED = 4096  # keys are config-bounded (datasets x orgs x kinds); a guard, not a tuning knob

    def __init__(self, config: SplunkHecConfig) -> None:
        self._config = config
        self._heads: dict[tuple[Any, ...], bytes] = {}

    def __call__(self, doc: EventDoc) -> bytes:
        # Straight-line on purpose (exact type checks, the time inlined): this runs once per event.
        event = doc.get("event")
        org = doc.get("organization")
        if (
            type(event) is not dict
            or type(event_id := event.get("id")) is not str
            or not (org is None or type(org) is dict)
        ):
            return orjson.dumps(envelope(self._config, doc))
        key = (event.get("dataset"), event.get("kind"), org.get("id") if org else None)
        try:
            head = self._heads.get(key) or self._head(key, doc)
        except TypeError:  # an unhashable dataset/kind/org id: odd, but still an event to send
            return orjson.dumps(envelope(self._config, doc))
        raw, stamp = doc.get("@timestamp"), b""
        if type(raw) is str:  # without ``time`` Splunk uses the receive time
            try:
                moment: datetime | None = _fromisoformat(raw)
            except ValueError:
                moment = None
            if moment is not None and moment.tzinfo is not None:
                # ``%.3f`` rounds exactly like ``round(x, 3)`` in ``epoch_seconds``.
                stamp = b',"time":%.3f' % moment.timestamp()
        return b"".join((head, _dumps(event_id), b"}", stamp, b',"event":', _dumps(doc), b"}"))

    def _head(self, key: tuple[Any, ...], doc: EventDoc) -> bytes:
        """``{<metadata>,"fields":{<fields but event_id>,"event_id":`` for this key."""
        fields = indexed_fields(self._config, doc)
        fields.pop("event_id", None)
        meta = orjson.dumps(_metadata(self._config, _dataset(doc)))[:-1]
        others = orjson.dumps(fields)[:-1] + b"," if fields else b"{"
        if len(self._heads) >= self._MAX_CACHED:
            self._heads.clear()
        head = self._heads[key] = b'%s,"fields":%s"event_id":' % (meta, others)
        return head


def hec_reply(response: Response) -> dict[str, Any]:
    """The ``{"text", "code", ...}`` body, or {} when the body is not HEC JSON (a proxy's page)."""
    try:
        body = orjson.loads(response.body)
    except orjson.JSONDecodeError:
        return {}
    return body if isinstance(body, dict) else {}


def hec_outcome(status: int, code: int | None) -> Outcome:
    """The HEC table: codes 8/9 and 5xx retry, channel codes resend, auth codes 1-4 pause, 413 split."""
    if code in (_CODE_SERVER_ERROR, _CODE_BUSY) or code in _CODES_CHANNEL:
        return Outcome.RETRY
    return http_outcome(status)


# --- the sink ----------------------------------------------------------------------------------------------


class SplunkHecSink:
    """Sends batches of HEC envelopes; with acknowledgements on, ``send`` returns only once indexed."""

    def __init__(self, config: SplunkHecConfig, client: HttpClient | None = None) -> None:
        self.config = config
        self.name = config.name
        # Reference §1.5: stay at <= 1 MiB uncompressed and <= 1000 events per request; split on 413.
        # The body adds a newline between envelopes, so the encoded events get 1 MiB minus 1000 bytes.
        self.limits = SinkLimits(
            max_events=config.batch.max_events or 1000,
            max_bytes=config.batch.max_bytes or 1_048_576 - 1000,
            max_wait=config.batch.max_wait if config.batch.max_wait is not None else 1.0,
        )
        self.channel = config.channel or PROCESS_CHANNEL
        self._encode = EnvelopeEncoder(config)
        self._base = config.url.rstrip("/")
        self._http = client or HttpClient(
            config.tls, config.timeout, config.connect_timeout, config.concurrency
        )
        self._log = log.bind(sink=self.name)
        self._warned_no_ack = False

    def encode(self, event: EventDoc) -> bytes:
        """One envelope as JSON bytes."""
        return self._encode(event)

    def _headers(self, channel: str, compressed: bool) -> dict[str, str]:
        headers = {
            "Authorization": f"Splunk {self.config.token.get_secret_value()}",
            "X-Splunk-Request-Channel": channel,
            "Content-Type": "application/json",
        }
        if compressed:
            headers["Content-Encoding"] = "gzip"
        return headers

    async def send(self, batch: Sequence[bytes]) -> None:
        """POST the envelopes concatenated with ``\\n`` between them (no trailing newline: strict parsers
        trip on it, vector#8459), classify the reply, then wait for the ack when enabled."""
        if not batch:
            return
        body = b"\n".join(batch)
        if self.config.compression:
            body = await gzip_off_loop(body)
        url = f"{self._base}/services/collector/event"
        channel = self.channel  # ack ids belong to the channel they were issued on
        response = await self._http.request(
            "POST", url, self._headers(channel, self.config.compression), body, what="splunk_hec"
        )
        reply = hec_reply(response)
        self._classify(response, reply)
        if self.config.acknowledgements.enabled:
            await self._await_ack(reply.get("ackId"), channel)

    def _classify(self, response: Response, reply: dict[str, Any]) -> None:
        code = reply.get("code")
        outcome = hec_outcome(response.status, code if isinstance(code, int) else None)
        if outcome is Outcome.OK:
            return
        if code in _CODES_CHANNEL:  # reference §1.3: "new channel GUID, retry once"
            self.channel = str(uuid.uuid4())
            raise RetryableError(
                f"splunk_hec: channel refused (code {code}); switched channel", retry_after=0
            )
        if outcome is Outcome.PERMANENT and "invalid-event-number" in reply:
            # Reference §1.3: dead-letter the whole batch, never retry "invalid data format" (kcs#215).
            raise PermanentError(
                f"splunk_hec: {reply.get('text')} (code {code}) at event {reply['invalid-event-number']}"
            )
        raise_for(outcome, response, "splunk_hec")

    async def _await_ack(self, ack_id: Any, channel: str) -> None:
        """Poll ``/services/collector/ack`` until ``ack_id`` is true; unacked at the timeout -> retry."""
        if not isinstance(ack_id, int):  # ack off on the token: the 200 is all Splunk will say
            if not self._warned_no_ack:
                self._warned_no_ack = True
                self._log.warning("hec_ack_id_missing", detail="acknowledgement is off on the HEC token")
            return
        settings = self.config.acknowledgements
        started = time.monotonic()
        deadline = started + settings.timeout
        while True:
            if await self._poll_ack(ack_id, channel):
                metrics.hec_ack_wait_seconds.labels(self.name).observe(time.monotonic() - started)
                return
            if time.monotonic() + settings.poll_interval > deadline:
                break
            await asyncio.sleep(settings.poll_interval)  # protocol polling, not a retry (Vector: 10 s)
        metrics.hec_ack_timeouts.labels(self.name).inc()
        raise RetryableError(
            f"splunk_hec: ack {ack_id} not received within {settings.timeout:g}s", retry_after=0
        )

    async def _poll_ack(self, ack_id: int, channel: str) -> bool:
        """True once acked. A 4xx (code 14 "ACK is disabled") falls back to the 200 (Vector behaviour);
        transport errors and 5xx just mean "not yet"."""
        url = f"{self._base}/services/collector/ack?channel={channel}"
        body = orjson.dumps({"acks": [ack_id]})
        try:
            response = await self._http.request(
                "POST", url, self._headers(channel, False), body, what="splunk_hec ack"
            )
        except RetryableError as exc:
            self._log.warning("hec_ack_poll_failed", error=str(exc))
            return False
        reply = hec_reply(response)
        if 400 <= response.status < 500:
            self._log.warning("hec_ack_unavailable", status=response.status, code=reply.get("code"))
            return response.status not in (401, 403)
        acks = reply.get("acks")
        return isinstance(acks, dict) and acks.get(str(ack_id)) is True

    async def check(self) -> None:
        """``GET /services/collector/health``: 200 code 17 is healthy; anything else raises."""
        url = f"{self._base}/services/collector/health"
        response = await self._http.request("GET", url, {}, what="splunk_hec health")
        raise_for(http_outcome(response.status), response, "splunk_hec health")

    async def close(self) -> None:
        """Close the HTTP session; idempotent."""
        await self._http.close()
