"""What sources hand to the pipeline: raw records as Salesforce sent them, and opaque positions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
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
    "SetupAuditTrail". ``payload`` holds the fields exactly as Salesforce sent them (it becomes
    ``salesforce.raw`` as it is, not copied); for ELF rows the values are already typed by
    ``LogFileFieldTypes``.
    """

    source: str
    kind: str
    payload: dict[str, Any]
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    #: Where the record came from, kept apart from what Salesforce sent: ``replay_id``/``channel``/
    #: ``event_uuid`` (streams), ``log_file_id``/``log_file_date``/``log_file_interval``/
    #: ``log_file_sequence`` (ELF). Keys are the ``salesforce.*`` names they get; all rows of one log file
    #: share one mapping (normalisation checks it once per file).
    envelope: Mapping[str, Any] | None = None
    #: The payload's keys in order when the source built the payload from them (an ELF file's header, one
    #: tuple shared by its rows): normalisation then need not read them per row. None: read the payload.
    fields: tuple[str, ...] | None = None
    #: The payload was decoded from JSON by orjson (streams, REST queries): it holds only what JSON can
    #: carry (no lone surrogates, integers within 64 bits), so normalisation does not re-encode it to check.
    from_json: bool = False


#: ``await emit(records, position)`` returns once the records and the position are durable in the journal.
#: The lane is the source's (streams and audit trail: realtime; EventLogFile: bulk).
Emit = Callable[[Sequence[Record], Position | None], Awaitable[None]]
