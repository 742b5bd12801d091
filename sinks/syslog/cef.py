"""CEF (ArcSight Common Event Format) rendering of an ECS event: header, escaping and the field mapping
documented in docs/syslog.md. Pure functions; the syslog sink puts the result in MSG.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime
from typing import Any

from forwarder.events import EventDoc, get_path

from .rfc5424 import parse_timestamp

#: Header field limits from the CEF implementation standard (reference §3.4): vendor/product 63,
#: version 31, signature id 1023, name 512.
_VENDOR_MAX, _PRODUCT_MAX, _VERSION_MAX, _SIGNATURE_MAX, _NAME_MAX = 63, 63, 31, 1023, 512

#: (CEF extension key, ECS path, label). Keys are CEF dictionary names; ``csN``/``cnN`` carry a label
#: in ``csNLabel`` so consumers know what the custom field holds (CEF standard, "Custom Dictionary").
EXTENSION_MAP: tuple[tuple[str, str, str | None], ...] = (
    ("externalId", "event.id", None),
    ("cat", "event.dataset", None),
    ("act", "event.action", None),
    ("outcome", "event.outcome", None),
    ("reason", "event.reason", None),
    ("msg", "message", None),
    ("suid", "user.id", None),
    ("suser", "user.name", None),
    ("duid", "user.target.id", None),
    ("duser", "user.target.name", None),
    ("requestClientApplication", "user_agent.original", None),
    ("request", "url.original", None),
    ("requestMethod", "http.request.method", None),
    ("cs1", "organization.id", "Salesforce Organization ID"),
    ("cs2", "event.provider", "Salesforce Event Source"),
    ("cs3", "source.geo.country_iso_code", "Source Country"),
    ("cs4", "source.geo.city_name", "Source City"),
    ("cs5", "user.email", "User Email"),
    ("cs6", "rule.name", "Detection Rule"),
    ("cn1", "event.risk_score", "Risk Score"),
)


def escape_header(value: object) -> str:
    """Header fields: ``\\`` → ``\\\\`` and ``|`` → ``\\|`` (CEF standard, "Character Encoding"). Line
    breaks are not allowed in the header at all, so they become spaces."""
    text = "" if value is None else str(value)
    if "\\" in text or "|" in text:
        text = text.replace("\\", "\\\\").replace("|", "\\|")
    if "\n" in text or "\r" in text:
        text = text.replace("\n", " ").replace("\r", " ")
    return text


def escape_extension(text: str) -> str:
    """Extension values: ``\\`` → ``\\\\``, ``=`` → ``\\=``, LF → ``\\n``, CR → ``\\r``; pipes are not
    escaped in extensions (CEF standard; rsyslog ``cef_ext_escape()``)."""
    if "\\" in text or "=" in text:
        text = text.replace("\\", "\\\\").replace("=", "\\=")
    if "\n" in text or "\r" in text:
        text = text.replace("\n", "\\n").replace("\r", "\\r")
    return text


def lookup(doc: EventDoc, parts: tuple[str, ...]) -> Any:
    """``get_path`` with the dotted path split once, for the per-event hot path."""
    node: Any = doc
    for part in parts:
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


#: EXTENSION_MAP compiled once: (" key=", path parts, " keyLabel=label" or "").
_COMPILED = tuple(
    (f" {key}=", tuple(path.split(".")), f" {key}Label={escape_extension(label)}" if label else "")
    for key, path, label in EXTENSION_MAP
)


def cef_severity(ecs_severity: object) -> int:
    """ECS 0..100 to CEF 0..10 (CEF severity is an integer 0-10, 10 most important)."""
    try:
        value: int = int(ecs_severity)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return 0
    return max(0, min(10, round(value / 10)))


def signature_id(event: EventDoc) -> str:
    """Device Event Class ID: what kind of event this is, stable across occurrences. Alerts use their rule
    id; other events their action, else their dataset."""
    return str(
        get_path(event, "rule.id")
        or get_path(event, "event.action")
        or get_path(event, "event.dataset")
        or "event"
    )


def event_name(event: EventDoc) -> str:
    """Name: a human-readable description of the event class."""
    for path in ("rule.name", "message", "event.action", "event.dataset"):
        value = get_path(event, path)
        if value:
            return str(value)
    return "Salesforce event"


def extension(event: EventDoc, now: datetime) -> str:
    """The extension: ``rt``, the source address, then EXTENSION_MAP in order; absent fields are omitted."""
    moment = parse_timestamp(event.get("@timestamp"), now)
    parts = [f"rt={int(moment.timestamp() * 1000)}", _source_address(lookup(event, ("source", "ip")))]
    for prefix, path, label in _COMPILED:
        value = lookup(event, path)
        if value is None or value == "" or value == []:
            continue
        parts += (prefix, escape_extension(_scalar(value)), label)
    return "".join(parts)


def encode_cef(event: EventDoc, vendor: str, product: str, version: str, now: datetime) -> str:
    """``CEF:0|Vendor|Product|Version|SignatureID|Name|Severity|Extension``."""
    header = "|".join(
        (
            "CEF:0",
            escape_header(vendor[:_VENDOR_MAX]),
            escape_header(product[:_PRODUCT_MAX]),
            escape_header(version[:_VERSION_MAX]),
            escape_header(signature_id(event)[:_SIGNATURE_MAX]),
            escape_header(event_name(event)[:_NAME_MAX]),
            str(cef_severity(get_path(event, "event.severity", 0))),
        )
    )
    return f"{header}|{extension(event, now)}"


def _source_address(value: Any) -> str:
    """``src`` holds an IPv4 address only; IPv6 goes to ``c6a2`` ("Source IPv6 Address", CEF standard)."""
    if not isinstance(value, str):
        return ""
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return ""
    if address.version == 4:
        return f" src={value}"
    return f" c6a2={value} c6a2Label=Source IPv6 Address"


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(_scalar(v) for v in value)
    return str(value)
