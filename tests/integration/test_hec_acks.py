"""Indexer acknowledgement: a batch counts as sent only once Splunk says it is indexed; a late ack holds
``send`` back, a missing ack makes it retryable, and the resend is what brings the events."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from forwarder import metrics
from forwarder.errors import RetryableError
from forwarder.testing.receivers import sample_event
from forwarder.testing.receivers.hec import DEFAULT_TOKEN, HecReceiver
from sinks.splunk_hec import SplunkHecConfig, SplunkHecSink


def _sink(url: str, name: str, timeout: float = 5.0, acks: bool = True) -> SplunkHecSink:
    config = SplunkHecConfig.model_validate(
        {
            "type": "splunk_hec",
            "name": name,
            "url": url,
            "token": DEFAULT_TOKEN,
            "acknowledgements": {"enabled": acks, "poll_interval": 0.02, "timeout": timeout},
        }
    )
    return SplunkHecSink(config)


def _batch(sink: SplunkHecSink, start: int, n: int) -> list[bytes]:
    return [sink.encode(sample_event(i)) for i in range(start, start + n)]


@pytest.fixture
async def receiver() -> AsyncIterator[HecReceiver]:
    async with HecReceiver(acks=True) as started:
        yield started


async def test_send_returns_once_the_batch_is_acknowledged(receiver: HecReceiver) -> None:
    sink = _sink(receiver.url, "ack-now")
    await sink.send(_batch(sink, 0, 5))
    await sink.close()
    assert receiver.unique_ids() == {f"evt-{i:08d}" for i in range(5)}
    assert receiver.pending_acks() == 0
    assert receiver.channels == {sink.channel}


async def test_a_late_ack_holds_send_until_the_events_are_indexed(receiver: HecReceiver) -> None:
    receiver.ack_delay = 0.3
    sink = _sink(receiver.url, "ack-late")
    observed = metrics.hec_ack_wait_seconds.labels("ack-late")._sum.get()
    started = time.monotonic()
    await sink.send(_batch(sink, 0, 5))
    await sink.close()
    assert time.monotonic() - started >= 0.3
    assert receiver.ack_polls > 1
    assert len(receiver.unique_ids()) == 5  # indexed when send returned, not before
    assert metrics.hec_ack_wait_seconds.labels("ack-late")._sum.get() - observed >= 0.3


async def test_a_missing_ack_is_retryable_and_the_resend_delivers(receiver: HecReceiver) -> None:
    receiver.drop_acks(1)
    sink = _sink(receiver.url, "ack-never", timeout=0.2)
    timeouts = metrics.hec_ack_timeouts.labels("ack-never")._value.get()
    with pytest.raises(RetryableError, match="not received within"):
        await sink.send(_batch(sink, 0, 5))
    assert receiver.unique_ids() == set()  # accepted by HEC but never indexed: nothing counts
    assert metrics.hec_ack_timeouts.labels("ack-never")._value.get() == timeouts + 1
    await sink.send(_batch(sink, 0, 5))
    await sink.close()
    assert receiver.unique_ids() == {f"evt-{i:08d}" for i in range(5)}
    assert receiver.duplicates() == 0


async def test_ack_disabled_on_the_server_falls_back_to_the_200() -> None:
    async with HecReceiver(acks=False) as receiver:
        sink = _sink(receiver.url, "ack-off-server")
        await sink.send(_batch(sink, 0, 2))
        await sink.close()
        assert len(receiver.unique_ids()) == 2


async def test_without_acks_configured_the_sink_never_polls(receiver: HecReceiver) -> None:
    receiver.acks = False
    sink = _sink(receiver.url, "ack-off", acks=False)
    await sink.send(_batch(sink, 0, 2))
    await sink.close()
    assert receiver.ack_polls == 0
