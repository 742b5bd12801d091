"""The simulated org's data: SOQL-visible records, EventLogFiles built from traffic, and the ground truth.

EventLogFiles follow the Event Monitoring docs (facts A1/A2): one file per event type and hour (Hourly,
Sequence 1, created 3-6 h after the hour) and per day (Daily, Sequence 0, created the next day); late
rows for an hour become a new file with a higher Sequence that carries only the new rows.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from forwarder.testing.simulator import formats as fmt
from forwarder.testing.simulator.eventlogfile import GeneratedRows, LogFile, StoredRows
from forwarder.testing.simulator.schemas import field_names, field_names_header, field_types_header
from forwarder.testing.simulator.traffic import BIG_OBJECT_ID, CHANNELS, STORAGE_ONLY, Activity, Traffic

_STANDARD = (
    "Id",
    "CreatedDate",
    "CreatedById",
    "IsDeleted",
    "LastModifiedDate",
    "LastModifiedById",
    "SystemModstamp",
)
ELF_FIELDS = (
    *_STANDARD,
    "EventType",
    "LogDate",
    "LogFile",
    "LogFileLength",
    "LogFileContentType",
    "LogFileFieldNames",
    "LogFileFieldTypes",
    "Interval",
    "Sequence",
    "ApiVersion",
)
SAT_FIELDS = (
    "Id",
    "Action",
    "Section",
    "Display",
    "CreatedDate",
    "CreatedById",
    "DelegateUser",
    "ResponsibleNamespacePrefix",
    "CreatedByContext",
    "CreatedByIssuer",
    "SystemModstamp",
    "CreatedBy.Id",
    "CreatedBy.Username",
    "CreatedBy.Name",
)
LOGIN_HISTORY_FIELDS = (
    "Id",
    "UserId",
    "LoginTime",
    "LoginType",
    "SourceIp",
    "LoginUrl",
    "Browser",
    "Platform",
    "Status",
    "Application",
    "ClientVersion",
    "ApiType",
    "ApiVersion",
    "CountryIso",
    "LoginGeoId",
    "TlsProtocol",
    "CipherSuite",
    "AuthMethodReference",
    "LoginSubType",
    "NetworkId",
    "ForwardedForIp",
    "AuthenticationServiceId",
    "OptionsIsGet",
    "OptionsIsPost",
)
_STREAM_BASE = (
    "Id",
    "EventDate",
    "CreatedDate",
    "EventIdentifier",
    "UserId",
    "Username",
    "SourceIp",
    "LoginKey",
    "SessionKey",
    "SessionLevel",
    "PolicyId",
    "PolicyOutcome",
    "EvaluationTime",
    "RelatedEventIdentifier",
    "CreatedById",
)
#: Relationship name -> (target object, foreign key field) for nested results.
RELATIONSHIPS = {"CreatedBy": ("User", "CreatedById")}


class OrgData:
    """Everything queryable in the org, plus the activities that produced it (the tests' ground truth)."""

    def __init__(
        self, traffic: Traffic, *, hourly: bool = True, visible_after: Callable[[], datetime] | None = None
    ) -> None:
        self.traffic = traffic
        self.hourly = hourly
        self.visible_after = visible_after  # a clock: files exist only from their CreatedDate on
        self.rng = random.Random(traffic.rng.random())
        self.activities: list[Activity] = []
        self.objects: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.log_files: dict[str, LogFile] = {}
        self._hours: dict[tuple[str, datetime], int] = {}  # (event type, hour) -> last Sequence

    # --- ingestion of generated traffic --------------------------------------------------------------------
    def add_activities(self, activities: Iterable[Activity]) -> list[Activity]:
        added = list(activities)
        for activity in added:
            self.activities.append(activity)
            for name, record in activity.objects.items():
                stored = dict(record)
                if name in CHANNELS.values():
                    stored.setdefault("Id", BIG_OBJECT_ID)
                self.objects[name].append(stored)
        return added

    def build_log_files(self, activities: Iterable[Activity], *, late: bool = False) -> list[LogFile]:
        """Hourly (if entitled) and daily files for the ELF rows of ``activities``."""
        by_hour: dict[tuple[str, datetime], list[dict[str, str]]] = defaultdict(list)
        by_day: dict[tuple[str, datetime], list[dict[str, str]]] = defaultdict(list)
        for activity in activities:
            for event_type, row in activity.elf.items():
                hour = activity.at.replace(minute=0, second=0, microsecond=0)
                by_hour[(event_type, hour)].append(row)
                by_day[(event_type, hour.replace(hour=0))].append(row)
        made = []
        if self.hourly:
            for (event_type, hour), rows in sorted(by_hour.items()):
                made.append(self._hourly(event_type, hour, rows))
        if not late:
            for (event_type, day), rows in sorted(by_day.items()):
                created = day + timedelta(days=1, hours=2, minutes=self.rng.randrange(60))
                made.append(
                    self.add_log_file(
                        event_type, rows, log_date=day, interval="Daily", sequence=0, created_date=created
                    )
                )
        return made

    def _hourly(self, event_type: str, hour: datetime, rows: list[dict[str, str]]) -> LogFile:
        sequence = self._hours.get((event_type, hour), 0) + 1
        delay = timedelta(
            hours=3 + sequence, minutes=self.rng.randrange(60)
        )  # "3-6 hours", later for re-issues
        return self.add_log_file(
            event_type,
            rows,
            log_date=hour,
            interval="Hourly",
            sequence=sequence,
            created_date=hour + timedelta(hours=1) + delay,
        )

    def add_log_file(
        self,
        event_type: str,
        rows: Iterable[Mapping[str, str]] | int,
        *,
        log_date: datetime,
        interval: str = "Hourly",
        sequence: int | None = None,
        created_date: datetime | None = None,
    ) -> LogFile:
        """Add a file of given rows (dicts by column) or of ``rows`` generated Login-like rows."""
        header = field_names(event_type)
        if isinstance(rows, int):
            source: StoredRows | GeneratedRows = self._generated(event_type, rows, log_date)
        else:
            data = sorted(([r.get(c, "") for c in header] for r in rows), key=lambda r: r[1])
            source = StoredRows(header, data)
        if sequence is None:
            sequence = 0 if interval == "Daily" else self._hours.get((event_type, log_date), 0) + 1
        if interval == "Hourly":
            self._hours[(event_type, log_date)] = max(sequence, self._hours.get((event_type, log_date), 0))
        span = timedelta(days=1) if interval == "Daily" else timedelta(hours=1)
        created = created_date or log_date + span + timedelta(hours=4)
        log_file = LogFile(
            fmt.new_id18(self.rng, "0AT"), event_type, log_date, interval, sequence, created, source
        )
        self.log_files[log_file.id] = log_file
        return log_file

    def _generated(self, event_type: str, count: int, start: datetime) -> GeneratedRows:
        templates = []
        for index in range(64):
            if event_type == "Login" and index % 8 == 7:
                activity = self.traffic.login(status="Invalid Password")
            else:
                activity = self.traffic.elf_activity(event_type)
            row = activity.elf[event_type]
            templates.append([row.get(c, "") for c in field_names(event_type)])
        return GeneratedRows(event_type, templates, count, start, seed=self.rng.randrange(1 << 30))

    def add_audit_trail(self, action: str, section: str, display: str, **kw: Any) -> dict[str, Any]:
        activity = self.add_activities([self.traffic.admin_action(action, section, display, **kw)])[0]
        return activity.objects["SetupAuditTrail"]

    # --- views ---------------------------------------------------------------------------------------------
    def elf_record(self, log_file: LogFile, version: str) -> dict[str, Any]:
        """The EventLogFile record as REST returns it; ``LogFile`` is the relative blob URL (facts A1)."""
        created = fmt.rest_datetime(log_file.created_date)
        return {
            "Id": log_file.id,
            "EventType": log_file.event_type,
            "LogDate": fmt.rest_datetime(log_file.log_date),
            "LogFile": f"/services/data/v{version}/sobjects/EventLogFile/{log_file.id}/LogFile",
            "LogFileLength": float(log_file.length),
            "LogFileContentType": "CSV",
            "LogFileFieldNames": field_names_header(log_file.event_type),
            "LogFileFieldTypes": field_types_header(log_file.event_type),
            "Interval": log_file.interval,
            "Sequence": log_file.sequence,
            "ApiVersion": log_file.api_version,
            "CreatedDate": created,
            "CreatedById": self.traffic.users[0].id,
            "IsDeleted": False,
            "LastModifiedDate": created,
            "LastModifiedById": self.traffic.users[0].id,
            "SystemModstamp": created,
        }

    def visible(self, log_file: LogFile) -> bool:
        """Whether the file exists yet: always, unless files appear at CreatedDate (hours after LogDate)."""
        return self.visible_after is None or log_file.created_date <= self.visible_after()

    def records(self, sobject: str, version: str) -> list[dict[str, Any]]:
        if sobject == "EventLogFile":
            # an org without the hourly entitlement has Daily files only
            files = [f for f in self.log_files.values() if self.hourly or f.interval == "Daily"]
            return [self.elf_record(f, version) for f in files if self.visible(f)]
        return self.objects.get(sobject, [])

    def schema(self) -> dict[str, dict[str, str]]:
        """SOQL schema: object -> {lower-case path: canonical path}. No ``Interval`` without hourly ELF."""
        fields: dict[str, Iterable[str]] = {
            "EventLogFile": [f for f in ELF_FIELDS if self.hourly or f != "Interval"],
            "SetupAuditTrail": SAT_FIELDS,
            "LoginHistory": LOGIN_HISTORY_FIELDS,
        }
        for store in (*filter(None, CHANNELS.values()), *STORAGE_ONLY):
            seen = {key for rec in self.objects.get(store, []) for key in rec}
            fields[store] = sorted(seen | set(_STREAM_BASE))
        return {obj: {f.lower(): f for f in names} for obj, names in fields.items()}
