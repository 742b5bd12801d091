"""Which entries of the rule engine's state changed since its last commit, so a commit writes only those and
deletes the evicted ones (docs/alerts.md, "State"), instead of rewriting the whole document every time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from forwarder.journal import StateChanges, StatePath


class Tracker:
    """Dirty and removed keys per object of the state (a rule's windows, the raised alert ids, ...).

    Dirty keys keep the order they were first written in since their last removal: a key new to the store
    is appended in that order, so a restore gives every object its keys in insertion order (eviction at
    ``max_groups`` takes the oldest first). ``full``: the next commit rewrites the whole document (the first
    one after a start: it also drops what a restore skipped, such as the state of a rule since removed).
    """

    __slots__ = ("_dirty", "_removed", "full")

    def __init__(self) -> None:
        self._dirty: dict[StatePath, dict[str, None]] = {}
        self._removed: dict[StatePath, set[str]] = {}
        self.full = True

    def keys(self, parent: StatePath) -> dict[str, None]:
        """The dirty keys of the object at ``parent``, to mark several cheaply: ``keys(p)[key] = None``."""
        found = self._dirty.get(parent)
        if found is None:
            found = self._dirty[parent] = {}
        return found

    def touch(self, parent: StatePath, key: str) -> None:
        self.keys(parent)[key] = None

    def remove(self, parent: StatePath, key: str) -> None:
        dirty = self._dirty.get(parent)
        if dirty:
            dirty.pop(key, None)
        removed = self._removed.get(parent)
        if removed is None:
            removed = self._removed[parent] = set()
        removed.add(key)

    def changes(self, state: dict[str, Any], depths: dict[str, int]) -> StateChanges:
        """What to write for ``state``: its dirty entries and removed paths (or all of it when ``full``).
        ``depths``: how deep the entries of each top-level object are (``fired``: 2, ``rules``: 4)."""
        if self.full:
            return StateChanges(list(flatten(state, depths)), [], replace=True)
        deletes = [(*parent, key) for parent, keys in self._removed.items() for key in keys]
        upserts: list[tuple[StatePath, Any]] = []
        for parent, keys in self._dirty.items():
            holder = _lookup(state, parent)
            upserts.extend(((*parent, key), holder[key]) for key in keys if key in holder)
        return StateChanges(upserts, deletes)

    def pending(self) -> int:
        """How many entries the next commit writes or deletes (without ``full``)."""
        return sum(map(len, self._dirty.values())) + sum(map(len, self._removed.values()))

    def committed(self) -> None:
        """The changes last returned are durable: start over from here."""
        self._dirty.clear()
        self._removed.clear()
        self.full = False


def flatten(state: dict[str, Any], depths: dict[str, int]) -> Iterator[tuple[StatePath, Any]]:
    """Every entry of ``state`` with its path, in document order (top-level keys missing in ``depths``: 1)."""
    for name, value in state.items():
        yield from _leaves((name,), value, depths.get(name, 1) - 1)


def _leaves(path: StatePath, value: Any, depth: int) -> Iterator[tuple[StatePath, Any]]:
    if depth <= 0 or not isinstance(value, dict):
        yield path, value
        return
    for key, inner in value.items():
        yield from _leaves((*path, key), inner, depth - 1)


def _lookup(state: dict[str, Any], parent: StatePath) -> dict[str, Any]:
    holder = state
    for key in parent:
        holder = holder.get(key, {})
    return holder
