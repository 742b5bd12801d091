"""SetupAuditTrail polling: a CreatedDate watermark re-queried with an overlap window, de-duplicated by Id.

Records: ``Record(source="setupaudittrail", kind="SetupAuditTrail", payload=<the SOQL record as sent,
incl. "CreatedBy": {"Username", "Name"}>)``, on the realtime lane.
Position: ``{"v": 1, "watermark": <highest CreatedDate emitted>, "seen": {Id: CreatedDate}}`` where
``seen`` covers the overlap window and the gap band behind it (two overlaps), so it stays bounded and no
``Id NOT IN (...)`` list ever grows the request URI (Salesforce refuses URIs over 16 KB, facts D2).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from pydantic import Field

from forwarder import metrics
from forwarder.errors import RetryableError
from forwarder.records import Emit, Lane, Position, Record
from forwarder.salesforce.rest import RestClient
from forwarder.settings import Settings
from forwarder.sources._elf_state import parse_sf_datetime, soql_datetime

log = structlog.get_logger()

Sleep = Callable[[float], Awaitable[None]]

# Fields of the object reference v67 (facts C); CreatedBy.Username is the actor's login name.
FIELDS = (
    "Id, Action, Section, Display, CreatedDate, CreatedById, CreatedBy.Username, CreatedBy.Name, "
    "DelegateUser, ResponsibleNamespacePrefix, CreatedByContext"
)
# SetupAuditTrail keeps "at least the last 180 days" (object reference, facts C).
RETENTION = timedelta(days=180)


class SetupAuditTrailConfig(Settings):
    enabled: bool = Field(True, description="Poll SetupAuditTrail.")
    poll_interval: timedelta = Field(timedelta(minutes=1), description="Time between polls.")
    overlap: timedelta = Field(timedelta(minutes=5), description="Re-query this far behind the watermark.")
    initial_span: timedelta = Field(timedelta(days=1), description="How far back the first run reads.")
    batch_size: int = Field(1000, ge=1, le=10_000, description="Records per journal batch.")


def audit_soql(since: datetime, until: datetime | None = None) -> str:
    """Records from ``since`` (inclusive) in (CreatedDate, Id) order; Id breaks same-second ties."""
    where = f"CreatedDate >= {soql_datetime(since)}"
    if until is not None:
        where += f" AND CreatedDate < {soql_datetime(until)}"
    return f"SELECT {FIELDS} FROM SetupAuditTrail WHERE {where} ORDER BY CreatedDate, Id"  # noqa: S608 (dates only)


class SetupAuditTrailSource:
    """Polls SetupAuditTrail; every record reaches the journal once, late ones inside the overlap too."""

    name = "setupaudittrail"
    lane = Lane.REALTIME

    def __init__(
        self,
        config: SetupAuditTrailConfig,
        rest: RestClient,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Sleep = asyncio.sleep,
        backoff: tuple[float, float] = (1.0, 60.0),
    ) -> None:
        self._config = config
        self._rest = rest
        self._clock = clock
        self._sleep = sleep
        self._backoff = backoff
        self.watermark: datetime | None = None
        self.seen: dict[str, str] = {}
        self.start: datetime | None = None
        self.until: datetime | None = None  # backfills stop here; the daemon reads on

    async def run(self, position: Position | None, emit: Emit) -> None:
        """Poll forever; a transient error (incl. a malformed answer) retries the poll, skipping nothing."""
        self.load(position)
        failures = 0
        while True:
            await self._rest.budget_gate(self.name)
            try:
                await self.poll(emit)
                failures = 0
            except RetryableError as exc:
                failures += 1
                metrics.source_errors.labels(source=self.name, error="retryable").inc()
                wait = self._delay(failures, exc.retry_after)
                log.warning("setupaudittrail_poll_retry", source=self.name, error=str(exc), wait_s=wait)
                await self._sleep(wait)
                continue
            await self._sleep(self._config.poll_interval.total_seconds())

    def _delay(self, failures: int, hint: float | None) -> float:
        base, cap = self._backoff
        return min(cap, hint if hint is not None else base * 2 ** (failures - 1))

    def load(self, position: Position | None) -> None:
        if position and position.get("watermark"):
            self.watermark = parse_sf_datetime(position["watermark"])
            self.seen = dict(position.get("seen", {}))
        if position and position.get("start"):
            self.start = parse_sf_datetime(position["start"])
        if self.start is None:
            span = min(self._config.initial_span, RETENTION)
            self.start = self._clock() - span

    async def poll(self, emit: Emit) -> int:
        """One query over the overlap window (and the gap band behind it); returns records emitted."""
        if self.start is None:
            self.load(None)
        assert self.start is not None
        band_end = self.watermark - self._config.overlap if self.watermark else self.start
        floor = max(self.start, band_end - self._config.overlap) if self.watermark else self.start
        batch: list[Record] = []
        pending: dict[str, datetime] = {}
        emitted = 0
        async for record in self._rest.query(audit_soql(floor, self.until)):
            ident, created = _identity(record)
            if ident in self.seen or ident in pending:
                continue
            if created < band_end:
                self._name_gap(ident, record)
                continue
            batch.append(Record(source=self.name, kind="SetupAuditTrail", payload=record))
            pending[ident] = created
            if len(batch) >= self._config.batch_size:
                emitted += await self._emit(emit, batch, pending)
                batch, pending = [], {}
        emitted += await self._emit(emit, batch, pending)
        return emitted

    def _name_gap(self, ident: str, record: dict[str, Any]) -> None:
        metrics.source_gaps.labels(source=self.name).inc()
        log.error("setupaudittrail_gap", source=self.name, record_id=ident, created=record.get("CreatedDate"),
                  action=record.get("Action"), reason="became visible after the overlap window")
        self.seen[ident] = soql_datetime(parse_sf_datetime(str(record["CreatedDate"])))

    async def _emit(self, emit: Emit, batch: list[Record], pending: dict[str, datetime]) -> int:
        """Emit the batch with a position covering it; our state moves only once it is durable."""
        seen = {**self.seen, **{k: soql_datetime(v) for k, v in pending.items()}}
        marks = [*pending.values(), *([self.watermark] if self.watermark else [])]
        watermark = max(marks) if marks else None
        if watermark is not None:
            floor = watermark - 2 * self._config.overlap
            seen = {k: v for k, v in seen.items() if parse_sf_datetime(v) >= floor}
        position = {
            "v": 1,
            "start": soql_datetime(self.start) if self.start else None,
            "watermark": soql_datetime(watermark) if watermark else None,
            "seen": seen,
        }
        await emit(batch, position)
        self.seen, self.watermark = seen, watermark
        return len(batch)


def _identity(record: dict[str, Any]) -> tuple[str, datetime]:
    """Id and CreatedDate, or ``RetryableError`` for a malformed record (it must not be skipped)."""
    ident, created = record.get("Id"), record.get("CreatedDate")
    if not isinstance(ident, str) or not ident or not isinstance(created, str):
        raise RetryableError("malformed SetupAuditTrail record (no Id or CreatedDate)")
    try:
        return ident, parse_sf_datetime(created)
    except ValueError:
        raise RetryableError("malformed SetupAuditTrail CreatedDate") from None
