"""EventLogFile and SetupAuditTrail sources against the shared org simulator, with its fault switches.

Ground truth is the simulator's own files and records: every row arrives once, whatever the faults.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from forwarder import metrics
from forwarder.errors import RetryableError
from forwarder.salesforce.auth import Authenticator, SalesforceConfig
from forwarder.salesforce.rest import RestClient
from forwarder.sources.eventlogfile import EventLogFileConfig, EventLogFileSource, completeness
from forwarder.sources.setupaudittrail import SetupAuditTrailConfig, SetupAuditTrailSource
from forwarder.testing.simulator.app import Simulator
from tests.integration.elf_org import Journal

pytestmark = pytest.mark.timeout(120)


async def no_sleep(_: float) -> None:
    return None


@asynccontextmanager
async def client(org: Simulator, **extra: Any) -> AsyncIterator[RestClient]:
    cfg = SalesforceConfig.model_validate({
        "login_url": org.base_url,
        "auth": {"client_id": org.client_id, "username": org.username, "private_key_file": org.private_key_path},
        **extra,
    })
    async with aiohttp.ClientSession() as http:
        yield RestClient(Authenticator(cfg, http), http, "62.0")


def elf_source(rest: RestClient, **cfg: Any) -> EventLogFileSource:
    config = EventLogFileConfig.model_validate({"start": "2026-11-01", **cfg})
    return EventLogFileSource(config, rest, sleep=no_sleep, backoff=(0, 0))


async def poll(src: Any, journal: Journal) -> None:
    """One successful poll, retrying transient errors as ``run`` does."""
    for _ in range(10):
        try:
            await src.poll(journal.emit)
            return
        except RetryableError:
            continue
    raise AssertionError("no successful poll in 10 tries")


def truth(org: Simulator, interval: str) -> Counter[tuple[str, str]]:
    """(event type, REQUEST_ID) of every row of every file of ``interval`` in the org."""
    rows: Counter[tuple[str, str]] = Counter()
    for log_file in org.log_files.values():
        if log_file.interval != interval:
            continue
        header = log_file.source.header
        index = header.index("REQUEST_ID")
        rows.update((log_file.event_type, row[index]) for row in log_file.source.rows())
    return rows


def got(journal: Journal) -> Counter[tuple[str, str]]:
    return Counter((r.kind, r.payload["REQUEST_ID"]) for r in journal.records)


async def test_every_hourly_row_once_through_resets_503s_and_session_expiry() -> None:
    async with Simulator(seed=3, activities=300) as org, client(org) as rest:
        expected = truth(org, "Hourly")
        assert len(expected) > 100
        org.faults.reset_logfile(after_bytes=700, count=3)
        org.faults.unavailable(count=2)
        journal = Journal()
        src = elf_source(rest, batch_rows=50)
        await poll(src, journal)
        org.faults.expire_sessions()
        await poll(src, journal)
    assert got(journal) == expected
    assert all(r.envelope and r.envelope["log_file_interval"] == "Hourly" for r in journal.records)


async def test_late_sequence_file_from_the_simulator_is_read_once() -> None:
    async with Simulator(seed=4, activities=120) as org, client(org) as rest:
        journal = Journal()
        src = elf_source(rest)
        await poll(src, journal)
        before = len(journal.records)
        late_id = org.faults.late_hourly_file("Login", rows=5)
        late = org.log_files[late_id]
        late.created_date = datetime.now(UTC)  # becomes queryable now, after the poller passed its hour
        await poll(src, journal)
        await poll(src, journal)
        expected = truth(org, "Hourly")
    assert len(journal.records) == before + 5
    assert got(journal) == expected
    view = completeness(journal.position)
    hour = late.log_date
    assert view["Login"][hour.date().isoformat()][hour.hour] == str(late.sequence)


async def test_no_hourly_entitlement_reads_daily_files_once() -> None:
    async with Simulator(seed=5, activities=120, hourly=False) as org, client(org) as rest:
        journal = Journal()
        src = elf_source(rest)
        await poll(src, journal)
        await poll(src, journal)
        expected = truth(org, "Daily")
    assert got(journal) == expected
    assert journal.position is not None
    assert journal.position["interval"] == "Daily"


async def test_malformed_and_rate_limited_discovery_loses_nothing() -> None:
    async with Simulator(seed=6, activities=150) as org, client(org) as rest:
        expected = truth(org, "Hourly")
        journal = Journal()
        faults = ["html", "empty", "array", "no_id"]
        polls = 0

        async def sleep(_: float) -> None:
            nonlocal polls
            polls += 1
            if faults:
                org.faults.malform("query", faults.pop())
            elif polls == 5:
                org.faults.rate_limited = True
            elif polls == 7:
                org.faults.rate_limited = False
            elif polls > 9:
                raise asyncio_cancel()

        org.faults.malform("query", "html")
        src = EventLogFileSource(
            EventLogFileConfig.model_validate({"start": "2026-11-01"}), rest, sleep=sleep, backoff=(0, 0)
        )
        with pytest.raises(Stop):
            await src.run(None, journal.emit)
    assert got(journal) == expected


class Stop(Exception):
    pass


async def test_malformed_token_answers_then_recovery_lose_nothing() -> None:
    async with Simulator(seed=10, activities=100) as org, client(org) as rest:
        expected = truth(org, "Hourly")
        journal = Journal()
        kinds = ["html", "empty", "array"]
        org.faults.malform("token", "html", count=2)
        tries = 0

        async def sleep(_: float) -> None:
            nonlocal tries
            tries += 1
            if kinds:
                org.faults.malform("token", kinds.pop(), count=2)
            if len(journal.records) == len(expected):
                raise Stop

        src = EventLogFileSource(
            EventLogFileConfig.model_validate({"start": "2026-11-01"}), rest, sleep=sleep, backoff=(0, 0)
        )
        with pytest.raises(Stop):
            await src.run(None, journal.emit)
    assert got(journal) == expected
    assert tries >= 4


def asyncio_cancel() -> Stop:
    return Stop()


async def test_audit_trail_1200_same_second_rows_across_pages_once() -> None:
    async with Simulator(seed=7, activities=20, page_size=200) as org, client(org) as rest:
        second = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
        for i in range(1200):
            org.add_audit_trail("PermSetAssign", "Manage Users", f"Assigned set {i}", at=second)
        expected = {r["Id"] for r in org.data.objects["SetupAuditTrail"] if r["CreatedDate"] >= "2026-11-20"}
        journal = Journal()
        src = SetupAuditTrailSource(SetupAuditTrailConfig(), rest, sleep=no_sleep, backoff=(0, 0))
        await poll(src, journal)
        await poll(src, journal)
        requests = list(org.rest.requests)
    ids = Counter(r.payload["Id"] for r in journal.records)
    assert set(ids) == expected
    assert len(expected) == 1200
    assert max(ids.values()) == 1
    assert max(len(path) for path in requests) < 16_384
    assert journal.records[0].payload["CreatedBy"]["Username"]


async def test_api_budget_guard_pauses_pollers_and_says_so() -> None:
    async with Simulator(seed=8, activities=20, api_limit=1000) as org, client(org) as rest:
        journal = Journal()
        naps: list[float] = []

        async def sleep(seconds: float) -> None:
            naps.append(seconds)
            if len(naps) > 3:
                raise Stop

        rest._sleep = sleep
        rest.budget_share = 0.002
        src = elf_source(rest)
        await poll(src, journal)
        usage = metrics.salesforce_api_usage_ratio._value.get()
        with pytest.raises(Stop):
            await rest.budget_gate("eventlogfile", recheck=1.0)
    assert rest.over_budget()
    assert usage >= 0.002
    assert naps == [1.0] * 4


async def test_login_history_reads_every_login_once() -> None:
    from forwarder.sources.loginhistory import LoginHistoryConfig, LoginHistorySource

    async with Simulator(seed=11, activities=150, page_size=200) as org, client(org) as rest:
        expected = {r["Id"] for r in org.data.objects["LoginHistory"]}
        journal = Journal()
        config = LoginHistoryConfig.model_validate({"enabled": True, "initial_span": "P60D", "batch_size": 7})
        src = LoginHistorySource(config, rest, sleep=no_sleep, backoff=(0, 0))
        await poll(src, journal)
        await poll(src, journal)
    ids = Counter(r.payload["Id"] for r in journal.records)
    assert len(expected) > 10
    assert set(ids) == expected
    assert max(ids.values()) == 1
    assert {(r.source, r.kind) for r in journal.records} == {("loginhistory", "LoginHistory")}


async def test_reissued_hour_after_a_restart_skips_rows_already_delivered() -> None:
    async with Simulator(seed=12, activities=60) as org, client(org) as rest:
        journal = Journal()
        await poll(elf_source(rest), journal)
        first = next(f for f in org.log_files.values() if f.interval == "Hourly" and f.event_type == "Login")
        header = first.source.header
        repeated = [dict(zip(header, row, strict=True)) for row in list(first.source.rows())[:2]]
        fresh = org.traffic.login(at=first.log_date + timedelta(minutes=59)).elf["Login"]
        org.add_log_file("Login", [*repeated, fresh], log_date=first.log_date, sequence=first.sequence + 1,
                         created_date=datetime.now(UTC))
        delivered = len(journal.records)
        restarted = elf_source(rest)  # a new process: no row hashes in memory, position from the journal
        from forwarder.sources._elf_state import ElfState

        restarted.state = ElfState.load(journal.position, restarted._config, datetime.now(UTC))
        await poll(restarted, journal)
    assert len(journal.records) == delivered + 1
    assert journal.records[-1].payload["REQUEST_ID"] == fresh["REQUEST_ID"]
    assert got(journal)[("Login", fresh["REQUEST_ID"])] == 1


async def test_tls_with_the_configured_ca_for_token_query_and_download() -> None:
    async with Simulator(seed=13, activities=30, tls=True) as org:
        async with client(org, tls={"ca_file": str(org.cert_path)}) as rest:
            journal = Journal()
            await poll(elf_source(rest), journal)
            expected = truth(org, "Hourly")
        async with client(org) as untrusted:
            with pytest.raises(RetryableError, match="unreachable"):
                await elf_source(untrusted).poll(journal.emit)
    assert got(journal) == expected


async def test_audit_row_visible_late_inside_overlap_is_delivered_later_is_a_named_gap() -> None:
    async with Simulator(seed=14, activities=5) as org, client(org) as rest:
        now = datetime.now(UTC).replace(microsecond=0)
        org.add_audit_trail("PermSetAssign", "Manage Users", "first", at=now - timedelta(minutes=1))
        journal = Journal()
        src = SetupAuditTrailSource(SetupAuditTrailConfig(overlap=timedelta(minutes=5)), rest, sleep=no_sleep)
        await poll(src, journal)
        inside = org.add_audit_trail("PermSetAssign", "Manage Users", "late", at=now - timedelta(minutes=3))
        beyond = org.add_audit_trail("PermSetAssign", "Manage Users", "later", at=now - timedelta(minutes=8))
        gaps = metrics.source_gaps.labels(source="setupaudittrail")
        before = gaps._value.get()
        await poll(src, journal)
        await poll(src, journal)
    ids = [r.payload["Id"] for r in journal.records]
    assert inside["Id"] in ids
    assert beyond["Id"] not in ids
    assert len(ids) == len(set(ids))
    assert gaps._value.get() == before + 1
