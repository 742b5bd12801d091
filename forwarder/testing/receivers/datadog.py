"""A Datadog Logs intake (v2) stand-in: DD-API-KEY (401 missing, 403 wrong), gzip/deflate, a JSON array of at
most 1000 logs and 5 MB uncompressed (413 otherwise), 1 MB per log (longer logs are cut, as Datadog does,
and counted), 202 ``{}``. Facts: reference §2 (docs.datadoghq.com/api/latest/logs/send-logs).
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from forwarder.testing.receivers import Fault, HttpReceiver

DEFAULT_API_KEY = "0123456789abcdef0123456789abcdef"
MAX_PAYLOAD_BYTES = 5_000_000
MAX_ENTRIES = 1000
MAX_LOG_BYTES = 1_000_000


def dd_fault(status: int, retry_after: float | None = None, **kw: Any) -> Fault:
    """A scripted Datadog answer, e.g. ``dd_fault(429, retry_after=1)``."""
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
    body = orjson.dumps({"errors": [{"status": str(status), "title": "scripted"}]})
    return Fault(status=status, body=body, headers=headers, **kw)


class DatadogReceiver(HttpReceiver):
    """Datadog on ``/api/v2/logs`` (``url`` + that path is the sink's ``url``) and ``/api/v1/validate``."""

    def __init__(self, *, api_keys: set[str] | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self.api_keys = api_keys or {DEFAULT_API_KEY}
        self.oversize_logs = 0  # logs over 1 MB that "Datadog" had to cut: our sink should send none

    @property
    def intake_url(self) -> str:
        """The full intake URL for ``DatadogConfig.url``."""
        return f"{self.url}/api/v2/logs"

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/api/v2/logs", self._logs), web.get("/api/v1/validate", self._validate)]

    def event_id(self, event: dict[str, Any]) -> str | None:
        inner = event.get("event")
        value = inner.get("id") if isinstance(inner, dict) else None
        return str(value) if value is not None else None

    def auth_error(self, request: web.Request) -> web.Response | None:
        key = request.headers.get("DD-API-KEY")
        if not key:
            return _error(401, "Unauthorized")
        if key not in self.api_keys:
            return _error(403, "Forbidden")
        return None

    async def _logs(self, request: web.Request) -> web.StreamResponse:
        return await self.intake(request, self._logs_response)

    async def _logs_response(self, request: web.Request, body: bytes | None) -> web.StreamResponse:
        if body is None:
            return _error(415, "Unsupported Content-Encoding")
        limit = min(MAX_PAYLOAD_BYTES, self.max_request_bytes or MAX_PAYLOAD_BYTES)
        if len(body) > limit:
            return _error(413, "Payload too large")
        if self.count_only:  # every log carries exactly one ddsource attribute; an array at both ends
            if not (body.startswith(b"[") and body.endswith(b"]")):
                return _error(400, "Bad request: invalid JSON")
            await self.accept_count(body.count(b'"ddsource":'))
            return web.Response(status=202, body=b"{}", content_type="application/json")
        try:
            logs = orjson.loads(body)
        except orjson.JSONDecodeError:
            return _error(400, "Bad request: invalid JSON")
        logs = logs if isinstance(logs, list) else [logs]
        if len(logs) > MAX_ENTRIES:
            return _error(413, "Payload too large: more than 1000 entries")
        if not all(isinstance(log, dict) for log in logs):
            return _error(400, "Bad request: logs must be objects")
        if len(body) > MAX_LOG_BYTES:  # only then can one log be over the limit
            self.oversize_logs += sum(len(orjson.dumps(log)) > MAX_LOG_BYTES for log in logs)
        await self.accept(logs)
        return web.Response(status=202, body=b"{}", content_type="application/json")

    async def _validate(self, request: web.Request) -> web.Response:
        refused = self.auth_error(request)
        return refused or web.Response(body=b'{"valid":true}', content_type="application/json")


def _error(status: int, title: str) -> web.Response:
    body = orjson.dumps({"errors": [{"status": str(status), "title": title}]})
    return web.Response(status=status, body=body, content_type="application/json")
