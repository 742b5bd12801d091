"""Real-Time Event Monitoring over CometD with durable replay per channel.

Replay ids move only through ``emit`` (the journal), the next /meta/connect waits for ``emit`` to return,
and a channel is never left unsubscribed without a log line and a metric (docs/streaming.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable
from typing import Any, Literal, Protocol

import aiohttp
import structlog
from pydantic import Field

from forwarder import metrics
from forwarder.errors import RetryableError
from forwarder.records import Emit, Lane, Position, Record
from forwarder.salesforce.bayeux import (
    AuthExpired,
    BayeuxClient,
    Event,
    RehandshakeNeeded,
    ReplyKind,
    ServerBusy,
)
from forwarder.settings import Settings

log = structlog.get_logger()

#: Replay ext values (Message Durability v67): -1 new events only, -2 everything retained.
REPLAY_NEW, REPLAY_ALL = -1, -2


class StreamingConfig(Settings):
    enabled: bool = Field(True, description="Subscribe to the RTEM channels.")
    channels: list[str] = Field(
        default_factory=lambda: ["/event/LoginEventStream", "/event/LogoutEventStream"],
        description="CometD channels, e.g. /event/LoginEventStream.",
    )
    replay: Literal["latest", "earliest"] = Field(
        "latest", description="Where a channel starts when the journal has no replay id for it."
    )


class SalesforceSession(Protocol):
    @property
    def instance_url(self) -> str: ...
    @property
    def access_token(self) -> str: ...


class Authenticator(Protocol):
    """What ``forwarder.salesforce.auth.Authenticator`` offers the source."""

    async def session(self) -> SalesforceSession: ...
    def invalidate(self, access_token: str) -> None: ...


def default_backoff(attempt: int) -> float:
    """Full-jitter exponential backoff, capped at 30 s: under the 40 s after which Salesforce forgets a
    client that does not reconnect (Clients and Timeouts, v67)."""
    return random.uniform(0, min(30.0, 0.5 * 2 ** min(attempt, 10)))


def to_record(event: Event) -> Record:
    """The delivered payload as Salesforce sent it (decoded by orjson), and where it came from."""
    envelope: dict[str, Any] = {"replay_id": event.replay_id, "channel": event.channel}
    if event.event_uuid is not None:
        envelope["event_uuid"] = event.event_uuid
    kind = event.channel.rsplit("/", 1)[-1]
    return Record("streaming", kind, event.payload, envelope=envelope, from_json=True)


class StreamingSource:
    """Subscribes to ``config.channels`` and hands each /meta/connect batch to ``emit``."""

    name = "streaming"
    lane = Lane.REALTIME

    def __init__(
        self,
        config: StreamingConfig,
        auth: Authenticator,
        api_version: str,
        http: aiohttp.ClientSession,
        *,
        backoff: Callable[[int], float] = default_backoff,
    ) -> None:
        self.config = config
        self._auth = auth
        self._api_version = api_version
        self._http = http
        self._backoff = backoff
        self._durable: dict[str, int] = {}  # replay ids the journal holds
        self._subscribed: set[str] = set()
        self._gap_from: dict[str, int] = {}  # channel -> stale id, until the first event after it
        self._seen_without_id: set[str] = set()  # channels subscribed once with -1, no event yet
        self._failures = 0
        self._log = log.bind(source=self.name)

    @property
    def subscribed(self) -> frozenset[str]:
        return frozenset(self._subscribed)

    async def run(self, position: Position | None, emit: Emit) -> None:
        stored = (position or {}).get("replay") or {}
        self._durable = {ch: int(rid) for ch, rid in stored.items() if ch in self.config.channels}
        self._log.info("stream_starting", channels=len(self.config.channels), resumed=len(self._durable))
        while True:
            await self._session(emit)

    async def _session(self, emit: Emit) -> None:
        """One CometD session, from handshake until it breaks; the error decides how to start the next."""
        client: BayeuxClient | None = None
        try:
            session = await self._auth.session()
            client = BayeuxClient(
                self._http, f"{session.instance_url}/cometd/{self._api_version}", session.access_token
            )
            await client.handshake()
            await self._stream(client, emit)
        except AuthExpired as exc:
            if client is not None:
                self._auth.invalidate(client.access_token)
            await self._broken("auth_expired", exc)
        except ServerBusy as exc:
            await self._broken("server_busy", exc)
        except RehandshakeNeeded as exc:
            await self._broken("rehandshake", exc, pause=self._failures > 1)
        except (RetryableError, aiohttp.ClientError, TimeoutError) as exc:
            await self._broken("transport", exc)
        except asyncio.CancelledError:
            if client is not None:
                with contextlib.suppress(Exception):
                    await asyncio.shield(client.disconnect())
            raise
        finally:
            self._set_subscribed(set())

    async def _broken(self, reason: str, exc: Exception, *, pause: bool = True) -> None:
        self._failures += 1
        metrics.stream_reconnects.labels(reason).inc()
        metrics.source_errors.labels(self.name, reason).inc()
        self._log.warning("stream_reconnecting", reason=reason, error=str(exc), attempt=self._failures)
        if pause:
            await asyncio.sleep(self._backoff(self._failures))

    async def _stream(self, client: BayeuxClient, emit: Emit) -> None:
        due: dict[str, float] = dict.fromkeys(self.config.channels, 0.0)
        attempts: dict[str, int] = {}
        loop = asyncio.get_running_loop()
        while True:
            for channel in [ch for ch, at in due.items() if at <= loop.time()]:
                if await self._subscribe(client, channel):
                    del due[channel]
                else:
                    attempts[channel] = attempts.get(channel, 0) + 1
                    due[channel] = loop.time() + self._backoff(attempts[channel])
            events = await client.connect()
            self._failures = 0
            if events:
                await self._emit(events, emit)
            if client.interval:
                await asyncio.sleep(client.interval)

    async def _subscribe(self, client: BayeuxClient, channel: str) -> bool:
        """Subscribe from the durable id; a stale id falls back to -2 once, anything else is retried."""
        replay = self._durable[channel] if channel in self._durable else self._initial_replay(channel)
        result = await client.subscribe(channel, replay)
        if result.kind is ReplyKind.STALE_REPLAY and replay >= 0:
            if channel not in self._gap_from:  # counted once per gap, not per reconnect
                metrics.stream_replay_gaps.labels(channel).inc()
            self._gap_from[channel] = replay
            self._log.warning(
                "stream_replay_id_stale", channel=channel, stored_replay_id=replay, resume="earliest_retained"
            )
            replay = REPLAY_ALL
            result = await client.subscribe(channel, replay)
        if result.kind is not ReplyKind.OK:
            metrics.source_errors.labels(self.name, "subscribe").inc()
            self._log.warning(
                "stream_subscribe_failed",
                channel=channel,
                error=result.error,
                stored_replay_id=self._durable.get(channel),
            )
            return False
        self._set_subscribed(self._subscribed | {channel})
        self._log.info("stream_subscribed", channel=channel, replay_id=replay)
        return True

    def _initial_replay(self, channel: str) -> int:
        # A re-subscribe before the first event cannot say "from where -1 was": -2 loses nothing.
        if self.config.replay == "earliest" or channel in self._seen_without_id:
            return REPLAY_ALL
        self._seen_without_id.add(channel)
        return REPLAY_NEW

    async def _emit(self, events: list[Event], emit: Emit) -> None:
        replay = dict(self._durable)
        for event in events:
            replay[event.channel] = event.replay_id
        await emit([to_record(e) for e in events], {"replay": replay})
        self._durable = replay
        for event in events:
            self._report_gap(event)

    def _report_gap(self, event: Event) -> None:
        stale = self._gap_from.pop(event.channel, None)
        if stale is not None:
            self._log.warning(
                "stream_replay_gap",
                channel=event.channel,
                stored_replay_id=stale,
                earliest_available_replay_id=event.replay_id,
            )

    def _set_subscribed(self, channels: set[str]) -> None:
        for channel in self.config.channels:
            metrics.stream_subscribed.labels(channel).set(1 if channel in channels else 0)
        self._subscribed = channels
