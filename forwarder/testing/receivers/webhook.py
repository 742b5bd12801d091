"""A Standard Webhooks consumer (spec ``standard-webhooks.md``, "Verifying signatures"): the three headers
required, the timestamp within a tolerance of its clock (replays of old captures refused), any ``v1``
signature of the space-separated list matching one of its secrets in constant time (rotation), and the
``webhook-id`` as idempotency key (a redelivery is acknowledged, not processed twice)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from forwarder.testing.receivers import HttpReceiver

#: The reference library's tolerance (``standardwebhooks`` Python: five minutes either way).
TOLERANCE_SECONDS = 300
#: A valid test secret: whsec_ + base64 of 32 bytes.
DEFAULT_SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()


def _key(secret: str) -> bytes:
    raw = secret.removeprefix("whsec_")
    return base64.b64decode(raw + "=" * (-len(raw) % 4))


class WebhookReceiver(HttpReceiver):
    """Consumer on ``POST /webhook``; ``hook_url`` is the sink's ``url``."""

    def __init__(
        self,
        *,
        secrets: list[str] | None = None,
        tolerance: float = TOLERANCE_SECONDS,
        clock: Callable[[], float] = time.time,
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        self.secrets = secrets or [DEFAULT_SECRET]
        self.tolerance = tolerance
        self.clock = clock
        self.seen_ids: set[str] = set()
        self.redeliveries = 0  # requests whose webhook-id was already processed (acknowledged, skipped)
        self.refusals: list[str] = []  # why requests were refused, in order
        self.arrivals = 0  # requests that reached the handler (counted before any answer, fault or delay)
        self.arrived_ids: list[str] = []  # their webhook-id headers, in arrival order
        self._arrived = asyncio.Condition()

    @property
    def hook_url(self) -> str:
        """The endpoint URL for ``WebhookConfig.url``."""
        return f"{self.url}/webhook"

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/webhook", self._hook)]

    def event_id(self, event: dict[str, Any]) -> str | None:
        data = event.get("data")
        inner = data.get("event") if isinstance(data, dict) else None
        value = inner.get("id") if isinstance(inner, dict) else None
        return str(value) if value is not None else None

    async def wait_for_arrivals(self, count: int, timeout: float = 10.0) -> None:  # noqa: ASYNC109 - test helper
        """Return once ``count`` requests arrived (even ones still stalled by a fault)."""
        async with asyncio.timeout(timeout), self._arrived:
            await self._arrived.wait_for(lambda: self.arrivals >= count)

    async def _hook(self, request: web.Request) -> web.StreamResponse:
        self.arrivals += 1
        self.arrived_ids.append(request.headers.get("webhook-id", ""))
        async with self._arrived:
            self._arrived.notify_all()
        return await self.intake(request, self._respond)

    async def _respond(self, request: web.Request, body: bytes | None) -> web.StreamResponse:
        problem = self.verify(dict(request.headers), body or b"")
        if problem is not None:
            self.refusals.append(problem)
            return web.json_response({"error": problem}, status=401 if problem != "missing headers" else 400)
        msg_id = request.headers["webhook-id"]
        if msg_id in self.seen_ids:
            self.redeliveries += 1
            return web.Response(status=204)
        try:
            payload = orjson.loads(body or b"")
        except orjson.JSONDecodeError:
            return web.json_response({"error": "invalid JSON"}, status=400)
        self.seen_ids.add(msg_id)
        await self.accept([payload])
        return web.Response(status=204)

    def verify(self, headers: dict[str, str], body: bytes) -> str | None:
        """None when the request is authentic and fresh, else the reason."""
        lower = {k.lower(): v for k, v in headers.items()}
        msg_id, stamp, signatures = (
            lower.get(h) for h in ("webhook-id", "webhook-timestamp", "webhook-signature")
        )
        if not (msg_id and stamp and signatures):
            return "missing headers"
        if not stamp.isdigit() or abs(self.clock() - int(stamp)) > self.tolerance:
            return "timestamp outside tolerance"
        signed = f"{msg_id}.{stamp}.".encode() + body
        expected = [hmac.new(_key(s), signed, hashlib.sha256).digest() for s in self.secrets]
        for entry in signatures.split(" "):
            version, _, value = entry.partition(",")
            if version != "v1":
                continue
            try:
                given = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                continue
            if any(hmac.compare_digest(given, e) for e in expected):
                return None
        return "no matching signature"
