"""SetupAuditTrail source over real HTTP: same-second ties across pages, late rows, malformed answers."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from forwarder import metrics
from forwarder.sources.setupaudittrail import SetupAuditTrailConfig, SetupAuditTrailSource
from forwarder.testing.clock import ManualClock
from tests.integration.elf_org import Crash, FakeOrg, Journal, serve_org

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def Clock() -> ManualClock:
    return ManualClock(NOW)


async def no_sleep(_: float) -> None:
    return None


def source(rest: Any, **cfg: Any) -> SetupAuditTrailSource:
    config = SetupAuditTrailConfig.model_validate(cfg)
    return SetupAuditTrailSource(config, rest, clock=Clock(), sleep=no_sleep, backoff=(0, 0))


def ids(journal: Journal) -> Counter[str]:
    return Counter(r.payload["Id"] for r in journal.records)


async def test_1200_records_in_one_second_across_pages_once_and_idle_polls_emit_nothing() -> None:
    org, journal = FakeOrg(page_size=200), Journal()
    second = NOW - timedelta(minutes=1)
    for i in range(1200):
        org.add_audit(f"0Ym{i:015d}", second)
    async with serve_org(org) as rest:
        src = source(rest, batch_size=500)
        assert await src.poll(journal.emit) == 1200
        assert await src.poll(journal.emit) == 0
        assert await src.poll(journal.emit) == 0
    seen = ids(journal)
    assert len(seen) == 1200
    assert max(seen.values()) == 1
    assert org.longest_uri < 16_384
    record = journal.records[0]
    assert (record.source, record.kind) == ("setupaudittrail", "SetupAuditTrail")
    assert record.payload["CreatedBy"]["Username"] == "admin@example.com"


async def test_late_row_inside_overlap_is_delivered_and_beyond_it_is_a_named_gap() -> None:
    org, journal = FakeOrg(), Journal()
    org.add_audit("0Ym1", NOW - timedelta(minutes=1))
    org.add_audit("0Ym2", NOW - timedelta(minutes=4))  # 3 min behind the watermark: inside overlap
    org.add_audit("0Ym3", NOW - timedelta(minutes=8))  # 7 min behind: past the 5 min overlap
    org.hidden = {"0Ym2", "0Ym3"}
    gaps = metrics.source_gaps.labels(source="setupaudittrail")
    before = gaps._value.get()
    async with serve_org(org) as rest:
        src = source(rest, overlap="PT5M")
        await src.poll(journal.emit)
        org.hidden = set()
        await src.poll(journal.emit)
        await src.poll(journal.emit)
    assert sorted(ids(journal)) == ["0Ym1", "0Ym2"]
    assert gaps._value.get() == before + 1


async def test_malformed_answers_for_a_while_lose_nothing() -> None:
    org, journal = FakeOrg(), Journal()
    for i in range(30):
        org.add_audit(f"0Ym{i:03d}", NOW - timedelta(seconds=i))
    org.query_faults = ["html", "empty", "[]", "noid", "503", "limit"] * 3
    polls = 0

    async def sleep(_: float) -> None:
        nonlocal polls
        polls += 1
        if polls > 30:
            raise Crash

    async with serve_org(org) as rest:
        src = SetupAuditTrailSource(SetupAuditTrailConfig(), rest, clock=Clock(), sleep=sleep, backoff=(0, 0))
        with pytest.raises(Crash):
            await src.run(None, journal.emit)
    assert sorted(ids(journal)) == sorted(f"0Ym{i:03d}" for i in range(30))
    assert max(ids(journal).values()) == 1


async def test_query_more_failure_mid_query_skips_nothing() -> None:
    org, journal = FakeOrg(page_size=100), Journal()
    for i in range(450):
        org.add_audit(f"0Ym{i:04d}", NOW - timedelta(minutes=2))
    org.more_faults = ["503"]
    async with serve_org(org) as rest:
        src = source(rest, batch_size=1000)
        from forwarder.errors import RetryableError

        with pytest.raises(RetryableError):
            await src.poll(journal.emit)
        await src.poll(journal.emit)
    assert len(ids(journal)) == 450
    assert max(ids(journal).values()) == 1


async def test_crash_between_batches_resumes_without_duplicates() -> None:
    org, journal = FakeOrg(page_size=200), Journal(crash_at=3)
    for i in range(1000):
        org.add_audit(f"0Ym{i:04d}", NOW - timedelta(seconds=30 + i // 300))
    async with serve_org(org) as rest:
        with pytest.raises(Crash):
            await source(rest, batch_size=250).poll(journal.emit)
        restarted = source(rest, batch_size=250)
        restarted.load(journal.position)
        await restarted.poll(journal.emit)
    assert len(ids(journal)) == 1000
    assert max(ids(journal).values()) == 1


async def test_first_run_reads_the_initial_span_capped_at_retention() -> None:
    org, journal = FakeOrg(), Journal()
    org.add_audit("0YmOld", NOW - timedelta(days=200))
    org.add_audit("0YmIn", NOW - timedelta(days=170))
    org.add_audit("0YmNew", NOW - timedelta(hours=1))
    async with serve_org(org) as rest:
        await source(rest, initial_span="P365D").poll(journal.emit)
    assert sorted(ids(journal)) == ["0YmIn", "0YmNew"]
