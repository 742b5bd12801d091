"""SqliteJournal behaviour: atomic appends, cursors, retention, size cap policies, wake-ups, stats."""

from __future__ import annotations

import asyncio
import os
import stat
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from forwarder.journal import DeadLetter
from forwarder.journal.sqlite import SqliteJournal
from forwarder.records import Lane


def doc(n: int, pad: int = 50) -> dict[str, object]:
    return {"event": {"id": f"e{n}", "dataset": "salesforce.login"}, "message": "x" * pad, "n": n}


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
async def journal(tmp_path: Path) -> AsyncIterator[SqliteJournal]:
    j = await SqliteJournal.open(tmp_path / "j.db", consumers=["a", "b"])
    yield j
    await j.close()


async def drain(j: SqliteJournal, consumer: str, lane: Lane) -> list[int]:
    seen, after = [], await j.cursor(consumer, lane)
    while batch := await j.read(consumer, lane, after, 1000):
        seen += [e.event["n"] for e in batch]
        after = batch[-1].offset
    return seen


async def test_append_stores_events_letters_and_position_together(journal: SqliteJournal) -> None:
    letter = DeadLetter(consumer="ingest", reason="no timestamp", payload={"raw": 1})
    await journal.append("streaming", Lane.REALTIME, [doc(1), doc(2)], [letter], {"replay": 7})
    entries = await journal.read("a", Lane.REALTIME, 0, 10)
    assert [(e.offset, e.event["n"]) for e in entries] == [(1, 1), (2, 2)]
    assert await journal.position("streaming") == {"replay": 7}
    stored = await journal.dead_letters()
    assert [(d.consumer, d.reason, d.payload) for d in stored] == [("ingest", "no timestamp", {"raw": 1})]
    assert await journal.read("a", Lane.BULK, 0, 10) == []


async def test_failed_append_leaves_neither_events_nor_position(journal: SqliteJournal) -> None:
    await journal.append("elf", Lane.BULK, [doc(1)], [], {"row": 1})
    with pytest.raises(TypeError):
        await journal.append("elf", Lane.BULK, [doc(2), {"bad": {1, 2}}], [], {"row": 3})
    assert await journal.position("elf") == {"row": 1}
    assert await drain(journal, "a", Lane.BULK) == [1]


async def test_cursor_never_moves_back_and_never_past_newest(journal: SqliteJournal) -> None:
    await journal.append("s", Lane.BULK, [doc(i) for i in range(5)], [], None)
    await journal.commit("a", Lane.BULK, 4)
    await journal.commit("a", Lane.BULK, 2)
    assert await journal.cursor("a", Lane.BULK) == 4
    with pytest.raises(ValueError, match="past the newest"):
        await journal.commit("a", Lane.BULK, 6)


async def test_retention_keeps_what_any_live_consumer_still_needs(tmp_path: Path) -> None:
    j = await SqliteJournal.open(tmp_path / "j.db", consumers=["a", "b"])
    for i in range(1, 11):  # retention deletes whole appended batches: one event each here
        await j.append("s", Lane.BULK, [doc(i)], [], None)
    await j.commit("a", Lane.BULK, 10)
    await j.commit("b", Lane.BULK, 3)
    assert (await j.stats())["lanes"]["bulk"] == {"oldest": 4, "newest": 10, "events": 7}
    await j.close()
    # "b" removed from config: it stops holding retention.
    j = await SqliteJournal.open(tmp_path / "j.db", consumers=["a"])
    assert (await j.stats())["lanes"]["bulk"]["events"] == 0
    assert (await j.stats())["consumers"]["b"]["active"] is False
    for i in range(11, 16):
        await j.append("s", Lane.BULK, [doc(i)], [], None)
    await j.commit("a", Lane.BULK, 12)
    await j.close()
    # "c" is new: it starts at the beginning of what is retained, and holds it from now on.
    j = await SqliteJournal.open(tmp_path / "j.db", consumers=["a", "c"])
    assert await drain(j, "c", Lane.BULK) == [13, 14, 15]
    assert (await j.stats())["consumers"]["c"]["bulk"]["lag"] == 3
    await j.commit("a", Lane.BULK, 15)
    assert (await j.stats())["lanes"]["bulk"]["events"] == 3
    await j.close()


async def test_offsets_are_never_reused_after_everything_was_deleted(tmp_path: Path) -> None:
    j = await SqliteJournal.open(tmp_path / "j.db", consumers=["a"])
    await j.append("s", Lane.REALTIME, [doc(1), doc(2)], [], None)
    await j.commit("a", Lane.REALTIME, 2)
    await j.close()
    j = await SqliteJournal.open(tmp_path / "j.db", consumers=["a"])
    await j.append("s", Lane.REALTIME, [doc(3)], [], None)
    entries = await j.read("a", Lane.REALTIME, await j.cursor("a", Lane.REALTIME), 10)
    assert [(e.offset, e.event["n"]) for e in entries] == [(3, 3)]
    await j.close()


async def test_block_policy_holds_the_source_until_a_consumer_frees_space(tmp_path: Path) -> None:
    j = await SqliteJournal.open(tmp_path / "j.db", max_bytes=300_000, when_full="block", consumers=["a"])
    blocked_before = metric("forwarder_journal_blocked_seconds_total")
    await j.append("s", Lane.BULK, [doc(i, pad=1000) for i in range(200)], [], {"n": 200})
    appending = asyncio.create_task(
        j.append("s", Lane.BULK, [doc(i, pad=1000) for i in range(200, 400)], [], {"n": 400})
    )
    await asyncio.wait({appending}, timeout=0.3)
    assert not appending.done(), "append must wait while the journal is full"
    assert await j.position("s") == {"n": 200}
    await j.commit("a", Lane.BULK, 200)
    async with asyncio.timeout(10):
        await appending
    assert await j.position("s") == {"n": 400}
    assert await drain(j, "a", Lane.BULK) == list(range(200, 400))
    assert metric("forwarder_journal_blocked_seconds_total") > blocked_before
    await j.close()


async def test_drop_oldest_deletes_bulk_first_and_counts_it(tmp_path: Path) -> None:
    j = await SqliteJournal.open(
        tmp_path / "j.db", max_bytes=400_000, when_full="drop_oldest", consumers=["a"]
    )
    dropped_before = metric("forwarder_journal_dropped_events_total", lane="bulk")
    await j.append("rt", Lane.REALTIME, [doc(-1, pad=1000)], [], None)
    for start in range(0, 1000, 100):
        await j.append(
            "s", Lane.BULK, [doc(i, pad=1000) for i in range(start, start + 100)], [], {"n": start}
        )
    bulk = await drain(j, "a", Lane.BULK)
    dropped = metric("forwarder_journal_dropped_events_total", lane="bulk") - dropped_before
    assert dropped > 0
    assert bulk == list(range(1000 - len(bulk), 1000)), "the newest events are kept, the oldest dropped"
    assert len(bulk) + dropped == 1000
    assert await drain(j, "a", Lane.REALTIME) == [-1]
    assert (await j.stats())["used_bytes"] <= 400_000 + 150_000  # soft cap: within about one batch
    await j.close()


async def test_wait_for_events_wakes_on_append_and_never_misses_one(journal: SqliteJournal) -> None:
    await journal.wait_for_events(0, consumer="a")  # first call: sets the consumer's mark
    waiting = asyncio.create_task(journal.wait_for_events(30, consumer="a"))
    await asyncio.sleep(0)
    await journal.append("s", Lane.REALTIME, [doc(1)], [], None)
    async with asyncio.timeout(5):
        await waiting
    # An append between a consumer's read and its next wait: that wait returns at once.
    await journal.append("s", Lane.REALTIME, [doc(2)], [], None)
    async with asyncio.timeout(5):
        await journal.wait_for_events(30, consumer="a")
    started = time.monotonic()
    await journal.wait_for_events(0.05, consumer="a")
    assert time.monotonic() - started >= 0.04


async def test_stats_show_positions_lag_and_dead_letters(journal: SqliteJournal) -> None:
    await journal.append("elf", Lane.BULK, [doc(i) for i in range(10)], [], {"file": "x", "row": 10})
    await journal.commit("a", Lane.BULK, 4)
    await journal.dead_letter([DeadLetter("a", "400 bad field", doc(1)), DeadLetter("b", "too big", doc(2))])
    await journal.dead_letter([DeadLetter("a", "400 again", doc(3))])
    stats = await journal.stats()
    assert stats["positions"]["elf"]["position"] == {"file": "x", "row": 10}
    assert stats["consumers"]["a"]["bulk"] == {"cursor": 4, "lag": 6}
    assert stats["consumers"]["b"]["bulk"] == {"cursor": 0, "lag": 10}
    assert stats["dead_letters"] == {"a": 2, "b": 1}
    assert stats["lanes"]["bulk"] == {"oldest": 1, "newest": 10, "events": 10}
    assert stats["file_bytes"] > 0
    assert [d.reason for d in await journal.dead_letters("a")] == ["400 again", "400 bad field"]
    assert len(await journal.dead_letters(limit=1)) == 1


async def test_journal_file_is_private_to_the_owner(tmp_path: Path) -> None:
    j = await SqliteJournal.open(tmp_path / "state" / "j.db", consumers=["a"])
    await j.append("s", Lane.REALTIME, [doc(1)], [], None)
    for name in ("j.db", "j.db-wal"):
        mode = stat.S_IMODE(os.stat(tmp_path / "state" / name).st_mode)
        assert mode & 0o077 == 0, f"{name} is readable by others: {oct(mode)}"
    await j.close()


async def test_large_append_does_not_stall_the_event_loop(journal: SqliteJournal) -> None:
    worst = 0.0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal worst
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            worst, last = max(worst, now - last), now

    tick = asyncio.create_task(ticker())
    await journal.append("s", Lane.BULK, [doc(i, pad=300) for i in range(100_000)], [], {"n": 1})
    stop.set()
    await tick
    print(f"worst loop stall during a 100,000-event append: {worst * 1000:.1f} ms")
    assert worst < 0.5


async def test_reads_start_inside_a_stored_row_and_cross_rows(journal: SqliteJournal) -> None:
    await journal.append("s", Lane.BULK, [doc(i) for i in range(1, 1201)], [], None)  # rows of 500
    await journal.append("s", Lane.BULK, [doc(1201)], [], None)
    entries = await journal.read("a", Lane.BULK, 498, 600)
    assert [(e.offset, e.event["n"]) for e in entries] == [(o, o) for o in range(499, 1099)]
    assert [e.offset for e in await journal.read("a", Lane.BULK, 1199, 10)] == [1200, 1201]
    assert await journal.read("a", Lane.BULK, 1201, 10) == []


async def test_closed_journal_refuses_work(tmp_path: Path) -> None:
    j = await SqliteJournal.open(tmp_path / "j.db", consumers=["a"])
    await j.close()
    await j.close()
    with pytest.raises(RuntimeError, match="closed"):
        await j.read("a", Lane.BULK, 0, 1)


async def test_a_second_exclusive_open_is_refused_until_the_first_closes(tmp_path: Path) -> None:
    first = await SqliteJournal.open(tmp_path / "j.db", consumers=["a"], exclusive=True)
    with pytest.raises(RuntimeError, match="in use by another"):
        await SqliteJournal.open(tmp_path / "j.db", consumers=["a"], exclusive=True)
    reader = await SqliteJournal.open(tmp_path / "j.db", consumers=["a"])  # state show still works
    await reader.close()
    await first.close()
    again = await SqliteJournal.open(tmp_path / "j.db", consumers=["a"], exclusive=True)
    await again.close()
