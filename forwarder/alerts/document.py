"""The alert document (ECS, ``event.kind: alert``, ``event.dataset: salesforce.alert``): docs/alerts.md is its
contract with the webhook sinks and SIEMs. Ids are hashes of what fired, so the same input gives the same id.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from forwarder.alerts.conditions import field_values
from forwarder.alerts.rules import Rule
from forwarder.events import ECS_VERSION, EventDoc, format_timestamp

DATASET = "salesforce.alert"
PROVIDER = "sf-forwarder"
#: Bound of ``salesforce.alert.event_ids`` and of each ``related`` list: an alert is a pointer, not a copy.
MAX_IDS = 20
_PLACEHOLDER = re.compile(r"\{([@A-Za-z0-9_.]+)\}")


def digest(*parts: str) -> str:
    """32 hex characters of SHA-256 over the parts (unit-separated: no two part lists collide)."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def from_ms(ms: int) -> str:
    return format_timestamp(datetime.fromtimestamp(ms / 1000, UTC))


@dataclass
class Firing:
    """What made a rule fire: the triggering document and, for thresholds, the window's tally."""

    rule: Rule
    trigger: EventDoc
    alert_id: str
    dedup_key: str
    group: dict[str, Any]
    count: int = 1
    first_ms: int = 0
    last_ms: int = 0
    event_ids: list[str] = field(default_factory=list)
    ips: list[str] = field(default_factory=list)
    users: list[str] = field(default_factory=list)
    window_start_ms: int | None = None
    distinct_count: int | None = None
    suppressed_before: int = 0


def build_alert(firing: Firing, now: datetime | None = None) -> EventDoc:
    """The alert document for ``firing``; ``now`` is ``event.created``."""
    rule, trigger = firing.rule, firing.trigger
    created = format_timestamp(now or datetime.now(UTC))
    text = _message(firing)
    doc: EventDoc = {
        "@timestamp": trigger.get("@timestamp"),
        "message": text,
        "event": {
            "id": firing.alert_id,
            "kind": "alert",
            "category": rule.category or list(field_values(trigger, "event.category")),
            "type": rule.event_type or list(field_values(trigger, "event.type")) or ["info"],
            "action": rule.id,
            "dataset": DATASET,
            "provider": PROVIDER,
            "module": "salesforce",
            "severity": rule.risk_score,
            "risk_score": float(rule.risk_score),
            "reason": text,
            "created": created,
            "ingested": created,
        },
        "rule": {
            "id": rule.id,
            "name": rule.name,
            "description": rule.description,
            "version": str(rule.version),
            "ruleset": PROVIDER,
        },
        "related": {"ip": firing.ips[:MAX_IDS], "user": firing.users[:MAX_IDS]},
        "salesforce": {"alert": _alert_section(firing)},
        "ecs": {"version": ECS_VERSION},
    }
    doc.update(_actor(firing))
    if isinstance(trigger.get("organization"), dict):
        doc["organization"] = trigger["organization"]  # one org per forwarder: the same for every event
    return doc


def _alert_section(firing: Firing) -> dict[str, Any]:
    section: dict[str, Any] = {
        "type": firing.rule.type,
        "severity": firing.rule.severity,
        "count": firing.count,
        "first_seen": from_ms(firing.first_ms),
        "last_seen": from_ms(firing.last_ms),
        # ``group``: the values joined ("erin@acme.example|185.220.101.9"), what the webhook sinks show;
        # ``group_by``: the same as a field -> value mapping.
        "group": "|".join("" if v is None else str(v) for v in firing.group.values()),
        "group_by": firing.group,
        "event_ids": firing.event_ids[:MAX_IDS],
        "dedup_key": firing.dedup_key,
        "suppressed_before": firing.suppressed_before,
    }
    threshold = firing.rule.threshold
    if threshold is not None and firing.window_start_ms is not None:
        end = firing.window_start_ms + int(threshold.window.total_seconds() * 1000)
        section["window"] = {"start": from_ms(firing.window_start_ms), "end": from_ms(end)}
        section["threshold"] = threshold.count
    if firing.distinct_count is not None:
        section["distinct_count"] = firing.distinct_count
    return section


def _actor(firing: Firing) -> dict[str, Any]:
    """``user.*``/``source.*``: the trigger's for a match rule; the group's values for a threshold rule."""
    if firing.rule.type == "match":
        return {k: firing.trigger[k] for k in ("user", "source") if isinstance(firing.trigger.get(k), dict)}
    out: dict[str, Any] = {}
    for path, value in firing.group.items():
        top, _, rest = path.partition(".")
        if top in ("user", "source") and rest and value is not None:
            _put(out.setdefault(top, {}), rest, value)
    return out


def _put(node: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value


def _message(firing: Firing) -> str:
    rule = firing.rule
    if rule.message:
        return _PLACEHOLDER.sub(lambda m: _fill(firing, m.group(1)), rule.message)
    if rule.type == "match":
        who = _first(firing.trigger, "user.name") or _first(firing.trigger, "user.id") or "unknown user"
        where = _first(firing.trigger, "source.ip") or "unknown address"
        what = firing.trigger.get("message") or _first(firing.trigger, "event.action") or "event"
        return f"{rule.name}: {what} (user {who}, from {where})"
    group = ", ".join(f"{k}={v}" for k, v in firing.group.items()) or "all events"
    counted = (
        f"{firing.distinct_count} distinct {rule.threshold.distinct}"
        if rule.threshold and rule.threshold.distinct
        else f"{firing.count} events"
    )
    return f"{rule.name}: {counted} within {_window(firing)} ({group})"


def _fill(firing: Firing, name: str) -> str:
    if name == "count":
        return str(firing.count)
    if name == "distinct_count":
        return str(firing.distinct_count if firing.distinct_count is not None else firing.count)
    if name == "window":
        return _window(firing)
    if name in firing.group and firing.group[name] is not None:
        return str(firing.group[name])
    return _first(firing.trigger, name) or "unknown"


def _first(doc: EventDoc, path: str) -> str | None:
    values = field_values(doc, path)
    return str(values[0]) if values else None


def _window(firing: Firing) -> str:
    if firing.rule.threshold is None:
        return "one event"
    seconds = int(firing.rule.threshold.window.total_seconds())
    return _duration(timedelta(seconds=seconds))


def _duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
