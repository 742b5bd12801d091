"""The table interpreter: one pass over a payload builds the nested ECS document of ``SecurityEvent``.

Families (``families.py``) are data: which Salesforce field goes to which ECS path through which converter,
plus a small ``finish`` hook for rules that span fields (outcome, codes). Everything not mapped lands under
``salesforce.<snake_case name>`` so a new field in the next Salesforce release is never dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from xxhash import xxh3_128_hexdigest

from forwarder.events import ECS_VERSION, EventDoc, format_timestamp
from forwarder.normalize.values import BadValue, as_str

Conv = Callable[[Any], Any]
#: A compiled ECS path: (depth, first, second, third) e.g. (2, "user", "name", "").
Path = tuple[int, str, str, str]
#: One target of a Salesforce field: the ECS path and a converter (None: the value as it is).
Op = tuple[int, str, str, str, Conv | None]
#: Salesforce field -> the ECS paths it fills, each through an optional converter.
Table = Mapping[str, tuple[Op, ...]]
#: ECS path <- the first present field of a list (e.g. TIMESTAMP_DERIVED, then TIMESTAMP), each with its
#: converter; a converter returning None (an unusable IP) passes on to the next field.
Pick = tuple[Path, tuple[tuple[str, Conv], ...]]
Picks = tuple[Pick, ...]
Finish = Callable[[Mapping[str, Any], EventDoc], None]

#: SOQL's per-record ``attributes`` (type and URL) says nothing about the event.
_SKIP = frozenset({"attributes"})


def _path(dotted: str) -> Path:
    parts = dotted.split(".")
    if not 1 <= len(parts) <= 3:
        raise ValueError(f"ECS path too deep for the table interpreter: {dotted}")
    padded = [*parts, "", ""]
    return len(parts), padded[0], padded[1], padded[2]


def target(path: str, conv: Conv | None = None) -> Op:
    return (*_path(path), conv)


def pick(path: str, keys: tuple[str, ...], conv: Conv, *more: tuple[str, Conv]) -> Pick:
    return _path(path), tuple((key, conv) for key in keys) + more


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
    #: compiled ``table`` + ``picks`` (``compiler.compile_fields``); None runs the reference interpreter.
    apply: Callable[..., None] | None = None
    #: builds a version of ``apply`` specialised to one exact key sequence (ELF rows of a file share one)
    specialise: Callable[[tuple[str, ...]], Callable[..., None]] | None = None
    #: key sequence -> specialised apply and the hooks that can act on it; bounded by ``_MAX_SHAPES``
    #: (then the generic ``apply`` and every hook run)
    shapes: dict[tuple[str, ...], tuple[Callable[..., None], tuple[Finish, ...]]] = field(
        default_factory=dict
    )
    #: the shape seen last and its entry, checked before ``shapes`` (hashing a 30-key tuple cost more)
    last: list[Any] = field(default_factory=lambda: [None])


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


def put(doc: EventDoc, parts: tuple[str, ...], value: Any) -> None:
    """Set ``value`` at a nested path, creating sections on the way (for hooks)."""
    node = doc
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        node = child
    node[parts[-1]] = value


def _set(doc: EventDoc, depth: int, first: str, second: str, third: str, value: Any) -> None:
    if depth == 1:
        doc[first] = value
        return
    section: dict[str, Any] | None = doc.get(first)
    if section is None:
        section = doc[first] = {}
    if depth == 2:
        section[second] = value
        return
    inner: dict[str, Any] | None = section.get(second)
    if inner is None:
        inner = section[second] = {}
    inner[third] = value


class FieldError(Exception):
    """A named field failed its converter: becomes ``Rejected(reason=...)``."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{name}: {problem}")
        self.field = name


class NotJson(Exception):
    """The payload holds text or numbers JSON cannot carry (lone surrogates, integers past 64 bits)."""


def _convert(key: str, value: Any, conv: Conv) -> Any:
    try:
        return conv(value)
    except BadValue as exc:
        raise FieldError(key, str(exc)) from None


def _apply_table(
    payload: Mapping[str, Any],
    table: Table,
    doc: EventDoc,
    extra: dict[str, Any],
    envelope: Mapping[str, Any] | None,
) -> None:
    """Reference interpreter: unmapped fields to ``extra`` in payload order, the envelope (checked by
    ``envelope_fields``) after them, then the table in its order (so when two fields fill one path, the
    later table entry wins whatever the payload order)."""
    for key, value in payload.items():
        if key in table or key in _SKIP or value is None or value == "":
            continue
        extra[snake(key)] = value
    if envelope:
        extra.update(envelope)
    for key, ops in table.items():
        value = payload.get(key)
        if value is None or value == "":
            continue
        for depth, first, second, third, conv in ops:
            if conv is None or (conv is as_str and value.__class__ is str):
                converted = value
            else:
                converted = _convert(key, value, conv)
                if converted is None or converted == "":
                    continue
            _set(doc, depth, first, second, third, converted)


def _apply_picks(payload: Mapping[str, Any], picks: Picks, doc: EventDoc) -> None:
    for (depth, first, second, third), choices in picks:
        for key, conv in choices:
            value = payload.get(key)
            if value is None or value == "":
                continue
            converted = _convert(key, value, conv)
            if converted is not None:
                _set(doc, depth, first, second, third, converted)
                break


_MAX_SHAPES = 32


def _apply_for(
    family: Family, generic: Callable[..., None], payload: Mapping[str, Any]
) -> tuple[Callable[..., None], tuple[Finish, ...]]:
    """The specialised function and hooks for this payload's key sequence, built on first sight; the
    generic ones once a family has seen ``_MAX_SHAPES`` sequences (payloads whose key order varies)."""
    shape = tuple(payload)
    last = family.last[0]  # one read: (shape, entry) is replaced whole, never half
    if last is not None and last[0] == shape:  # rows of one file share their key objects: identity compares
        seen: tuple[Callable[..., None], tuple[Finish, ...]] = last[1]
        return seen
    found = family.shapes.get(shape)
    if found is not None:
        family.last[0] = (shape, found)
        return found
    if family.specialise is None or len(family.shapes) >= _MAX_SHAPES:
        return generic, family.finish
    found = family.shapes[shape] = (family.specialise(shape), hooks_for(family.finish, shape))
    family.last[0] = (shape, found)
    return found


def hooks_for(finish: tuple[Finish, ...], keys: tuple[str, ...]) -> tuple[Finish, ...]:
    """The hooks that can act on payloads with ``keys``: a hook marked ``reads`` (``hooks.reads``) does
    nothing when none of its fields is there, so it is left out rather than called per event."""
    present = frozenset(keys)
    return tuple(hook for hook in finish if not present.isdisjoint(getattr(hook, "reads", present)))


#: kind -> its hash prefix (``kind`` UTF-8 + NUL); bounded like the family caches (kinds come from outside).
_id_prefix: dict[str, bytes] = {}


def id_prefix(kind: str) -> bytes:
    prefix = _id_prefix.get(kind)
    if prefix is None:
        prefix = kind.encode("utf-8", "replace") + b"\0"
        if len(_id_prefix) < 1_000:
            _id_prefix[kind] = prefix
    return prefix


def content_id(kind: str, content: Mapping[str, Any]) -> str:
    """A stable id from the event type and the row content (the payload: the envelope is not part of it).

    Re-issued hourly ELF files repeat rows with a new Sequence (facts A2), so the id must not depend on
    the file: only on what Salesforce recorded. The hashed bytes are ``kind NUL``, the JSON array of the
    column names sorted, then the JSON array of the values in that order: column order does not matter,
    each array is self-delimiting, and a shape-compiled program (``program.py``) has the first two as a
    constant. xxh3-128 (``xxhash``): the id is a de-duplication key, not a security boundary (nothing
    trusts it against a forger), and it costs 0.05 us on a row where SHA-256 cost 0.7 us.
    """
    try:
        keys = sorted(content)
        blob = orjson.dumps(keys) + orjson.dumps([content[key] for key in keys])
    except TypeError:  # non-text keys, lone surrogates, integers past 64 bits (JSONEncodeError is one)
        raise NotJson from None
    return xxh3_128_hexdigest(id_prefix(kind) + blob)


def _event_id(family: Family, kind: str, payload: Mapping[str, Any], from_json: bool) -> str:
    """The first id key holding text, else the content hash; either way the payload (``salesforce.raw``)
    must be JSON, which the hash proves and an id key does not (unless orjson decoded the payload)."""
    for key in family.id_keys:
        value = payload.get(key)
        if value.__class__ is str and value:
            if not from_json:
                _check_json(payload)
            return str(value)
    return content_id(kind, payload)


def envelope_fields(envelope: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The record's envelope as ``salesforce.*`` fields: itself when every key is text and every value is
    non-empty ASCII text or a 64-bit integer (orjson's range; what our sources put there), else a checked
    copy without the empty values. Raises ``NotJson`` for what JSON cannot carry."""
    if not envelope:
        return None
    for key, value in envelope.items():
        kind = value.__class__
        if key.__class__ is not str or not (
            (kind is str and value and value.isascii()) or (kind is int and -(2**63) <= value < 2**64)
        ):
            break
    else:
        return envelope
    checked = {key: value for key, value in envelope.items() if value is not None and value != ""}
    _check_json(checked)
    return checked


def _check_json(value: Any) -> None:
    try:
        orjson.dumps(value)
    except TypeError:
        raise NotJson from None


def _related(doc: EventDoc, extra: dict[str, Any]) -> None:
    source = doc.get("source")
    ip = source.get("ip") if source else None
    ips: list[str] = [] if ip is None else [ip]
    if "_related_ip" in extra:
        ips += [ip for ip in extra.pop("_related_ip") if ip not in ips]
    users: list[str] = []
    user = doc.get("user")
    if user:
        _users(users, user)
        for key in ("target", "effective"):
            if key in user:
                _users(users, user[key])
    if ips or users:
        doc["related"] = {"ip": ips, "user": users}


def _users(users: list[str], section: dict[str, Any] | None) -> None:
    """Names, then ids, of one user section, each once (most events: a name and an id)."""
    if section:
        for key in ("name", "id"):
            value = section.get(key)
            if value.__class__ is str and value not in users:
                users.append(value)


def build(
    family: Family,
    kind: str,
    provider: str,
    payload: Mapping[str, Any],
    *,
    raw: bool,
    ingested: datetime | None,
    received: datetime,
    envelope: Mapping[str, Any] | None = None,
    from_json: bool = False,
) -> EventDoc:
    """The ECS document for one payload (``Record``'s fields as arguments); raises ``FieldError`` naming
    the field that cannot be read, ``NotJson`` when the payload must be sanitised first."""
    extra: dict[str, Any] = {}
    event: dict[str, Any] = {
        "id": "", "kind": family.kind, "category": list(family.category), "type": list(family.type),
        "dataset": family.dataset, "provider": provider, "module": "salesforce", "severity": 0,
    }  # fmt: skip
    if family.action is not None:
        event["action"] = family.action
    doc: EventDoc = {"@timestamp": None, "event": event, "salesforce": extra}
    checked = envelope_fields(envelope)
    if family.apply is not None:
        apply, finish = _apply_for(family, family.apply, payload)
        apply(payload, doc, event, extra, checked)
    else:
        finish = family.finish
        _apply_table(payload, family.table, doc, extra, checked)
        _apply_picks(payload, family.picks, doc)
    event["id"] = _event_id(family, kind, payload, from_json)
    for hook in finish:
        hook(payload, doc)
    if doc["@timestamp"] is None:
        if family.known:
            raise FieldError(_time_field_names(family), "missing: no event time")
        doc["@timestamp"] = format_timestamp(received)  # a new event type is never rejected (issue 5)
        extra["timestamp_from"] = "received"
    if ingested is not None:
        event["ingested"] = _ingested_text(ingested)
    _related(doc, extra)
    doc["ecs"] = {"version": ECS_VERSION}
    if raw:
        extra["raw"] = payload  # the record's own dict: it is not used after normalisation
    return doc


#: The last ``ingested`` time and its text: ingest passes one time per batch, so formatting it per event
#: (a strftime, ~2.5 us) was pure repetition.
_last_ingested: tuple[datetime, str] | None = None


def _ingested_text(ingested: datetime) -> str:
    global _last_ingested  # a one-entry memo, replaced whole (safe under the GIL)
    last = _last_ingested
    if last is not None and last[0] is ingested:
        return last[1]
    text = format_timestamp(ingested)
    _last_ingested = (ingested, text)
    return text


def _time_field_names(family: Family) -> str:
    for path, choices in family.picks:
        if path[1] == "@timestamp":
            return "|".join(key for key, _conv in choices)
    return "@timestamp"
