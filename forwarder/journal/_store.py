"""The synchronous SQLite side of ``SqliteJournal``: schema and short transactions.

Everything here runs on the journal's single dedicated thread, so one connection is used serially and
the event loop never waits on disk I/O.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import orjson

from forwarder.events import EventDoc
from forwarder.journal import DeadLetter, Entry, LetterFilter, StoredDeadLetter, _letters, _state
from forwarder.journal._state import EncodedState
from forwarder.records import Lane, Position

#: 2: ``dead_letters.replay`` (an operator asked for redelivery) and its partial index; see ``_migrate``.
#: ``consumer_state`` (the rule engine's windows, committed with its cursors and alerts) is a new table only,
#: created by ``CREATE TABLE IF NOT EXISTS`` on every open: additive, so the version stays 2 and an older
#: forwarder can still open the file (it ignores the table). ``consumer_state_items`` (that state one entry
#: per row, written incrementally; see ``_state``) is additive too: existing ``consumer_state`` rows are
#: moved into it on open, and an older forwarder opening the file afterwards sees no stored window state
#: (docs/alerts.md, "State").
SCHEMA_VERSION = 2
#: Events per stored row. Events are kept as record batches (a JSON array per row, as Kafka keeps record
#: batches): one B-tree cell per 500 events instead of one per event makes insert and retention delete
#: several times cheaper, and a read decodes at most one partial row.
EVENTS_PER_ROW = 500
#: Events removed per retention transaction, so a catching-up consumer never holds the writer for long.
RETAIN_CHUNK = 20_000
#: SQLite page size of a new journal (see ``Store.__init__``).
PAGE_SIZE = 16_384
#: Estimated per-row overhead (rowid varint, record header, cell pointer) on top of the stored bytes,
#: used to size a batch against ``max_bytes``. See https://www.sqlite.org/fileformat2.html#b_tree_pages.
ROW_OVERHEAD = 16
#: ``drop_oldest`` empties ``bulk`` before ``realtime``: realtime holds stream events that Salesforce keeps
#: only 72 hours and the alerts; both are harder to get back than EventLogFile rows.
DROP_ORDER = (Lane.BULK, Lane.REALTIME)

Synchronous = Literal["normal", "full"]
WhenFull = Literal["block", "drop_oldest"]


def table(lane: Lane) -> str:
    """The events table of ``lane``: rows of consecutive events, keyed by the offset of the first."""
    return f"events_{lane.value}"


_SCHEMA = [
    # ``lanes.next`` is the next offset to give: stored, so offsets are never reused even after retention
    # deleted every row of a lane, and a cursor can never point past a newer event.
    "CREATE TABLE IF NOT EXISTS lanes (lane TEXT PRIMARY KEY, next INTEGER NOT NULL) WITHOUT ROWID",
    *(
        f"CREATE TABLE IF NOT EXISTS {table(lane)}"
        " (first INTEGER PRIMARY KEY, last INTEGER NOT NULL, docs BLOB NOT NULL)"
        for lane in Lane
    ),
    "CREATE TABLE IF NOT EXISTS positions"
    " (source TEXT PRIMARY KEY, position BLOB NOT NULL, updated TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS cursors (consumer TEXT NOT NULL, lane TEXT NOT NULL, off INTEGER NOT NULL,"
    " PRIMARY KEY (consumer, lane)) WITHOUT ROWID",
    # ``replay`` 1: an operator asked to send the letter again (``sf-forwarder dead-letters replay``); the
    # consumer's delivery takes it, and deletes it once the sink accepted it.
    "CREATE TABLE IF NOT EXISTS dead_letters (id INTEGER PRIMARY KEY AUTOINCREMENT, consumer TEXT NOT NULL,"
    " reason TEXT NOT NULL, payload BLOB NOT NULL, created TEXT NOT NULL, replay INTEGER NOT NULL DEFAULT 0)",
    "CREATE INDEX IF NOT EXISTS dead_letters_consumer ON dead_letters (consumer, id)",
    # A consumer's own state (the alert rule engine's windows), written with its cursors in one transaction.
    "CREATE TABLE IF NOT EXISTS consumer_state (consumer TEXT PRIMARY KEY, state BLOB NOT NULL)"
    " WITHOUT ROWID",
    _state.SCHEMA,
]
#: After the column exists (a journal of schema 1 gets it by ``ALTER TABLE`` first). Partial: it holds only
#: the requested letters, so each sink's poll for them is one empty index probe in the common case
#: (https://www.sqlite.org/partialindex.html).
_REPLAY_INDEX = (
    "CREATE INDEX IF NOT EXISTS dead_letters_replay ON dead_letters (consumer, id) WHERE replay = 1"
)


@dataclass(frozen=True, slots=True)
class Batch:
    """One append, already serialised (done once, on the journal thread, even if the append waits)."""

    source: str
    lane: Lane
    rows: list[tuple[int, bytes]]  # (event count, JSON array of up to EVENTS_PER_ROW documents)
    letters: list[tuple[str, str, bytes]]
    position: bytes | None
    size: int

    @classmethod
    def encode(
        cls,
        source: str,
        lane: Lane,
        events: Sequence[EventDoc],
        letters: Sequence[DeadLetter],
        pos: Position | None,
    ) -> Batch:
        chunks = [list(events[i : i + EVENTS_PER_ROW]) for i in range(0, len(events), EVENTS_PER_ROW)]
        rows = [(len(chunk), orjson.dumps(chunk)) for chunk in chunks]
        dead = [(d.consumer, d.reason, orjson.dumps(d.payload)) for d in letters]
        position = None if pos is None else orjson.dumps(pos)
        size = (
            sum(len(r[1]) for r in rows)
            + sum(len(r[2]) for r in dead)
            + ROW_OVERHEAD * (len(rows) + len(dead))
        )
        return cls(source, lane, rows, dead, position, size)


@dataclass(slots=True)
class AppendResult:
    """What an append did: ``full`` (block policy, nothing written) or the new newest offset and drops."""

    full: bool = False
    newest: int = 0
    dropped: dict[Lane, int] = field(default_factory=dict)


def _now() -> str:
    return datetime.now(UTC).isoformat()


class Store:
    """One SQLite connection in WAL mode, used from a single thread."""

    def __init__(self, path: Path, synchronous: Synchronous) -> None:
        self.path = path
        _create_private(path)
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        # Set before WAL and the first table, so it applies to new journals only (an existing file keeps its
        # own). Event rows are ~0.6 MB JSON arrays stored in overflow page chains: 16 KiB pages quarter the
        # pages per row and halved the append time (5.0 -> 2.6 us per ELF event); small commits (cursors)
        # write 16 KiB per changed page instead of 4 KiB (https://www.sqlite.org/pragma.html#pragma_page_size).
        self.conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
        self.conn.execute("PRAGMA journal_mode=WAL")
        # WAL + synchronous=NORMAL survives a process crash (kill -9) with every committed transaction; an
        # OS crash or power loss may roll back the last commits, but never tears one: events and the position
        # that covers them go back together, so sources re-read that tail from Salesforce. "full" fsyncs
        # every commit for operators who want power-loss durability too
        # (https://www.sqlite.org/pragma.html#pragma_synchronous, https://www.sqlite.org/wal.html).
        self.conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
        # Keep the WAL file from staying huge after a burst (https://www.sqlite.org/pragma.html#pragma_journal_size_limit).
        self.conn.execute("PRAGMA journal_size_limit=67108864")
        # 16 MiB page cache: delivery reads what was just appended, so recent pages are hot.
        self.conn.execute("PRAGMA cache_size=-16384")
        self.page_size = int(self.conn.execute("PRAGMA page_size").fetchone()[0])
        self._state_seqs: dict[str, int] = {}  # next ``seq`` of each consumer's state entries
        self._migrate()

    def _migrate(self) -> None:
        version = int(self.conn.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise RuntimeError(
                f"{self.path}: journal schema {version} is newer than this forwarder ({SCHEMA_VERSION})"
            )
        with self.tx():
            for statement in _SCHEMA:
                self.conn.execute(statement)
            columns = {row[1] for row in self.conn.execute("PRAGMA table_info(dead_letters)")}
            if "replay" not in columns:  # schema 1: migrated in place, existing letters not requested
                self.conn.execute("ALTER TABLE dead_letters ADD COLUMN replay INTEGER NOT NULL DEFAULT 0")
            self.conn.execute(_REPLAY_INDEX)
            _state.migrate(self.conn)
            self.conn.executemany(
                "INSERT OR IGNORE INTO lanes VALUES (?, 1)", [(lane.value,) for lane in Lane]
            )
            self.conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction; rolled back on any error."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()

    # --- sizes and offsets ---------------------------------------------------------------------------

    def used_bytes(self) -> int:
        """Bytes of pages holding data (free pages are reused by SQLite before the file grows)."""
        pages = int(self.conn.execute("PRAGMA page_count").fetchone()[0])
        free = int(self.conn.execute("PRAGMA freelist_count").fetchone()[0])
        return (pages - free) * self.page_size

    def file_bytes(self) -> int:
        total = 0
        for suffix in ("", "-wal"):
            with suppress(FileNotFoundError):
                total += os.stat(f"{self.path}{suffix}").st_size
        return total

    def newest(self, lane: Lane) -> int:
        """The highest offset ever given in ``lane`` (0 before the first event)."""
        row = self.conn.execute("SELECT next FROM lanes WHERE lane = ?", (lane.value,)).fetchone()
        return int(row[0]) - 1

    def oldest(self, lane: Lane) -> int | None:
        row = self.conn.execute(f"SELECT min(first) FROM {table(lane)}").fetchone()  # noqa: S608 (lane is an enum)
        return None if row[0] is None else int(row[0])

    def has_events(self) -> bool:
        return any(self.oldest(lane) is not None for lane in Lane)

    # --- writes --------------------------------------------------------------------------------------

    def append(self, batch: Batch, max_bytes: int, when_full: WhenFull) -> AppendResult:
        """Events, dead letters and position in one transaction, after making room per ``when_full``."""
        result = AppendResult()
        with self.tx() as conn:
            if not self._make_room(batch.size, max_bytes, when_full, result):
                return result
            self._insert(batch)
            now = _now()
            conn.executemany(
                "INSERT INTO dead_letters (consumer, reason, payload, created) VALUES (?, ?, ?, ?)",
                [(*row, now) for row in batch.letters],
            )
            if batch.position is not None:
                conn.execute(
                    "INSERT INTO positions VALUES (?, ?, ?) ON CONFLICT (source) DO UPDATE"
                    " SET position = excluded.position, updated = excluded.updated",
                    (batch.source, batch.position, now),
                )
            result.newest = self.newest(batch.lane)
        return result

    def _make_room(self, size: int, max_bytes: int, when_full: WhenFull, result: AppendResult) -> bool:
        """Inside the caller's transaction: False (``result.full``) when ``size`` more bytes must wait."""
        over = self.used_bytes() + size - max_bytes if max_bytes else 0
        if over > 0 and when_full == "block" and self.has_events():
            result.full = True
            return False
        if over > 0 and when_full == "drop_oldest":
            result.dropped = self._drop_oldest(over)
        return True

    def settle(
        self,
        batches: Sequence[Batch],
        done: Sequence[int],
        refused: Mapping[int, str],
        max_bytes: int,
        when_full: WhenFull,
    ) -> AppendResult:
        """Events of replayed letters appended and the letters settled in ONE transaction, so a crash
        leaves each letter either still stored or replayed, never both and never neither."""
        result = AppendResult()
        with self.tx():
            size = sum(batch.size for batch in batches)
            if size and not self._make_room(size, max_bytes, when_full, result):
                return result
            for batch in batches:
                self._insert(batch)
            _letters.settle(self.conn, done, refused)
        return result

    def commit_derived(
        self,
        consumer: str,
        cursors: Mapping[Lane, int],
        batch: Batch | None,
        state: EncodedState,
        limits: tuple[int, WhenFull, Sequence[str]],
    ) -> AppendResult:
        """ONE transaction: append ``batch`` (derived events: alerts), write ``state``'s changed entries,
        move the cursors.
        Either all of it is durable or none: a crash never loses an alert or appends it twice. Never
        ``full``: see below."""
        max_bytes, when_full, live = limits
        result = AppendResult()
        with self.tx() as conn:
            if batch is not None and batch.rows:
                # Never blocks at the size cap: the consumer's own cursor holds retention, so waiting for
                # room could wait forever; derived events (alerts) are small and rare. drop_oldest makes room.
                if when_full == "drop_oldest":
                    self._make_room(batch.size, max_bytes, when_full, result)
                self._insert(batch)
            _state.write(conn, consumer, state, self._state_seqs)
            for lane, offset in cursors.items():
                if offset > self.newest(lane):
                    raise ValueError(f"commit {consumer}/{lane.value} to {offset}: past the newest offset")
                conn.execute(
                    "INSERT INTO cursors VALUES (?, ?, ?) ON CONFLICT (consumer, lane) DO UPDATE"
                    " SET off = max(off, excluded.off)",
                    (consumer, lane.value, offset),
                )
                if consumer in live:
                    self._retain(lane, live, RETAIN_CHUNK)
            if batch is not None:
                result.newest = self.newest(batch.lane)
        return result

    def consumer_state(self, consumer: str) -> dict[str, Any] | None:
        return _state.rebuild(_state.read(self.conn, consumer))

    def mark_for_replay(self, where: LetterFilter) -> int:
        with self.tx() as conn:
            return _letters.mark(conn, where)

    def delete_dead_letters(self, where: LetterFilter) -> int:
        with self.tx() as conn:
            return _letters.delete(conn, where)

    def _insert(self, batch: Batch) -> None:
        first = self.newest(batch.lane) + 1
        values = []
        for count, docs in batch.rows:
            values.append((first, first + count - 1, docs))
            first += count
        self.conn.executemany(f"INSERT INTO {table(batch.lane)} VALUES (?, ?, ?)", values)  # noqa: S608
        self.conn.execute("UPDATE lanes SET next = ? WHERE lane = ?", (first, batch.lane.value))

    def _drop_oldest(self, need: int) -> dict[Lane, int]:
        """Delete the oldest events until about ``need`` bytes are free (inside the caller's transaction)."""
        freed, dropped = 0, dict[Lane, int]()
        for lane in DROP_ORDER:
            while freed < need:
                rows = self.conn.execute(
                    f"SELECT first, last, length(docs) FROM {table(lane)} ORDER BY first LIMIT 100"  # noqa: S608
                ).fetchall()
                if not rows:
                    break
                upto, count = rows[-1][0], 0
                for first, last, size in rows:
                    freed, count = freed + size + ROW_OVERHEAD, count + last - first + 1
                    if freed >= need:
                        upto = first
                        break
                self.conn.execute(f"DELETE FROM {table(lane)} WHERE first <= ?", (upto,))  # noqa: S608
                dropped[lane] = dropped.get(lane, 0) + count
        return dropped

    def dead_letter(self, letters: Sequence[DeadLetter]) -> None:
        now = _now()
        with self.tx() as conn:
            conn.executemany(
                "INSERT INTO dead_letters (consumer, reason, payload, created) VALUES (?, ?, ?, ?)",
                [(d.consumer, d.reason, orjson.dumps(d.payload), now) for d in letters],
            )

    def ensure_consumers(self, consumers: Sequence[str]) -> None:
        """A consumer seen for the first time starts before everything retained (cursor 0)."""
        with self.tx() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO cursors VALUES (?, ?, 0)",
                [(c, lane.value) for c in consumers for lane in Lane],
            )

    def commit(self, consumer: str, lane: Lane, offset: int, live: Sequence[str]) -> tuple[int, int]:
        """Move the cursor forward (never back) and, in the same transaction, delete up to ``RETAIN_CHUNK``
        events every live consumer has passed. Returns the stored cursor and how many events were deleted."""
        newest = self.newest(lane)
        if offset > newest:
            raise ValueError(f"commit {consumer}/{lane.value} to {offset}: past the newest offset {newest}")
        with self.tx() as conn:
            conn.execute(
                "INSERT INTO cursors VALUES (?, ?, ?) ON CONFLICT (consumer, lane) DO UPDATE"
                " SET off = max(off, excluded.off)",
                (consumer, lane.value, offset),
            )
            deleted = self._retain(lane, live, RETAIN_CHUNK) if consumer in live else 0
        return self.cursor(consumer, lane), deleted

    def retain(self, lane: Lane, consumers: Sequence[str], limit: int = RETAIN_CHUNK) -> int:
        """Delete up to ``limit`` events every live consumer has passed; returns how many."""
        with self.tx():
            return self._retain(lane, consumers, limit)

    def _retain(self, lane: Lane, consumers: Sequence[str], limit: int) -> int:
        """Delete the rows wholly at or below the live consumers' lowest cursor (up to ``limit`` events)."""
        floor = self.floor(lane, consumers)
        oldest = self.oldest(lane)
        if floor is None or oldest is None or floor < oldest:
            return 0
        bound = min(floor, oldest + limit - 1)
        rows = self.conn.execute(
            f"DELETE FROM {table(lane)} WHERE first <= ? AND last <= ? RETURNING first, last",  # noqa: S608
            (bound, floor),
        ).fetchall()
        return sum(last - first + 1 for first, last in rows)

    def floor(self, lane: Lane, consumers: Sequence[str]) -> int | None:
        """The lowest cursor of the live consumers; None without consumers (then nothing is deleted)."""
        if not consumers:
            return None
        marks = ",".join("?" * len(consumers))
        row = self.conn.execute(
            f"SELECT min(off) FROM cursors WHERE lane = ? AND consumer IN ({marks})",  # noqa: S608
            (lane.value, *consumers),
        ).fetchone()
        return None if row[0] is None else int(row[0])

    # --- reads ---------------------------------------------------------------------------------------

    def read(self, lane: Lane, after: int, limit: int) -> list[Entry]:
        """Up to ``limit`` events after ``after``: rows from the one holding ``after + 1`` on, decoded."""
        name = table(lane)
        rows = self.conn.execute(
            f"SELECT first, docs FROM {name} WHERE first >= "  # noqa: S608
            f"(SELECT coalesce(max(first), 0) FROM {name} WHERE first <= ?) ORDER BY first",
            (after + 1,),
        )
        entries: list[Entry] = []
        try:
            for first, docs in rows:
                skip = max(0, after + 1 - first)
                wanted = orjson.loads(docs)[skip : skip + limit - len(entries)]
                entries.extend(Entry(lane, offset, doc) for offset, doc in enumerate(wanted, first + skip))
                if len(entries) >= limit:
                    break
        finally:
            rows.close()  # end the read at once: an open statement would pin the WAL snapshot
        return entries

    def cursor(self, consumer: str, lane: Lane) -> int:
        row = self.conn.execute(
            "SELECT off FROM cursors WHERE consumer = ? AND lane = ?", (consumer, lane.value)
        ).fetchone()
        return int(row[0]) if row else 0

    def cursors(self) -> dict[str, dict[Lane, int]]:
        found: dict[str, dict[Lane, int]] = {}
        for consumer, lane, off in self.conn.execute("SELECT consumer, lane, off FROM cursors"):
            found.setdefault(consumer, {})[Lane(lane)] = int(off)
        return found

    def position(self, source: str) -> Position | None:
        row = self.conn.execute("SELECT position FROM positions WHERE source = ?", (source,)).fetchone()
        return None if row is None else dict(orjson.loads(row[0]))

    def positions(self) -> dict[str, dict[str, Any]]:
        rows = self.conn.execute("SELECT source, position, updated FROM positions ORDER BY source")
        return {src: {"position": orjson.loads(pos), "updated": updated} for src, pos, updated in rows}

    def dead_letter_counts(self, where: LetterFilter | None = None) -> dict[str, int]:
        return _letters.count(self.conn, where or LetterFilter())

    def dead_letters(self, where: LetterFilter, limit: int) -> list[StoredDeadLetter]:
        return _letters.select(self.conn, where, limit)

    def requested_dead_letters(self, consumer: str, limit: int) -> list[StoredDeadLetter]:
        return _letters.requested(self.conn, consumer, limit)

    def data_version(self) -> int:
        """Changes whenever another connection (another process) committed (https://www.sqlite.org/pragma.html#pragma_data_version)."""
        return int(self.conn.execute("PRAGMA data_version").fetchone()[0])


def _create_private(path: Path) -> None:
    """Create the file owner-only: the journal holds user names and IP addresses. SQLite gives the -wal and
    -shm files the permissions of the database file (https://www.sqlite.org/tempfiles.html)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
