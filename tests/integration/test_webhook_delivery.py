"""The webhook sink through the real delivery loop and journal, over HTTP to the receivers: alerts only by
default, refusals dead-lettered with the service's reason, rate limits and outages retried with Retry-After
honoured, endpoint refusals paused without loss, timeouts, TLS with a test CA, and no secret anywhere."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import generate_latest
from structlog.testing import capture_logs

from forwarder import metrics
from forwarder.delivery import NO_BACKOFF, Backoff, Delivery
from forwarder.errors import RetryableError
from forwarder.journal.sqlite import SqliteJournal
from forwarder.records import Lane
from forwarder.settings import TlsConfig
from forwarder.testing.receivers import Fault, HttpReceiver, sample_alert, sample_event
from forwarder.testing.receivers.certs import make_pki
from forwarder.testing.receivers.pagerduty import DEFAULT_ROUTING_KEY, PagerDutyReceiver, pd_fault
from forwarder.testing.receivers.slack import SlackReceiver, slack_fault
from forwarder.testing.receivers.webhook import DEFAULT_SECRET, WebhookReceiver
from sinks.webhook import Pacer, WebhookConfig, WebhookSink


def _sink(fmt: str, name: str, **fields: Any) -> WebhookSink:
    config = {"type": "webhook", "name": name, "format": fmt, "timeout": 5, "pace": 0, **fields}
    return WebhookSink(WebhookConfig.model_validate(config))


async def _deliver(
    sink: WebhookSink,
    receiver: HttpReceiver,
    tmp_path: Path,
    docs: list[dict[str, Any]],
    expect: int,
    backoff: Backoff = NO_BACKOFF,
    sleep: Any = None,
) -> SqliteJournal:
    """Append ``docs`` to a journal, run delivery with the sink's own (default) route until ``expect``
    alerts arrived, stop; the journal's cursor has passed every document."""
    journal = await SqliteJournal.open(tmp_path / f"{sink.name}.db", consumers=[sink.name])
    await journal.append("alerts", Lane.REALTIME, docs, [], None)
    options: dict[str, Any] = {"backoff": backoff} | ({"sleep": sleep} if sleep else {})
    delivery = Delivery(sink, sink.config.route, journal, **options)
    async with asyncio.TaskGroup() as group:
        group.create_task(delivery.run())
        await receiver.wait_for_unique(expect, timeout=30)
        await delivery.stop(deadline=10)
    await sink.close()
    assert await journal.cursor(sink.name, Lane.REALTIME) == len(docs)
    return journal


def _events_then_alerts(alerts: int, events: int = 5) -> list[dict[str, Any]]:
    return [sample_event(1000 + i) for i in range(events)] + [sample_alert(i) for i in range(alerts)]


@pytest.fixture
async def hooks() -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver() as started:
        yield started


async def test_generic_delivers_only_alerts_signed_and_survives_rate_limits_and_outages(
    hooks: WebhookReceiver, tmp_path: Path
) -> None:
    hooks.faults.next(Fault(status=429, headers={"Retry-After": "0"}))
    hooks.faults.next(Fault(status=503), times=2)
    hooks.faults.next(Fault(status=502))
    sink = _sink("generic", "hooks-ok", url=hooks.hook_url, secret=DEFAULT_SECRET)
    journal = await _deliver(sink, hooks, tmp_path, _events_then_alerts(20), expect=20)
    assert hooks.unique_ids() == {f"evt-{i:08d}" for i in range(20)}
    assert [r.status for r in hooks.requests][:4] == [429, 503, 503, 502]
    assert hooks.refusals == []  # every request carried a valid, fresh signature
    assert hooks.duplicates() == 0
    assert await journal.dead_letters("hooks-ok") == []
    await journal.close()


async def test_a_refused_alert_is_dead_lettered_with_the_reason_and_the_rest_arrive(
    tmp_path: Path,
) -> None:
    refusal = orjson.dumps(
        {
            "status": "invalid event",
            "message": "Event object is invalid",
            "errors": ["'payload.source' is missing"],
        }
    )
    async with PagerDutyReceiver() as pd:
        pd.faults.next(Fault(status=400, body=refusal))
        sink = _sink("pagerduty", "pd-400", url=pd.enqueue_url, routing_key=DEFAULT_ROUTING_KEY)
        journal = await _deliver(sink, pd, tmp_path, _events_then_alerts(10), expect=9)
    (letter,) = await journal.dead_letters("pd-400")
    assert letter.payload["event"]["id"] == "evt-00000000"
    assert "'payload.source' is missing" in letter.reason
    assert pd.unique_ids() == {f"evt-{i:08d}" for i in range(1, 10)}
    assert pd.rejections == []  # our own events all passed the schema
    await journal.close()


async def test_pagerduty_groups_repeated_triggers_under_the_alerts_dedup_key(tmp_path: Path) -> None:
    first, second = sample_alert(1), sample_alert(2)
    second["salesforce"]["alert"]["dedup_key"] = first["salesforce"]["alert"]["dedup_key"]
    async with PagerDutyReceiver() as pd:
        pd.faults.next(pd_fault(429), times=2)
        pd.faults.next(pd_fault(500))
        sink = _sink("pagerduty", "pd-dedup", url=pd.enqueue_url, routing_key=DEFAULT_ROUTING_KEY)
        journal = await _deliver(sink, pd, tmp_path, [first, second], expect=2)
    assert pd.open_alerts == {first["salesforce"]["alert"]["dedup_key"]: 2}
    assert [r.status for r in pd.requests] == [429, 429, 500, 202, 202]
    await journal.close()


async def test_a_revoked_slack_webhook_pauses_the_sink_and_loses_nothing(tmp_path: Path) -> None:
    async with SlackReceiver() as slack:
        slack.faults.next(slack_fault(404, "no_service"), times=2)
        slack.faults.next(slack_fault(410, "channel_is_archived"))
        before = metrics.sink_errors.labels("slack-gone", "auth")._value.get()
        sink = _sink("slack", "slack-gone", url=slack.webhook_url)
        journal = await _deliver(sink, slack, tmp_path, _events_then_alerts(5), expect=5)
    assert await journal.dead_letters("slack-gone") == []
    assert metrics.sink_errors.labels("slack-gone", "auth")._value.get() - before == 3
    assert slack.problems == []  # every message passed the Block Kit checks
    await journal.close()


async def test_slack_429_retry_after_is_honoured(tmp_path: Path) -> None:
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    async with SlackReceiver() as slack:
        slack.faults.next(slack_fault(429, "rate_limited", retry_after=7))
        sink = _sink("slack", "slack-429", url=slack.webhook_url)
        backoff = Backoff(initial=0.0, cap=0.0, retry_after_cap=60.0)
        journal = await _deliver(
            sink, slack, tmp_path, [sample_alert(1)], expect=1, backoff=backoff, sleep=record
        )
    assert waits == [7.0]
    await journal.close()


async def test_slack_is_paced_one_message_per_interval() -> None:
    now = [100.0]
    waits: list[float] = []

    async def advance(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    async with SlackReceiver() as slack:
        config = WebhookConfig.model_validate(
            {"type": "webhook", "name": "slack-pace", "format": "slack", "url": slack.webhook_url}
        )
        sink = WebhookSink(config, pacer=Pacer(config.min_interval(), clock=lambda: now[0], sleep=advance))
        for i in range(4):
            await sink.send([sink.encode(sample_alert(i))])
        await sink.close()
    assert waits == [1.0, 1.0, 1.0]
    assert len(slack.unique_ids()) == 4


async def test_a_timeout_is_retried_and_the_alert_arrives_once(
    hooks: WebhookReceiver, tmp_path: Path
) -> None:
    hooks.faults.next(Fault(status=204, delay=2))
    sink = _sink("generic", "hooks-slow", url=hooks.hook_url, secret=DEFAULT_SECRET, timeout=0.3)
    with pytest.raises(RetryableError, match="TimeoutError"):
        await sink.send([sink.encode(sample_alert(1))])
    journal = await _deliver(sink, hooks, tmp_path, [sample_alert(1)], expect=1)
    assert hooks.unique_ids() == {"evt-00000001"}
    await journal.close()


async def test_a_redelivered_alert_keeps_its_id_and_is_acknowledged_not_processed_twice(
    hooks: WebhookReceiver,
) -> None:
    sink = _sink("generic", "hooks-again", url=hooks.hook_url, secret=DEFAULT_SECRET)
    encoded = sink.encode(sample_alert(1))
    await sink.send([encoded])
    await sink.send([encoded])  # e.g. the answer was lost and delivery sent the batch again
    await sink.close()
    assert hooks.redeliveries == 1
    assert hooks.event_count == 1
    assert hooks.requests[0].headers["webhook-id"] == hooks.requests[1].headers["webhook-id"]


async def test_tls_with_the_test_ca_delivers_and_probes(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    async with WebhookReceiver(ssl_context=pki.server_context(require_client_cert=True)) as hooks:
        tls = TlsConfig(ca_file=pki.ca, cert_file=pki.client_cert, key_file=pki.client_key)
        sink = _sink("generic", "hooks-tls", url=hooks.hook_url, secret=DEFAULT_SECRET, tls=tls.model_dump())
        await sink.check()
        await sink.send([sink.encode(sample_alert(1))])
        await sink.close()
        assert hooks.unique_ids() == {"evt-00000001"}


async def test_tls_with_an_unknown_ca_is_refused_by_send_and_probe(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    async with WebhookReceiver(ssl_context=pki.server_context()) as hooks:
        sink = _sink("generic", "hooks-badca", url=hooks.hook_url, secret=DEFAULT_SECRET)
        with pytest.raises(RetryableError, match=r"(?i)certificate"):
            await sink.send([sink.encode(sample_alert(1))])
        with pytest.raises(RetryableError):
            await sink.check()
        await sink.close()
        assert hooks.unique_ids() == set()


async def test_no_secret_appears_in_logs_errors_dead_letters_or_metrics(tmp_path: Path) -> None:
    """Every failure path of the three formats, then a grep for the HMAC secret, the routing key and the
    Slack URL's path."""
    secrets = [
        DEFAULT_SECRET,
        DEFAULT_SECRET.removeprefix("whsec_"),
        DEFAULT_ROUTING_KEY,
        "xTestWebhookSecret",
    ]
    seen: list[str] = []
    with capture_logs() as logs:
        async with WebhookReceiver() as hooks, SlackReceiver() as slack, PagerDutyReceiver() as pd:
            cases = [
                (_sink("generic", "leak-g", url=hooks.hook_url, secret=DEFAULT_SECRET), hooks),
                (_sink("slack", "leak-s", url=slack.webhook_url), slack),
                (_sink("pagerduty", "leak-p", url=pd.enqueue_url, routing_key=DEFAULT_ROUTING_KEY), pd),
            ]
            for sink, receiver in cases:
                receiver.faults.next(Fault(status=400, body=b"no"))
                receiver.faults.next(Fault(status=503))
                receiver.faults.next(Fault(status=302, headers={"Location": slack.webhook_url}))
                receiver.faults.next(Fault(status=404, body=b"no_service"))
                receiver.faults.next(Fault(status=503, delay=0.2))
                journal = await _deliver(
                    sink, receiver, tmp_path, [sample_alert(i) for i in range(6)], expect=5, sleep=None
                )
                seen += [letter.reason for letter in await journal.dead_letters(sink.name)]
                await journal.close()
            for sink, _ in cases:
                await hooks.stop()
                await slack.stop()
                await pd.stop()
                for call in (sink.check(), sink.send([sink.encode(sample_alert(99))])):
                    try:
                        await call
                    except Exception as exc:
                        seen.append(str(exc))
                await sink.close()
    assert any(entry["event"] == "event_dead_lettered" for entry in logs)
    assert any(entry["event"] == "send_failing" for entry in logs)  # the paused endpoint, logged at ERROR
    seen += [json.dumps(entry, default=str) for entry in logs]
    seen.append(generate_latest().decode())
    assert any("HTTP 400" in text for text in seen)
    for text in seen:
        for secret in secrets:
            assert secret not in text
