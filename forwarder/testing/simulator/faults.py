"""Fault switches tests flip directly or through ``POST /_sim/faults``; each has a documented effect."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import orjson
import structlog
from aiohttp import web

from forwarder.testing.simulator.responses import json_response

log = structlog.get_logger()

MALFORMED_KINDS = ("html", "empty", "array", "no_id")


class FaultTarget(Protocol):
    """What a fault acts on besides HTTP answers: sessions, CometD clients, the org's log files."""

    def expire_sessions(self) -> None: ...

    def forget_cometd_clients(self) -> None: ...

    def set_hourly_entitlement(self, enabled: bool) -> None: ...

    def late_hourly_file(self, event_type: str, rows: int) -> str: ...


@dataclass
class Faults:
    """REST-side switches. Counts are consumed one per affected request; ``clear()`` turns all off."""

    target: FaultTarget | None = None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    latency: float = 0.0  # seconds added before every REST/OAuth answer
    unavailable_count: int = 0  # next N requests get 503
    unavailable_until: datetime | None = None  # or every request until then
    rate_limited: bool = False  # REST answers 403 REQUEST_LIMIT_EXCEEDED
    reset_after_bytes: int | None = None  # LogFile downloads are cut after this many body bytes
    reset_count: int = 0
    malformed: dict[str, list[Any]] = field(default_factory=dict)  # endpoint -> [kind, remaining]
    # Missing permissions: the integration user cannot see these sObjects (SOQL INVALID_TYPE, as Salesforce
    # answers without View Event Log Files / View Setup and Configuration) or subscribe to these channels.
    denied_objects: set[str] = field(default_factory=set)
    denied_channels: set[str] = field(default_factory=set)
    clock_skew: float = 0.0  # seconds added to the Date header of every answer (a server clock that is off)

    # --- switches ------------------------------------------------------------------------------------------
    def unavailable(self, count: int = 0, seconds: float = 0.0) -> None:
        self.unavailable_count = count
        self.unavailable_until = self.clock() + timedelta(seconds=seconds) if seconds else None

    def reset_logfile(self, after_bytes: int = 1024, count: int = 1) -> None:
        self.reset_after_bytes, self.reset_count = after_bytes, count

    def malform(self, endpoint: str, kind: str, count: int = 1) -> None:
        """``endpoint`` "query" | "token"; ``kind`` html | empty | array | no_id (records without Id)."""
        if kind not in MALFORMED_KINDS or endpoint not in ("query", "token"):
            raise ValueError(f"unknown malformed fault {endpoint}/{kind}")
        self.malformed[endpoint] = [kind, count]

    def deny(self, objects: list[str] | None = None, channels: list[str] | None = None) -> None:
        """Take access away: SOQL on ``objects`` answers INVALID_TYPE, ``channels`` refuse subscriptions."""
        self.denied_objects.update(objects or ())
        self.denied_channels.update(channels or ())

    def expire_sessions(self) -> None:
        self._target().expire_sessions()

    def forget_cometd_clients(self) -> None:
        self._target().forget_cometd_clients()

    def set_hourly_entitlement(self, enabled: bool) -> None:
        self._target().set_hourly_entitlement(enabled)

    def late_hourly_file(self, event_type: str = "Login", rows: int = 3) -> str:
        """Late rows for an hour already filed: a new file, same hour, Sequence + 1; returns its Id."""
        return self._target().late_hourly_file(event_type, rows)

    def clear(self) -> None:
        self.latency, self.unavailable_count, self.unavailable_until = 0.0, 0, None
        self.rate_limited, self.reset_after_bytes, self.reset_count = False, None, 0
        self.malformed.clear()
        self.denied_objects.clear()  # cleared in place: the CometD server holds the same set
        self.denied_channels.clear()
        self.clock_skew = 0.0

    def _target(self) -> FaultTarget:
        if self.target is None:
            raise RuntimeError("faults are not attached to a running simulator")
        return self.target

    # --- consumption by handlers ---------------------------------------------------------------------------
    def take_unavailable(self) -> bool:
        if self.unavailable_count > 0:
            self.unavailable_count -= 1
            return True
        return self.unavailable_until is not None and self.clock() < self.unavailable_until

    def take_malformed(self, endpoint: str) -> str | None:
        entry = self.malformed.get(endpoint)
        if not entry or entry[1] <= 0:
            return None
        entry[1] -= 1
        return str(entry[0])

    def take_reset(self) -> int | None:
        if self.reset_after_bytes is None or self.reset_count <= 0:
            return None
        self.reset_count -= 1
        return self.reset_after_bytes

    async def delay(self) -> None:
        if self.latency > 0:
            await asyncio.sleep(self.latency)

    def state(self) -> dict[str, Any]:
        return {
            "latency": self.latency,
            "unavailable_count": self.unavailable_count,
            "unavailable_until": self.unavailable_until.isoformat() if self.unavailable_until else None,
            "rate_limited": self.rate_limited,
            "reset_after_bytes": self.reset_after_bytes,
            "reset_count": self.reset_count,
            "malformed": self.malformed,
            "missing_permissions": {
                "objects": sorted(self.denied_objects),
                "channels": sorted(self.denied_channels),
            },
            "clock_skew": self.clock_skew,
        }

    # --- admin endpoint ------------------------------------------------------------------------------------
    async def admin(self, request: web.Request) -> web.Response:
        """``POST /_sim/faults`` with a JSON object of switches; answers the resulting state."""
        try:
            body = orjson.loads(await request.read() or b"{}")
            result = self.apply(body)
        except (ValueError, TypeError, KeyError) as exc:
            return json_response({"error": str(exc)}, status=400)
        return json_response({**self.state(), **result})

    def apply(self, body: dict[str, Any]) -> dict[str, Any]:
        log.info("simulator_faults_set", switches=sorted(body))
        result: dict[str, Any] = {}
        if body.get("clear"):
            self.clear()
        if "latency" in body:
            self.latency = float(body["latency"])
        if "unavailable" in body:
            self.unavailable(
                int(body["unavailable"].get("count", 0)), float(body["unavailable"].get("seconds", 0))
            )
        if "rate_limited" in body:
            self.rate_limited = bool(body["rate_limited"])
        if "reset_logfile" in body:
            self.reset_logfile(
                int(body["reset_logfile"].get("after_bytes", 1024)),
                int(body["reset_logfile"].get("count", 1)),
            )
        if "malformed" in body:
            spec = body["malformed"]
            self.malform(str(spec["endpoint"]), str(spec["kind"]), int(spec.get("count", 1)))
        self._apply_org(body)
        if body.get("expire_sessions"):
            self.expire_sessions()
        if body.get("forget_cometd_clients"):
            self.forget_cometd_clients()
        if "hourly_entitlement" in body:
            self.set_hourly_entitlement(bool(body["hourly_entitlement"]))
        if "late_hourly_file" in body:
            spec = body["late_hourly_file"]
            result["late_file_id"] = self.late_hourly_file(
                str(spec.get("event_type", "Login")), int(spec.get("rows", 3))
            )
        return result

    def _apply_org(self, body: dict[str, Any]) -> None:
        """Switches about the org itself: permissions the user lacks, the server's clock."""
        if "missing_permissions" in body:
            spec = body["missing_permissions"]
            self.deny([str(o) for o in spec.get("objects", [])], [str(c) for c in spec.get("channels", [])])
        if "clock_skew" in body:
            self.clock_skew = float(body["clock_skew"])
