"""The table interpreter: one pass over a payload builds the nested ECS document of ``SecurityEvent``.

Families (``families.py``) are data: which Salesforce field goes to which ECS path through which converter,
plus a small ``finish`` hook for rules that span fields (outcome, codes). Everything not mapped lands under
``salesforce.<snake_case name>`` so a new field in the next Salesforce release is never dropped.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from forwarder.events import ECS_VERSION, EventDoc, format_timestamp
from forwarder.normalize.values import BadValue

Conv = Callable[[Any], Any]
Path = tuple[str, ...]
#: Salesforce field -> the ECS paths it fills, each through an optional converter.
Table = Mapping[str, tuple[tuple[Path, Conv | None], ...]]
#: ECS path <- the first present field of a list (e.g. TIMESTAMP_DERIVED, then TIMESTAMP), each with its
#: converter; a converter returning None (an unusable IP) passes on to the next field.
Pick = tuple[Path, tuple[tuple[str, Conv], ...]]
Picks = tuple[Pick, ...]
Finish = Callable[[Mapping[str, Any], EventDoc], None]

#: Keys our sources add to payloads (replay id, channel, log file id...) and SOQL's ``attributes``.
_ENVELOPE = "_"
_SKIP = frozenset({"attributes"})


def target(path: str, conv: Conv | None = None) -> tuple[Path, Conv | None]:
    return tuple(path.split(".")), conv


def pick(path: str, keys: tuple[str, ...], conv: Conv, *more: tuple[str, Conv]) -> Pick:
    return tuple(path.split(".")), tuple((key, conv) for key in keys) + more


@dataclass(frozen=True, slots=True)
class Family:
    """How one kind of Salesforce record becomes an event."""

    dataset: str
    category: tuple[str, ...] = ()
    type: tuple[str, ...] = ()
    action: str | None = None
    kind: str = "event"
    table: Table = field(default_factory=dict)
    picks: Picks = ()
    finish: tuple[Finish, ...] = ()
    id_keys: tuple[str, ...] = ()  # first present is event.id; none -> content hash
    known: bool = True  # generic families (new event types) fall back to the receive time


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_snake_cache: dict[str, str] = {}


def snake(name: str) -> str:
    """``LoginKey`` / ``LOGIN_KEY`` / ``login_key`` -> ``login_key`` (one name whatever the source)."""
    cached = _snake_cache.get(name)
    if cached is None:
        cached = _CAMEL.sub("_", name).lower() if not name.isupper() else name.lower()
        cached = re.sub(r"[^a-z0-9_]+", "_", cached).strip("_") or "field"
        if len(_snake_cache) < 10_000:  # bounded: payload keys come from outside
            _snake_cache[name] = cached
    return cached


def put(doc: EventDoc, path: Path, value: Any) -> None:
    node = doc
    for part in path[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        node = child
    node[path[-1]] = value


def _empty(value: Any) -> bool:
    return value is None or value == ""


class FieldError(Exception):
    """A named field failed its converter: becomes ``Rejected(reason=...)``."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{name}: {problem}")


def _apply_table(payload: Mapping[str, Any], table: Table, doc: EventDoc, extra: dict[str, Any]) -> None:
    for key, value in payload.items():
        if _empty(value) or key in _SKIP:
            continue
        targets = table.get(key)
        if targets is None:
            extra[snake(key)] = value
            continue
        for path, conv in targets:
            try:
                converted = value if conv is None else conv(value)
            except BadValue as exc:
                raise FieldError(key, str(exc)) from None
            if converted is not None and converted != "":
                put(doc, path, converted)


def _apply_picks(payload: Mapping[str, Any], picks: Picks, doc: EventDoc) -> None:
    for path, choices in picks:
        for key, conv in choices:
            value = payload.get(key)
            if _empty(value):
                continue
            try:
                converted = conv(value)
            except BadValue as exc:
                raise FieldError(key, str(exc)) from None
            if converted is not None:
                put(doc, path, converted)
                break


def content_id(kind: str, payload: Mapping[str, Any]) -> str:
    """A stable id from the event type and the row content (our envelope keys excluded).

    Re-issued hourly ELF files repeat rows with a new Sequence (facts A2), so the id must not depend on
    the file: only on what Salesforce recorded.
    """
    content = {k: v for k, v in payload.items() if k[:1] != _ENVELOPE}
    blob = orjson.dumps([kind, content], option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return hashlib.blake2b(blob, digest_size=16).hexdigest()


def _event_id(family: Family, kind: str, payload: Mapping[str, Any]) -> str:
    for key in family.id_keys:
        value = payload.get(key)
        if isinstance(value, str) and value:
            return value
    return content_id(kind, payload)


def _related(doc: EventDoc) -> None:
    ips: list[str] = []
    users: list[str] = []
    source_ip = doc.get("source", {}).get("ip")
    if source_ip:
        ips.append(source_ip)
    for ip in doc.get("salesforce", {}).get("_related_ip", ()):
        if ip not in ips:
            ips.append(ip)
    user = doc.get("user")
    if user:
        for section in (user, user.get("target") or {}, user.get("effective") or {}):
            for key in ("name", "id"):
                value = section.get(key)
                if isinstance(value, str) and value not in users:
                    users.append(value)
    doc["salesforce"].pop("_related_ip", None)
    if ips or users:
        doc["related"] = {"ip": ips, "user": users}


def build(
    family: Family,
    kind: str,
    provider: str,
    payload: Mapping[str, Any],
    *,
    raw: bool,
    ingested: datetime | None,
    received: datetime,
) -> EventDoc:
    """The ECS document for one payload; raises ``FieldError`` naming the field that cannot be read."""
    extra: dict[str, Any] = {}
    doc: EventDoc = {"salesforce": extra}
    _apply_table(payload, family.table, doc, extra)
    _apply_picks(payload, family.picks, doc)
    event = doc.setdefault("event", {})
    event.update(
        id=_event_id(family, kind, payload),
        kind=family.kind,
        category=list(family.category),
        type=event.get("type") or list(family.type),
        dataset=family.dataset,
        provider=provider,
        module="salesforce",
    )
    event.setdefault("severity", 0)
    if family.action is not None:
        event.setdefault("action", family.action)
    for hook in family.finish:
        hook(payload, doc)
    if "@timestamp" not in doc:
        if family.known:
            raise FieldError(_time_field_names(family), "missing: no event time")
        doc["@timestamp"] = format_timestamp(received)  # a new event type is never rejected (issue 5)
        extra["timestamp_from"] = "received"
    if ingested is not None:
        event["ingested"] = format_timestamp(ingested)
    _related(doc)
    doc["ecs"] = {"version": ECS_VERSION}
    if raw:
        extra["raw"] = {k: v for k, v in payload.items() if k[:1] != _ENVELOPE}
    return _ordered(doc)


def _time_field_names(family: Family) -> str:
    for path, choices in family.picks:
        if path == ("@timestamp",):
            return "|".join(key for key, _conv in choices)
    return "@timestamp"


_ORDER = ("@timestamp", "message", "event")


def _ordered(doc: EventDoc) -> EventDoc:
    """Top-level keys in a stable, readable order (timestamp and event first), like ``to_doc``."""
    out: EventDoc = {key: doc[key] for key in _ORDER if key in doc}
    for key, value in doc.items():
        if key not in out:
            out[key] = value
    return out
