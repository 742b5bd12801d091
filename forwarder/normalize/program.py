"""Whole-document programs: one generated function per (family, payload key sequence) builds every event of
a run of same-shaped records, with the mapping, id, hooks and literals decided once, not per record.

``engine.build`` stays the reference: a record the program cannot take on its happy path (a bad value, a
missing time, text JSON cannot carry) goes to ``normalize_doc`` whole, so results are the reference's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson
from xxhash import xxh3_128_hexdigest

from forwarder.events import ECS_VERSION, EventDoc
from forwarder.normalize import codes
from forwarder.normalize import hooks as hooks_module
from forwarder.normalize.compiler import field_source
from forwarder.normalize.engine import Family, _related, envelope_fields, hooks_for, id_prefix
from forwarder.records import Record

#: run(records, start, events, rejected, ingested, slow) -> index of the first record it did not take
Program = Callable[
    [Sequence[Record], int, list[EventDoc], list[Any], str | None, Callable[[Record], Any]], int
]


class _Slow(Exception):
    """The record needs the reference path (an unknown family's missing time uses the receive time)."""


def _runnable(keys: tuple[str, ...]) -> bool:
    """Keys a program can name as constants and hash as given: text JSON can carry."""
    try:
        orjson.dumps(list(keys))
    except TypeError:
        return False
    return all(key.__class__ is str for key in keys)


def compile_program(
    family: Family, source: str, kind: str, provider: str, keys: tuple[str, ...], *, raw: bool
) -> Program | None:
    """The program for records of ``source``/``kind`` whose payloads have exactly ``keys`` in order."""
    if not _runnable(keys):
        return None
    body, namespace = field_source(family.table, family.picks, keys)
    local = {key: f"a{i}" for i, key in enumerate(keys)}  # the names ``field_source`` unpacks into
    event = {
        "id": "", "kind": family.kind, "category": list(family.category), "type": list(family.type),
        "dataset": family.dataset, "provider": provider, "module": "salesforce", "severity": 0,
    }  # fmt: skip
    if family.action is not None:
        event["action"] = family.action
    hooks = hooks_for(family.finish, keys)
    namespace.update(
        _Slow=_Slow, _related=_related, _envelope_fields=envelope_fields, _dumps=orjson.dumps,
        _hash=xxh3_128_hexdigest, _login_type_name=codes.login_type_name,
        _tls_cached=hooks_module._tls_cached, _SHAPE=keys, _SOURCE=source, _KIND=kind,
        _PREFIX=id_prefix(kind) + orjson.dumps(sorted(keys)), _ECS=ECS_VERSION,
        **{f"_hook{i}": hook for i, hook in enumerate(hooks)},
    )  # fmt: skip
    event_text = "{" + ", ".join(f"{k!r}: {v!r}" for k, v in event.items()) + "}"
    lines = [
        "def run(_records, _start, _events, _rejected, _ingested, _slow):",
        "    _i = _start",
        "    _n = len(_records)",
        "    _seen = _checked = None",  # the last envelope and its checked fields (a log file: one for all)
        "    while _i < _n:",
        "        _record = _records[_i]",
        "        payload = _record.payload",
        "        if payload.__class__ is not dict or _record.kind != _KIND or _record.source != _SOURCE:",
        "            return _i",
        "        _fields = _record.fields",  # the source's word for the key sequence (one shared tuple)
        "        if _fields is not _SHAPE and (tuple(payload) if _fields is None else _fields) != _SHAPE:",
        "            return _i",
        "        _i += 1",
        "        try:",
        "            envelope = _record.envelope",
        "            if envelope is not _seen:",  # checked before either name changes: a raise keeps both
        "                _seen, _checked = envelope, _envelope_fields(envelope)",
        "            envelope = _checked",
        "            extra = {}",
        f"            event = {event_text}",
        '            doc = {"@timestamp": None, "event": event, "salesforce": extra}',
        *("        " + line for line in body),
        *_id_lines(family, local),
        *(line for i, hook in enumerate(hooks) for line in _hook_lines(hook, f"_hook{i}", local)),
        '            if doc["@timestamp"] is None:',
        "                raise _Slow",
        "            if _ingested is not None:",
        '                event["ingested"] = _ingested',
        *_RELATED,
        '            doc["ecs"] = {"version": _ECS}',
        *(["            extra['raw'] = payload"] if raw else []),
        "        except Exception:",  # the reference decides: rejection, sanitised payload, receive time
        "            _result = _slow(_record)",
        "            if _result.__class__ is dict:",
        "                _events.append(_result)",
        "            else:",
        "                _rejected.append(_result)",
        "            continue",
        "        _events.append(doc)",
        "    return _i",
    ]
    code = compile("\n".join(lines), f"<normalize program:{kind}:{len(keys)} keys>", "exec")
    exec(code, namespace)  # noqa: S102 - built above from our own tables; payload keys only through repr
    program: Program = namespace["run"]
    return program


def _id_lines(family: Family, local: dict[str, str]) -> list[str]:
    """``event.id`` and the JSON check of the payload (``engine._event_id``), with the key order fixed."""
    values = "[" + ", ".join(local[key] for key in sorted(local)) + "]"
    digest = f"_hash(_PREFIX + _dumps({values}))"
    candidates = [local[key] for key in family.id_keys if key in local]
    lines = []
    for index, v in enumerate(candidates):  # the first id key holding text wins, else the content hash
        lines += [
            f"            {'if' if index == 0 else 'elif'} {v}.__class__ is str and {v}:",
            "                if not _record.from_json:",
            f"                    _dumps({values})",  # the raw payload must still be JSON (``_check_json``)
            f"                event['id'] = {v}",
        ]
    if candidates:
        lines += ["            else:", f"                event['id'] = {digest}"]
    else:
        lines.append(f"            event['id'] = {digest}")
    return lines


#: ``engine._related`` inline for documents whose user has no target/effective part and no extra IPs
#: (the common case); the others call it.
_RELATED = [
    '            _source = doc.get("source")',
    '            _user = doc.get("user")',
    '            if "_related_ip" in extra or (_user and ("target" in _user or "effective" in _user)):',
    "                _related(doc, extra)",
    "            else:",
    '                _ip = _source.get("ip") if _source else None',
    "                _ips = [] if _ip is None else [_ip]",
    "                _users = []",
    "                if _user:",
    '                    _name = _user.get("name")',
    "                    if _name.__class__ is str:",
    "                        _users.append(_name)",
    '                    _id = _user.get("id")',
    "                    if _id.__class__ is str and _id not in _users:",
    "                        _users.append(_id)",
    "                if _ips or _users:",
    '                    doc["related"] = {"ip": _ips, "user": _users}',
]


def _hook_lines(hook: Any, name: str, local: dict[str, str]) -> list[str]:
    """A call of ``hook``, or for the hot hooks their common case (text values) inline with the call as
    the fallback for any other value: the hook itself stays the rule."""
    call = f"{name}(payload, doc)"
    inline = _INLINE.get(hook)
    lines = inline(local, call) if inline is not None else None
    return [f"            {line}" for line in (lines or [call])]


def _login_status(local: dict[str, str], call: str) -> list[str] | None:
    """``hooks.login_status``: ``Status`` (streams) or ``LOGIN_STATUS`` (ELF) holding text."""
    key, success = ("Status", "Success") if "Status" in local else ("LOGIN_STATUS", "LOGIN_NO_ERROR")
    if key not in local or (key == "LOGIN_STATUS" and "Status" in local):
        return None
    v = local[key]
    return [
        f"if {v}.__class__ is str and {v}:",
        f"    if {v} == {success!r}:",
        "        event['outcome'] = 'success'",
        "    else:",
        "        event['outcome'] = 'failure'",
        f"        event['reason'] = {v}",
        "else:",
        f"    {call}",
    ]


def _elf_login_type(local: dict[str, str], call: str) -> list[str] | None:
    if "LOGIN_TYPE" not in local:
        return None
    v = local["LOGIN_TYPE"]
    return [
        f"if {v}.__class__ is str:",
        f"    if {v}:",
        f"        extra['login_type'] = _login_type_name({v})",
        f"        extra['login_type_code'] = {v}",
        "else:",
        f"    {call}",
    ]


def _tls(local: dict[str, str], call: str) -> list[str] | None:
    present = [key for key in ("TLS_PROTOCOL", "TlsProtocol") if key in local]
    if len(present) != 1:
        return None
    v = local[present[0]]
    return [
        f"if {v}.__class__ is str:",
        f"    _tls = _tls_cached({v}) if {v} else None",
        "    if _tls is not None:",
        "        _section = doc.get('tls')",
        "        if _section is None:",
        "            _section = doc['tls'] = {}",
        "        _section['version_protocol'], _section['version'] = _tls",
        "else:",
        f"    {call}",
    ]


def _geo(local: dict[str, str], call: str) -> list[str] | None:
    if "LoginLatitude" not in local or "LoginLongitude" not in local:
        return None
    lat, lon = local["LoginLatitude"], local["LoginLongitude"]
    return [  # finite floats (``x - x == 0.0``), the stream's type; anything else: the hook
        f"if {lat}.__class__ is float and {lon}.__class__ is float and {lat} - {lat} == 0.0 "
        f"and {lon} - {lon} == 0.0:",
        f"    if -90 <= {lat} <= 90 and -180 <= {lon} <= 180:",
        "        _section = doc.get('source')",
        "        if _section is None:",
        "            _section = doc['source'] = {}",
        "        _geo = _section.get('geo')",
        "        if _geo is None:",
        "            _geo = _section['geo'] = {}",
        f"        _geo['location'] = {{'lat': {lat}, 'lon': {lon}}}",
        "else:",
        f"    {call}",
    ]


_INLINE: dict[Any, Callable[[dict[str, str], str], list[str] | None]] = {
    hooks_module.login_status: _login_status,
    hooks_module.elf_login_type: _elf_login_type,
    hooks_module.tls: _tls,
    hooks_module.geo: _geo,
}
