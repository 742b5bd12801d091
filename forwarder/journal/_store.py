"""The synchronous SQLite side of ``SqliteJournal``: schema and short transactions.

Everything here runs on the journal's single dedicated thread, so one connection is used serially and
the event loop never waits on disk I/O.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import orjson

from forwarder.events import EventDoc
from forwarder.journal import DeadLetter, Entry, StoredDeadLetter
from forwarder.records import Lane, Position

SCHEMA_VERSION = 1
#: Rows removed per retention transaction, so a catching-up consumer never holds the writer for long.
RETAIN_CHUNK = 20_000
#: Estimated per-row overhead (rowid varint, record header, cell pointer) on top of the document bytes,
#: used to size a batch against ``max_bytes``. See https://www.sqlite.org/fileformat2.html#b_tree_pages.
ROW_OVERHEAD = 12
#: ``drop_oldest`` empties ``bulk`` before ``realtime``: realtime holds stream events that Salesforce keeps
#: only 72 hours and the alerts; both are harder to get back than EventLogFile rows.
DROP_ORDER = (Lane.BULK, Lane.REALTIME)

Synchronous = Literal["normal", "full"]
WhenFull = Literal["block", "drop_oldest"]


def table(lane: Lane) -> str:
    """The events table of ``lane`` (one table per lane: an AUTOINCREMENT offset each)."""
    return f"events_{lane.value}"


_SCHEMA = [
    # AUTOINCREMENT: offsets are never reused, even after retention deleted every row of a lane, so a
    # cursor can never point past a newer event (https://www.sqlite.org/autoinc.html).
    *(
        f"CREATE TABLE IF NOT EXISTS {table(lane)} (off INTEGER PRIMARY KEY AUTOINCREMENT, doc BLOB NOT NULL)"
        for lane in Lane
    ),
    "CREATE TABLE IF NOT EXISTS positions"
    " (source TEXT PRIMARY KEY, position BLOB NOT NULL, updated TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS cursors (consumer TEXT NOT NULL, lane TEXT NOT NULL, off INTEGER NOT NULL,"
    " PRIMARY KEY (consumer, lane)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS dead_letters (id INTEGER PRIMARY KEY AUTOINCREMENT, consumer TEXT NOT NULL,"
    " reason TEXT NOT NULL, payload BLOB NOT NULL, created TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS dead_letters_consumer ON dead_letters (consumer, id)",
]


@dataclass(frozen=True, slots=True)
class Batch:
    """One append, already serialised (done once, on the journal thread, even if the append waits)."""

    source: str
    lane: Lane
    docs: list[bytes]
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
        docs = [orjson.dumps(doc) for doc in events]
        rows = [(d.consumer, d.reason, orjson.dumps(d.payload)) for d in letters]
        position = None if pos is None else orjson.dumps(pos)
        size = sum(map(len, docs)) + sum(len(r[2]) for r in rows) + ROW_OVERHEAD * (len(docs) + len(rows))
        return cls(source, lane, docs, rows, position, size)


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
        self.conn.execute("PRAGMA journal_mode=WAL")
        # WAL + synchronous=NORMAL survives a process crash (kill -9) with every committed transaction; an
        # OS crash or power loss may roll back the last commits, but never tears one: events and the position
        # that covers them go back together, so sources re-read that tail from Salesforce. "full" fsyncs
        # every commit for operators who want power-loss durability too
        # (https://www.sqlite.org/pragma.html#pragma_synchronous, https://www.sqlite.org/wal.html).
        self.conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
        # Keep the WAL file from staying huge after a burst (https://www.sqlite.org/pragma.html#pragma_journal_size_limit).
        self.conn.execute("PRAGMA journal_size_limit=67108864")
        self.page_size = int(self.conn.execute("PRAGMA page_size").fetchone()[0])
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
        row = self.conn.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (table(lane),)).fetchone()
        return int(row[0]) if row else 0

    def oldest(self, lane: Lane) -> int | None:
        row = self.conn.execute(f"SELECT min(off) FROM {table(lane)}").fetchone()  # noqa: S608 (lane is an enum)
        return None if row[0] is None else int(row[0])

    def has_events(self) -> bool:
        return any(self.oldest(lane) is not None for lane in Lane)

    # --- writes --------------------------------------------------------------------------------------

    def append(self, batch: Batch, max_bytes: int, when_full: WhenFull) -> AppendResult:
        """Events, dead letters and position in one transaction, after making room per ``when_full``."""
        result = AppendResult()
        with self.tx() as conn:
            over = self.used_bytes() + batch.size - max_bytes if max_bytes else 0
            if over > 0 and when_full == "block" and self.has_events():
                result.full = True
                return result
            if over > 0 and when_full == "drop_oldest":
                result.dropped = self._drop_oldest(over)
            conn.executemany(f"INSERT INTO {table(batch.lane)} (doc) VALUES (?)", ((d,) for d in batch.docs))  # noqa: S608
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

    def _drop_oldest(self, need: int) -> dict[Lane, int]:
        """Delete the oldest events until about ``need`` bytes are free (inside the caller's transaction)."""
        freed, dropped = 0, dict[Lane, int]()
        for lane in DROP_ORDER:
            while freed < need:
                rows = self.conn.execute(
                    f"SELECT off, length(doc) FROM {table(lane)} ORDER BY off LIMIT 1000"  # noqa: S608
                ).fetchall()
                if not rows:
                    break
                last = rows[-1][0]
                for off, size in rows:
                    freed += size + ROW_OVERHEAD
                    if freed >= need:
                        last = off
                        break
                count = self.conn.execute(f"DELETE FROM {table(lane)} WHERE off <= ?", (last,)).rowcount  # noqa: S608
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

    def commit(self, consumer: str, lane: Lane, offset: int) -> int:
        """Move the cursor forward (never back); returns the stored cursor."""
        newest = self.newest(lane)
        if offset > newest:
            raise ValueError(f"commit {consumer}/{lane.value} to {offset}: past the newest offset {newest}")
        with self.tx() as conn:
            conn.execute(
                "INSERT INTO cursors VALUES (?, ?, ?) ON CONFLICT (consumer, lane) DO UPDATE"
                " SET off = max(off, excluded.off)",
                (consumer, lane.value, offset),
            )
        return self.cursor(consumer, lane)

    def retain(self, lane: Lane, consumers: Sequence[str], limit: int = RETAIN_CHUNK) -> int:
        """Delete up to ``limit`` events every live consumer has passed; returns how many."""
        floor = self.floor(lane, consumers)
        oldest = self.oldest(lane)
        if floor is None or oldest is None or floor < oldest:
            return 0
        bound = min(floor, oldest + limit - 1)
        with self.tx() as conn:
            return conn.execute(f"DELETE FROM {table(lane)} WHERE off <= ?", (bound,)).rowcount  # noqa: S608

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
        rows = self.conn.execute(
            f"SELECT off, doc FROM {table(lane)} WHERE off > ? ORDER BY off LIMIT ?",  # noqa: S608
            (after, limit),
        ).fetchall()
        return [Entry(lane, off, orjson.loads(doc)) for off, doc in rows]

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

    def dead_letter_counts(self) -> dict[str, int]:
        rows = self.conn.execute(
            "SELECT consumer, count(*) FROM dead_letters GROUP BY consumer ORDER BY consumer"
        )
        return {consumer: int(n) for consumer, n in rows}

    def dead_letters(self, consumer: str | None, limit: int) -> list[StoredDeadLetter]:
        sql = "SELECT id, consumer, reason, payload, created FROM dead_letters"
        args: tuple[Any, ...] = (limit,)
        if consumer is not None:
            sql, args = sql + " WHERE consumer = ?", (consumer, limit)
        rows = self.conn.execute(sql + " ORDER BY id DESC LIMIT ?", args).fetchall()
        return [
            StoredDeadLetter(
                id=i, consumer=c, reason=r, payload=orjson.loads(p), created_at=datetime.fromisoformat(t)
            )
            for i, c, r, p, t in rows
        ]


def _create_private(path: Path) -> None:
    """Create the file owner-only: the journal holds user names and IP addresses. SQLite gives the -wal and
    -shm files the permissions of the database file (https://www.sqlite.org/tempfiles.html)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
