"""The EventLogFile source's position: cursor, files done in the re-query window, file in progress.

Kept apart from the source so the position rules (what is re-queried, what is a gap, what is done) can be
read and tested on their own.
"""

from __future__ import annotations

import hashlib
import re
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from typing import TYPE_CHECKING, Any

from forwarder.records import Position

if TYPE_CHECKING:
    from forwarder.sources.eventlogfile import EventLogFileConfig

_FIELDS = "Id, EventType, LogDate, CreatedDate, LogFileLength, LogFileFieldNames, LogFileFieldTypes, LogFile"
_HOURLY_FIELDS = ", Interval, Sequence"
_API_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,79}")
COMPLETENESS_DAYS = 3
LEGEND = (
    "one char per UTC hour 00..23: '.' none read, 1-9 highest Sequence read (+ = 10 or more); D = daily file"
)


def soql_datetime(at: datetime) -> str:
    """SOQL datetime literal (unquoted, UTC): 2026-11-26T00:00:00.000Z."""
    at = at.astimezone(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def parse_sf_datetime(text: str) -> datetime:
    """REST datetimes: ``2024-03-11T15:00:00.000+0000`` (facts D1) or ISO with ``Z``."""
    return datetime.fromisoformat(text).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class LogFile:
    """One EventLogFile record as discovery saw it."""

    id: str
    event_type: str
    log_date: str
    created: datetime
    path: str
    interval: str
    sequence: int
    length: float
    field_names: str
    field_types: str

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> LogFile | None:
        """None when the record lacks what is needed to read it (a malformed answer)."""
        try:
            ident, created, path = record["Id"], record["CreatedDate"], record["LogFile"]
            if not all(isinstance(v, str) and v for v in (ident, created, path, record["EventType"])):
                return None
            return cls(
                id=ident,
                event_type=record["EventType"],
                log_date=str(record.get("LogDate") or ""),
                created=parse_sf_datetime(created),
                path=path,
                interval=str(record.get("Interval") or "Daily"),
                sequence=int(record.get("Sequence") or 0),
                length=float(record.get("LogFileLength") or 0),
                # Up to 1,333 chars each (facts A1), equal for every file of a type: keep one copy.
                field_names=sys.intern(str(record.get("LogFileFieldNames") or "")),
                field_types=sys.intern(str(record.get("LogFileFieldTypes") or "")),
            )
        except (KeyError, TypeError, ValueError):
            return None


@dataclass
class ElfState:
    """Mutable form of the position; ``to_position()`` is what goes to the journal with each batch."""

    start: datetime
    interval: str
    until: datetime | None = None  # backfills: LogDate before this; the daemon: open-ended
    hourly_field: bool = True
    watermark: datetime | None = None
    done: dict[str, str] = field(default_factory=dict)
    current: dict[str, Any] | None = None
    failing: dict[str, dict[str, Any]] = field(default_factory=dict)
    schemas: dict[str, str] = field(default_factory=dict)
    hours: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def load(cls, position: Position | None, config: EventLogFileConfig, now: datetime) -> ElfState:
        if not position:
            day = config.start or now.astimezone(UTC).date()
            return cls(start=datetime.combine(day, time(), UTC), interval=config.interval)
        mark, until = position.get("watermark"), position.get("until")
        return cls(
            start=parse_sf_datetime(position["start"]),
            until=parse_sf_datetime(until) if until else None,
            interval=position.get("interval", config.interval),
            hourly_field=position.get("hourly_field", True),
            watermark=parse_sf_datetime(mark) if mark else None,
            done=dict(position.get("done", {})),
            current=position.get("current"),
            failing={k: dict(v) for k, v in position.get("failing", {}).items()},
            schemas=dict(position.get("schemas", {})),
            hours={k: dict(v) for k, v in position.get("hours", {}).items()},
        )

    def to_position(self) -> Position:
        return {
            "v": 1,
            "start": soql_datetime(self.start),
            "until": soql_datetime(self.until) if self.until else None,
            "interval": self.interval,
            "hourly_field": self.hourly_field,
            "watermark": soql_datetime(self.watermark) if self.watermark else None,
            "done": dict(self.done),
            "current": dict(self.current) if self.current else None,
            "failing": {k: dict(v) for k, v in self.failing.items()},
            "schemas": dict(self.schemas),
            "hours": {k: dict(v) for k, v in self.hours.items()},
        }

    # --- discovery -------------------------------------------------------------------------------------

    def floor(self, config: EventLogFileConfig) -> datetime:
        """Lowest CreatedDate re-queried: the overlap window, the gap band behind it, and unfinished files."""
        candidates = [parse_sf_datetime(f["created"]) for f in self.failing.values()]
        if self.watermark is not None:
            candidates.append(self.watermark - 2 * config.overlap)
        return max(self.start, min(candidates)) if candidates else self.start

    def soql(self, config: EventLogFileConfig, now: datetime) -> str:
        where = [
            f"CreatedDate >= {soql_datetime(self.floor(config))}",
            f"LogDate >= {soql_datetime(self.start)}",
        ]
        if self.until is not None:
            where.append(f"LogDate < {soql_datetime(self.until)}")
        return self.query(config, self.interval, where, hourly_field=self.hourly_field)

    @staticmethod
    def query(
        config: EventLogFileConfig, interval: str, where: list[str], *, hourly_field: bool = True
    ) -> str:
        fields = _FIELDS + (_HOURLY_FIELDS if hourly_field else "")
        clauses = list(where)
        if hourly_field:
            # Hourly and Daily files hold the same events: read one interval only (facts A2 filtering).
            clauses.append(f"Interval = '{interval}'")
        if config.event_types:
            # EventType values are API names (facts A5): anything else cannot match and is not sent.
            names = ", ".join(f"'{t}'" for t in config.event_types if _API_NAME.fullmatch(t))
            clauses.append(f"EventType IN ({names})")
        # Tie-break on Id: many files can share one CreatedDate (facts A1: CreatedDate is the cursor).
        where_sql = " AND ".join(clauses)
        return f"SELECT {fields} FROM EventLogFile WHERE {where_sql} ORDER BY CreatedDate, Id"  # noqa: S608 (values are validated dates and API names)

    def in_window(self, item: LogFile, config: EventLogFileConfig) -> bool:
        """Read it: inside the overlap window, or already started/failing (never abandoned silently)."""
        if self.watermark is None or item.id in self.failing:
            return True
        if self.current is not None and self.current.get("id") == item.id:
            return True
        return item.created >= self.watermark - config.overlap

    def too_late(self, item: LogFile, config: EventLogFileConfig) -> bool:
        return not self.in_window(item, config)

    # --- progress --------------------------------------------------------------------------------------

    def rows_done(self, file_id: str) -> int:
        if self.current is not None and self.current.get("id") == file_id:
            return int(self.current.get("row", 0))
        return int(self.failing.get(file_id, {}).get("row", 0))

    def progress(self, item: LogFile, rows: int) -> Position:
        self.current = {"id": item.id, "row": rows, "created": soql_datetime(item.created)}
        return self.to_position()

    def finish(self, item: LogFile, config: EventLogFileConfig) -> Position:
        self._close(item)
        self._mark_hour(item)
        self.prune(config)
        return self.to_position()

    def note_failure(self, item: LogFile, now: datetime, *, permanent: bool) -> datetime | None:
        """Remember a failed file (and rows already emitted from it).

        Returns since when it has been refused for good (404...), or None while its failures were only
        transient: an outage or a rate limit must never turn into a gap, however long it lasts.
        """
        entry = self.failing.setdefault(item.id, {"created": soql_datetime(item.created)})
        entry["row"] = self.rows_done(item.id)
        entry["tries"] = int(entry.get("tries", 0)) + 1
        if permanent:
            entry.setdefault("since", soql_datetime(now))
        if self.current is not None and self.current.get("id") == item.id:
            self.current = None
        since = entry.get("since")
        return parse_sf_datetime(since) if since else None

    def mark_gap(self, item: LogFile, config: EventLogFileConfig) -> None:
        self._close(item)
        self.prune(config)

    def _close(self, item: LogFile) -> None:
        self.done[item.id] = soql_datetime(item.created)
        self.failing.pop(item.id, None)
        if self.current is not None and self.current.get("id") == item.id:
            self.current = None
        if self.watermark is None or item.created > self.watermark:
            self.watermark = item.created

    def prune(self, config: EventLogFileConfig) -> None:
        """Forget done files below the re-query floor: the query can no longer return them."""
        floor = self.floor(config)
        self.done = {k: v for k, v in self.done.items() if parse_sf_datetime(v) >= floor}

    def note_schema(self, item: LogFile) -> str | None:
        """Record the type's column list; returns the previous hash when it changed (schema drift)."""
        if not item.field_names:
            return None
        digest = hashlib.blake2b(item.field_names.encode(), digest_size=6).hexdigest()
        previous = self.schemas.get(item.event_type)
        self.schemas[item.event_type] = digest
        return previous if previous is not None and previous != digest else None

    def _mark_hour(self, item: LogFile) -> None:
        day, hour = item.log_date[:10], item.log_date[11:13]
        if len(day) != 10:
            return
        days = self.hours.setdefault(item.event_type, {})
        if item.interval != "Hourly" or not hour.isdigit():
            days[day] = "D"
        else:
            slots = list(days.get(day, "." * 24)) if days.get(day) != "D" else ["."] * 24
            mark = "+" if item.sequence >= 10 else str(max(1, item.sequence))
            current = slots[int(hour)]
            if current == "." or (current != "+" and (mark == "+" or mark > current)):
                slots[int(hour)] = mark
            days[day] = "".join(slots)
        for old in sorted(days)[:-COMPLETENESS_DAYS]:
            del days[old]


def earlier_sequences_soql(item: LogFile) -> str | None:
    """The earlier hourly files of ``item``'s hour (to rebuild row hashes after a restart), or None."""
    if item.sequence <= 1 or not _API_NAME.fullmatch(item.event_type) or not item.log_date:
        return None
    hour = soql_datetime(parse_sf_datetime(item.log_date))
    where = (f"EventType = '{item.event_type}' AND LogDate = {hour} AND Interval = 'Hourly'"
             f" AND Sequence < {item.sequence}")
    return f"SELECT {_FIELDS}{_HOURLY_FIELDS} FROM EventLogFile WHERE {where} ORDER BY Sequence"  # noqa: S608 (validated)


def completeness(position: Position | None) -> dict[str, Any]:
    """Per event type and UTC day, which hours are in the journal (for ``state show``)."""
    if not position:
        return {}
    hours = position.get("hours", {})
    view: dict[str, Any] = {"legend": LEGEND, "interval": position.get("interval")}
    if position.get("current"):
        view["in_progress"] = dict(position["current"])
    if position.get("failing"):
        view["failing"] = {k: dict(v) for k, v in sorted(position["failing"].items())}
    for event_type in sorted(hours):
        view[event_type] = dict(sorted(hours[event_type].items()))
    return view
