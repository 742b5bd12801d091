"""Local stand-ins for SIEM intakes (no real HEC or Datadog receiver installs here, reference §5): they check
what the vendor checks, answer with the vendor's codes, take scripted faults, and record what they accepted
so tests count unique event ids. Start in-process (``async with HecReceiver() as r``) or as a process
(``python -m forwarder.testing.receivers hec``).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Self, cast

import orjson
from aiohttp import web
from isal import isal_zlib

__all__ = [
    "Fault",
    "FaultScript",
    "HttpReceiver",
    "RequestLog",
    "decode_body",
    "sample_alert",
    "sample_event",
]


@dataclass(frozen=True, slots=True)
class Fault:
    """One scripted answer instead of the normal one."""

    status: int = 503
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to stall before answering (a delay beyond the client timeout = timeout)
    reset: bool = False  # drop the connection without an answer


class FaultScript:
    """Faults to apply: the next N requests, or every request for some seconds."""

    def __init__(self) -> None:
        self._queue: list[Fault] = []
        self._window: tuple[float, Fault] | None = None

    def next(self, fault: Fault, times: int = 1) -> None:
        """Answer the next ``times`` requests with ``fault``."""
        self._queue.extend([fault] * times)

    def for_seconds(self, seconds: float, fault: Fault) -> None:
        """Answer every request with ``fault`` for ``seconds`` from now ("503 for 30 s")."""
        self._window = (time.monotonic() + seconds, fault)

    def clear(self) -> None:
        """Forget every pending fault."""
        self._queue.clear()
        self._window = None

    def take(self) -> Fault | None:
        """The fault for the request arriving now, if any."""
        if self._queue:
            return self._queue.pop(0)
        if self._window and time.monotonic() < self._window[0]:
            return self._window[1]
        self._window = None
        return None


@dataclass(frozen=True, slots=True)
class RequestLog:
    """What arrived: for asserting request counts, sizes, headers and timing."""

    method: str
    path: str
    headers: dict[str, str]
    wire_bytes: int
    body_bytes: int
    status: int
    at: float


#: isal's stub declares ``error`` as an instance; it is the exception class of corrupt streams.
_CORRUPT = cast("type[Exception]", isal_zlib.error)


def decode_body(raw: bytes, encoding: str) -> bytes | None:
    """The body after ``Content-Encoding`` (gzip, deflate or none); None for anything else or corrupt data."""
    try:  # ISA-L: ~5x faster than zlib, so a receiver in the sink benchmark costs less of the shared CPUs
        if encoding == "gzip":
            return isal_zlib.decompress(raw, 47)
        if encoding == "deflate":
            return isal_zlib.decompress(raw)
    except _CORRUPT:
        return None
    return raw if encoding in ("", "identity") else None


class HttpReceiver:
    """Base of the HTTP receivers: an aiohttp app on 127.0.0.1, a fault script, and the accepted events."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        keep_events: bool = True,
        count_only: bool = False,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host, self.port = host, port
        # Benchmarks only: trust the sender's framing and count events without parsing them, so the
        # receiver (a Python process) does not become what the benchmark measures.
        self.count_only = count_only
        self.ssl_context = ssl_context  # serve HTTPS (and check client certificates if it requires them)
        self.keep_events = keep_events
        self.faults = FaultScript()
        self.max_request_bytes: int | None = None  # 413 above this many decoded bytes
        self.requests: list[RequestLog] = []
        self.events: list[dict[str, Any]] = []
        self.event_count = 0
        self.batch_sizes: list[int] = []  # events per accepted request (or per ack), in order
        self._ids: dict[str, int] = {}
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None

    # --- what subclasses provide -------------------------------------------------------------------
    def routes(self) -> list[web.RouteDef]:
        """The vendor endpoints."""
        raise NotImplementedError

    def event_id(self, event: dict[str, Any]) -> str | None:
        """The id tests de-duplicate on."""
        raise NotImplementedError

    # --- lifecycle ---------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321``."""
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://{self.host}:{self.port}"

    async def start(self) -> None:
        """Serve on a free port (``port=0``) and remember it."""
        app = web.Application(client_max_size=1 << 30)
        app.add_routes([*self.routes(), web.get("/_receiver/stats", self._stats)])
        self._runner = web.AppRunner(app, access_log=None, auto_decompress=False)  # see wire bytes
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self.ssl_context)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        """Stop serving; idempotent."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- recording ---------------------------------------------------------------------------------
    async def accept(self, events: list[dict[str, Any]]) -> None:
        """Record events as delivered (indexed) and wake waiters."""
        for event in events:
            key = self.event_id(event)
            if key is not None:
                self._ids[key] = self._ids.get(key, 0) + 1
        self.event_count += len(events)
        self.batch_sizes.append(len(events))
        if self.keep_events:
            self.events.extend(events)
        async with self._changed:
            self._changed.notify_all()

    async def accept_count(self, count: int) -> None:
        """Record ``count`` events in count-only mode (no ids, no bodies)."""
        self.event_count += count
        self.batch_sizes.append(count)

    def unique_ids(self) -> set[str]:
        """Event ids accepted at least once."""
        return set(self._ids)

    def duplicates(self) -> int:
        """Accepted events beyond the first of their id."""
        return sum(n - 1 for n in self._ids.values())

    async def wait_for_unique(self, count: int, timeout: float = 10.0) -> None:  # noqa: ASYNC109 - test helper
        """Return once ``count`` distinct ids arrived; TimeoutError otherwise."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: len(self._ids) >= count)

    def log_request(self, request: web.Request, raw: bytes, body: bytes | None, status: int) -> None:
        """Append to ``requests``."""
        self.requests.append(
            RequestLog(
                request.method,
                request.path,
                dict(request.headers),
                len(raw),
                len(body) if body is not None else 0,
                status,
                time.monotonic(),
            )
        )

    def auth_error(self, request: web.Request) -> web.Response | None:
        """The vendor's refusal of this request's credentials, or None when they are accepted."""
        return None

    async def intake(
        self,
        request: web.Request,
        respond: Callable[[web.Request, bytes | None], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        """An intake endpoint: body decoded once, a scripted fault or refused credentials answer first,
        otherwise ``respond(request, body)``; every request is logged with its status."""
        raw = await request.read()
        body = decode_body(raw, request.headers.get("Content-Encoding", ""))  # once: it is the costly part
        response = await self.apply_fault(request)
        if response is None:
            response = self.auth_error(request)
        if response is None:  # aiohttp responses are mappings (falsy when empty): compare with None
            response = await respond(request, body)
        self.log_request(request, raw, body, response.status)
        return response

    async def apply_fault(self, request: web.Request) -> web.StreamResponse | None:
        """The scripted answer for this request, or None to answer normally."""
        fault = self.faults.take()
        if fault is None:
            return None
        if fault.delay:
            await asyncio.sleep(fault.delay)  # simulating a slow peer, not synchronising a test
        if fault.reset and request.transport is not None:
            request.transport.abort()
        return web.Response(
            status=fault.status, body=fault.body, headers=fault.headers, content_type="application/json"
        )

    async def _stats(self, request: web.Request) -> web.Response:
        stats = {
            "events": self.event_count,
            "unique": len(self._ids),
            "requests": len(self.requests),
            "duplicates": self.duplicates(),
        }
        return web.json_response(stats, dumps=lambda o: orjson.dumps(o).decode())


def sample_event(i: int, *, timestamp: str = "2026-11-26T06:00:00.123+00:00", pad: int = 0) -> dict[str, Any]:
    """A realistic normalised login event document with id ``evt-<i>`` (``pad`` adds bytes to the raw
    record, for size tests). Shared by the receivers' tests, the sink contract suite and the benchmark."""
    return {
        "@timestamp": timestamp,
        "message": "Login succeeded for alice@example.com from 203.0.113.7",
        "event": {
            "id": f"evt-{i:08d}",
            "kind": "event",
            "category": ["authentication"],
            "type": ["start"],
            "action": "login",
            "outcome": "success",
            "dataset": "salesforce.login",
            "provider": "LoginEventStream",
            "module": "salesforce",
            "severity": 21,
        },
        "user": {"id": "005B0000003Hs6YIAS", "name": "alice@example.com"},
        "source": {"ip": "203.0.113.7", "geo": {"country_iso_code": "FR", "city_name": "Paris"}},
        "user_agent": {"original": "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0"},
        "organization": {"id": "00D5j000000XXXXEAA"},
        "related": {"ip": ["203.0.113.7"], "user": ["alice@example.com"]},
        "salesforce": {
            "session_key": "vMASKIU6AxEr+u3G",
            "login_key": "QfZMr7Rg3yk4hLd5",
            "raw": {"EventIdentifier": f"evt-{i:08d}", "LoginUrl": "login.salesforce.com", "pad": "x" * pad},
        },
    }


def sample_alert(
    i: int,
    *,
    severity: int = 73,
    message: str = "5 failed logins for alice@example.com from 203.0.113.7 in 10 minutes",
    timestamp: str = "2026-11-26T06:00:00.123Z",
) -> dict[str, Any]:
    """An alert document as the rule engine writes it (docs/alerts.md) with id ``evt-<i>``, for the webhook
    sinks' tests, the contract suite and the receivers."""
    return {
        "@timestamp": timestamp,
        "message": message,
        "event": {
            "id": f"evt-{i:08d}",
            "kind": "alert",
            "category": ["authentication"],
            "type": ["info"],
            "dataset": "salesforce.alert",
            "module": "salesforce",
            "severity": severity,
            "risk_score": float(severity),
            "reason": message,
            "created": "2026-11-26T06:00:05.000Z",
        },
        "rule": {
            "id": "sf-brute-force-login",
            "name": "Repeated failed logins",
            "description": "Several failed logins for one user from one address within a short window.",
        },
        "user": {"id": "005B0000003Hs6YIAS", "name": "alice@example.com"},
        "source": {"ip": "203.0.113.7", "geo": {"country_iso_code": "FR"}},
        "organization": {"id": "00D5j000000XXXXEAA"},
        "related": {"ip": ["203.0.113.7"], "user": ["alice@example.com"]},
        "salesforce": {
            "alert": {
                "count": 5,
                "first_seen": "2026-11-26T05:51:00.000Z",
                "last_seen": "2026-11-26T06:00:00.123Z",
                "group": "alice@example.com|203.0.113.7",
                "event_ids": [f"login-{i}-{n}" for n in range(5)],
                "dedup_key": f"sf-brute-force-login:alice@example.com|203.0.113.7:{i}",
            }
        },
    }
