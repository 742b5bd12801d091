"""Which entries of the rule engine's state changed since its last commit, so a commit writes only those and
deletes the evicted ones (docs/alerts.md, "State"), instead of rewriting the whole document every time."""

from __future__ import annotations

from typing import Any

from forwarder.journal import StateChanges, StatePath

#: A commit writes the whole document (one entry) instead when this share of its entries changed (a backlog
#: changes most windows between commits, and one document is cheaper than thousands of rows), or when the
#: entries written since the last whole write outnumber the live ones (compaction: deleted entries are kept
#: as tombstones until then).
FULL_SHARE = 0.5


class Tracker:
    """Dirty, new and removed keys per object of the state (a rule's windows, the raised ids, ...).

    Dirty keys keep the order they were first written in since their last removal, so new keys are stored
    in insertion order and a restore gives every object its keys in that order (eviction at ``max_groups``
    takes the oldest first). ``full``: the next commit writes the whole document (the first after a start:
    it also drops what a restore skipped, such as the state of a rule since removed).
    """

    __slots__ = ("_dirty", "_new", "_removed", "_since_full", "full")

    def __init__(self) -> None:
        self._dirty: dict[StatePath, dict[str, None]] = {}
        self._new: dict[StatePath, set[str]] = {}  # added since the last commit
        self._removed: dict[StatePath, set[str]] = {}
        self._since_full = 0  # entries written or deleted since the last whole write (an upper bound)
        self.full = True

    def keys(self, parent: StatePath) -> dict[str, None]:
        """The dirty keys of the object at ``parent``, to mark several cheaply: ``keys(p)[key] = None``."""
        found = self._dirty.get(parent)
        if found is None:
            found = self._dirty[parent] = {}
        return found

    def touch(self, parent: StatePath, key: str) -> None:
        self.keys(parent)[key] = None

    def add(self, parent: StatePath, key: str) -> None:
        """``key`` was not in its object before: it goes after the others on restore."""
        self.keys(parent)[key] = None
        new = self._new.get(parent)
        if new is None:
            new = self._new[parent] = set()
        new.add(key)

    def remove(self, parent: StatePath, key: str) -> None:
        dirty = self._dirty.get(parent)
        if dirty:
            dirty.pop(key, None)
        new = self._new.get(parent)
        if new and key in new:
            new.discard(key)  # added and gone within one commit: nothing to write for it...
            return  # ...unless it was stored before that, and then it is in ``_removed`` already
        removed = self._removed.get(parent)
        if removed is None:
            removed = self._removed[parent] = set()
        removed.add(key)

    def changes(self, state: dict[str, Any], entries: int) -> StateChanges:
        """What to write for ``state`` (holding ``entries`` entries): the dirty entries and removed paths,
        or the whole document (``full``, or when that is cheaper: see ``FULL_SHARE``)."""
        pending = self.pending()
        if self.full or pending > entries * FULL_SHARE or self._since_full + pending > entries:
            self.full = True
            return StateChanges.whole(state)
        deletes = [(*parent, key) for parent, keys in self._removed.items() for key in keys]
        updates: list[tuple[StatePath, Any]] = []
        appends: list[tuple[StatePath, Any]] = []
        for parent, keys in self._dirty.items():
            holder, new = _lookup(state, parent), self._new.get(parent, set())
            for key in keys:
                if key in holder:
                    (appends if key in new else updates).append(((*parent, key), holder[key]))
        return StateChanges(updates, appends, deletes)

    def pending(self) -> int:
        """How many entries an incremental commit would write or delete now."""
        return sum(map(len, self._dirty.values())) + sum(map(len, self._removed.values()))

    def committed(self) -> None:
        """The changes last returned are durable: start over from here."""
        self._since_full = 0 if self.full else self._since_full + self.pending()
        self._dirty.clear()
        self._new.clear()
        self._removed.clear()
        self.full = False


def _lookup(state: dict[str, Any], parent: StatePath) -> dict[str, Any]:
    holder = state
    for key in parent:
        holder = holder.get(key, {})
    return holder
