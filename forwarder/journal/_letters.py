"""The dead-letter queries of the SQLite journal (list, count, mark for replay, delete), kept apart from the
event log in ``_store.py``. Plain functions over the journal thread's connection.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson

from forwarder.journal import LetterFilter, StoredDeadLetter

_COLUMNS = "id, consumer, reason, payload, created, replay"


def where_sql(where: LetterFilter) -> tuple[str, list[Any]]:
    """``WHERE ...`` (or empty) and its parameters. Ids go in as one JSON array (``json_each``), so a long
    ``--ids`` list never meets SQLite's parameter limit (https://www.sqlite.org/limits.html#max_variable_number)."""
    terms: list[str] = []
    args: list[Any] = []
    if where.consumer is not None:
        terms.append("consumer = ?")
        args.append(where.consumer)
    if where.ids is not None:
        terms.append("id IN (SELECT value FROM json_each(?))")
        args.append(orjson.dumps(list(where.ids)).decode())
    if where.reason is not None:
        terms.append("instr(lower(reason), lower(?)) > 0")
        args.append(where.reason)
    if where.below_id is not None:
        terms.append("id < ?")
        args.append(where.below_id)
    if where.before is not None:
        # ``created`` is ISO 8601 with an offset, which julianday() reads (https://www.sqlite.org/lang_datefunc.html).
        terms.append("julianday(created) < julianday(?)")
        args.append(where.before.isoformat())
    return (" WHERE " + " AND ".join(terms) if terms else ""), args


def select(conn: sqlite3.Connection, where: LetterFilter, limit: int) -> list[StoredDeadLetter]:
    """The newest ``limit`` letters matching ``where``, newest first."""
    clause, args = where_sql(where)
    sql = f"SELECT {_COLUMNS} FROM dead_letters{clause} ORDER BY id DESC LIMIT ?"  # noqa: S608 (fixed terms)
    return [_letter(row) for row in conn.execute(sql, (*args, limit))]


def requested(conn: sqlite3.Connection, consumer: str, limit: int) -> list[StoredDeadLetter]:
    """The oldest ``limit`` letters of ``consumer`` marked for replay (served by the partial index)."""
    sql = f"SELECT {_COLUMNS} FROM dead_letters WHERE consumer = ? AND replay = 1 ORDER BY id LIMIT ?"  # noqa: S608
    return [_letter(row) for row in conn.execute(sql, (consumer, limit))]


def count(conn: sqlite3.Connection, where: LetterFilter) -> dict[str, int]:
    clause, args = where_sql(where)
    sql = f"SELECT consumer, count(*) FROM dead_letters{clause} GROUP BY consumer ORDER BY consumer"  # noqa: S608
    return {consumer: int(n) for consumer, n in conn.execute(sql, args)}


def delete(conn: sqlite3.Connection, where: LetterFilter) -> int:
    clause, args = where_sql(where)
    return conn.execute(f"DELETE FROM dead_letters{clause}", args).rowcount  # noqa: S608


def mark(conn: sqlite3.Connection, where: LetterFilter) -> int:
    """Mark for replay; letters already marked count too (asking twice is harmless)."""
    clause, args = where_sql(where)
    return conn.execute(f"UPDATE dead_letters SET replay = 1{clause}", args).rowcount  # noqa: S608


def settle(conn: sqlite3.Connection, done: Sequence[int], refused: Mapping[int, str]) -> None:
    """Inside the caller's transaction: delete ``done``; ``refused`` keep their new reason, unmarked.
    By id only: a letter purged meanwhile stays gone (an UPDATE never brings a row back)."""
    conn.executemany("DELETE FROM dead_letters WHERE id = ?", [(i,) for i in done])
    conn.executemany(
        "UPDATE dead_letters SET reason = ?, replay = 0 WHERE id = ?", [(r, i) for i, r in refused.items()]
    )


def _letter(row: tuple[Any, ...]) -> StoredDeadLetter:
    id_, consumer, reason, payload, created, replay = row
    return StoredDeadLetter(
        id=id_,
        consumer=consumer,
        reason=reason,
        payload=orjson.loads(payload),
        created_at=datetime.fromisoformat(created),
        replay_requested=bool(replay),
    )
