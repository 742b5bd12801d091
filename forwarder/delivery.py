"""Generic delivery: one consumer per sink. Reads its journal cursor (realtime lane first), filters by route,
batches by the sink's limits, sends with retries, dead-letters what can never be sent, and commits only
contiguous completed progress, so a cursor never passes a batch that did not succeed.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_never, wait_random_exponential

from forwarder import metrics
from forwarder.errors import AuthenticationError, BatchTooLargeError, PermanentError, RetryableError
from forwarder.journal import DeadLetter, Entry, Journal, StoredDeadLetter
from forwarder.records import Lane
from sinks import BatchSettings, Route, Sink, SinkLimits

log = structlog.get_logger()

#: Lanes in service order: realtime first, so a stream event or alert never queues behind a bulk backlog.
SERVICE_ORDER = (Lane.REALTIME, Lane.BULK)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Retry waits: ``uniform(0, min(cap, initial * 2**n))`` ("full jitter", AWS Architecture Blog,
    "Exponential Backoff And Jitter"); base 1 s and cap 60 s as the sink reference (§7.4) recommends.
    A server's ``Retry-After`` is honoured up to ``retry_after_cap`` seconds."""

    initial: float = 1.0
    cap: float = 60.0
    retry_after_cap: float = 60.0


#: How often each sink looks for dead letters an operator marked for redelivery (``sf-forwarder dead-letters
#: replay``, possibly from another process): one probe of a partial index, empty in the common case.
REPLAY_POLL_SECONDS = 2.0

#: For tests: retry at once.
NO_BACKOFF = Backoff(initial=0.0, cap=0.0, retry_after_cap=0.0)


def effective_limits(limits: SinkLimits, overrides: BatchSettings | None) -> SinkLimits:
    """The sink's protocol limits with the operator's ``batch:`` overrides applied."""
    if overrides is None:
        return limits
    return SinkLimits(
        max_events=overrides.max_events or limits.max_events,
        max_bytes=overrides.max_bytes or limits.max_bytes,
        max_wait=limits.max_wait if overrides.max_wait is None else overrides.max_wait,
    )


class _Stopping(Exception):
    """Raised inside a batch task when a stop arrives during a retry wait: the batch stays uncommitted."""


@dataclass(slots=True)
class _Item:
    entry: Entry
    payload: bytes
    letter: int | None = None  # a dead letter being redelivered: its id


@dataclass(slots=True)
class _Builder:
    """A batch being filled. ``last`` is the highest offset it covers, skipped (filtered) events included."""

    items: list[_Item] = field(default_factory=list)
    size: int = 0
    last: int | None = None
    started: float = 0.0


@dataclass(slots=True)
class _Slot:
    last: int
    done: bool = False


class _Progress:
    """Batches of one lane in read order; the commit point is the end of the longest done prefix
    (Benthos' checkpointer: commit only the highest offset with no unfinished batch before it)."""

    def __init__(self) -> None:
        self._slots: deque[_Slot] = deque()

    def add(self, last: int) -> _Slot:
        slot = _Slot(last)
        self._slots.append(slot)
        return slot

    def finish(self, slot: _Slot) -> int | None:
        """Mark ``slot`` done; the new commit offset if the done prefix grew."""
        slot.done = True
        commit = None
        while self._slots and self._slots[0].done:
            commit = self._slots.popleft().last
        return commit


class Delivery:
    """Moves one sink's share of the journal to the sink. ``run()`` until ``stop()``."""

    def __init__(
        self,
        sink: Sink,
        route: Route | None,
        journal: Journal,
        *,
        concurrency: int = 1,
        batch: BatchSettings | None = None,
        backoff: Backoff = Backoff(),
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        idle_wait: float = 1.0,
        replay_poll: float = REPLAY_POLL_SECONDS,
    ) -> None:
        self.name = sink.name
        self.limits = effective_limits(sink.limits, batch)
        self._sink = sink
        self._route = route or Route()
        self._journal = journal
        self._backoff = backoff
        self._sleep = sleep
        self._clock = clock
        self._idle_wait = idle_wait
        self._replay_poll = replay_poll
        self._replay_due = 0.0  # the first look is at start: marks made while the daemon was down
        self._replaying: asyncio.Task[None] | None = None
        self._refused: set[int] = set()
        self._slots = asyncio.Semaphore(concurrency)
        self._next: dict[Lane, int] = {}
        self._progress = {lane: _Progress() for lane in Lane}
        self._builders = {lane: _Builder() for lane in Lane}
        self._inflight: set[asyncio.Task[None]] = set()
        self._group: asyncio.TaskGroup | None = None
        self._stopping = asyncio.Event()
        self._stopped = asyncio.Event()
        self._running = False
        self._log = log.bind(sink=self.name)

    # --- lifecycle -----------------------------------------------------------------------------------

    async def run(self) -> None:
        """Deliver until ``stop()``; raises only when the journal fails (the daemon must restart)."""
        self._running = True
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                for lane in Lane:
                    self._next[lane] = await self._journal.cursor(self.name, lane)
                self._log.info("delivery_started", cursors={k.value: v for k, v in self._next.items()})
                await self._loop()
        finally:
            self._running = False
            self._stopped.set()
            self._log.info("delivery_stopped")

    async def stop(self, deadline: float) -> None:
        """Stop reading; give in-flight sends ``deadline`` seconds to finish, then cancel them. Batches not
        acknowledged stay uncommitted and are the first thing sent after a restart."""
        self._stopping.set()
        if not self._running:
            return
        try:
            async with asyncio.timeout(deadline):
                await self._stopped.wait()
        except TimeoutError:
            self._log.warning("delivery_drain_timeout", in_flight=len(self._inflight), deadline=deadline)
            for task in list(self._inflight):
                task.cancel()
            await self._stopped.wait()

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            await self._flush_due()
            await self._replay_requested()
            if await self._pump(Lane.REALTIME) or await self._pump(Lane.BULK):
                continue  # after any read, look at realtime again before more bulk
            await self._unless_stopping(self._journal.wait_for_events(self._idle_timeout(), self.name))

    def _idle_timeout(self) -> float:
        due = [b.started + self.limits.max_wait for b in self._builders.values() if b.items]
        if not due:
            return self._idle_wait
        return max(0.0, min(self._idle_wait, min(due) - self._clock()))

    async def _unless_stopping(self, waiting: Awaitable[Any]) -> None:
        work = asyncio.ensure_future(waiting)
        stop = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({work, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (work, stop):
                task.cancel()
        if work.done() and not work.cancelled() and work.exception() is not None:
            raise work.exception()  # type: ignore[misc]  # re-raise a journal failure

    # --- reading and batching ------------------------------------------------------------------------

    async def _pump(self, lane: Lane) -> bool:
        """Read one chunk of ``lane`` into batches; False when there was nothing new."""
        entries = await self._journal.read(self.name, lane, self._next[lane], max(1, self.limits.max_events))
        if not entries:
            return False
        for entry in entries:
            if not await self._add(lane, entry):
                return True  # stopping
        self._next[lane] = entries[-1].offset
        builder = self._builders[lane]
        if not builder.items and builder.last is not None:
            await self._dispatch(lane)  # only skipped events: their offsets are done at once
        return True

    async def _add(self, lane: Lane, entry: Entry) -> bool:
        """Put one entry into the lane's batch, sending batches as they fill; False when stopping."""
        item = await self._encode(entry)
        builder = self._builders[lane]
        if item is not None:
            if builder.items and builder.size + len(item.payload) > self.limits.max_bytes:
                if not await self._dispatch(lane):
                    return False
                builder = self._builders[lane]
            if not builder.items:
                builder.started = self._clock()
            builder.items.append(item)
            builder.size += len(item.payload)
        builder.last = entry.offset
        if len(builder.items) >= self.limits.max_events or builder.size >= self.limits.max_bytes:
            return await self._dispatch(lane)
        return True

    async def _encode(self, entry: Entry) -> _Item | None:
        """The wire form of a routed event; None for events this sink does not take (or cannot encode)."""
        if not self._route.matches(entry.event):
            return None
        try:
            return _Item(entry, self._sink.encode(entry.event))
        except PermanentError as exc:
            await self._dead_letter(entry, exc, "encode")
        except Exception as exc:  # a bug in an encoder must cost one event (kept), not a crash loop
            await self._dead_letter(entry, exc, f"encode_bug {type(exc).__name__}")
        return None

    async def _flush_due(self) -> None:
        now = self._clock()
        for lane, builder in self._builders.items():
            if builder.items and now - builder.started >= self.limits.max_wait:
                await self._dispatch(lane)

    async def _dispatch(self, lane: Lane) -> bool:
        """Hand the lane's batch to a send task (waiting for a free slot). False when a stop came while
        waiting: the batch is then left unsent and uncommitted."""
        builder = self._builders[lane]
        self._builders[lane] = _Builder()
        if not builder.items:
            if builder.last is not None:
                await self._finish(lane, self._progress[lane].add(builder.last))
            return True
        await self._slots.acquire()
        if self._stopping.is_set() or self._group is None:
            self._slots.release()
            return False
        assert builder.last is not None  # a batch with items has read at least one offset
        self._next[lane] = max(self._next[lane], builder.last)
        slot = self._progress[lane].add(builder.last)
        task = self._group.create_task(self._deliver(lane, slot, builder.items))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        return True

    # --- sending -------------------------------------------------------------------------------------

    async def _deliver(self, lane: Lane, slot: _Slot, items: list[_Item]) -> None:
        try:
            await self._send_all(items)
        except _Stopping:
            self._log.info(
                "batch_left_for_restart", lane=lane.value, first=items[0].entry.offset, last=slot.last
            )
            return
        finally:
            self._slots.release()
        await self._finish(lane, slot)

    # --- redelivery of dead letters an operator marked --------------------------------------------------

    async def _replay_requested(self) -> None:
        """Every ``replay_poll`` seconds, between batches: start sending the marked letters (one task at a
        time, in a send slot, so they share the sink's concurrency limit with the journal's batches)."""
        busy = self._replaying is not None and not self._replaying.done()
        if busy or self._clock() < self._replay_due or self._group is None:
            return
        self._replay_due = self._clock() + self._replay_poll
        letters = await self._journal.requested_dead_letters(self.name, max(1, self.limits.max_events))
        if not letters:
            return
        await self._slots.acquire()
        if self._stopping.is_set():
            self._slots.release()
            return
        task = self._group.create_task(self._redeliver(letters))
        self._replaying = task
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def _redeliver(self, letters: list[StoredDeadLetter]) -> None:
        """Send marked letters until none are left (or a stop). A letter is deleted only after the sink
        accepted it; refused for good, it stays with the new reason; a stop leaves it marked for the next run
        (so it may be sent twice: its ``event.id`` lets the SIEM de-duplicate)."""
        limit = max(1, self.limits.max_events)
        try:
            while letters and not self._stopping.is_set():
                await self._redeliver_batch(letters)
                if len(letters) < limit:
                    break
                letters = await self._journal.requested_dead_letters(self.name, limit)
        except _Stopping:
            self._log.info("replay_left_for_restart", first=letters[0].id)
        finally:
            self._slots.release()

    async def _redeliver_batch(self, letters: list[StoredDeadLetter]) -> None:
        self._refused = set()
        items: list[_Item] = []
        for letter in letters:
            entry = Entry(Lane.REALTIME, letter.id, letter.payload)  # the offset field carries the letter id
            try:  # encoded by today's code: the fix being replayed may be in the encoder
                items.append(_Item(entry, self._sink.encode(letter.payload), letter.id))
            except Exception as exc:  # as in _encode: kept, with the reason, for the operator
                kind = "encode" if isinstance(exc, PermanentError) else f"encode_bug {type(exc).__name__}"
                await self._refuse(_Item(entry, b"", letter.id), exc, kind)
        for chunk in self._chunks(items):
            await self._send_all(chunk)
            done = [
                item.letter for item in chunk if item.letter is not None and item.letter not in self._refused
            ]
            await self._journal.settle_dead_letters(done)
            if done:
                self._log.info("dead_letters_redelivered", count=len(done))

    def _chunks(self, items: list[_Item]) -> list[list[_Item]]:
        """Consecutive batches within the sink's byte limit (the event count is already within it)."""
        chunks: list[list[_Item]] = [[]]
        size = 0
        for item in items:
            if chunks[-1] and size + len(item.payload) > self.limits.max_bytes:
                chunks.append([])
                size = 0
            chunks[-1].append(item)
            size += len(item.payload)
        return [chunk for chunk in chunks if chunk]

    async def _refuse(self, item: _Item, exc: Exception, kind: str) -> None:
        """One event refused for good: a new dead letter, or a replayed letter kept with its new reason."""
        if item.letter is None:
            await self._dead_letter(item.entry, exc, kind)
            return
        reason = f"{kind}: {exc}" if str(exc) else kind
        self._refused.add(item.letter)
        await self._journal.settle_dead_letters([], {item.letter: reason})
        metrics.dead_letters.labels(self.name).inc()
        # ERROR: still not deliverable; it stays in the dead-letter store for the operator.
        self._log.error("replayed_letter_refused", letter=item.letter, reason=reason)

    async def _finish(self, lane: Lane, slot: _Slot) -> None:
        offset = self._progress[lane].finish(slot)
        if offset is not None:
            await self._journal.commit(self.name, lane, offset)

    async def _send_all(self, items: list[_Item]) -> None:
        """Send ``items``; on a permanent refusal bisect, so one bad event never takes its batch-mates to
        the dead-letter store, and a 413 splits the batch (sink reference §7.4: split and retry on 413)."""
        try:
            await self._send_retrying(items)
        except PermanentError as exc:
            kind = "too_large" if isinstance(exc, BatchTooLargeError) else "permanent"
            metrics.sink_errors.labels(self.name, kind).inc()
            if len(items) == 1:
                await self._refuse(items[0], exc, kind)
                return
            half = len(items) // 2
            self._log.info("batch_split", reason=kind, events=len(items))
            await self._send_all(items[:half])
            await self._send_all(items[half:])

    async def _send_retrying(self, items: list[_Item]) -> None:
        payloads = [item.payload for item in items]
        retrying = AsyncRetrying(
            retry=retry_if_exception(_is_transient),
            wait=self._wait,
            stop=stop_never,  # never give up on a transient error: the journal holds the data meanwhile
            sleep=self._retry_sleep,
            before_sleep=self._on_retry,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                await self._send_once(payloads)

    async def _send_once(self, payloads: list[bytes]) -> None:
        started = self._clock()
        await self._sink.send(payloads)
        metrics.send_seconds.labels(self.name).observe(max(0.0, self._clock() - started))
        metrics.sent_events.labels(self.name).inc(len(payloads))
        metrics.sent_bytes.labels(self.name).inc(sum(map(len, payloads)))

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RetryableError) and exc.retry_after is not None:
            return min(max(exc.retry_after, 0.0), self._backoff.retry_after_cap)
        jitter = wait_random_exponential(multiplier=self._backoff.initial, max=self._backoff.cap)
        return float(jitter(state))

    async def _retry_sleep(self, seconds: float) -> None:
        """Backoff wait that a stop cuts short: nothing is in flight, so there is nothing to wait for."""
        if not self._stopping.is_set():
            await self._unless_stopping(self._sleep(seconds))
        if self._stopping.is_set():
            raise _Stopping

    def _on_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        kind = _error_class(exc)
        metrics.sink_errors.labels(self.name, kind).inc()
        metrics.sink_retries.labels(self.name).inc()
        wait = state.next_action.sleep if state.next_action else 0.0
        fields = {"attempt": state.attempt_number, "wait_seconds": round(wait, 3), "error": kind}
        if kind in ("auth", "unexpected"):
            # ERROR: the sink will not recover without an operator (credentials, or a bug to report).
            self._log.error("send_failing", detail=str(exc), exc_info=kind == "unexpected", **fields)
        else:
            self._log.warning("send_retrying", detail=str(exc), **fields)

    async def _dead_letter(self, entry: Entry, exc: Exception, kind: str) -> None:
        reason = f"{kind}: {exc}" if str(exc) else kind
        await self._journal.dead_letter([DeadLetter(consumer=self.name, reason=reason, payload=entry.event)])
        metrics.dead_letters.labels(self.name).inc()
        # ERROR: this event will not reach the sink; it waits in the dead-letter store for an operator.
        self._log.error("event_dead_lettered", lane=entry.lane.value, offset=entry.offset, reason=reason)


def _is_transient(exc: BaseException) -> bool:
    """Everything but a permanent refusal is retried: auth failures pause the sink until credentials are
    fixed, and an unclassified error must not lose data (it is logged at ERROR)."""
    return isinstance(exc, Exception) and not isinstance(exc, PermanentError | _Stopping)


def _error_class(exc: BaseException | None) -> str:
    if isinstance(exc, RetryableError):
        return "retryable"
    if isinstance(exc, AuthenticationError):
        return "auth"
    return "unexpected"
