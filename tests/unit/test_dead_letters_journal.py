"""The journal's dead-letter operations on a real SQLite file: filters, marks, settle (one transaction),
the in-place migration of a schema-1 journal, and the stored-letters gauge."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from prometheus_client import REGISTRY

from forwarder.journal import DeadLetter, JournalFullError, LetterFilter, StoredDeadLetter
from forwarder.journal.sqlite import SqliteJournal
from forwarder.records import Lane

#: The schema of journals written before dead-letter replay (user_version 1), verbatim.
SCHEMA_1 = [
    "CREATE TABLE lanes (lane TEXT PRIMARY KEY, next INTEGER NOT NULL) WITHOUT ROWID",
    "CREATE TABLE events_realtime (first INTEGER PRIMARY KEY, last INTEGER NOT NULL, docs BLOB NOT NULL)",
    "CREATE TABLE events_bulk (first INTEGER PRIMARY KEY, last INTEGER NOT NULL, docs BLOB NOT NULL)",
    "CREATE TABLE positions (source TEXT PRIMARY KEY, position BLOB NOT NULL, updated TEXT NOT NULL)",
    "CREATE TABLE cursors (consumer TEXT NOT NULL, lane TEXT NOT NULL, off INTEGER NOT NULL,"
    " PRIMARY KEY (consumer, lane)) WITHOUT ROWID",
    "CREATE TABLE dead_letters (id INTEGER PRIMARY KEY AUTOINCREMENT, consumer TEXT NOT NULL,"
    " reason TEXT NOT NULL, payload BLOB NOT NULL, created TEXT NOT NULL)",
    "CREATE INDEX dead_letters_consumer ON dead_letters (consumer, id)",
]


def letter(consumer: str, n: int, reason: str = "permanent: 400") -> DeadLetter:
    return DeadLetter(consumer=consumer, reason=reason, payload={"event": {"id": f"{consumer}-{n}"}})


def stored(gauge_consumer: str) -> float | None:
    return REGISTRY.get_sample_value("forwarder_dead_letters_stored", {"consumer": gauge_consumer})


@pytest.fixture
async def journal(tmp_path: Path) -> AsyncIterator[SqliteJournal]:
    j = await SqliteJournal.open(tmp_path / "j.db", consumers=["hec", "archive"])
    yield j
    await j.close()


async def test_schema_1_journal_opens_migrated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        for statement in SCHEMA_1:
            conn.execute(statement)
        conn.executemany("INSERT INTO lanes VALUES (?, 1)", [("realtime",), ("bulk",)])
        conn.execute(
            "INSERT INTO dead_letters (consumer, reason, payload, created) VALUES (?, ?, ?, ?)",
            ("hec", "permanent: 400", orjson.dumps({"event": {"id": "old"}}), "2026-11-01T00:00:00+00:00"),
        )
        conn.execute("PRAGMA user_version=1")
    journal = await SqliteJournal.open(path, consumers=["hec"])
    try:
        [old] = await journal.dead_letters()
        assert (old.payload, old.replay_requested) == ({"event": {"id": "old"}}, False)
        assert await journal.request_replay(LetterFilter(consumer="hec")) == 1
        assert [d.id for d in await journal.requested_dead_letters("hec", 10)] == [old.id]
        await journal.append("s", Lane.REALTIME, [{"event": {"id": "new"}}], [letter("hec", 1)], None)
        newest = await journal.dead_letters(limit=1)
        assert newest[0].payload == {"event": {"id": "hec-1"}}
    finally:
        await journal.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    again = await SqliteJournal.open(path)  # a second open of a migrated file changes nothing
    try:
        assert len(await again.dead_letters()) == 2
    finally:
        await again.close()


async def test_filters_match_consumer_ids_reason_age_and_page_newest_first(
    journal: SqliteJournal, tmp_path: Path
) -> None:
    await journal.dead_letter([letter("hec", i, "permanent: Invalid DATA format") for i in range(3)])
    await journal.dead_letter([letter("archive", 9, "encode: not JSON")])
    with sqlite3.connect(tmp_path / "j.db") as conn:  # the first letter is a month old
        conn.execute("UPDATE dead_letters SET created = '2026-10-26T08:00:00.5+00:00' WHERE id = 1")

    def ids(letters: list[StoredDeadLetter]) -> list[int]:
        return [d.id for d in letters]

    assert ids(await journal.dead_letters()) == [4, 3, 2, 1]
    assert ids(await journal.dead_letters("hec", 2)) == [3, 2]
    assert ids(await journal.dead_letters(where=LetterFilter(consumer="hec", below_id=3))) == [2, 1]
    assert ids(await journal.dead_letters(where=LetterFilter(reason="data FORMAT"))) == [3, 2, 1]
    assert ids(await journal.dead_letters(where=LetterFilter(ids=(1, 4, 99)))) == [4, 1]
    week_ago = datetime.now(UTC) - timedelta(days=7)
    assert ids(await journal.dead_letters(where=LetterFilter(before=week_ago))) == [1]
    assert await journal.count_dead_letters(LetterFilter()) == {"archive": 1, "hec": 3}
    assert await journal.count_dead_letters(LetterFilter(reason="encode")) == {"archive": 1}
    assert await journal.delete_dead_letters(LetterFilter(consumer="hec", before=week_ago)) == 1
    assert ids(await journal.dead_letters()) == [4, 3, 2]


async def test_requested_letters_are_the_consumers_marked_ones_oldest_first(journal: SqliteJournal) -> None:
    await journal.dead_letter([letter("hec", i) for i in range(4)] + [letter("archive", 0)])
    assert await journal.requested_dead_letters("hec", 10) == []
    assert await journal.request_replay(LetterFilter(consumer="hec", ids=(2, 4, 5))) == 2  # 5 is archive's
    assert await journal.request_replay(LetterFilter(consumer="hec", ids=(2,))) == 1  # asking twice is fine
    assert [d.id for d in await journal.requested_dead_letters("hec", 10)] == [2, 4]
    assert [d.id for d in await journal.requested_dead_letters("hec", 1)] == [2]
    assert await journal.requested_dead_letters("archive", 10) == []
    assert [d.replay_requested for d in await journal.dead_letters("hec")] == [True, False, True, False]


async def test_settle_appends_events_deletes_done_and_keeps_refused_unmarked(journal: SqliteJournal) -> None:
    await journal.dead_letter([letter("ingest", i) for i in range(3)])
    await journal.request_replay(LetterFilter())
    realtime = [{"event": {"id": "r1"}}, {"event": {"id": "r2"}}]
    bulk = [{"event": {"id": "b1"}}]
    await journal.settle_dead_letters(
        [1, 2], {3: "Id: still bad"}, {Lane.REALTIME: realtime, Lane.BULK: bulk}
    )
    assert [e.event for e in await journal.read("hec", Lane.REALTIME, 0, 10)] == realtime
    assert [e.event for e in await journal.read("archive", Lane.BULK, 0, 10)] == bulk
    [kept] = await journal.dead_letters()
    assert (kept.id, kept.reason, kept.replay_requested) == (3, "Id: still bad", False)


async def test_settle_never_brings_back_a_letter_purged_meanwhile(journal: SqliteJournal) -> None:
    await journal.dead_letter([letter("hec", 0), letter("hec", 1)])
    await journal.request_replay(LetterFilter(consumer="hec"))
    taken = await journal.requested_dead_letters("hec", 10)
    assert await journal.delete_dead_letters(LetterFilter(ids=(1,))) == 1  # the operator purges one
    await journal.settle_dead_letters([], {d.id: "permanent: still refused" for d in taken})
    assert [(d.id, d.reason) for d in await journal.dead_letters()] == [(2, "permanent: still refused")]


async def test_settle_at_the_block_cap_raises_and_changes_nothing(tmp_path: Path) -> None:
    journal = await SqliteJournal.open(tmp_path / "j.db", max_bytes=300_000, consumers=["hec"])
    try:
        await journal.append("s", Lane.BULK, [{"pad": "x" * 1000, "n": i} for i in range(400)], [], None)
        await journal.dead_letter([letter("ingest", 0)])
        big = [{"pad": "y" * 1000, "n": i} for i in range(400)]
        with pytest.raises(JournalFullError, match="size cap"):
            await journal.settle_dead_letters([1], {}, {Lane.REALTIME: big})
        assert [d.id for d in await journal.dead_letters()] == [1]
        assert await journal.read("hec", Lane.REALTIME, 0, 10) == []
    finally:
        await journal.close()


async def test_stored_gauge_follows_inserts_settles_and_other_processes(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    first = await SqliteJournal.open(path)
    await first.dead_letter([letter("gauge-a", i) for i in range(3)])
    await first.close()

    journal = await SqliteJournal.open(path, consumers=["gauge-a"])
    try:
        assert stored("gauge-a") == 3  # counted at open
        await journal.append("s", Lane.REALTIME, [], [letter("gauge-b", 0)], None)
        await journal.dead_letter([letter("gauge-a", 3)])
        assert (stored("gauge-a"), stored("gauge-b")) == (4, 1)  # counted as they land
        await journal.settle_dead_letters([1], {})
        assert stored("gauge-a") == 3
        with sqlite3.connect(path) as other:  # the CLI purging from another process
            other.execute("DELETE FROM dead_letters WHERE consumer = 'gauge-a'")
        assert stored("gauge-a") == 3
        await journal.requested_dead_letters("gauge-a", 10)  # each sink's poll notices the change
        assert (stored("gauge-a"), stored("gauge-b")) == (0, 1)
    finally:
        await journal.close()
