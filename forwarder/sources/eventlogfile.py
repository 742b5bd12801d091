"""EventLogFile polling: files discovered by a CreatedDate + Id cursor, rows streamed, resumable at the row.

Records: ``Record(source="eventlogfile", kind=<EventType>, payload=<row dict typed by LogFileFieldTypes>,
envelope=<log_file_id, log_file_date, log_file_interval, log_file_sequence>, fields=<the header>)``, on
the bulk lane.

Position (opaque JSON, see ``_state``): ``interval`` in effect, ``watermark`` (highest CreatedDate of a
finished file), ``done`` (file id -> CreatedDate, or "gap", for files inside the re-query window),
``current`` (file in progress and rows emitted from it), ``failing`` (files that errored, since when),
``schemas`` (hash of LogFileFieldNames per type) and ``hours`` (per-hour completeness, see
``completeness``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Literal

import structlog
from pydantic import Field

from forwarder import metrics
from forwarder.errors import PermanentError, RetryableError
from forwarder.records import Emit, Lane, Position, Record
from forwarder.salesforce.logfile import RowTyper, csv_rows, row_hash
from forwarder.salesforce.rest import RateLimitedError, RestClient, SalesforceApiError
from forwarder.settings import Settings
from forwarder.sources._elf_dedup import RowDedup
from forwarder.sources._elf_state import (
    ElfState,
    LogFile,
    completeness,
    earlier_sequences_soql,
    soql_datetime,
)
from forwarder.sources._polling import backoff_delay, poll_forever

__all__ = ["EventLogFileConfig", "EventLogFileSource", "LogFile", "completeness"]

log = structlog.get_logger()

Sleep = Callable[[float], Awaitable[None]]


class EventLogFileConfig(Settings):
    enabled: bool = Field(True, description="Poll EventLogFile.")
    interval: Literal["Hourly", "Daily"] = Field("Hourly", description="Which log files to read.")
    event_types: list[str] = Field(default_factory=list, description="EventType values; empty: all.")
    poll_interval: timedelta = Field(timedelta(minutes=5), description="Time between polls.")
    start: date | None = Field(None, description="First LogDate to read on first start (default: today).")
    overlap: timedelta = Field(
        timedelta(hours=1),
        description="Re-query this far behind the newest file: files that become visible late are still"
        " read. Files found up to one more overlap behind that are reported as named gaps.",
    )
    # 1,000: a batch's documents stay in cache through normalise, encode and free (measured ingest ratio
    # ~0.05 higher than 2,000 on one core; 5,000 lower again); the resume point is finer too.
    batch_rows: int = Field(1000, ge=1, le=50_000, description="Rows per journal batch (and position).")
    file_attempts: int = Field(3, ge=1, description="Download attempts per file within one poll.")
    missing_file_max_age: timedelta = Field(
        timedelta(hours=6),
        description="A file that keeps failing (404, errors) this long is given up and reported as a gap.",
    )
    dedup_max_rows: int = Field(
        300_000, ge=0, description="Row hashes kept in memory to de-duplicate re-issued hourly files."
    )


class EventLogFileSource:
    """Polls EventLogFile and emits every row of every file exactly once (at the journal)."""

    name = "eventlogfile"
    lane = Lane.BULK

    def __init__(
        self,
        config: EventLogFileConfig,
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
        self._dedup = RowDedup(config.dedup_max_rows if config.interval == "Hourly" else 0)
        self.state: ElfState | None = None
        self.polls = 0

    async def run(self, position: Position | None, emit: Emit) -> None:
        """Poll forever; transient errors are retried with backoff, nothing read is skipped."""
        self.state = ElfState.load(position, self._config, self._clock())
        await poll_forever(
            self.name,
            lambda: self.poll(emit),
            rest=self._rest,
            interval=self._config.poll_interval.total_seconds(),
            backoff=self._backoff,
            sleep=self._sleep,
        )

    async def poll(self, emit: Emit) -> int:
        """One discovery query and every new file in (CreatedDate, Id) order; returns files finished."""
        if self.state is None:
            self.state = ElfState.load(None, self._config, self._clock())
        self.polls += 1
        files = await self._discover()
        state = self._require_state()
        # Classified once, against the watermark at the start of the poll: reading moves it.
        fresh = [f for f in files if f.id not in state.done]
        late = [f for f in fresh if state.too_late(f, self._config)]
        late_ids = {f.id for f in late}
        finished = 0
        await self._report_gaps(late, emit)
        for item in fresh:
            if self._rest.over_budget():
                break  # one download is one API call: leave the rest for after the budget gate in run()
            if item.id not in late_ids and await self._handle(item, emit):
                finished += 1
        return finished

    async def _discover(self) -> list[LogFile]:
        state = self._require_state()
        try:
            return await self._list_files(state.soql(self._config, self._clock()))
        except SalesforceApiError as exc:
            if exc.error_code != "INVALID_FIELD" or not state.hourly_field:
                raise
        # No hourly entitlement: the Interval/Sequence fields do not exist (facts A1: API 37.0+, add-on).
        log.warning("eventlogfile_hourly_unavailable", source=self.name, fallback="Daily")
        state.hourly_field = False
        state.interval = "Daily"
        return await self._list_files(state.soql(self._config, self._clock()))

    async def _list_files(self, soql: str) -> list[LogFile]:
        files: dict[str, LogFile] = {}
        async for record in self._rest.query(soql):
            item = LogFile.from_record(record)
            if item is None:
                log.warning("eventlogfile_record_malformed", source=self.name, keys=sorted(record)[:12])
                raise RetryableError("malformed EventLogFile record (no Id/CreatedDate/LogFile)")
            files[item.id] = item
        return sorted(files.values(), key=lambda f: (f.created, f.id))

    def _require_state(self) -> ElfState:
        assert self.state is not None
        return self.state

    async def _handle(self, item: LogFile, emit: Emit) -> bool:
        """Read one file unless done or in the gap band; False if it failed (tracked for retry or gap)."""
        permanent = False
        for attempt in range(1, self._config.file_attempts + 1):
            try:
                await self._ingest(item, emit)
                return True
            except RateLimitedError:
                raise  # the whole org is over its limit: the poll backs off, no file is blamed
            except RetryableError as exc:
                log.warning("eventlogfile_download_retry", source=self.name, file_id=item.id,
                            event_type=item.event_type, attempt=attempt, error=str(exc))
                if attempt < self._config.file_attempts:
                    await self._sleep(backoff_delay(self._backoff, attempt, exc.retry_after))
            except PermanentError as exc:
                log.warning("eventlogfile_download_failed", source=self.name, file_id=item.id,
                            event_type=item.event_type, error=str(exc))
                permanent = True
                break
        await self._failed(item, emit, permanent=permanent)
        return False

    async def _failed(self, item: LogFile, emit: Emit, *, permanent: bool) -> None:
        state = self._require_state()
        metrics.source_errors.labels(source=self.name, error="file_failed").inc()
        since = state.note_failure(item, self._clock(), permanent=permanent)
        if since is not None and self._clock() - since >= self._config.missing_file_max_age:
            self._name_gap(item, "file kept failing past missing_file_max_age")
        await emit([], state.to_position())

    def _name_gap(self, item: LogFile, reason: str) -> None:
        metrics.source_gaps.labels(source=self.name).inc()
        log.error("eventlogfile_gap", source=self.name, file_id=item.id, event_type=item.event_type,
                  log_date=item.log_date, sequence=item.sequence, created=item.created, reason=reason)
        self._require_state().mark_gap(item, self._config)

    async def _report_gaps(self, late: list[LogFile], emit: Emit) -> None:
        """Files visible only in the band behind the overlap window arrived too late: name them."""
        state = self._require_state()
        for item in late:
            self._name_gap(item, "became visible after the overlap window")
        if late:
            await emit([], state.to_position())

    async def _ingest(self, item: LogFile, emit: Emit) -> None:
        state = self._require_state()
        self._check_schema(item)
        skip = state.rows_done(item.id)
        size = self._config.batch_rows
        rows_seen, batch, hashes = 0, list[Record](), list[int]()
        typer: RowTyper | None = None
        envelope = {"log_file_id": item.id, "log_file_date": item.log_date,  # shared by the file's rows
                    "log_file_interval": item.interval, "log_file_sequence": item.sequence}
        key = (item.event_type, item.log_date) if item.sequence > 0 else None
        if key is not None and self._dedup.enabled and not self._dedup.knows(key):
            await self._prime_dedup(item, key)
        async for rows in csv_rows(self._rest.stream_log_file(item.path)):
            received = datetime.now(UTC)  # one clock read per chunk: its rows arrived together
            if typer is None:
                if not rows:
                    continue
                typer = RowTyper(rows.pop(0), item.field_types)
            start, rows_seen = rows_seen, rows_seen + len(rows)
            if rows_seen <= skip:
                continue  # emitted before a restart or a failed download (position "row")
            if start < skip:
                del rows[: skip - start]
                start = skip
            digests: list[int] | None = None
            seen: list[int] | None = None  # rows-seen count after each kept row (None: contiguous)
            if key is not None:
                rows, digests, seen = self._unseen(key, item, rows, start)
            fields, width = typer.fields, typer.width
            records = [Record("eventlogfile", item.event_type, payload, received, envelope,
                              fields if len(payload) == width else None)
                       for payload in typer.payloads(rows)]
            done = 0
            while len(records) - done >= size - len(batch):  # exact batches of batch_rows
                upto = done + size - len(batch)
                batch += records[done:upto]
                if digests is not None:
                    hashes += digests[done:upto]
                position = state.progress(item, start + upto if seen is None else seen[upto - 1])
                await self._emit(emit, batch, position, key, hashes)
                batch, hashes, done = [], [], upto
            batch += records[done:]
            if digests is not None:
                hashes += digests[done:]
        await self._emit(emit, batch, state.finish(item, self._config), key, hashes)
        log.info("eventlogfile_file_done", source=self.name, file_id=item.id, event_type=item.event_type,
                 log_date=item.log_date, sequence=item.sequence, rows=rows_seen)

    async def _prime_dedup(self, item: LogFile, key: tuple[str, str]) -> None:
        """After a restart, re-read the earlier files of a re-issued hour to know their rows' hashes.

        Costs one query plus one download per earlier file, only for a late ``Sequence`` file whose hour
        this process has not read (facts A2: late rows come as a new file of the same hour).
        """
        soql = earlier_sequences_soql(item)
        if soql is None:
            return
        hashes: list[int] = []
        async for record in self._rest.query(soql):
            earlier = LogFile.from_record(record)
            if earlier is not None and earlier.id != item.id:
                hashes += await self._file_hashes(item.event_type, earlier.path)
        self._dedup.add(key, hashes)
        log.info("eventlogfile_dedup_primed", source=self.name, event_type=item.event_type,
                 log_date=item.log_date, rows=len(hashes))

    async def _file_hashes(self, event_type: str, path: str) -> list[int]:
        hashes: list[int] = []
        header_seen = False
        async for rows in csv_rows(self._rest.stream_log_file(path)):
            hashes += [row_hash(event_type, values) for values in rows[0 if header_seen else 1 :]]
            header_seen = header_seen or bool(rows)
        return hashes

    def _unseen(
        self, key: tuple[str, str], item: LogFile, rows: list[list[str]], start: int
    ) -> tuple[list[list[str]], list[int], list[int]]:
        """The rows no earlier file of the same hour delivered (re-issued Sequence), their content hashes,
        and the rows-seen count after each (``start``: the count before the first)."""
        kept, digests, seen = [], [], []
        check = item.sequence > 1 and self._dedup.enabled
        for count, values in enumerate(rows, start + 1):
            digest = row_hash(item.event_type, values)
            if check and self._dedup.contains(key, digest):
                metrics.elf_duplicate_rows.labels(event_type=item.event_type).inc()
                continue
            kept.append(values)
            digests.append(digest)
            seen.append(count)
        return kept, digests, seen

    async def _emit(
        self,
        emit: Emit,
        batch: list[Record],
        position: Position,
        key: tuple[str, str] | None,
        hashes: list[int],
    ) -> None:
        await emit(batch, position)
        if key is not None:
            self._dedup.add(key, hashes)

    def _check_schema(self, item: LogFile) -> None:
        previous = self._require_state().note_schema(item)
        if previous is not None:
            metrics.elf_schema_drift.labels(event_type=item.event_type).inc()
            log.warning("eventlogfile_schema_drift", source=self.name, event_type=item.event_type,
                        file_id=item.id, fields=item.field_names)



def soql_for_range(
    config: EventLogFileConfig,
    interval: str,
    since: datetime,
    until: datetime | None,
    *,
    hourly_field: bool = True,
) -> str:
    """The backfill discovery query: files whose LogDate is in [since, until)."""
    where = [f"LogDate >= {soql_datetime(since)}"]
    if until is not None:
        where.append(f"LogDate < {soql_datetime(until)}")
    return ElfState.query(config, interval, where, hourly_field=hourly_field)
