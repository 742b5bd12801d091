"""The rule engine as a journal consumer: read both lanes after its cursors (realtime first), evaluate, then
append the alerts, move the cursors and store the window state's changed entries in ONE journal transaction.

A kill -9 at any point leaves either all of a batch's effects or none, so after a restart no alert is lost
and none is appended twice (the state and cursors it resumes from are the ones the alerts were made with).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Protocol

import structlog

from forwarder import metrics
from forwarder.alerts.engine import Engine, Stats, to_ms
from forwarder.events import EventDoc
from forwarder.journal import Entry, Journal, StateChanges
from forwarder.records import Lane

log = structlog.get_logger()

#: The rule engine's consumer name in the journal (its cursors; it holds retention like a sink).
CONSUMER = "alert-rules"
#: Events read per lane per evaluation step.
READ_LIMIT = 2000
#: Evaluated progress without alerts is committed (cursors + state, one transaction) after this many events
#: or seconds, or when the journal has nothing new. A commit writes the state entries changed since the last
#: one (or the whole document when most changed: a backlog); fewer commits per backlog still mean fewer
#: writes. Raised alerts wait at most ``ALERT_COMMIT_SECONDS`` (a backlog full of alerts still commits a few
#: times a second, not per chunk). After a crash the uncommitted tail is evaluated again from the committed
#: state: same alerts, same ids.
COMMIT_EVENTS = 20_000
COMMIT_SECONDS = 1.0
ALERT_COMMIT_SECONDS = 0.2
SERVICE_ORDER = (Lane.REALTIME, Lane.BULK)


class DerivingJournal(Journal, Protocol):
    """A journal that can commit a consumer's derived events, state and cursors together (SqliteJournal)."""

    async def consumer_state(self, consumer: str) -> dict[str, Any] | None: ...

    async def commit_derived(
        self,
        consumer: str,
        cursors: dict[Lane, int],
        events: list[EventDoc],
        state: StateChanges | dict[str, Any],
        lane: Lane = Lane.REALTIME,
    ) -> None: ...


class RuleConsumer:
    """Runs ``engine`` over the journal until ``stop()``."""

    def __init__(self, engine: Engine, journal: DerivingJournal, *, idle_wait: float = 1.0) -> None:
        self.engine = engine
        self._journal = journal
        self._idle_wait = idle_wait
        self._stopping = asyncio.Event()
        self._cursors: dict[Lane, int] = {}
        self._pending: dict[Lane, int] = {}  # evaluated, not yet committed
        self._pending_events = 0
        self._pending_alerts: list[EventDoc] = []
        self._stats = Stats()
        self._last: Entry | None = None
        self._committed_at = time.monotonic()

    def stop(self) -> None:
        self._stopping.set()

    async def start(self) -> None:
        """Restore the committed state and cursors."""
        self.engine.restore(await self._journal.consumer_state(CONSUMER))
        for lane in Lane:
            self._cursors[lane] = await self._journal.cursor(CONSUMER, lane)
        log.info(
            "rules_started",
            rules=len(self.engine.rules),
            cursors={k.value: v for k, v in self._cursors.items()},
        )

    async def run(self) -> None:
        await self.start()
        while not self._stopping.is_set():
            if await self.step(Lane.REALTIME) or await self.step(Lane.BULK):
                continue
            await self.flush()
            waiting = asyncio.ensure_future(self._journal.wait_for_events(self._idle_wait, CONSUMER))
            stopping = asyncio.ensure_future(self._stopping.wait())
            await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
            for task in (waiting, stopping):
                task.cancel()
        await self.flush()
        log.info("rules_stopped")

    async def step(self, lane: Lane) -> bool:
        """Evaluate one chunk of ``lane``; False when there was nothing new. Commits when enough is pending
        (``COMMIT_EVENTS``, ``COMMIT_SECONDS``, or ``ALERT_COMMIT_SECONDS`` with alerts waiting)."""
        entries = await self._journal.read(CONSUMER, lane, self._cursors[lane], READ_LIMIT)
        if not entries:
            return False
        self._pending_alerts += self.engine.evaluate((e.event for e in entries), lane.value, self._stats)
        self._cursors[lane] = self._pending[lane] = entries[-1].offset
        self._pending_events += len(entries)
        self._last = entries[-1]
        waited = time.monotonic() - self._committed_at
        due = waited >= (ALERT_COMMIT_SECONDS if self._pending_alerts else COMMIT_SECONDS)
        if due or self._pending_events >= COMMIT_EVENTS:
            await self._commit()
        return True

    async def flush(self) -> None:
        """Commit evaluated progress (cursors and state) that is still pending."""
        if self._pending:
            await self._commit()

    async def _commit(self) -> None:
        alerts = self._pending_alerts
        changes = self.engine.changes()
        await self._journal.commit_derived(CONSUMER, dict(self._pending), alerts, changes)
        self.engine.committed()
        _report(self._stats, self.engine, self._last, alerts)
        self._pending, self._pending_events, self._pending_alerts, self._stats = {}, 0, [], Stats()
        self._committed_at = time.monotonic()


def _report(stats: Stats, engine: Engine, last: Entry | None, alerts: list[EventDoc]) -> None:
    """Metrics and logs, after the transaction committed (a crash before never counts twice)."""
    for lane, count in stats.evaluated.items():
        metrics.alerts_events_evaluated.labels(lane).inc(count)
    for lane, count in stats.late.items():
        metrics.alerts_late_events.labels(lane).inc(count)
    for rule, count in stats.fired.items():
        metrics.alerts_fired.labels(rule).inc(count)
    for rule, count in stats.suppressed.items():
        metrics.alerts_suppressed.labels(rule).inc(count)
    for rule, count in stats.evicted.items():
        metrics.alerts_groups_evicted.labels(rule).inc(count)
    for rule, size in engine.groups().items():
        metrics.alerts_state_groups.labels(rule).set(size)
    ingested = None if last is None else to_ms((last.event.get("event") or {}).get("ingested"))
    if ingested is not None:
        metrics.alerts_evaluation_lag.set(max(0.0, time.time() - ingested / 1000))
    for alert in alerts:
        log.info(
            "alert_raised", rule=alert["rule"]["id"], alert_id=alert["event"]["id"], at=alert["@timestamp"]
        )
