"""Delivery against a real SqliteJournal and a sink that fails on cue (the collaborator, not our code)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from delivery_fixtures import CueSink, Doc, Running
from prometheus_client import REGISTRY

from forwarder.delivery import NO_BACKOFF, Backoff, Delivery
from forwarder.errors import BatchTooLargeError, PermanentError, RetryableError
from forwarder.journal.sqlite import SqliteJournal
from forwarder.records import Lane
from sinks import BatchSettings, Route, SinkLimits


def doc(n: int, **extra: Any) -> Doc:
    return {"event": {"id": f"e{n}", "dataset": extra.pop("dataset", "salesforce.login")}, "n": n, **extra}


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
async def journal(tmp_path: Path) -> AsyncIterator[SqliteJournal]:
    j = await SqliteJournal.open(tmp_path / "j.db", consumers=["sink"])
    yield j
    await j.close()


def make(sink: CueSink, journal: SqliteJournal, **kwargs: Any) -> Delivery:
    kwargs.setdefault("backoff", NO_BACKOFF)
    return Delivery(sink, kwargs.pop("route", None), journal, **kwargs)


async def wait_cursor(journal: SqliteJournal, lane: Lane, offset: int) -> None:
    async with asyncio.timeout(10):
        while await journal.cursor("sink", lane) < offset:
            await journal.wait_for_events(0.01)


async def test_delivers_every_event_in_batches_within_the_limits(journal: SqliteJournal) -> None:
    sink = CueSink("sink", SinkLimits(max_events=3, max_bytes=10_000, max_wait=0.0))
    await journal.append("s", Lane.BULK, [doc(i) for i in range(10)], [], None)
    async with Running(make(sink, journal)):
        await sink.wait_for(lambda: len(sink.received) == 10)
        await wait_cursor(journal, Lane.BULK, 10)
    assert sink.received == list(range(10))
    assert max(len(b) for b in sink.batches) == 3


async def test_batches_respect_the_byte_limit(journal: SqliteJournal) -> None:
    one = len(orjson.dumps(doc(0, pad="x" * 100)))
    sink = CueSink("sink", SinkLimits(max_events=100, max_bytes=one * 3, max_wait=0.0))
    await journal.append("s", Lane.BULK, [doc(i, pad="x" * 100) for i in range(10)], [], None)
    async with Running(make(sink, journal)):
        await sink.wait_for(lambda: len(sink.received) == 10)
    assert all(sum(len(orjson.dumps(d)) for d in b) <= one * 3 for b in sink.batches)


async def test_batch_overrides_replace_the_sink_limits(journal: SqliteJournal) -> None:
    sink = CueSink("sink")
    delivery = make(sink, journal, batch=BatchSettings(max_events=2))
    assert delivery.limits.max_events == 2
    assert delivery.limits.max_bytes == sink.limits.max_bytes


async def test_partial_batch_is_sent_after_max_wait(journal: SqliteJournal) -> None:
    sink = CueSink("sink", SinkLimits(max_events=100, max_bytes=1_000_000, max_wait=0.2))
    async with Running(make(sink, journal)):
        started = time.monotonic()
        await journal.append("s", Lane.REALTIME, [doc(1)], [], None)
        await sink.wait_for(lambda: sink.received == [1])
        assert time.monotonic() - started >= 0.15


async def test_retries_retryable_errors_until_the_sink_accepts(journal: SqliteJournal) -> None:
    def flaky(docs: list[Doc], attempt: int) -> None:
        if attempt <= 3:
            raise RetryableError("503 unavailable")

    sink = CueSink("sink")
    sink.behaviour = flaky
    retries_before = metric("forwarder_sink_retries_total", sink="sink")
    await journal.append("s", Lane.REALTIME, [doc(1), doc(2)], [], None)
    async with Running(make(sink, journal)):
        await sink.wait_for(lambda: sink.received == [1, 2])
        await wait_cursor(journal, Lane.REALTIME, 2)
    assert metric("forwarder_sink_retries_total", sink="sink") - retries_before == 3
    assert await journal.dead_letters() == []


async def test_retry_after_is_honoured_and_backoff_has_full_jitter(journal: SqliteJournal) -> None:
    waits: list[float] = []

    async def record_sleep(seconds: float) -> None:
        waits.append(seconds)

    def limited(docs: list[Doc], attempt: int) -> None:
        if attempt == 1:
            raise RetryableError("429 too many requests", retry_after=7)
        if attempt <= 8:
            raise RetryableError("503")

    sink = CueSink("sink")
    sink.behaviour = limited
    backoff = Backoff(initial=1.0, cap=4.0, retry_after_cap=60.0)
    await journal.append("s", Lane.REALTIME, [doc(1)], [], None)
    async with Running(make(sink, journal, backoff=backoff, sleep=record_sleep)):
        await sink.wait_for(lambda: sink.received == [1])
    assert waits[0] == 7
    # attempt n waits uniform(0, min(cap, initial * 2**(n-1))): never above the window, capped at 4 s.
    for n, wait in enumerate(waits[1:], start=2):
        assert 0 <= wait <= min(4.0, 2 ** (n - 1))
    assert len(set(waits[1:])) > 1, "jitter: waits are random"


async def test_permanent_error_dead_letters_only_the_bad_event(journal: SqliteJournal) -> None:
    def picky(docs: list[Doc], attempt: int) -> None:
        if any(d.get("bad") for d in docs):
            raise PermanentError("400 invalid field")

    sink = CueSink("sink")
    sink.behaviour = picky
    letters_before = metric("forwarder_dead_letters_total", consumer="sink")
    await journal.append("s", Lane.BULK, [doc(i, bad=i == 5) for i in range(8)], [], None)
    async with Running(make(sink, journal)):
        await sink.wait_for(lambda: len(sink.received) == 7)
        await wait_cursor(journal, Lane.BULK, 8)
    assert sorted(sink.received) == [0, 1, 2, 3, 4, 6, 7]
    [letter] = await journal.dead_letters("sink")
    assert letter.payload["n"] == 5
    assert letter.reason == "permanent: 400 invalid field"
    assert metric("forwarder_dead_letters_total", consumer="sink") - letters_before == 1


async def test_too_large_batches_are_split_and_a_single_oversize_event_dead_lettered(
    journal: SqliteJournal,
) -> None:
    def small_only(docs: list[Doc], attempt: int) -> None:
        if len(docs) > 2 or any(d.get("huge") for d in docs):
            raise BatchTooLargeError("413 payload too large")

    sink = CueSink("sink")
    sink.behaviour = small_only
    await journal.append("s", Lane.BULK, [doc(i, huge=i == 3) for i in range(9)], [], None)
    async with Running(make(sink, journal)):
        await wait_cursor(journal, Lane.BULK, 9)
    assert sorted(sink.received) == [0, 1, 2, 4, 5, 6, 7, 8]
    assert all(len(b) <= 2 for b in sink.batches)
    [letter] = await journal.dead_letters("sink")
    assert (letter.payload["n"], letter.reason) == (3, "too_large: 413 payload too large")


async def test_encode_failure_dead_letters_that_event_only(journal: SqliteJournal) -> None:
    sink = CueSink("sink")
    events = [doc(1), doc(2, unencodable=True), doc(3), doc(4, encoder_bug=True), doc(5)]
    await journal.append("s", Lane.REALTIME, events, [], None)
    async with Running(make(sink, journal)):
        await wait_cursor(journal, Lane.REALTIME, 5)
    assert sink.received == [1, 3, 5]
    letters = await journal.dead_letters("sink")
    assert [(d.payload["n"], d.reason) for d in letters] == [
        (4, "encode_bug KeyError: 'missing'"),
        (2, "encode: field cannot be encoded"),
    ]


async def test_route_filter_skips_other_events_and_moves_the_cursor_over_them(journal: SqliteJournal) -> None:
    sink = CueSink("sink")
    route = Route(datasets=["salesforce.login"])
    events = [doc(i, dataset="salesforce.login" if i % 3 == 0 else "salesforce.api") for i in range(12)]
    await journal.append("s", Lane.BULK, events, [], None)
    await journal.append("s", Lane.BULK, [doc(20, dataset="salesforce.api")], [], None)
    async with Running(make(sink, journal, route=route)):
        await wait_cursor(journal, Lane.BULK, 13)
    assert sink.received == [0, 3, 6, 9]


async def test_cursor_moves_only_over_contiguous_batches_under_out_of_order_completion(
    journal: SqliteJournal,
) -> None:
    gates = {n: asyncio.Event() for n in range(3)}

    async def gated(docs: list[Doc]) -> None:
        await gates[docs[0]["n"]].wait()

    sink = CueSink("sink", SinkLimits(max_events=1, max_bytes=1_000_000, max_wait=0.0))
    sink.behaviour = lambda docs, attempt: gated(docs)
    await journal.append("s", Lane.BULK, [doc(i) for i in range(3)], [], None)
    async with Running(make(sink, journal, concurrency=3)):
        gates[2].set()
        gates[1].set()
        await sink.wait_for(lambda: sorted(sink.received) == [1, 2])
        await asyncio.sleep(0.05)  # a negative check: give a wrong commit the chance to happen
        assert await journal.cursor("sink", Lane.BULK) == 0, "batch 1 (offset 1) is still in flight"
        gates[0].set()
        await wait_cursor(journal, Lane.BULK, 3)
    assert sink.received[-1] == 0


async def test_unclassified_sink_error_is_retried_not_lost(journal: SqliteJournal) -> None:
    def buggy(docs: list[Doc], attempt: int) -> None:
        if attempt == 1:
            raise KeyError("bug in a sink")

    sink = CueSink("sink")
    sink.behaviour = buggy
    await journal.append("s", Lane.REALTIME, [doc(1)], [], None)
    async with Running(make(sink, journal)):
        await sink.wait_for(lambda: sink.received == [1])
    assert await journal.dead_letters() == []


async def test_block_policy_stops_the_source_while_the_sink_is_down(tmp_path: Path) -> None:
    journal = await SqliteJournal.open(
        tmp_path / "j.db", max_bytes=200_000, when_full="block", consumers=["sink"]
    )
    up = asyncio.Event()
    sink = CueSink("sink")
    sink.behaviour = lambda docs, attempt: up.wait()
    big = "x" * 1000
    async with Running(make(sink, journal)):
        await journal.append("s", Lane.BULK, [doc(i, pad=big) for i in range(150)], [], {"n": 150})
        source = asyncio.create_task(
            journal.append("s", Lane.BULK, [doc(i, pad=big) for i in range(150, 300)], [], {"n": 300})
        )
        await asyncio.wait({source}, timeout=0.3)
        assert not source.done(), "the source must wait while the journal is full"
        up.set()
        async with asyncio.timeout(10):
            await source
        await sink.wait_for(lambda: len(sink.received) == 300)
    assert sorted(sink.received) == list(range(300))
    await journal.close()


async def test_drop_oldest_policy_counts_the_events_it_drops(tmp_path: Path) -> None:
    journal = await SqliteJournal.open(
        tmp_path / "j.db", max_bytes=200_000, when_full="drop_oldest", consumers=["sink"]
    )
    up = asyncio.Event()
    sink = CueSink("sink", SinkLimits(max_events=10, max_bytes=1_000_000, max_wait=0.0))
    sink.behaviour = lambda docs, attempt: up.wait()
    dropped_before = metric("forwarder_journal_dropped_events_total", lane="bulk")
    big = "x" * 1000
    async with Running(make(sink, journal)):
        for start in range(0, 600, 100):
            async with asyncio.timeout(5):  # never blocks
                await journal.append(
                    "s", Lane.BULK, [doc(i, pad=big) for i in range(start, start + 100)], [], None
                )
        up.set()
        await wait_cursor(journal, Lane.BULK, 600)
    dropped = metric("forwarder_journal_dropped_events_total", lane="bulk") - dropped_before
    assert dropped > 0
    # Delivered at least once, or counted as dropped: nothing vanishes silently.
    assert len(set(sink.received)) + dropped >= 600
    assert sink.received[-1] == 599
    await journal.close()


async def test_stop_during_a_retry_loop_loses_nothing_and_resends_that_batch_first(
    journal: SqliteJournal,
) -> None:
    def down(docs: list[Doc], attempt: int) -> None:
        raise RetryableError("503 unavailable")

    failing = CueSink("sink")
    failing.behaviour = down
    await journal.append("s", Lane.BULK, [doc(i) for i in range(5)], [], None)
    delivery = make(failing, journal, backoff=Backoff(initial=30.0, cap=30.0))
    task = asyncio.create_task(delivery.run())
    await failing.wait_for(lambda: failing.attempts >= 1)
    started = time.monotonic()
    await delivery.stop(10.0)
    await task
    assert time.monotonic() - started < 2, "a stop cuts the backoff wait short"
    assert await journal.cursor("sink", Lane.BULK) == 0

    healthy = CueSink("sink")
    await journal.append("s", Lane.BULK, [doc(5)], [], None)
    async with Running(make(healthy, journal)):
        await sink_wait(healthy, 6)
    assert healthy.batches[0][:5] == [doc(i) for i in range(5)], "the batch that was being retried goes first"
    assert healthy.received == list(range(6))


async def sink_wait(sink: CueSink, count: int) -> None:
    await sink.wait_for(lambda: len(sink.received) >= count)


async def test_stop_cancels_a_hung_send_at_the_deadline_and_keeps_it_uncommitted(
    journal: SqliteJournal,
) -> None:
    sink = CueSink("sink")
    sink.behaviour = lambda docs, attempt: asyncio.Event().wait()
    await journal.append("s", Lane.REALTIME, [doc(1)], [], None)
    delivery = make(sink, journal)
    task = asyncio.create_task(delivery.run())
    await sink.wait_for(lambda: sink.attempts >= 1)
    async with asyncio.timeout(5):
        await delivery.stop(0.2)
        await task
    assert await journal.cursor("sink", Lane.REALTIME) == 0


async def test_realtime_event_overtakes_a_million_event_bulk_backlog(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    journal = await SqliteJournal.open(path, consumers=["sink"])
    await journal.close()
    docs = orjson.dumps([doc(0, bulk=True)] * 500)
    with sqlite3.connect(path) as conn:  # generate the backlog fast, straight into the bulk lane's rows
        conn.executemany(
            "INSERT INTO events_bulk VALUES (?, ?, ?)", ((f, f + 499, docs) for f in range(1, 1_000_001, 500))
        )
        conn.execute("UPDATE lanes SET next = 1000001 WHERE lane = 'bulk'")
    journal = await SqliteJournal.open(path, consumers=["sink"])
    sink = CueSink("sink")
    async with Running(make(sink, journal)):
        await sink.wait_for(lambda: len(sink.batches) >= 1)
        await journal.append("streaming", Lane.REALTIME, [doc(42, realtime=True)], [], None)
        await sink.wait_for(lambda: any(d.get("realtime") for b in sink.batches for d in b), within=20)
        bulk_before = sum(1 for b in sink.batches for d in b if d.get("bulk"))
    assert bulk_before < 1_000_000
    assert bulk_before <= 10 * sink.limits.max_events, f"{bulk_before} bulk events went first"
    assert await journal.cursor("sink", Lane.BULK) < 1_000_000
    await journal.close()


async def test_a_sink_that_is_down_holds_retention_but_never_delays_the_other_sink(tmp_path: Path) -> None:
    journal = await SqliteJournal.open(tmp_path / "j.db", consumers=["up", "down"])

    def unavailable(docs: list[Doc], attempt: int) -> None:
        raise RetryableError("503")

    up, down = CueSink("up"), CueSink("down")
    down.behaviour = unavailable
    for start in range(0, 30, 10):
        await journal.append("s", Lane.BULK, [doc(i) for i in range(start, start + 10)], [], None)
    async with Running(make(up, journal)), Running(make(down, journal)):
        await up.wait_for(lambda: len(up.received) == 30)
        await down.wait_for(lambda: down.attempts >= 3)
        async with asyncio.timeout(10):
            while await journal.cursor("up", Lane.BULK) < 30:
                await journal.wait_for_events(0.01)
    stats = await journal.stats()
    assert stats["lanes"]["bulk"]["events"] == 30, "nothing is deleted before the down sink has it"
    assert stats["consumers"]["down"]["bulk"] == {"cursor": 0, "lag": 30}
    await journal.close()
