"""Slack incoming-webhook messages: one per alert, a readable ``text`` (the notification fallback) and Block
Kit blocks (header, summary, fields, context), every text escaped and cut to Slack's limits, never refused
for length. Facts: reference §6.2; api.slack.com/reference/block-kit/blocks; "Formatting text for app
surfaces" (escaping &, <, >)."""

from __future__ import annotations

from typing import Any

import orjson

from forwarder.events import EventDoc
from sinks.webhook._alert import AlertView

# Block Kit limits (api.slack.com/reference/block-kit/blocks): header plain_text 150 characters, section
# text 3000, section fields at most 10 of 2000 each, context at most 10 elements, block_id 255.
HEADER_CHARS = 150
SECTION_CHARS = 3000
FIELD_CHARS = 2000
MAX_FIELDS = 10
BLOCK_ID_CHARS = 255
#: Slack truncates message text past 40,000 characters and advises keeping it under 4,000
#: (chat.postMessage "Truncating content"); the fallback only needs the first line anyway.
TEXT_CHARS = 4000
#: Prefix of the context block's block_id, which carries the alert id (receivers and tests count on it).
ALERT_BLOCK_PREFIX = "alert:"

_ELLIPSIS = "…"
_ICONS = {
    "critical": ":red_circle:",
    "error": ":large_orange_circle:",
    "warning": ":warning:",
    "info": ":information_source:",
}


def escape(text: str) -> str:
    """Slack's three control characters as entities, so data cannot form links or @channel mentions."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def cut(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters, an ellipsis marking a cut; never splits an entity."""
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    amp = head.rfind("&")
    if amp != -1 and ";" not in head[amp:]:
        head = head[:amp]  # a cut "&amp;" would render as garbage
    return head + _ELLIPSIS


def mrkdwn(text: str, limit: int) -> str:
    """Escaped, then cut to ``limit``."""
    return cut(escape(text), limit)


def _rule(view: AlertView) -> str:
    if view.rule_id and view.rule_id != view.title:
        return f"{view.title} ({view.rule_id})"
    return view.title


def _fields(view: AlertView) -> list[dict[str, str]]:
    severity = view.level if view.severity is None else f"{view.level} ({view.severity:g})"
    pairs = [
        ("Rule", _rule(view)),
        ("Severity", severity),
        ("User", view.user),
        ("Source IP", view.source_ip),
        ("Count", None if view.count is None else str(view.count)),
        ("Time", view.timestamp),
    ]
    if view.first_seen != view.last_seen:  # a window: show its span (a single event's would repeat Time)
        pairs += [("First seen", view.first_seen), ("Last seen", view.last_seen)]
    return [
        {"type": "mrkdwn", "text": cut(f"*{label}*\n{escape(value)}", FIELD_CHARS)}
        for label, value in pairs
        if value
    ][:MAX_FIELDS]


def message(doc: EventDoc) -> dict[str, Any]:
    """The webhook body for one alert."""
    view = AlertView.of(doc)
    icon = _ICONS[view.level]
    header = {"type": "plain_text", "text": cut(view.title, HEADER_CHARS), "emoji": True}
    summary = f"{icon} " + mrkdwn(view.text, SECTION_CHARS - len(icon) - 1)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": header},
        {"type": "section", "text": {"type": "mrkdwn", "text": summary}},
        {"type": "section", "fields": _fields(view)},
    ]
    if view.id is not None:
        blocks.append(
            {
                "type": "context",
                "block_id": cut(ALERT_BLOCK_PREFIX + view.id, BLOCK_ID_CHARS),
                "elements": [{"type": "mrkdwn", "text": mrkdwn(f"alert {view.id}", SECTION_CHARS)}],
            }
        )
    fallback = f"[{view.level.upper()}] {view.headline()}"
    return {"text": mrkdwn(fallback, TEXT_CHARS), "blocks": blocks}


def encode(doc: EventDoc) -> bytes:
    """The JSON body."""
    return orjson.dumps(message(doc))
