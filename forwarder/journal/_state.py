"""A consumer's own state document (the rule engine's windows) stored one entry per row, so a commit writes
the entries that changed and deletes the removed ones instead of rewriting the whole document.

Runs on the journal's thread, inside the caller's transaction. Rows are kept in ``id`` (rowid) order: a new
path gets a rowid above every stored one (https://www.sqlite.org/autoinc.html: without AUTOINCREMENT a new
rowid is one more than the largest), an update keeps its row, so reading by ``id`` rebuilds every object
with its keys in insertion order.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

import orjson

from forwarder.journal import StateChanges

#: ``key`` is the entry's path in the document as a JSON array (``[]``: a whole document, as migrated from
#: the single-row ``consumer_state`` of earlier versions); ``value`` its JSON.
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS consumer_state_items (id INTEGER PRIMARY KEY, consumer TEXT NOT NULL,"
    " key TEXT NOT NULL, value BLOB NOT NULL, UNIQUE (consumer, key))"
)
_WHOLE = "[]"


@dataclass(frozen=True, slots=True)
class EncodedState:
    """``StateChanges`` serialised (done on the journal thread, off the event loop)."""

    upserts: list[tuple[str, bytes]]
    deletes: list[str]
    replace: bool

    @classmethod
    def encode(cls, changes: StateChanges | dict[str, Any]) -> EncodedState:
        """A whole document (a ``dict``) is stored as one entry that replaces everything stored."""
        if isinstance(changes, dict):
            changes = StateChanges([((), changes)], [], replace=True)
        dumps = orjson.dumps
        return cls(
            [(dumps(path).decode(), dumps(value)) for path, value in changes.upserts],
            [dumps(path).decode() for path in changes.deletes],
            changes.replace,
        )


def write(conn: sqlite3.Connection, consumer: str, state: EncodedState) -> None:
    if state.replace:
        conn.execute("DELETE FROM consumer_state_items WHERE consumer = ?", (consumer,))
    conn.executemany(
        "DELETE FROM consumer_state_items WHERE consumer = ? AND key = ?",
        [(consumer, key) for key in state.deletes],
    )
    conn.executemany(
        "INSERT INTO consumer_state_items (consumer, key, value) VALUES (?, ?, ?)"
        " ON CONFLICT (consumer, key) DO UPDATE SET value = excluded.value",
        [(consumer, key, value) for key, value in state.upserts],
    )


def read(conn: sqlite3.Connection, consumer: str) -> list[tuple[str, bytes]]:
    rows = conn.execute(
        "SELECT key, value FROM consumer_state_items WHERE consumer = ? ORDER BY id", (consumer,)
    )
    return [(str(key), bytes(value)) for key, value in rows]


def rebuild(rows: list[tuple[str, bytes]]) -> dict[str, Any] | None:
    """The document from its stored entries (None when nothing is stored)."""
    if not rows:
        return None
    doc: dict[str, Any] = {}
    for key, value in rows:
        path, decoded = orjson.loads(key), orjson.loads(value)
        if not path:
            doc = dict(decoded)
            continue
        holder = doc
        for part in path[:-1]:
            holder = holder.setdefault(part, {})
        holder[path[-1]] = decoded
    return doc


def migrate(conn: sqlite3.Connection) -> None:
    """Move single-document rows of ``consumer_state`` (written by a forwarder before per-entry state, or by
    one since downgraded to: then it is the newest state) into entries, replacing what was stored."""
    conn.execute("DELETE FROM consumer_state_items WHERE consumer IN (SELECT consumer FROM consumer_state)")
    conn.execute(
        "INSERT INTO consumer_state_items (consumer, key, value)"
        " SELECT consumer, ?, state FROM consumer_state",
        (_WHOLE,),
    )
    conn.execute("DELETE FROM consumer_state")
