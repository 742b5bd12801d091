"""Datadog through the real delivery loop and journal: a 3 MB event, a 12 MB backlog, 2,500 events in one
flush and a 413 from the intake all arrive whole, and every accepted request is within the intake limits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from forwarder import metrics
from forwarder.delivery import NO_BACKOFF, Delivery
from forwarder.journal.sqlite import SqliteJournal
from forwarder.records import Lane
from forwarder.testing.receivers import sample_event
from forwarder.testing.receivers.datadog import (
    DEFAULT_API_KEY,
    MAX_ENTRIES,
    MAX_LOG_BYTES,
    MAX_PAYLOAD_BYTES,
    DatadogReceiver,
    dd_fault,
)
from sinks.datadog import DatadogConfig, DatadogSink


@pytest.fixture
async def receiver() -> AsyncIterator[DatadogReceiver]:
    async with DatadogReceiver() as started:
        yield started


async def _deliver(
    receiver: DatadogReceiver, tmp_path: Path, name: str, events: list[dict[str, Any]]
) -> SqliteJournal:
    """Append ``events`` in one go, run delivery until every id arrived, stop; returns the journal."""
    config = DatadogConfig.model_validate(
        {"type": "datadog", "name": name, "url": receiver.intake_url, "api_key": DEFAULT_API_KEY}
    )
    sink = DatadogSink(config)
    journal = await SqliteJournal.open(tmp_path / "journal.db", consumers=[name])
    await journal.append("eventlogfile", Lane.BULK, events, [], None)
    delivery = Delivery(sink, None, journal, backoff=NO_BACKOFF)
    async with asyncio.TaskGroup() as group:
        group.create_task(delivery.run())
        await receiver.wait_for_unique(len(events), timeout=60)
        await delivery.stop(deadline=10)
    await sink.close()
    assert await journal.cursor(name, Lane.BULK) == len(events)
    assert await journal.dead_letters(name) == []
    return journal


def _assert_within_limits(receiver: DatadogReceiver) -> None:
    accepted = [r for r in receiver.requests if r.status == 202]
    assert accepted
    for request in accepted:
        assert request.body_bytes <= MAX_PAYLOAD_BYTES
    assert receiver.oversize_logs == 0
    assert all(len(orjson.dumps(e)) <= MAX_LOG_BYTES for e in receiver.events)


async def test_a_three_megabyte_event_arrives_truncated_and_flagged(
    receiver: DatadogReceiver, tmp_path: Path
) -> None:
    events = [sample_event(0, pad=3_000_000), sample_event(1), sample_event(2)]
    journal = await _deliver(receiver, tmp_path, "dd-3mb", events)
    _assert_within_limits(receiver)
    big = next(e for e in receiver.events if e["event"]["id"] == "evt-00000000")
    assert big["forwarder"]["truncated"] is True
    assert all("forwarder" not in e for e in receiver.events if e is not big)
    await journal.close()


async def test_a_twelve_megabyte_backlog_is_cut_into_requests_under_five_megabytes(
    receiver: DatadogReceiver, tmp_path: Path
) -> None:
    events = [sample_event(i, pad=100_000) for i in range(120)]  # ~12 MB of logs
    journal = await _deliver(receiver, tmp_path, "dd-12mb", events)
    _assert_within_limits(receiver)
    assert len([r for r in receiver.requests if r.status == 202]) >= 3
    assert receiver.duplicates() == 0
    await journal.close()


async def test_two_thousand_five_hundred_events_go_in_requests_of_at_most_a_thousand(
    receiver: DatadogReceiver, tmp_path: Path
) -> None:
    journal = await _deliver(receiver, tmp_path, "dd-2500", [sample_event(i) for i in range(2500)])
    _assert_within_limits(receiver)
    sizes = receiver.batch_sizes
    assert sum(sizes) == 2500
    assert max(sizes) <= MAX_ENTRIES
    assert len(sizes) == 3
    await journal.close()


async def test_a_413_splits_the_batch_until_the_halves_fit(receiver: DatadogReceiver, tmp_path: Path) -> None:
    receiver.max_request_bytes = 300_000  # a stricter proxy in front of the intake
    too_large = metrics.sink_errors.labels("dd-413", "too_large")._value.get()
    journal = await _deliver(receiver, tmp_path, "dd-413", [sample_event(i, pad=1_000) for i in range(1000)])
    assert metrics.sink_errors.labels("dd-413", "too_large")._value.get() > too_large
    assert receiver.duplicates() == 0
    assert all(r.body_bytes <= 300_000 for r in receiver.requests if r.status == 202)
    assert any(r.status == 413 for r in receiver.requests)
    await journal.close()


async def test_rate_limits_and_outages_delay_but_lose_nothing(
    receiver: DatadogReceiver, tmp_path: Path
) -> None:
    receiver.faults.next(dd_fault(429, retry_after=0))
    receiver.faults.next(dd_fault(503), times=3)
    receiver.faults.next(dd_fault(408))
    journal = await _deliver(receiver, tmp_path, "dd-outage", [sample_event(i) for i in range(50)])
    assert [r.status for r in receiver.requests][:5] == [429, 503, 503, 503, 408]
    assert receiver.duplicates() == 0
    await journal.close()
