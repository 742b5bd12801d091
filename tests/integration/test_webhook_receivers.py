"""The webhook receivers refuse what the real services refuse (so the sink's tests mean something), and a
stop in the middle of a request leaves the alert to the next run, which sends it with the same id."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import aiohttp
import orjson
import pytest

from forwarder.delivery import NO_BACKOFF, Delivery
from forwarder.errors import RetryableError
from forwarder.journal.sqlite import SqliteJournal
from forwarder.records import Lane
from forwarder.testing.receivers import Fault, sample_alert
from forwarder.testing.receivers.pagerduty import DEFAULT_ROUTING_KEY, PagerDutyReceiver
from forwarder.testing.receivers.slack import SlackReceiver
from forwarder.testing.receivers.webhook import DEFAULT_SECRET, WebhookReceiver
from sinks.webhook import WebhookConfig, WebhookSink, generic

OTHER_SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


def _sink(fmt: str, **fields: object) -> WebhookSink:
    config = {"type": "webhook", "name": f"rx-{fmt}", "format": fmt, "timeout": 5, "pace": 0, **fields}
    return WebhookSink(WebhookConfig.model_validate(config))


async def _post(url: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as session, session.post(url, data=body, headers=headers) as response:
        return response.status, await response.read()


async def test_the_consumer_accepts_any_of_its_secrets_during_a_rotation() -> None:
    async with WebhookReceiver(secrets=[OTHER_SECRET, DEFAULT_SECRET]) as hooks:
        for secret in (DEFAULT_SECRET, OTHER_SECRET):
            sink = _sink("generic", url=hooks.hook_url, secret=secret)
            await sink.send([sink.encode(sample_alert(len(hooks.unique_ids())))])
            await sink.close()
        assert len(hooks.unique_ids()) == 2


async def test_the_consumer_refuses_unsigned_forged_and_stale_requests() -> None:
    async with WebhookReceiver() as hooks:
        body = orjson.dumps({"type": "salesforce.alert", "data": sample_alert(1)})
        stale = generic.headers(generic.decode_secret(DEFAULT_SECRET), b"id-1\n" + body, 1_000_000_000)[0]
        forged = generic.headers(generic.decode_secret(OTHER_SECRET), b"id-2\n" + body, 2_000_000_000)[0]
        assert (await _post(hooks.hook_url, body))[0] == 400
        assert (await _post(hooks.hook_url, body, stale))[0] == 401
        forged["webhook-timestamp"] = stale["webhook-timestamp"]
        assert (await _post(hooks.hook_url, body, forged))[0] == 401
        assert hooks.refusals == [
            "missing headers",
            "timestamp outside tolerance",
            "timestamp outside tolerance",
        ]
        assert hooks.unique_ids() == set()


async def test_slack_refuses_an_unknown_webhook_path_and_bad_payloads() -> None:
    async with SlackReceiver() as slack:
        assert await _post(f"{slack.url}/services/T0/B0/guess", b'{"text":"x"}') == (404, b"no_service")
        assert await _post(slack.webhook_url, b"{not json") == (400, b"invalid_payload")
        assert await _post(slack.webhook_url, b'{"blocks":[]}') == (400, b"no_text")
        too_long = orjson.dumps(
            {"blocks": [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}]}
        )
        assert await _post(slack.webhook_url, too_long) == (400, b"invalid_blocks")
        assert slack.problems[-1] == "invalid_blocks: header text too long"


async def test_slack_rate_limit_answers_429_with_retry_after() -> None:
    async with SlackReceiver(min_interval=60) as slack:
        sink = _sink("slack", url=slack.webhook_url)
        await sink.send([sink.encode(sample_alert(1))])
        with pytest.raises(RetryableError) as caught:
            await sink.send([sink.encode(sample_alert(2))])
        await sink.close()
        assert caught.value.retry_after == 1


async def test_pagerduty_answers_like_pagerduty() -> None:
    async with PagerDutyReceiver(events_per_minute=1) as pd:
        wrong_length = {"routing_key": "short", "event_action": "trigger"}
        status, body = await _post(pd.enqueue_url, orjson.dumps(wrong_length))
        assert status == 400
        assert orjson.loads(body) == {
            "status": "invalid event",
            "message": "Event object is invalid",
            "errors": ["Length of 'routing_key' is incorrect (should be 32 characters)"],
        }
        sink = _sink("pagerduty", url=pd.enqueue_url, routing_key=DEFAULT_ROUTING_KEY)
        await sink.send([sink.encode(sample_alert(1))])
        with pytest.raises(RetryableError, match="HTTP 429"):
            await sink.send([sink.encode(sample_alert(2))])
        await sink.close()
        assert [r.status for r in pd.requests] == [400, 202, 429]


async def test_a_stop_mid_request_leaves_the_alert_for_the_next_run_with_the_same_id(tmp_path: Path) -> None:
    async with WebhookReceiver() as hooks:
        hooks.faults.next(
            Fault(status=503, delay=5)
        )  # the first attempt stalls; the run is stopped meanwhile
        journal = await SqliteJournal.open(tmp_path / "j.db", consumers=["rx-generic"])
        await journal.append("alerts", Lane.REALTIME, [sample_alert(1)], [], None)
        for _run in range(2):
            sink = _sink("generic", url=hooks.hook_url, secret=DEFAULT_SECRET)
            delivery = Delivery(sink, sink.config.route, journal, backoff=NO_BACKOFF)
            async with asyncio.TaskGroup() as group:
                group.create_task(delivery.run())
                if _run == 0:
                    await hooks.wait_for_arrivals(1)
                else:
                    await hooks.wait_for_unique(1)
                await delivery.stop(deadline=0.1)
            await sink.close()
            if _run == 0:
                assert await journal.cursor("rx-generic", Lane.REALTIME) == 0  # not acknowledged: kept
        assert await journal.cursor("rx-generic", Lane.REALTIME) == 1
        assert hooks.unique_ids() == {"evt-00000001"}
        assert hooks.arrived_ids == [
            "evt-00000001",
            "evt-00000001",
        ]  # the stalled attempt, then the next run's
        await journal.close()
