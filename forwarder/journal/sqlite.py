"""The embedded journal: SQLite in WAL mode, driven from one dedicated thread so disk I/O never stalls the
event loop. Owns append atomicity, cursors, retention, the size cap and the wake-ups of delivery.
"""

from __future__ import annotations

import asyncio
import dataclasses
import fcntl
import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import structlog

from forwarder import metrics
from forwarder.events import EventDoc
from forwarder.journal import (
    DeadLetter,
    Entry,
    JournalFullError,
    LetterFilter,
    StateChanges,
    StoredDeadLetter,
)
from forwarder.journal._state import EncodedState
from forwarder.journal._store import AppendResult, Batch, Store, Synchronous, WhenFull
from forwarder.records import Lane, Position

T = TypeVar("T")
log = structlog.get_logger()

#: While blocked on a full journal, re-check at least this often (a wake-up also comes with every commit).
FULL_RECHECK_SECONDS = 1.0


class SqliteJournal:
    """``Journal`` on one SQLite file. Create it with ``await SqliteJournal.open(...)``."""

    def __init__(
        self,
        store: Store,
        executor: ThreadPoolExecutor,
        *,
        max_bytes: int,
        when_full: WhenFull,
        consumers: list[str],
    ) -> None:
        self._store = store
        self._executor = executor
        self._lock_fd: int | None = None
        self.max_bytes = max_bytes
        self.when_full = when_full
        self.consumers = list(consumers)
        self._closed = False
        self._appends = 0
        self._seen: dict[str, int] = {}
        self._appended = asyncio.Event()
        self._freed = asyncio.Event()
        self._newest: dict[Lane, int] = {}
        self._cursors: dict[str, dict[Lane, int]] = {}
        self._letter_counts: dict[str, int] = {}
        self._data_version: int | None = None  # read and written on the journal thread only

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        max_bytes: int = 0,
        when_full: WhenFull = "block",
        consumers: Sequence[str] = (),
        synchronous: Synchronous = "normal",
        exclusive: bool = False,
    ) -> SqliteJournal:
        """Open (or create) the journal. ``consumers`` is the live set: only they hold retention, and a
        consumer seen for the first time starts at the beginning of what is retained. ``max_bytes`` 0: no cap.
        ``exclusive``: the daemon's open; a second daemon on the same file fails at once instead of sending
        everything twice (``state show`` opens without it).
        """
        lock_fd = _lock(Path(path)) if exclusive else None
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal")
        loop = asyncio.get_running_loop()
        try:
            store = await loop.run_in_executor(executor, Store, Path(path), synchronous)
        except BaseException:
            executor.shutdown(wait=False)
            _unlock(lock_fd)
            raise
        journal = cls(store, executor, max_bytes=max_bytes, when_full=when_full, consumers=list(consumers))
        journal._lock_fd = lock_fd
        await journal._start()
        return journal

    async def _start(self) -> None:
        await self._run(self._store.ensure_consumers, self.consumers)
        self._cursors = await self._run(self._store.cursors)
        for lane in Lane:
            self._newest[lane] = await self._run(self._store.newest, lane)
            while await self._run(self._store.retain, lane, self.consumers):
                pass  # a consumer removed from config stops holding retention: catch up now, in chunks
        self._update_gauges()
        self._set_letter_gauge(await self._run(self._letter_snapshot))
        log.info(
            "journal_opened", path=str(self._store.path), consumers=self.consumers, when_full=self.when_full
        )

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise RuntimeError("journal is closed")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # --- writes --------------------------------------------------------------------------------------

    async def append(
        self,
        source: str,
        lane: Lane,
        events: Sequence[EventDoc],
        dead_letters: Sequence[DeadLetter],
        position: Position | None,
    ) -> None:
        batch: Batch | None = None
        blocked_since: float | None = None
        while True:
            freed = self._freed.is_set()
            self._freed.clear()
            if batch is None:  # encoded and appended in one trip to the journal thread (one handoff, not two)
                args = (source, lane, events, dead_letters, position)
                batch, result = await self._run(self._encode_append, *args)
            else:
                result = await self._run(self._store.append, batch, self.max_bytes, self.when_full)
            if not result.full:
                break
            if blocked_since is None:
                blocked_since = time.monotonic()
                log.warning("journal_full_blocking", source=source, max_bytes=self.max_bytes)
            if not freed:
                await _wait(self._freed, FULL_RECHECK_SECONDS)
        if blocked_since is not None:
            waited = time.monotonic() - blocked_since
            metrics.journal_blocked_seconds.inc(waited)
            log.info("journal_unblocked", source=source, waited_seconds=round(waited, 3))
        self._report_dropped(result)
        self._newest[lane] = result.newest
        self._notify_appended()
        self._update_gauges(lane)
        self._count_new_letters(dead_letters)

    def _report_dropped(self, result: AppendResult) -> None:
        for dropped_lane, count in result.dropped.items():
            metrics.journal_dropped.labels(dropped_lane.value).inc(count)
            # ERROR: data is lost (when_full: drop_oldest was chosen by the operator).
            log.error(
                "journal_events_dropped", lane=dropped_lane.value, count=count, max_bytes=self.max_bytes
            )

    def _encode_append(
        self,
        source: str,
        lane: Lane,
        events: Sequence[EventDoc],
        dead_letters: Sequence[DeadLetter],
        position: Position | None,
    ) -> tuple[Batch, AppendResult]:
        """On the journal thread: serialise (outside the transaction, as before), then the one transaction."""
        batch = Batch.encode(source, lane, events, dead_letters, position)
        return batch, self._store.append(batch, self.max_bytes, self.when_full)

    def _notify_appended(self) -> None:
        self._appends += 1
        event, self._appended = self._appended, asyncio.Event()
        event.set()

    async def commit(self, consumer: str, lane: Lane, offset: int) -> None:
        stored, deleted = await self._run(self._store.commit, consumer, lane, offset, self.consumers)
        self._cursors.setdefault(consumer, {})[lane] = stored
        if deleted:
            self._freed.set()
        self._update_gauges(lane)

    async def consumer_state(self, consumer: str) -> dict[str, Any] | None:
        """The state a consumer stored with ``commit_derived`` (None before its first commit)."""
        return await self._run(self._store.consumer_state, consumer)

    async def commit_derived(
        self,
        consumer: str,
        cursors: Mapping[Lane, int],
        events: Sequence[EventDoc],
        state: StateChanges | dict[str, Any],
        lane: Lane = Lane.REALTIME,
    ) -> None:
        """In ONE transaction: append ``events`` to ``lane`` (every consumer gets them), store ``state`` (the
        entries changed since the last commit, or a whole document replacing what was stored) and move
        ``consumer``'s cursors. For a consumer that derives events (the alert rule engine): a crash at
        any point leaves all of it done or none. It never waits at the size cap (with ``block`` the events go
        in over it): the consumer's own cursor holds retention, so room could only come from this commit."""
        encoded = await self._run(EncodedState.encode, state)
        batch = Batch.encode(consumer, lane, events, [], None) if events else None
        limits = (self.max_bytes, self.when_full, self.consumers)
        args = (consumer, dict(cursors), batch, encoded, limits)
        result = await self._run(self._store.commit_derived, *args)
        self._report_dropped(result)
        for each, offset in cursors.items():
            self._cursors.setdefault(consumer, {})[each] = max(
                offset, self._cursors.get(consumer, {}).get(each, 0)
            )
        if events:
            self._newest[lane] = result.newest
            self._notify_appended()
        self._freed.set()
        self._update_gauges()

    async def dead_letter(self, letters: Sequence[DeadLetter]) -> None:
        if letters:
            await self._run(self._store.dead_letter, letters)
            self._count_new_letters(letters)

    # --- dead-letter operations (``sf-forwarder dead-letters``, and redelivery in each sink's loop) ----

    async def request_replay(self, where: LetterFilter) -> int:
        return await self._run(self._store.mark_for_replay, where)

    async def delete_dead_letters(self, where: LetterFilter) -> int:
        deleted = await self._run(self._store.delete_dead_letters, where)
        self._set_letter_gauge(await self._run(self._letter_snapshot))
        return deleted

    async def requested_dead_letters(self, consumer: str, limit: int) -> list[StoredDeadLetter]:
        letters, counts = await self._run(self._requested, consumer, limit)
        if counts is not None:
            self._set_letter_gauge(counts)
        return letters

    def _requested(self, consumer: str, limit: int) -> tuple[list[StoredDeadLetter], dict[str, int] | None]:
        """The marked letters, plus fresh counts when another process (the CLI) changed the file since the
        last look: that is how the stored-letters gauge follows a purge made outside the daemon."""
        letters = self._store.requested_dead_letters(consumer, limit)
        version = self._store.data_version()
        changed, self._data_version = version != self._data_version, version
        return letters, self._store.dead_letter_counts() if changed else None

    async def settle_dead_letters(
        self,
        done: Sequence[int],
        refused: Mapping[int, str] | None = None,
        events: Mapping[Lane, Sequence[EventDoc]] | None = None,
    ) -> None:
        batches = [
            Batch.encode("dead_letters", lane, docs, [], None)
            for lane, docs in (events or {}).items()
            if docs
        ]
        args = (batches, list(done), dict(refused or {}), self.max_bytes, self.when_full)
        result = await self._run(self._store.settle, *args)
        if result.full:
            raise JournalFullError(f"{self._store.path} is at its size cap ({self.max_bytes} bytes)")
        self._report_dropped(result)
        for batch in batches:
            self._newest[batch.lane] = await self._run(self._store.newest, batch.lane)
        if batches:
            self._notify_appended()
            self._update_gauges()
        self._set_letter_gauge(await self._run(self._letter_snapshot))

    # --- reads ---------------------------------------------------------------------------------------

    async def position(self, source: str) -> Position | None:
        return await self._run(self._store.position, source)

    async def read(self, consumer: str, lane: Lane, after: int, limit: int) -> list[Entry]:
        return await self._run(self._store.read, lane, after, limit)

    async def cursor(self, consumer: str, lane: Lane) -> int:
        return await self._run(self._store.cursor, consumer, lane)

    async def wait_for_events(
        self,
        timeout: float,  # noqa: ASYNC109 (the protocol's idle wait; see Journal)
        consumer: str | None = None,
    ) -> None:
        if consumer is not None and self._seen.get(consumer, 0) != self._appends:
            self._seen[consumer] = self._appends
            return
        await _wait(self._appended, timeout)
        if consumer is not None:
            self._seen[consumer] = self._appends

    async def dead_letters(
        self, consumer: str | None = None, limit: int = 100, *, where: LetterFilter | None = None
    ) -> list[StoredDeadLetter]:
        where = where or LetterFilter()
        if consumer is not None:
            where = dataclasses.replace(where, consumer=consumer)
        return await self._run(self._store.dead_letters, where, limit)

    async def count_dead_letters(self, where: LetterFilter) -> dict[str, int]:
        return await self._run(self._store.dead_letter_counts, where)

    async def stats(self) -> dict[str, Any]:
        return await self._run(self._stats)

    def _stats(self) -> dict[str, Any]:
        store = self._store
        lanes = {lane: (store.oldest(lane), store.newest(lane)) for lane in Lane}
        consumers: dict[str, Any] = {}
        for consumer, cursors in sorted(store.cursors().items()):
            entry: dict[str, Any] = {"active": consumer in self.consumers}
            for lane, (oldest, newest) in lanes.items():
                cursor = cursors.get(lane, 0)
                entry[lane.value] = {"cursor": cursor, "lag": _lag(cursor, oldest, newest)}
            consumers[consumer] = entry
        return {
            "path": str(store.path),
            "file_bytes": store.file_bytes(),
            "used_bytes": store.used_bytes(),
            "max_bytes": self.max_bytes,
            "when_full": self.when_full,
            "lanes": {
                lane.value: {"oldest": old, "newest": new, "events": 0 if old is None else new - old + 1}
                for lane, (old, new) in lanes.items()
            },
            "positions": store.positions(),
            "consumers": consumers,
            "dead_letters": store.dead_letter_counts(),
        }

    # --- lifecycle -----------------------------------------------------------------------------------

    async def close(self) -> None:
        if self._closed:
            return
        await self._run(self._store.close)  # queued behind every pending operation
        self._closed = True
        self._executor.shutdown(wait=True)
        _unlock(self._lock_fd)
        log.info("journal_closed", path=str(self._store.path))

    def _letter_snapshot(self) -> dict[str, int]:
        self._data_version = self._store.data_version()
        return self._store.dead_letter_counts()

    def _set_letter_gauge(self, counts: dict[str, int]) -> None:
        """Stored letters per consumer; a consumer whose letters are all gone shows 0, not its old count."""
        for consumer in self._letter_counts.keys() | counts.keys():
            metrics.dead_letters_stored.labels(consumer).set(counts.get(consumer, 0))
        self._letter_counts = dict(counts)

    def _count_new_letters(self, letters: Sequence[DeadLetter]) -> None:
        """Letters this process stored: counted as they land, no query (ingest rejections can be many)."""
        for letter in letters:
            self._letter_counts[letter.consumer] = self._letter_counts.get(letter.consumer, 0) + 1
            metrics.dead_letters_stored.labels(letter.consumer).inc()

    def _update_gauges(self, lane: Lane | None = None) -> None:
        for each in [lane] if lane else list(Lane):
            newest = self._newest.get(each, 0)
            for consumer in self.consumers:
                cursor = self._cursors.get(consumer, {}).get(each, 0)
                metrics.sink_lag.labels(consumer, each.value).set(max(0, newest - cursor))
        metrics.journal_bytes.set(self._store.file_bytes())


def _lock(path: Path) -> int:
    """An exclusive advisory lock on ``<journal>.lock``, held until close (or process death)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RuntimeError(f"{path} is in use by another sf-forwarder process") from None
    return fd


def _unlock(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)  # closing the descriptor releases the flock


def _lag(cursor: int, oldest: int | None, newest: int) -> int:
    """Events retained after ``cursor``: offsets are contiguous from ``oldest`` to ``newest``."""
    if oldest is None:
        return 0
    return max(0, newest - max(cursor, oldest - 1))


async def _wait(event: asyncio.Event, timeout: float) -> None:  # noqa: ASYNC109 (wait, then re-check)
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        pass
