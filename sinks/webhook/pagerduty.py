"""PagerDuty Events API v2 trigger events (PagerDuty/developer-docs ``events-API-v2/02-Trigger-Events.md``;
reference §6.1): one alert per request, ``dedup_key`` from the alert so a retried or repeated trigger lands
on the same open PagerDuty alert, the summary cut to 1024 characters, the body within 512 KB."""

from __future__ import annotations

import re
from typing import Any

import orjson

from forwarder.errors import PermanentError
from forwarder.events import EventDoc, get_path
from sinks.webhook._alert import AlertView, hashed_id, text_of

DEFAULT_URL = "https://events.pagerduty.com/v2/enqueue"
SUMMARY_CHARS = 1024  # payload.summary: "maximum permitted length ... 1024 characters"
DEDUP_KEY_CHARS = 255  # dedup_key: "maximum permitted length ... 255 characters"
MAX_BODY_BYTES = 512 * 1024  # "Events API payloads are limited to 512 KB" (Overview, Size Limits)
DETAIL_CHARS = 4096  # each custom_details string: enough to read, far from the body limit
EVENT_IDS = 20  # triggering event ids listed (the alert engine keeps about as many)
#: Integration keys are 32 characters ("This is the 32 character Integration Key").
ROUTING_KEY = re.compile(r"[A-Za-z0-9]{32}")


def dedup_key(view: AlertView) -> str | None:
    """The alert's dedup key, else its id; hashed when longer than PagerDuty takes."""
    key = view.dedup_key or view.id
    if key is not None and len(key) > DEDUP_KEY_CHARS:
        return hashed_id(key)
    return key


def _short(value: Any) -> Any:
    if isinstance(value, str) and len(value) > DETAIL_CHARS:
        return value[: DETAIL_CHARS - 1] + "…"
    return value


def custom_details(doc: EventDoc, view: AlertView) -> dict[str, Any]:
    """What a responder needs without opening the SIEM; None values left out."""
    ids = get_path(doc, "salesforce.alert.event_ids")
    details = {
        "alert_id": view.id,
        "message": view.text,
        "rule_id": view.rule_id,
        "rule_name": text_of(get_path(doc, "rule.name")),
        "rule_description": text_of(get_path(doc, "rule.description")),
        "severity": view.severity,
        "risk_score": get_path(doc, "event.risk_score"),
        "user": view.user,
        "source_ip": view.source_ip,
        "country": text_of(get_path(doc, "source.geo.country_iso_code")),
        "count": view.count,
        "first_seen": view.first_seen,
        "last_seen": view.last_seen,
        "event_ids": [str(i) for i in ids[:EVENT_IDS]] if isinstance(ids, list) else None,
        "organization_id": text_of(get_path(doc, "organization.id")),
    }
    return {key: _short(value) for key, value in details.items() if value is not None}


def event(doc: EventDoc, source: str | None) -> dict[str, Any]:
    """The trigger event without ``routing_key`` (``send`` adds it, so encoded bytes hold no secret)."""
    view = AlertView.of(doc)
    summary = view.headline()
    org = text_of(get_path(doc, "organization.id"))
    body: dict[str, Any] = {
        "event_action": "trigger",
        "payload": {
            "summary": summary if len(summary) <= SUMMARY_CHARS else summary[: SUMMARY_CHARS - 1] + "…",
            "source": source or (f"salesforce org {org}" if org else "salesforce"),
            "severity": view.level,
            "component": view.dataset or "salesforce",
            "custom_details": custom_details(doc, view),
        },
        "client": "sf-forwarder",
    }
    optional = {"timestamp": view.timestamp, "group": view.group, "class": view.rule_id or view.title}
    body["payload"].update({key: value for key, value in optional.items() if value})
    if (key := dedup_key(view)) is not None:
        body["dedup_key"] = key
    return body


def encode(doc: EventDoc, source: str | None) -> bytes:
    """The JSON body (routing key excluded); PermanentError if it cannot fit PagerDuty's 512 KB."""
    encoded = orjson.dumps(event(doc, source))
    if len(encoded) + 64 > MAX_BODY_BYTES:  # 64: the routing key member added at send time
        raise PermanentError(f"pagerduty: event of {len(encoded)} bytes exceeds the 512 KB limit")
    return encoded


def with_routing_key(encoded: bytes, routing_key: str) -> bytes:
    """``{"routing_key":"...",`` spliced in front of the encoded members (one copy, no re-parse)."""
    return b'{"routing_key":' + orjson.dumps(routing_key) + b"," + encoded[1:]
