"""``sf-forwarder backfill``: ingest a past range of EventLogFile or SetupAuditTrail into the shared journal.

A backfill is a source with its own resumable position (``backfill:<source>:<since>:<until>``). It never
overlaps the daemon: it reads only what lies before the daemon's start point (EventLogFile: LogDate,
SetupAuditTrail: CreatedDate), and when the daemon has not started yet it fixes that start point to the
backfill's end, so the two partition time and nothing is ingested twice or skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from datetime import time as dtime
from typing import Any, TextIO
from urllib.parse import quote

import aiohttp
import orjson
import structlog

from forwarder.errors import ConfigError, ForwarderError, RetryableError
from forwarder.records import Emit, Lane, Position, Record
from forwarder.salesforce.auth import Authenticator
from forwarder.salesforce.rest import RestClient, SalesforceApiError
from forwarder.sources._elf_state import ElfState, LogFile, parse_sf_datetime, soql_datetime
from forwarder.sources.eventlogfile import EventLogFileConfig, EventLogFileSource, soql_for_range
from forwarder.sources.setupaudittrail import (
    RETENTION,
    SetupAuditTrailConfig,
    SetupAuditTrailSource,
)

log = structlog.get_logger()

EXIT_OK, EXIT_INCOMPLETE, EXIT_USAGE = 0, 1, 2
# Salesforce returns at most 2,000 records per query page (Query Options Header, facts D1).
PAGE = 2000
# Bytes per row of a typical Login file (measured on the simulator's rows); only for dry-run estimates.
EST_ROW_BYTES = 450


@dataclass(frozen=True)
class Plan:
    """What a backfill will read: its range (already clipped to the daemon's start) and its journal key."""

    source: str
    since: datetime
    until: datetime
    event_types: tuple[str, ...]

    @property
    def key(self) -> str:
        types = ",".join(self.event_types) or "all"
        return f"backfill:{self.source}:{self.since.date()}:{self.until.isoformat()}:{types}"


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="sf-forwarder backfill", description=__doc__)
    parser.add_argument("-c", "--config", required=True, help="The daemon's config file (same journal).")
    parser.add_argument("--source", required=True, choices=["eventlogfile", "setupaudittrail"])
    day = date.fromisoformat
    parser.add_argument("--since", required=True, type=day, help="First day (UTC), YYYY-MM-DD.")
    parser.add_argument("--until", type=day, help="Day after the last one (default: now).")
    parser.add_argument("--event-types", nargs="+", default=[], help="EventLogFile types (default: config).")
    parser.add_argument("--dry-run", action="store_true", help="Count files, rows, API calls; read nothing.")
    return parser.parse_args(list(argv))


def main(argv: list[str]) -> int:
    """Entry point of ``sf-forwarder backfill``; returns the exit code."""
    args = parse_args(argv)
    from forwarder import config as config_module
    from forwarder.logging import configure

    try:
        cfg = config_module.load(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    configure(cfg.logging.level, cfg.logging.format)
    try:
        return asyncio.run(run(cfg, args))
    except ForwarderError as exc:
        print(f"backfill failed: {exc}", file=sys.stderr)
        return EXIT_INCOMPLETE


async def run(cfg: Any, args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """The async core (the CLI and tests call it): open the journal, plan, then count or ingest."""
    from forwarder.app import open_journal

    journal = await open_journal(cfg)
    try:
        async with aiohttp.ClientSession() as http:
            rest = RestClient(Authenticator(cfg.salesforce, http), http, cfg.salesforce.api_version)
            plan = await make_plan(journal, cfg, args, datetime.now(UTC))
            if plan.until <= plan.since:
                print(f"nothing to backfill: the daemon covers {plan.source} from {plan.until}", file=out)
                return EXIT_OK
            if args.dry_run:
                return await dry_run(rest, cfg, plan, out)
            return await ingest(journal, rest, cfg, plan, out)
    finally:
        await journal.close()


async def make_plan(journal: Any, cfg: Any, args: argparse.Namespace, now: datetime) -> Plan:
    """Clip the requested range to what the daemon does not cover, fixing the daemon's start if unset."""
    since = datetime.combine(args.since, dtime(), UTC)
    until = datetime.combine(args.until, dtime(), UTC) if args.until else now
    if args.source == "setupaudittrail":
        since = max(since, now - RETENTION)
    daemon_start = await _daemon_start(journal, args.source)
    if daemon_start is None and not args.dry_run:
        if args.source == "eventlogfile":
            until = datetime.combine(until.date(), dtime(), UTC)  # ELF partitions by whole LogDate days
        await _seed_daemon(journal, cfg, args.source, until)
        daemon_start = until
    if daemon_start is not None:
        until = min(until, daemon_start)
    named = [t.strip() for arg in args.event_types for t in arg.split(",") if t.strip()]
    types = tuple(named or cfg.sources.eventlogfile.event_types)
    return Plan(args.source, since, until, types if args.source == "eventlogfile" else ())


async def _daemon_start(journal: Any, source: str) -> datetime | None:
    position = await journal.position(source)
    start = (position or {}).get("start")
    return parse_sf_datetime(start) if start else None


async def _seed_daemon(journal: Any, cfg: Any, source: str, start: datetime) -> None:
    """The daemon has not run yet: make it start where the backfill ends (one empty append)."""
    if source == "eventlogfile":
        state = ElfState(start=start, interval=cfg.sources.eventlogfile.interval)
        position: Position = state.to_position()
        lane = Lane.BULK
    else:
        position = {"v": 1, "start": soql_datetime(start), "watermark": None, "seen": {}}
        lane = Lane.REALTIME
    await journal.append(source, lane, [], [], position)
    log.info("backfill_daemon_start_fixed", source=source, start=soql_datetime(start))


# --- dry run -------------------------------------------------------------------------------------------


async def dry_run(rest: RestClient, cfg: Any, plan: Plan, out: TextIO) -> int:
    if plan.source == "eventlogfile":
        files = await _list_files(rest, _elf_config(cfg, plan), plan)
        pages = max(1, math.ceil(len(files) / PAGE))
        size = sum(f.length for f in files)
        calls = pages + len(files)
        rows = int(size // EST_ROW_BYTES)
        lines = [f"files: {len(files)}", f"bytes: {int(size)}", f"rows (estimate): ~{rows}"]
    else:
        count = await _count_audit(rest, plan)
        calls = 1 + max(1, math.ceil(count / PAGE))
        lines = [f"records: {count}"]
    print(f"backfill {plan.source} {plan.since.date()} .. {plan.until.isoformat()} (dry run)", file=out)
    for line in [*lines, f"api calls: {calls}", _budget_line(rest, calls)]:
        print(f"  {line}", file=out)
    return EXIT_OK


def _budget_line(rest: RestClient, calls: int) -> str:
    usage = rest.usage
    if usage is None or usage.limit == 0:
        return "api budget: unknown (no Sforce-Limit-Info header seen)"
    share = calls / usage.limit
    left = max(usage.limit - usage.used, 0)
    return (f"api budget: {share:.2%} of today's limit {usage.limit} "
            f"(used {usage.used}, {left} left; pollers pause above {rest.budget_share:.0%})")


async def _list_files(rest: RestClient, config: EventLogFileConfig, plan: Plan) -> list[LogFile]:
    for interval, hourly in ((config.interval, True), ("Daily", False)):
        soql = soql_for_range(config, interval, plan.since, plan.until, hourly_field=hourly)
        try:
            return [f for r in [r async for r in rest.query(soql)] if (f := LogFile.from_record(r))]
        except SalesforceApiError as exc:
            if exc.error_code != "INVALID_FIELD" or not hourly:
                raise
    return []


async def _count_audit(rest: RestClient, plan: Plan) -> int:
    where = f"CreatedDate >= {soql_datetime(plan.since)} AND CreatedDate < {soql_datetime(plan.until)}"
    count_soql = f"SELECT COUNT() FROM SetupAuditTrail WHERE {where}"  # noqa: S608 (dates only)
    body = await rest.get_bytes(f"{rest.data_path}/query?q={quote(count_soql, safe='')}")
    try:
        return int(orjson.loads(body).get("totalSize", 0))
    except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
        raise RetryableError("malformed COUNT() answer") from None


def _elf_config(cfg: Any, plan: Plan) -> EventLogFileConfig:
    base: EventLogFileConfig = cfg.sources.eventlogfile
    return base.model_copy(update={"event_types": list(plan.event_types)})


# --- ingestion -----------------------------------------------------------------------------------------


class Progress:
    """A bar on a TTY, ``backfill_progress`` log lines otherwise (at most every 10 s)."""

    def __init__(self, plan: Plan, stream: TextIO, total: int | None) -> None:
        self._plan, self._stream, self._total = plan, stream, total
        self._tty = stream.isatty()
        self._last = 0.0
        self.records = 0
        self.units = 0

    def update(self, records: int, units: int = 0, *, final: bool = False) -> None:
        self.records += records
        self.units += units
        now = time.monotonic()
        if self._tty:
            self._bar(final)
        elif final or now - self._last >= 10:
            self._last = now
            log.info("backfill_progress", source=self._plan.source, records=self.records, done=self.units,
                     total=self._total, final=final)

    def _bar(self, final: bool) -> None:
        total = self._total or 0
        ratio = min(self.units / total, 1.0) if total else 0.0
        filled = int(ratio * 30)
        unit = "files" if self._plan.source == "eventlogfile" else "records"
        bar = "#" * filled + "." * (30 - filled)
        line = f"\r[{bar}] {self.units}/{total or '?'} {unit}, {self.records} events"
        self._stream.write(line + ("\n" if final else ""))
        self._stream.flush()


async def ingest(journal: Any, rest: RestClient, cfg: Any, plan: Plan, out: TextIO) -> int:
    from forwarder.ingest import make_emit

    position = await journal.position(plan.key)
    log.info("backfill_started", source=plan.source, key=plan.key, resumed=position is not None)
    if plan.source == "eventlogfile":
        lane = Lane.BULK
        emit = make_emit(journal, plan.key, lane, raw=cfg.normalize.raw)
        return await _ingest_elf(rest, cfg, plan, position, emit, out)
    emit = make_emit(journal, plan.key, Lane.REALTIME, raw=cfg.normalize.raw)
    return await _ingest_audit(rest, cfg, plan, position, emit, out)


async def _ingest_elf(
    rest: RestClient, cfg: Any, plan: Plan, position: Position | None, emit: Emit, out: TextIO
) -> int:
    config = _elf_config(cfg, plan)
    source = EventLogFileSource(config, rest)
    state = ElfState.load(position, config, datetime.now(UTC))
    if position is None:
        state = ElfState(start=plan.since, until=plan.until, interval=config.interval)
    source.state = state
    files = await _list_files(rest, config, plan)  # one query, for the progress total
    todo = [f for f in files if f.id not in state.done]
    progress = Progress(plan, sys.stderr if out is sys.stdout else out, len(todo))

    async def counting(records: Sequence[Record], pos: Position | None) -> None:
        await emit(records, pos)
        progress.update(len(records), units=1 if pos and pos.get("current") is None and records else 0)

    for attempt in range(1, 6):
        await rest.budget_gate(plan.key)
        try:
            await source.poll(counting)
        except RetryableError as exc:
            log.warning("backfill_retry", source=plan.source, attempt=attempt, error=str(exc))
            await asyncio.sleep(min(60.0, 2.0**attempt))
            continue
        if not source.state.failing:
            break
    progress.update(0, final=True)
    failing = sorted(source.state.failing)
    print(f"backfill {plan.source}: {progress.records} events from {progress.units} files"
          + (f"; still failing (run again to resume): {', '.join(failing)}" if failing else ""), file=out)
    return EXIT_INCOMPLETE if failing else EXIT_OK


async def _ingest_audit(
    rest: RestClient, cfg: Any, plan: Plan, position: Position | None, emit: Emit, out: TextIO
) -> int:
    config: SetupAuditTrailConfig = cfg.sources.setupaudittrail
    source = SetupAuditTrailSource(config, rest)
    source.load(position or {"start": soql_datetime(plan.since)})
    source.until = plan.until
    progress = Progress(plan, sys.stderr if out is sys.stdout else out, None)

    async def counting(records: Sequence[Record], pos: Position | None) -> None:
        await emit(records, pos)
        progress.update(len(records), units=len(records))

    for attempt in range(1, 6):
        await rest.budget_gate(plan.key)
        try:
            await source.poll(counting)
            break
        except RetryableError as exc:
            log.warning("backfill_retry", source=plan.source, attempt=attempt, error=str(exc))
            await asyncio.sleep(min(60.0, 2.0**attempt))
    else:
        print(f"backfill {plan.source}: incomplete after retries; run again to resume", file=out)
        return EXIT_INCOMPLETE
    progress.update(0, final=True)
    print(f"backfill {plan.source}: {progress.records} records", file=out)
    return EXIT_OK


__all__ = ["Plan", "main", "run"]
