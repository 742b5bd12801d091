"""A Splunk HEC stand-in: auth codes 2/3/4, gzip, concatenated JSON envelopes, event/fields/index checks,
channels, indexer acknowledgement that can be late or never, health. Codes: reference §1.3 and the OTel
``splunkhecreceiver``.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import orjson
from aiohttp import web

from forwarder.testing.receivers import Fault, HttpReceiver

DEFAULT_TOKEN = "00000000-0000-0000-0000-000000000000"


def hec_body(code: int, text: str, **extra: Any) -> bytes:
    """A HEC reply body ``{"text", "code", ...}``."""
    return json.dumps({"text": text, "code": code, **extra}).encode()


def hec_fault(status: int, code: int, text: str, retry_after: float | None = None, **kw: Any) -> Fault:
    """A scripted HEC answer, e.g. ``hec_fault(503, 9, "Server is busy", retry_after=1)``."""
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
    return Fault(status=status, body=hec_body(code, text), headers=headers, **kw)


def split_envelopes(body: bytes) -> list[Any]:
    """Concatenated JSON objects, whitespace between them allowed (``raw_decode`` in a loop, reference §5);
    one object per line is tried first because it is the common form and much faster to parse."""
    try:
        return [orjson.loads(line) for line in body.split(b"\n") if line.strip()]
    except orjson.JSONDecodeError:
        pass
    text = body.decode("utf-8")
    decoder, pos = json.JSONDecoder(), 0
    out: list[Any] = []
    while True:
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
        if pos >= len(text):
            return out
        value, pos = decoder.raw_decode(text, pos)
        out.append(value)


def check_envelope(envelope: Any, allowed_indexes: set[str] | None) -> tuple[int, str] | None:
    """The HEC error (code, text) of one envelope, or None when valid."""
    if not isinstance(envelope, dict):
        return 6, "Invalid data format"
    if "event" not in envelope:
        return 12, "Event field is required"
    if envelope["event"] in ("", None, {}):
        return 13, "Event field cannot be blank"
    fields = envelope.get("fields", {})
    if not isinstance(fields, dict) or any(isinstance(v, dict) for v in fields.values()):
        return 15, "Error in handling indexed fields"
    if "time" in envelope and not isinstance(envelope["time"], int | float | str):
        return 6, "Invalid data format"
    if allowed_indexes is not None and envelope.get("index") not in (None, *allowed_indexes):
        return 7, "Incorrect index"
    return None


class HecReceiver(HttpReceiver):
    """Splunk HEC on ``/services/collector/event``. With ``acks=True`` events count as indexed only when
    their ack turns true: after ``ack_delay`` seconds, or never for the batches hit by ``drop_acks``
    (those events are lost inside "Splunk", so only a resend can bring them)."""

    def __init__(
        self,
        *,
        tokens: set[str] | None = None,
        allowed_indexes: set[str] | None = None,
        acks: bool = False,
        ack_delay: float = 0.0,
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        self.tokens = tokens or {DEFAULT_TOKEN}
        self.allowed_indexes = allowed_indexes
        self.acks = acks
        self.ack_delay = ack_delay
        self.healthy = True
        self.channels: set[str] = set()
        self.ack_polls = 0
        self.acks_held = False  # while True every ack stays false (then ``release_acks``)
        self.ack_polled = asyncio.Event()  # set on every ack poll, for tests to synchronise on
        self._next_ack = 0
        self._drop_next = 0
        self._pending: dict[tuple[str, int], tuple[float | None, list[dict[str, Any]]]] = {}

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/services/collector/event", self._event),
            web.post("/services/collector", self._event),
            web.post("/services/collector/ack", self._ack),
            web.get("/services/collector/health", self._health),
        ]

    def event_id(self, event: dict[str, Any]) -> str | None:
        value = event.get("fields", {}).get("event_id")
        return str(value) if value is not None else None

    def drop_acks(self, batches: int = 1) -> None:
        """The next ``batches`` accepted requests are never acknowledged and never indexed."""
        self._drop_next += batches

    def hold_acks(self) -> None:
        """Answer every ack poll with false until ``release_acks``: the batch waits "in the indexer"."""
        self.acks_held = True

    def release_acks(self) -> None:
        """Let held acks turn true on their next poll (the events get indexed then)."""
        self.acks_held = False

    def pending_acks(self) -> int:
        """Batches accepted but not yet acknowledged."""
        return len(self._pending)

    def auth_error(self, request: web.Request) -> web.Response | None:
        header = request.headers.get("Authorization")
        if header is None:
            return _reply(401, 2, "Token is required")
        scheme, _, token = header.partition(" ")
        if scheme != "Splunk" or not token:
            return _reply(401, 3, "Invalid authorization")
        if token not in self.tokens:
            return _reply(403, 4, "Invalid token")
        return None

    async def _event(self, request: web.Request) -> web.StreamResponse:
        return await self.intake(request, self._event_response)

    async def _event_response(self, request: web.Request, body: bytes | None) -> web.StreamResponse:
        channel = request.headers.get("X-Splunk-Request-Channel") or request.query.get("channel")
        if self.acks and not channel:
            return _reply(400, 10, "Data channel is missing")
        if body is None:
            return _reply(415, 6, '"Content-Encoding" must be "gzip" or empty')
        if self.max_request_bytes is not None and len(body) > self.max_request_bytes:
            return _reply(413, 6, "Content too large")
        return await self._index(body, channel)

    async def _index(self, body: bytes, channel: str | None) -> web.Response:
        if not body or body.isspace():
            return _reply(400, 5, "No data")
        if self.count_only:  # one envelope per line, as our sink writes them; objects at both ends
            if not (body.startswith(b"{") and body.endswith(b"}")):
                return _reply(400, 6, "Invalid data format")
            await self.accept_count(body.count(b"\n") + 1)
            return _reply(200, 0, "Success")
        try:
            envelopes = split_envelopes(body)
        except (UnicodeDecodeError, ValueError):
            return _reply(400, 6, "Invalid data format")
        for number, envelope in enumerate(envelopes):
            problem = check_envelope(envelope, self.allowed_indexes)
            if problem is not None:
                return _reply(400, problem[0], problem[1], **{"invalid-event-number": number})
        if not self.acks or channel is None:
            await self.accept(envelopes)
            return _reply(200, 0, "Success")
        self.channels.add(channel)
        ack_id, self._next_ack = self._next_ack, self._next_ack + 1
        ready_at = None if self._drop_next else time.monotonic() + self.ack_delay
        self._drop_next = max(0, self._drop_next - 1)
        self._pending[(channel, ack_id)] = (ready_at, envelopes)
        return _reply(200, 0, "Success", ackId=ack_id)

    async def _ack(self, request: web.Request) -> web.Response:
        self.ack_polls += 1
        self.ack_polled.set()
        refused = self.auth_error(request)
        if refused is not None:
            return refused
        if not self.acks:
            return _reply(400, 14, "ACK is disabled")
        channel = request.headers.get("X-Splunk-Request-Channel") or request.query.get("channel")
        if not channel:
            return _reply(400, 10, "Data channel is missing")
        try:
            ids = json.loads(await request.read())["acks"]
        except (ValueError, KeyError, TypeError):
            return _reply(400, 6, "Invalid data format")
        return web.json_response({"acks": {str(i): await self._resolve(channel, i) for i in ids}})

    async def _resolve(self, channel: str, ack_id: int) -> bool:
        entry = self._pending.get((channel, ack_id))
        if entry is None:
            return False
        ready_at, envelopes = entry
        if ready_at is None or self.acks_held or time.monotonic() < ready_at:
            return False
        del self._pending[(channel, ack_id)]
        await self.accept(envelopes)
        return True

    async def _health(self, request: web.Request) -> web.Response:
        if self.healthy:
            return _reply(200, 17, "HEC is healthy")
        return _reply(503, 18, "HEC is unhealthy, queues are full")


def _reply(status: int, code: int, text: str, **extra: Any) -> web.Response:
    return web.Response(status=status, body=hec_body(code, text, **extra), content_type="application/json")
