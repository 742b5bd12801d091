"""EventLogFile source over real HTTP against every fault: ties, resets, 503s, 404s, late files, fallback."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from forwarder import metrics
from forwarder.errors import RetryableError
from forwarder.sources.eventlogfile import EventLogFileConfig, EventLogFileSource, completeness
from forwarder.testing.clock import ManualClock
from tests.integration.elf_org import Crash, FakeOrg, Journal, serve_org

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def Clock() -> ManualClock:
    return ManualClock(T0 + timedelta(hours=3))


async def no_sleep(_: float) -> None:
    return None


def rows(prefix: str, count: int) -> list[list[str]]:
    return [
        ["Login", f"2026112609{i % 60:02d}00.{i % 1000:03d}", f"005{prefix}{i:08d}", str(i)]
        for i in range(count)
    ]


def source(rest: Any, clock: ManualClock | None = None, **cfg: Any) -> EventLogFileSource:
    config = EventLogFileConfig.model_validate({"start": "2026-11-26", **cfg})
    return EventLogFileSource(config, rest, clock=clock or Clock(), sleep=no_sleep, backoff=(0, 0))


def user_ids(journal: Journal) -> Counter[str]:
    return Counter(r.payload["USER_ID"] for r in journal.records)


def exactly_once(journal: Journal, expected: int) -> None:
    seen = user_ids(journal)
    assert len(seen) == expected
    assert max(seen.values()) == 1


async def test_every_row_of_every_file_once_in_batches_typed() -> None:
    org, journal = FakeOrg(), Journal()
    org.add_file("0AT01", "Login", T0, rows("a", 2500))
    org.add_file("0AT02", "Logout", T0 + timedelta(minutes=1), rows("b", 10))
    async with serve_org(org) as rest:
        src = source(rest, batch_rows=1000)
        assert await src.poll(journal.emit) == 2
    exactly_once(journal, 2510)
    first = journal.records[0]
    assert first.source == "eventlogfile"
    assert first.kind == "Login"
    assert first.payload["RUN_TIME"] == 0
    assert first.envelope is not None
    assert first.envelope["log_file_id"] == "0AT01"
    assert first.envelope["log_file_sequence"] == 1
    assert first.envelope["log_file_interval"] == "Hourly"
    assert first.fields is not None
    assert tuple(first.payload) == first.fields
    assert journal.appends == 4  # 1000 + 1000 + 500 for the first file, 10 for the second
    assert journal.position is not None
    assert set(journal.position["done"]) == {"0AT01", "0AT02"}


async def test_650_files_with_one_created_date_across_pages_read_once_and_idle_polls_read_nothing() -> None:
    org, journal = FakeOrg(page_size=200), Journal()
    for i in range(650):
        org.add_file(f"0AT{i:05d}", "Login", T0, [["Login", "20261126090000.000", f"005u{i:05d}", "1"]])
    async with serve_org(org) as rest:
        src = source(rest)
        await src.poll(journal.emit)
        downloads = len(org.downloads)
        await src.poll(journal.emit)
        await src.poll(journal.emit)
    exactly_once(journal, 650)
    assert downloads == 650
    assert len(org.downloads) == 650  # idle polls re-query metadata only
    assert org.longest_uri < 16_384


async def test_crash_mid_file_resumes_at_the_row() -> None:
    org, journal = FakeOrg(), Journal(crash_at=3)
    org.add_file("0AT01", "Login", T0, rows("a", 5000))
    async with serve_org(org) as rest:
        with pytest.raises(Crash):
            await source(rest, batch_rows=1000).poll(journal.emit)
        assert journal.position is not None
        assert journal.position["current"] == {
            "id": "0AT01",
            "row": 2000,
            "created": "2026-11-26T09:00:00.000Z",
        }
        restarted = source(rest, batch_rows=1000)
        restarted.state = None
        await _poll_from(restarted, journal)
    exactly_once(journal, 5000)


async def _poll_from(src: EventLogFileSource, journal: Journal) -> None:
    from forwarder.sources._elf_state import ElfState

    src.state = ElfState.load(journal.position, src._config, src._clock())
    await src.poll(journal.emit)


async def test_download_reset_mid_body_loses_and_duplicates_nothing() -> None:
    org, journal = FakeOrg(), Journal()
    org.add_file("0AT01", "Login", T0, rows("a", 20_000))
    org.file_faults["0AT01"] = ["reset"]
    async with serve_org(org) as rest:
        await source(rest, batch_rows=500).poll(journal.emit)
    exactly_once(journal, 20_000)
    assert org.downloads == ["0AT01", "0AT01"]


async def test_503_503_then_ok_arrives_exactly_once() -> None:
    org, journal = FakeOrg(), Journal()
    org.add_file("0AT01", "Login", T0, rows("a", 30))
    org.file_faults["0AT01"] = ["503", "503"]
    async with serve_org(org) as rest:
        await source(rest).poll(journal.emit)
    exactly_once(journal, 30)
    assert org.downloads == ["0AT01"] * 3


async def test_404_forever_becomes_a_named_gap_after_max_age_and_others_flow() -> None:
    org, journal, clock = FakeOrg(), Journal(), Clock()
    org.add_file("0AT01", "Login", T0, rows("a", 5))
    org.add_file("0AT02", "Login", T0 + timedelta(seconds=1), rows("b", 5))
    org.file_faults["0AT01"] = ["404!"]
    gaps = metrics.source_gaps.labels(source="eventlogfile")
    before = gaps._value.get()
    async with serve_org(org) as rest:
        src = source(rest, clock, missing_file_max_age="PT1H")
        await src.poll(journal.emit)
        assert journal.position is not None
        assert "0AT01" in journal.position["failing"]
        assert gaps._value.get() == before
        clock.now += timedelta(minutes=30)
        await src.poll(journal.emit)
        assert gaps._value.get() == before
        clock.now += timedelta(minutes=31)
        await src.poll(journal.emit)
        await src.poll(journal.emit)
    assert gaps._value.get() == before + 1
    exactly_once(journal, 5)
    assert journal.position["failing"] == {}
    assert org.downloads.count("0AT01") == 3


async def test_late_sequence_file_is_read_and_repeated_rows_are_skipped() -> None:
    org, journal = FakeOrg(), Journal()
    org.add_file("0AT01", "Login", T0, rows("a", 10), sequence=1)
    async with serve_org(org) as rest:
        src = source(rest)
        await src.poll(journal.emit)
        late = rows("a", 10)[8:] + rows("z", 3)  # two rows repeated from Sequence 1, three new
        org.add_file("0AT02", "Login", T0 + timedelta(hours=2), late, sequence=2, log_date=T0)
        await src.poll(journal.emit)
    exactly_once(journal, 13)
    view = completeness(journal.position)
    assert view["Login"]["2026-11-26"][9] == "2"


async def test_file_visible_late_within_overlap_is_delivered_beyond_it_is_a_named_gap() -> None:
    org, journal = FakeOrg(), Journal()
    org.add_file("0AT01", "Login", T0 + timedelta(hours=2), rows("a", 3))
    org.add_file("0AT02", "Login", T0 + timedelta(hours=1, minutes=30), rows("b", 3))  # 30 min behind
    org.add_file("0AT03", "Login", T0 + timedelta(minutes=30), rows("c", 3))  # 90 min behind
    org.hidden = {"0AT02", "0AT03"}
    gaps = metrics.source_gaps.labels(source="eventlogfile")
    before = gaps._value.get()
    async with serve_org(org) as rest:
        src = source(rest, overlap="PT1H")
        await src.poll(journal.emit)
        org.hidden = set()
        await src.poll(journal.emit)
        await src.poll(journal.emit)
    assert sorted(user_ids(journal)) == sorted(f"005{p}{i:08d}" for p in "ab" for i in range(3))
    assert gaps._value.get() == before + 1


async def test_no_hourly_entitlement_falls_back_to_daily_once() -> None:
    org, journal = FakeOrg(no_interval_field=True), Journal()
    org.add_file("0AT01", "Login", T0, rows("a", 4), interval="Daily")
    async with serve_org(org) as rest:
        src = source(rest)
        await src.poll(journal.emit)
        await src.poll(journal.emit)
    exactly_once(journal, 4)
    assert journal.position is not None
    assert journal.position["interval"] == "Daily"
    assert sum("Interval" in q for q in org.queries) == 1
    assert completeness(journal.position)["Login"]["2026-11-26"] == "D"


async def test_rate_limit_and_malformed_answers_during_discovery_starve_no_event_type() -> None:
    org, journal = FakeOrg(), Journal()
    for i, event_type in enumerate(["Login", "Logout", "API", "Report"]):
        org.add_file(f"0AT0{i}", event_type, T0 + timedelta(minutes=i), rows(event_type, 5))
    org.query_faults = ["limit", "html", "empty", "[]", "noid", "503", "limit"]
    polls = 0

    async def sleep(_: float) -> None:
        nonlocal polls
        polls += 1
        if len(journal.records) == 20:
            raise Crash  # stop the daemon loop once everything is in

    async with serve_org(org) as rest:
        src = EventLogFileSource(
            EventLogFileConfig.model_validate({"start": "2026-11-26"}),
            rest,
            clock=Clock(),
            sleep=sleep,
            backoff=(0, 0),
        )
        with pytest.raises(Crash):
            await src.run(None, journal.emit)
    exactly_once(journal, 20)
    assert {r.kind for r in journal.records} == {"Login", "Logout", "API", "Report"}
    assert polls == 8


async def test_schema_drift_is_counted_once_per_change() -> None:
    org, journal = FakeOrg(), Journal()
    org.add_file("0AT01", "Login", T0, rows("a", 1))
    org.add_file(
        "0AT02",
        "Login",
        T0 + timedelta(minutes=1),
        [["Login", "x", "005new", "1", "TLSv1.3"]],
        header=("EVENT_TYPE", "TIMESTAMP", "USER_ID", "RUN_TIME", "TLS_PROTOCOL"),
        types="String,String,Id,Number,String",
    )
    drift = metrics.elf_schema_drift.labels(event_type="Login")
    before = drift._value.get()
    async with serve_org(org) as rest:
        await source(rest).poll(journal.emit)
    assert drift._value.get() == before + 1
    assert journal.records[-1].payload["TLS_PROTOCOL"] == "TLSv1.3"


async def test_only_configured_event_types_and_interval_are_read() -> None:
    org, journal = FakeOrg(), Journal()
    org.add_file("0AT01", "Login", T0, rows("a", 2))
    org.add_file("0AT02", "Report", T0, rows("b", 2))
    org.add_file("0AT03", "Login", T0, rows("c", 2), interval="Daily")
    async with serve_org(org) as rest:
        await source(rest, event_types=["Login", "bad'name"]).poll(journal.emit)
    assert sorted(user_ids(journal)) == [f"005a{i:08d}" for i in range(2)]
    assert "bad" not in org.queries[0]


async def test_refused_discovery_keeps_the_source_alive_until_fixed() -> None:
    org, journal = FakeOrg(), Journal()
    org.add_file("0AT01", "Login", T0, rows("a", 3))
    org.query_faults = ["forbidden", "forbidden"]
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if journal.records:
            raise Crash

    async with serve_org(org) as rest:
        config = EventLogFileConfig.model_validate({"start": "2026-11-26", "poll_interval": "PT7S"})
        src = EventLogFileSource(config, rest, clock=Clock(), sleep=sleep, backoff=(0, 0))
        with pytest.raises(Crash):
            await src.run(None, journal.emit)
    exactly_once(journal, 3)
    assert sleeps == [7.0, 7.0, 7.0]


async def test_unavailable_file_forever_is_retried_never_given_up() -> None:
    org, journal, clock = FakeOrg(), Journal(), Clock()
    org.add_file("0AT01", "Login", T0, rows("a", 3))
    org.file_faults["0AT01"] = ["503!"]
    gaps = metrics.source_gaps.labels(source="eventlogfile")
    before = gaps._value.get()
    async with serve_org(org) as rest:
        src = source(rest, clock, missing_file_max_age="PT1H")
        for _ in range(3):
            await src.poll(journal.emit)
            clock.now += timedelta(hours=2)
        org.file_faults["0AT01"] = []
        await src.poll(journal.emit)
    assert gaps._value.get() == before
    exactly_once(journal, 3)


async def test_rate_limit_on_a_download_pauses_the_poll_and_blames_no_file() -> None:
    org, journal = FakeOrg(), Journal()
    org.add_file("0AT01", "Login", T0, rows("a", 3))
    org.add_file("0AT02", "Login", T0 + timedelta(seconds=1), rows("b", 3))
    org.file_faults["0AT01"] = ["limit"]
    async with serve_org(org) as rest:
        src = source(rest)
        with pytest.raises(RetryableError):
            await src.poll(journal.emit)
        assert src.state is not None
        assert src.state.failing == {}
        assert org.downloads == ["0AT01"]
        await src.poll(journal.emit)
    exactly_once(journal, 6)


async def test_downloads_stop_once_over_the_api_budget() -> None:
    org, journal = FakeOrg(), Journal()
    for i in range(3):
        org.add_file(f"0AT0{i}", "Login", T0 + timedelta(seconds=i), rows(str(i), 2))
    async with serve_org(org) as rest:
        rest.budget_share = 0.00011  # the fake org reports 11/100000 after the first download
        src = source(rest)
        await src.poll(journal.emit)
        assert org.downloads == ["0AT00"]
        rest.budget_share = 1.0
        await src.poll(journal.emit)
    exactly_once(journal, 6)
