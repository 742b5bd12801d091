"""What the three webhook formats read from an alert document (docs/alerts.md): title, text, severity band,
who, from where, how many, when, and the ids. Any event document works; alerts just fill more of it."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from forwarder.events import EventDoc, get_path, severity_level

#: Identifiers safe in a Standard Webhooks signed content ``{id}.{ts}.{body}``: no "." (spec, "Signature
#: scheme": the id must not contain a full stop) and nothing a header would mangle.
_SAFE_ID = re.compile(r"[A-Za-z0-9_\-:]{1,200}")


def text_of(value: Any) -> str | None:
    """A short display form of a scalar or a list of scalars; None when empty."""
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, list):
        return ", ".join(str(v) for v in value if v is not None) or None
    return str(value)


def hashed_id(value: str, prefix: str = "sha256_") -> str:
    """A deterministic stand-in for an id that cannot be used as is (too long, unsafe characters)."""
    return prefix + hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class AlertView:
    """The display fields of one alert (or event) document."""

    id: str | None
    title: str
    text: str
    severity: int | float | None
    level: str
    rule_id: str | None
    user: str | None
    source_ip: str | None
    count: int | None
    timestamp: str | None
    first_seen: str | None
    last_seen: str | None
    group: str | None
    dedup_key: str | None
    dataset: str | None

    @classmethod
    def of(cls, doc: EventDoc) -> AlertView:
        """Read the fields; missing ones are None, the title and text always have something."""
        title = _first(doc, "rule.name", "rule.id", "event.action", "event.dataset") or "Salesforce alert"
        text = _first(doc, "message", "event.reason", "rule.description") or title
        severity = get_path(doc, "event.severity")
        count = get_path(doc, "salesforce.alert.count")
        return cls(
            id=text_of(get_path(doc, "event.id")),
            title=title,
            text=text,
            severity=severity if isinstance(severity, int | float) else None,
            level=severity_level(severity),
            rule_id=text_of(get_path(doc, "rule.id")),
            user=_first(doc, "user.name", "user.email", "user.id"),
            source_ip=text_of(get_path(doc, "source.ip")),
            count=count if isinstance(count, int) and not isinstance(count, bool) else None,
            timestamp=text_of(doc.get("@timestamp")),
            first_seen=text_of(get_path(doc, "salesforce.alert.first_seen")),
            last_seen=text_of(get_path(doc, "salesforce.alert.last_seen")),
            group=text_of(get_path(doc, "salesforce.alert.group")),
            dedup_key=_first(doc, "salesforce.alert.dedup_key", "dedup_key"),
            dataset=text_of(get_path(doc, "event.dataset")),
        )

    def headline(self) -> str:
        """``<title>: <text>``, or the text alone when it already starts with the title (the rule engine's
        messages do) or is the title."""
        if self.text.startswith(self.title):
            return self.text
        return f"{self.title}: {self.text}"

    def message_id(self, body: bytes) -> str:
        """The idempotency key: the event id when it is safe, else its hash; a body hash without an id."""
        if self.id is None:
            return "sha256_" + hashlib.sha256(body).hexdigest()
        return self.id if _SAFE_ID.fullmatch(self.id) else hashed_id(self.id)


def _first(doc: EventDoc, *paths: str) -> str | None:
    for path in paths:
        found = text_of(get_path(doc, path))
        if found:
            return found
    return None
