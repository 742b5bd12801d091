"""A SOQL object polled by a timestamp watermark with an overlap window, de-duplicated by record Id.

Shared by SetupAuditTrail (CreatedDate) and LoginHistory (LoginTime). Position: ``{"v": 1, "start",
"watermark": <highest timestamp emitted>, "seen": {Id: timestamp}}``; ``seen`` covers the overlap window
and the gap band behind it (two overlaps), so it stays bounded and no ``Id NOT IN (...)`` list ever grows
the request URI (Salesforce refuses URIs over 16 KB, facts D2). A record that shows up in the gap band
became visible later than the overlap allows: it is reported as a named gap, never skipped silently.
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
from forwarder.sources._polling import poll_forever

log = structlog.get_logger()

Sleep = Callable[[float], Awaitable[None]]


class PollConfig(Settings):
    """Options every watermark poller takes; each source's config adds its ``enabled`` default."""

    poll_interval: timedelta = Field(timedelta(minutes=1), description="Time between polls.")
    overlap: timedelta = Field(timedelta(minutes=5), description="Re-query this far behind the watermark.")
    initial_span: timedelta = Field(timedelta(days=1), description="How far back the first run reads.")
    batch_size: int = Field(1000, ge=1, le=10_000, description="Records per journal batch.")


def window_soql(sobject: str, fields: str, time_field: str, since: datetime, until: datetime | None) -> str:
    """Records from ``since`` (inclusive) in (time, Id) order; Id breaks same-second ties."""
    where = f"{time_field} >= {soql_datetime(since)}"
    if until is not None:
        where += f" AND {time_field} < {soql_datetime(until)}"
    return f"SELECT {fields} FROM {sobject} WHERE {where} ORDER BY {time_field}, Id"  # noqa: S608 (constants, dates)


class WatermarkPoller:
    """Polls one object; every record reaches the journal once, late ones inside the overlap too."""

    name: str
    kind: str
    sobject: str
    fields: str
    time_field: str
    retention: timedelta
    lane = Lane.REALTIME

    def __init__(
        self,
        config: PollConfig,
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
        await poll_forever(
            self.name,
            lambda: self.poll(emit),
            rest=self._rest,
            interval=self._config.poll_interval.total_seconds(),
            backoff=self._backoff,
            sleep=self._sleep,
        )

    def load(self, position: Position | None) -> None:
        if position and position.get("watermark"):
            self.watermark = parse_sf_datetime(position["watermark"])
            self.seen = dict(position.get("seen", {}))
        if position and position.get("start"):
            self.start = parse_sf_datetime(position["start"])
        if self.start is None:
            self.start = self._clock() - min(self._config.initial_span, self.retention)

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
        soql = window_soql(self.sobject, self.fields, self.time_field, floor, self.until)
        async for record in self._rest.query(soql):
            ident, at = self._identity(record)
            if ident in self.seen or ident in pending:
                continue
            if at < band_end:
                self._name_gap(ident, at, record)
                continue
            batch.append(Record(self.name, self.kind, record, from_json=True))  # rest.py: orjson
            pending[ident] = at
            if len(batch) >= self._config.batch_size:
                emitted += await self._emit(emit, batch, pending)
                batch, pending = [], {}
        emitted += await self._emit(emit, batch, pending)
        return emitted

    def _identity(self, record: dict[str, Any]) -> tuple[str, datetime]:
        """Id and timestamp, or ``RetryableError`` for a malformed record (it must not be skipped)."""
        ident, at = record.get("Id"), record.get(self.time_field)
        if not isinstance(ident, str) or not ident or not isinstance(at, str):
            raise RetryableError(f"malformed {self.sobject} record (no Id or {self.time_field})")
        try:
            return ident, parse_sf_datetime(at)
        except ValueError:
            raise RetryableError(f"malformed {self.sobject} {self.time_field}") from None

    def _name_gap(self, ident: str, at: datetime, record: dict[str, Any]) -> None:
        metrics.source_gaps.labels(source=self.name).inc()
        log.error("source_gap", source=self.name, record_id=ident, at=soql_datetime(at),
                  reason="became visible after the overlap window")
        self.seen[ident] = soql_datetime(at)

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
