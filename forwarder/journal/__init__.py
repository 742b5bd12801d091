"""The journal: the single source of truth for what has been received, and each consumer's progress.

``Journal`` is the protocol; ``forwarder.journal.sqlite`` is the embedded implementation. A distributed
journal (Kafka) can replace it later without touching sources, sinks or delivery.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from forwarder.events import EventDoc
from forwarder.records import Lane, Position


@dataclass(frozen=True, slots=True)
class Entry:
    """One stored event as a consumer reads it. ``offset`` increases strictly within a lane."""

    lane: Lane
    offset: int
    event: EventDoc


#: A place in a consumer's state document: the keys from the top, e.g. ``("rules", "brute", "buckets", k)``.
StatePath = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StateChanges:
    """What changed in a consumer's state document since its last commit (``commit_derived``).

    ``updates``: entries changed in place (they keep their position in their object); ``appends``: entries
    new to their object since the last commit, in insertion order (a restore puts them after the others);
    ``deletes``: entries gone. ``replace``: forget everything stored, ``appends`` is then the whole
    document as one entry at the path ``()``. A restore rebuilds every object with its keys in order.
    """

    updates: list[tuple[StatePath, Any]]
    appends: list[tuple[StatePath, Any]]
    deletes: list[StatePath]
    replace: bool = False

    @classmethod
    def whole(cls, state: dict[str, Any]) -> StateChanges:
        return cls([], [((), state)], [], replace=True)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Something that could not be delivered or normalised, kept with the reason."""

    consumer: str  # the sink name, or "ingest" for records that failed normalisation
    reason: str
    payload: dict[str, Any]  # the event document, or the raw record for ingest rejections


@dataclass(frozen=True, slots=True)
class StoredDeadLetter:
    """A dead letter as ``state show`` lists it: with its id and the time it was stored."""

    id: int
    consumer: str
    reason: str
    payload: dict[str, Any]
    created_at: datetime
    replay_requested: bool = False  # an operator asked to send it again; its consumer has not yet


@dataclass(frozen=True, slots=True)
class LetterFilter:
    """Which stored dead letters an operation covers: every field given must match; none given is all."""

    consumer: str | None = None
    ids: tuple[int, ...] | None = None
    reason: str | None = None  # a part of the reason, any case
    before: datetime | None = None  # stored before this instant
    below_id: int | None = None  # ids lower than this: pages newest first, and fixes a set once counted


class JournalFullError(Exception):
    """The journal is at its size cap (``when_full: block``) and a one-off write cannot wait for room."""


class Journal(Protocol):
    """Durable, lane-split log with one cursor per consumer and lane."""

    async def append(
        self,
        source: str,
        lane: Lane,
        events: Sequence[EventDoc],
        dead_letters: Sequence[DeadLetter],
        position: Position | None,
    ) -> None:
        """Store events, dead letters and ``source``'s new position in ONE transaction.

        Returns once durable. With ``when_full: block`` it waits while the journal is at its size cap (that
        is the backpressure on sources); with ``drop_oldest`` it deletes the oldest events (counted, logged).
        """
        ...

    async def position(self, source: str) -> Position | None:
        """The last position appended for ``source``, or None before its first append."""
        ...

    async def read(self, consumer: str, lane: Lane, after: int, limit: int) -> list[Entry]:
        """Up to ``limit`` entries of ``lane`` with offset > ``after``, in offset order (may be empty)."""
        ...

    async def cursor(self, consumer: str, lane: Lane) -> int:
        """The consumer's committed offset in ``lane``: everything at or below it is done."""
        ...

    async def commit(self, consumer: str, lane: Lane, offset: int) -> None:
        """Durably move the consumer's cursor to ``offset`` (never backwards). Callers pass only contiguous
        completed offsets; an offset past the newest event is a bug and raises ``ValueError``."""
        ...

    async def dead_letter(self, letters: Sequence[DeadLetter]) -> None:
        """Store dead letters durably (reason, consumer, time)."""
        ...

    async def wait_for_events(
        self,
        timeout: float,  # noqa: ASYNC109 (an idle wait with a wake-up, not a deadline on work)
        consumer: str | None = None,
    ) -> None:
        """Return when something was appended since ``consumer``'s last call (at once if so), or after
        ``timeout`` seconds. Without ``consumer``: when the next append lands. Each consumer passes its name
        so that an append between its read and its wait is never missed."""
        ...

    async def dead_letters(
        self, consumer: str | None = None, limit: int = 100, *, where: LetterFilter | None = None
    ) -> list[StoredDeadLetter]:
        """The newest ``limit`` dead letters matching ``where`` (``consumer`` narrows it), newest first."""
        ...

    async def count_dead_letters(self, where: LetterFilter) -> dict[str, int]:
        """How many stored dead letters match ``where``, per consumer (consumers with none are absent)."""
        ...

    async def delete_dead_letters(self, where: LetterFilter) -> int:
        """Delete the dead letters matching ``where`` (``LetterFilter()`` deletes all); returns how many."""
        ...

    async def request_replay(self, where: LetterFilter) -> int:
        """Mark the matching dead letters for redelivery by their consumer; returns how many are marked.
        Marks are durable: a consumer not running now takes them when it next runs."""
        ...

    async def requested_dead_letters(self, consumer: str, limit: int) -> list[StoredDeadLetter]:
        """Up to ``limit`` of ``consumer``'s letters marked for redelivery, oldest first. They stay marked
        (and stored) until ``settle_dead_letters``: a crash in between sends them again (at least once)."""
        ...

    async def settle_dead_letters(
        self,
        done: Sequence[int],
        refused: Mapping[int, str] | None = None,
        events: Mapping[Lane, Sequence[EventDoc]] | None = None,
    ) -> None:
        """In ONE transaction: append ``events`` (as fresh events, every consumer gets them), delete the
        letters ``done``, and keep the letters ``refused`` with their new reason, no longer marked. Ids no
        longer stored (purged meanwhile) are ignored. With ``when_full: block`` at the size cap it raises
        ``JournalFullError`` and changes nothing."""
        ...

    async def stats(self) -> dict[str, Any]:
        """Positions, cursors and lag per consumer and lane, dead-letter counts, size: for ``state show``."""
        ...

    async def close(self) -> None:
        """Flush and close cleanly; idempotent."""
        ...
