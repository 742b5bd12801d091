"""Normalisation: every Salesforce ``Record`` becomes one ECS-aligned event or a ``Rejected`` with a reason.

Pure functions, no I/O. ``normalize_doc`` is the pipeline's fast path (a plain ``EventDoc``, no pydantic
on the hot path); ``normalize`` returns the validated ``SecurityEvent`` and equals it field for field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import orjson
from pydantic import ValidationError

from forwarder.events import EventDoc, SecurityEvent
from forwarder.normalize.engine import FieldError, NotJson, build
from forwarder.normalize.families import family_for
from forwarder.records import Record

__all__ = ["RawMode", "Rejected", "normalize", "normalize_doc"]

RawMode = Literal["full", "none"]


@dataclass(frozen=True, slots=True)
class Rejected:
    """A record that cannot become an event; ``reason`` starts with the offending field's name, which
    ``field`` also holds (the payload key; "payload" when the payload itself is unusable)."""

    record: Record
    reason: str
    field: str = "payload"


def normalize_doc(
    record: Record, *, raw: RawMode = "full", ingested: datetime | None = None
) -> EventDoc | Rejected:
    """The ECS document for ``record`` (what the journal stores), or ``Rejected``. Never raises."""
    payload: Mapping[str, Any] = record.payload
    if payload.__class__ is not dict and not isinstance(payload, Mapping):  # the ABC check costs ~0.1 us
        return Rejected(record, f"payload: expected an object, got {type(payload).__name__}")
    family, provider = family_for(record.source, record.kind)
    try:
        try:
            return build(
                family, record.kind, provider, payload,
                raw=raw == "full", ingested=ingested, received=record.received_at,
                envelope=record.envelope, from_json=record.from_json,
            )  # fmt: skip
        except NotJson:  # rare: sanitise once, then build again
            envelope = None if record.envelope is None else _json_safe(record.envelope)
            return build(
                family, record.kind, provider, _json_safe(payload),
                raw=raw == "full", ingested=ingested, received=record.received_at, envelope=envelope,
            )  # fmt: skip
    except FieldError as exc:
        return Rejected(record, str(exc), exc.field)
    except NotJson:
        return Rejected(record, "payload: not representable as JSON")


def normalize(
    record: Record, *, raw: RawMode = "full", ingested: datetime | None = None
) -> SecurityEvent | Rejected:
    """The validated ``SecurityEvent`` for ``record``, or ``Rejected``. Never raises."""
    doc = normalize_doc(record, raw=raw, ingested=ingested)
    if isinstance(doc, Rejected):
        return doc
    try:
        return SecurityEvent.model_validate(doc)
    except ValidationError as exc:  # a mapping bug, not bad data: still a named, dead-lettered record
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return Rejected(record, f"{where}: {first['msg']}", where)


def _json_safe(payload: Mapping[str, Any]) -> Mapping[str, Any]:
    """The payload if it serialises as JSON; text with invalid UTF-8 (lone surrogates from a
    ``surrogateescape`` decode) gets U+FFFD so the event is kept; other non-JSON values reject, named."""
    cleaned: dict[str, Any] = {}
    for key, value in payload.items():
        name = key if isinstance(key, str) else repr(key)
        cleaned[_clean_text(name)] = _clean_value(_clean_text(name), value)
    return cleaned


def _clean_text(text: str) -> str:
    return text.encode("utf-8", "replace").decode("utf-8")


def _clean_value(name: str, value: Any) -> Any:
    """``name`` is the top-level payload key, the one a rejection names."""
    if isinstance(value, str):
        return _clean_text(value)
    if isinstance(value, Mapping):
        return {_clean_text(str(k)): _clean_value(name, v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean_value(name, item) for item in value]
    try:
        orjson.dumps(value)
    except TypeError:
        raise FieldError(name, f"not a JSON value ({type(value).__name__})") from None
    return value
