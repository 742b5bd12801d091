"""A consumer's own state document (the rule engine's windows) stored as a base document plus the entries
changed since, one per row, so a commit writes the entries that changed instead of the whole document.

Runs on the journal's thread, inside the caller's transaction. Rows are applied in ``seq`` order: the base
(path ``[]``, the whole document as of its last full write) first, then each entry: ``value`` NULL deletes
it (a tombstone: it may be in the base), ``moved`` 1 puts it after its object's other keys (added since
the base), 0 updates it in place. So every object comes back with its keys in insertion order. A full write
(``replace``) drops every row: the consumer decides when (it compacts when the rows outgrow the document).
One B-tree keyed by path (WITHOUT ROWID: no second index to update; https://www.sqlite.org/withoutrowid.html).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

import orjson

from forwarder.journal import StateChanges

#: ``key``: the entry's path in the document as a JSON array; ``value``: its JSON, NULL once deleted.
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS consumer_state_items (consumer TEXT NOT NULL, key TEXT NOT NULL,"
    " seq INTEGER NOT NULL, value BLOB, moved INTEGER NOT NULL, PRIMARY KEY (consumer, key)) WITHOUT ROWID"
)
_BASE = "[]"
_UPDATE = (
    "INSERT INTO consumer_state_items VALUES (?, ?, ?, ?, 0)"
    " ON CONFLICT (consumer, key) DO UPDATE SET value = excluded.value"
)
_APPEND = (
    "INSERT INTO consumer_state_items VALUES (?, ?, ?, ?, 1) ON CONFLICT (consumer, key)"
    " DO UPDATE SET value = excluded.value, seq = excluded.seq, moved = 1"
)


@dataclass(frozen=True, slots=True)
class EncodedState:
    """``StateChanges`` serialised (done on the journal thread, off the event loop)."""

    updates: list[tuple[str, bytes]]
    appends: list[tuple[str, bytes]]
    deletes: list[str]
    replace: bool

    @classmethod
    def encode(cls, changes: StateChanges | dict[str, Any]) -> EncodedState:
        """A whole document (a ``dict``) replaces everything stored."""
        if isinstance(changes, dict):
            changes = StateChanges.whole(changes)
        dumps = orjson.dumps
        return cls(
            [(dumps(path).decode(), dumps(value)) for path, value in changes.updates],
            [(dumps(path).decode(), dumps(value)) for path, value in changes.appends],
            [dumps(path).decode() for path in changes.deletes],
            changes.replace,
        )


def write(conn: sqlite3.Connection, consumer: str, state: EncodedState, seqs: dict[str, int]) -> None:
    """Rows numbered from ``seqs[consumer]`` on (the next free ``seq``, cached by the caller across
    transactions: a rolled-back one leaves a gap, which orders the same)."""
    if state.replace:
        conn.execute("DELETE FROM consumer_state_items WHERE consumer = ?", (consumer,))
    seq = seqs.get(consumer)
    if seq is None:
        row = conn.execute("SELECT max(seq) FROM consumer_state_items WHERE consumer = ?", (consumer,))
        seq = int(row.fetchone()[0] or 0) + 1
    rows = [(consumer, key, n, None) for n, key in enumerate(state.deletes, seq)]
    conn.executemany(_UPDATE, rows)  # tombstones
    seq += len(rows)
    conn.executemany(_UPDATE, [(consumer, k, n, v) for n, (k, v) in enumerate(state.updates, seq)])
    seq += len(state.updates)
    conn.executemany(_APPEND, [(consumer, k, n, v) for n, (k, v) in enumerate(state.appends, seq)])
    seqs[consumer] = seq + len(state.appends)


def read(conn: sqlite3.Connection, consumer: str) -> list[tuple[str, bytes | None, int]]:
    rows = conn.execute(
        "SELECT key, value, moved FROM consumer_state_items WHERE consumer = ? ORDER BY seq", (consumer,)
    )
    return [(str(key), None if value is None else bytes(value), int(moved)) for key, value, moved in rows]


def rebuild(rows: list[tuple[str, bytes | None, int]]) -> dict[str, Any] | None:
    """The document from its stored rows (None when nothing is stored)."""
    if not rows:
        return None
    doc: dict[str, Any] = {}
    for key, value, moved in rows:
        path = orjson.loads(key)
        if not path:
            doc = dict(orjson.loads(value or b"{}"))
            continue
        holder = doc
        for part in path[:-1]:
            holder = holder.setdefault(part, {})
        if value is None or moved:
            holder.pop(path[-1], None)
        if value is not None:
            holder[path[-1]] = orjson.loads(value)
    return doc


def migrate(conn: sqlite3.Connection) -> None:
    """Move single-document rows of ``consumer_state`` (written by a forwarder before per-entry state, or by
    one since downgraded to: then it is the newest state) in as the base, replacing what was stored."""
    conn.execute("DELETE FROM consumer_state_items WHERE consumer IN (SELECT consumer FROM consumer_state)")
    conn.execute(
        "INSERT INTO consumer_state_items SELECT consumer, ?, 0, state, 0 FROM consumer_state", (_BASE,)
    )
    conn.execute("DELETE FROM consumer_state")
