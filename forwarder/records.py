"""What sources hand to the pipeline: raw records as Salesforce sent them, and opaque positions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

#: A source's resume point: opaque JSON owned by the source (replay ids, cursors, file offsets).
Position = dict[str, Any]


class Lane(StrEnum):
    """Journal lanes: every consumer serves ``realtime`` before ``bulk`` (DESIGN.md)."""

    REALTIME = "realtime"
    BULK = "bulk"


@dataclass(frozen=True, slots=True)
class Record:
    """One raw Salesforce record.

    ``source`` is "streaming" | "eventlogfile" | "setupaudittrail" | "loginhistory"; ``kind`` is the
    channel or object name ("LoginEventStream", "LoginEvent"), the ELF EventType ("Login") or
    "SetupAuditTrail". ``payload`` holds the fields exactly as Salesforce sent them; for ELF rows the values
    are already typed by ``LogFileFieldTypes``.
    """

    source: str
    kind: str
    payload: dict[str, Any]
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))


#: ``await emit(records, position)`` returns once the records and the position are durable in the journal.
#: The lane is the source's (streams and audit trail: realtime; EventLogFile: bulk).
Emit = Callable[[Sequence[Record], Position | None], Awaitable[None]]
