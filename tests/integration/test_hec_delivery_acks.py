"""HEC with indexer acknowledgement, driven through the real delivery loop and SQLite journal: a late ack
holds the cursor back, a missing ack is retried, and nothing is counted delivered before its ack."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from forwarder import metrics
from forwarder.delivery import NO_BACKOFF, Backoff, Delivery
from forwarder.journal.sqlite import SqliteJournal
from forwarder.records import Lane
from forwarder.testing.receivers import sample_event
from forwarder.testing.receivers.hec import DEFAULT_TOKEN, HecReceiver, hec_fault
from sinks.splunk_hec import SplunkHecConfig, SplunkHecSink

N = 300


def _sink(url: str, name: str, ack_timeout: float = 10.0) -> SplunkHecSink:
    config = SplunkHecConfig.model_validate(
        {
            "type": "splunk_hec",
            "name": name,
            "url": url,
            "token": DEFAULT_TOKEN,
            "batch": {"max_events": 100, "max_wait": 0},
            "acknowledgements": {"enabled": True, "poll_interval": 0.01, "timeout": ack_timeout},
        }
    )
    return SplunkHecSink(config)


async def _journal(tmp_path: Path, consumer: str) -> SqliteJournal:
    journal = await SqliteJournal.open(tmp_path / "journal.db", consumers=[consumer])
    await journal.append("streaming", Lane.REALTIME, [sample_event(i) for i in range(N)], [], None)
    return journal


@pytest.fixture
async def receiver() -> AsyncIterator[HecReceiver]:
    async with HecReceiver(acks=True) as started:
        yield started


def _sent(name: str) -> float:
    return float(metrics.sent_events.labels(name)._value.get())


async def test_cursor_and_sent_count_wait_for_the_ack(receiver: HecReceiver, tmp_path: Path) -> None:
    sink = _sink(receiver.url, "hec-held")
    journal = await _journal(tmp_path, sink.name)
    receiver.hold_acks()
    delivery = Delivery(sink, None, journal, backoff=NO_BACKOFF)
    async with asyncio.TaskGroup() as group:
        group.create_task(delivery.run())
        async with asyncio.timeout(10):
            await receiver.ack_polled.wait()
        # HEC has the batch but has not indexed it: nothing may count as delivered yet.
        assert receiver.pending_acks() >= 1
        assert await journal.cursor(sink.name, Lane.REALTIME) == 0
        assert _sent(sink.name) == 0
        assert receiver.unique_ids() == set()
        receiver.release_acks()
        await receiver.wait_for_unique(N)
        await delivery.stop(deadline=10)
    assert await journal.cursor(sink.name, Lane.REALTIME) == N
    assert _sent(sink.name) == N
    await sink.close()
    await journal.close()


async def test_unacknowledged_batches_are_resent_until_acked(receiver: HecReceiver, tmp_path: Path) -> None:
    sink = _sink(receiver.url, "hec-dropped", ack_timeout=0.2)
    journal = await _journal(tmp_path, sink.name)
    receiver.drop_acks(2)  # two batches vanish inside "Splunk" after their 200
    timeouts = metrics.hec_ack_timeouts.labels(sink.name)._value.get()
    delivery = Delivery(sink, None, journal, backoff=NO_BACKOFF)
    async with asyncio.TaskGroup() as group:
        group.create_task(delivery.run())
        await receiver.wait_for_unique(N)
        await delivery.stop(deadline=10)
    assert receiver.unique_ids() == {f"evt-{i:08d}" for i in range(N)}
    assert metrics.hec_ack_timeouts.labels(sink.name)._value.get() - timeouts == 2
    assert _sent(sink.name) == N  # the lost attempts were never counted
    assert await journal.cursor(sink.name, Lane.REALTIME) == N
    assert await journal.dead_letters(sink.name) == []
    await sink.close()
    await journal.close()


async def test_acks_that_never_come_keep_everything_for_after_a_restart(tmp_path: Path) -> None:
    async with HecReceiver(acks=True) as receiver:
        receiver.hold_acks()
        sink = _sink(receiver.url, "hec-restart", ack_timeout=0.05)
        journal = await _journal(tmp_path, sink.name)
        delivery = Delivery(sink, None, journal, backoff=NO_BACKOFF)
        async with asyncio.TaskGroup() as group:
            group.create_task(delivery.run())
            async with asyncio.timeout(10):
                await receiver.ack_polled.wait()
            await delivery.stop(deadline=1)
        assert await journal.cursor(sink.name, Lane.REALTIME) == 0
        assert receiver.unique_ids() == set()
        await sink.close()
        await journal.close()
    # "Restart": a fresh journal handle, sink and healthy receiver.
    async with HecReceiver(acks=True) as receiver:
        sink = _sink(receiver.url, "hec-restart")
        journal = await SqliteJournal.open(tmp_path / "journal.db", consumers=[sink.name])
        delivery = Delivery(sink, None, journal, backoff=NO_BACKOFF)
        async with asyncio.TaskGroup() as group:
            group.create_task(delivery.run())
            await receiver.wait_for_unique(N)
            await delivery.stop(deadline=10)
        assert await journal.cursor(sink.name, Lane.REALTIME) == N
        await sink.close()
        await journal.close()


async def test_an_outage_window_delays_but_loses_nothing(receiver: HecReceiver, tmp_path: Path) -> None:
    sink = _sink(receiver.url, "hec-outage")
    journal = await _journal(tmp_path, sink.name)
    receiver.faults.for_seconds(0.3, hec_fault(503, 9, "Server is busy"))
    delivery = Delivery(sink, None, journal, backoff=Backoff(initial=0.01, cap=0.05, retry_after_cap=0.05))
    async with asyncio.TaskGroup() as group:
        group.create_task(delivery.run())
        await receiver.wait_for_unique(N)
        await delivery.stop(deadline=10)
    assert any(r.status == 503 for r in receiver.requests)
    assert receiver.duplicates() == 0
    assert await journal.cursor(sink.name, Lane.REALTIME) == N
    await sink.close()
    await journal.close()
