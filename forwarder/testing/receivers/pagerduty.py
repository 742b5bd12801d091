"""A PagerDuty Events API v2 stand-in on ``/v2/enqueue``: the schema of ``02-Trigger-Events.md`` (routing key
of 32 characters and known, event_action enum, payload.summary <= 1024, source, severity enum, dedup_key
<= 255, ISO 8601 timestamp, custom_details an object), 512 KB at most, and PagerDuty's answers: 202
``{status, message, dedup_key}``, 400 ``{status: "invalid event", message, errors: [...]}``, 429 when more
than ``events_per_minute`` arrive for a key. Open alerts are kept by dedup_key, as PagerDuty groups them."""

from __future__ import annotations

import time
import uuid
from collections import deque
from datetime import datetime
from typing import Any

import orjson
from aiohttp import web

from forwarder.testing.receivers import Fault, HttpReceiver

DEFAULT_ROUTING_KEY = "R0123456789abcdef0123456789ABCDE"
MAX_BODY_BYTES = 512 * 1024
SEVERITIES = {"critical", "error", "warning", "info"}
ACTIONS = {"trigger", "acknowledge", "resolve"}


def pd_fault(status: int, retry_after: float | None = None, **kw: Any) -> Fault:
    """A scripted PagerDuty answer, e.g. ``pd_fault(429)`` or ``pd_fault(500)``."""
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
    body = orjson.dumps({"status": "scripted", "message": f"HTTP {status}"})
    return Fault(status=status, body=body, headers=headers, **kw)


def event_errors(event: Any, routing_keys: set[str]) -> list[str]:
    """PagerDuty's ``errors`` for this event; empty when it would be accepted."""
    if not isinstance(event, dict):
        return ["Event object must be a JSON object"]
    key = event.get("routing_key")
    if not isinstance(key, str):
        return ["'routing_key' is missing or blank"]
    if len(key) != 32:
        return ["Length of 'routing_key' is incorrect (should be 32 characters)"]
    if key not in routing_keys:
        return ["Invalid routing key"]
    if event.get("event_action") not in ACTIONS:
        return ["'event_action' is invalid (must be one of: trigger, acknowledge, resolve)"]
    dedup = event.get("dedup_key")
    if dedup is not None and (not isinstance(dedup, str) or len(dedup) > 255):
        return ["'dedup_key' must be a string of at most 255 characters"]
    if event["event_action"] != "trigger":
        return [] if dedup else ["'dedup_key' is required for acknowledge and resolve"]
    return _payload_errors(event.get("payload"))


def _payload_errors(payload: Any) -> list[str]:
    if not isinstance(payload, dict):
        return ["'payload' is missing or not an object"]
    errors = []
    summary = payload.get("summary")
    if not isinstance(summary, str) or not summary:
        errors.append("'payload.summary' is missing or blank")
    elif len(summary) > 1024:
        errors.append("'payload.summary' is too long (maximum is 1024 characters)")
    if not isinstance(payload.get("source"), str) or not payload["source"]:
        errors.append("'payload.source' is missing or blank")
    if payload.get("severity") not in SEVERITIES:
        errors.append("'payload.severity' is invalid (must be one of: critical, error, warning, info)")
    if "timestamp" in payload and not _iso8601(payload["timestamp"]):
        errors.append("'payload.timestamp' is not a valid ISO 8601 timestamp")
    if "custom_details" in payload and not isinstance(payload["custom_details"], dict):
        errors.append("'payload.custom_details' must be an object")
    strings = ("component", "group", "class")
    errors.extend(
        f"'payload.{n}' must be a string" for n in strings if n in payload and not isinstance(payload[n], str)
    )
    return errors


def _iso8601(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


class PagerDutyReceiver(HttpReceiver):
    """Events API v2; ``enqueue_url`` is the sink's ``url``."""

    def __init__(
        self, *, routing_keys: set[str] | None = None, events_per_minute: int | None = None, **kw: Any
    ) -> None:
        super().__init__(**kw)
        self.routing_keys = routing_keys or {DEFAULT_ROUTING_KEY}
        self.events_per_minute = events_per_minute  # PagerDuty: about 120 per minute per integration key
        self.open_alerts: dict[str, int] = {}  # dedup_key -> triggers applied to the open alert
        self.rejections: list[list[str]] = []
        self._recent: deque[float] = deque()

    @property
    def enqueue_url(self) -> str:
        """The full URL for ``WebhookConfig.url``."""
        return f"{self.url}/v2/enqueue"

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/v2/enqueue", self._enqueue)]

    def event_id(self, event: dict[str, Any]) -> str | None:
        details = (event.get("payload") or {}).get("custom_details") or {}
        value = details.get("alert_id") if isinstance(details, dict) else None
        return str(value) if value is not None else event.get("dedup_key")

    async def _enqueue(self, request: web.Request) -> web.StreamResponse:
        return await self.intake(request, self._respond)

    async def _respond(self, request: web.Request, body: bytes | None) -> web.StreamResponse:
        if body is None or len(body) > MAX_BODY_BYTES:
            return _invalid(["Payload too large (maximum is 512 KB)"], status=413)
        try:
            event = orjson.loads(body)
        except orjson.JSONDecodeError:
            return _invalid(["Could not parse the request body as JSON"])
        errors = event_errors(event, self.routing_keys)
        if errors:
            self.rejections.append(errors)
            return _invalid(errors)
        if self._throttled():  # counted per accepted event of the integration key
            body_429 = {
                "status": "throttle event",
                "message": "Requests for this service are arriving too quickly.",
            }
            return web.json_response(body_429, status=429)
        key = event.get("dedup_key") or uuid.uuid4().hex
        if event["event_action"] == "trigger":
            self.open_alerts[key] = self.open_alerts.get(key, 0) + 1
        elif event["event_action"] == "resolve":
            self.open_alerts.pop(key, None)
        await self.accept([event])
        return web.json_response(
            {"status": "success", "message": "Event processed", "dedup_key": key}, status=202
        )

    def _throttled(self) -> bool:
        if not self.events_per_minute:
            return False
        now = time.monotonic()
        while self._recent and now - self._recent[0] > 60:
            self._recent.popleft()
        if len(self._recent) >= self.events_per_minute:
            return True
        self._recent.append(now)
        return False


def _invalid(errors: list[str], status: int = 400) -> web.Response:
    body = {"status": "invalid event", "message": "Event object is invalid", "errors": errors}
    return web.json_response(body, status=status)
