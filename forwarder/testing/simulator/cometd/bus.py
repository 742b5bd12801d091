"""The simulator's platform-event bus: retained events per channel with opaque replay ids."""

from __future__ import annotations

import base64
import hashlib
import random
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

Message = dict[str, Any]

#: RTEM stream channels (facts B1); publishing to any other channel creates it.
RTEM_CHANNELS: tuple[str, ...] = tuple(
    f"/event/{name}"
    for name in (
        "LoginEventStream",
        "LogoutEventStream",
        "LoginAsEventStream",
        "ApiEventStream",
        "LightningUriEventStream",
        "UriEventStream",
        "ListViewEventStream",
        "ReportEventStream",
        "BulkApiResultEvent",
        "FileEvent",
        "PermissionSetEvent",
        "ApiAnomalyEvent",
        "CredentialStuffingEvent",
        "ReportAnomalyEvent",
        "SessionHijackingEvent",
        "LoginAnomalyEvent",
        "GuestUserAnomalyEvent",
        "ConcurLongRunApexErrEvent",
        "MobileEmailEvent",
        "MobileEnforcedPolicyEvent",
        "MobileScreenshotEvent",
        "MobileTelephonyEvent",
    )
)


@dataclass(slots=True)
class _Stored:
    replay_id: int
    published_at: datetime
    data: Message


@dataclass(slots=True)
class _Channel:
    events: deque[_Stored] = field(default_factory=deque)
    last_id: int = 0  # highest replay id ever issued
    purged_max: int = 0  # highest replay id dropped by retention (0: nothing dropped)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class EventBus:
    """Retained platform events per channel with opaque, non-contiguous replay ids (Message Durability)."""

    def __init__(
        self,
        retention: timedelta = timedelta(hours=72),
        clock: Callable[[], datetime] = _utcnow,
        *,
        seed: int = 0,
        channels: tuple[str, ...] = RTEM_CHANNELS,
    ) -> None:
        self.retention = retention
        self._clock = clock
        self._rng = random.Random(seed)
        self._channels: dict[str, _Channel] = {c: _Channel() for c in channels}
        self._listeners: list[Callable[[], None]] = []

    def publish(self, channel: str, payload: dict[str, Any]) -> int:
        """Store one event and wake long-polls; replay ids grow by random steps ("999 -> 1025", v67)."""
        chan = self._channels.setdefault(channel, _Channel())
        chan.last_id += self._rng.randint(1, 30) if chan.last_id else self._rng.randint(1000, 20000)
        data = {
            "schema": _schema_id(channel, payload),
            "payload": payload,
            "event": {
                "EventUuid": str(uuid.UUID(int=self._rng.getrandbits(128), version=4)),
                "replayId": chan.last_id,
            },
        }
        chan.events.append(_Stored(chan.last_id, self._clock(), data))
        for listener in list(self._listeners):
            listener()
        return chan.last_id

    def create_channel(self, channel: str) -> None:
        """Define a channel (a custom platform event) before anything is published on it."""
        self._channels.setdefault(channel, _Channel())

    def has_channel(self, channel: str) -> bool:
        return channel in self._channels

    def add_listener(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def latest(self, channel: str) -> int:
        return self._channels[channel].last_id

    def earliest_cursor(self, channel: str) -> int:
        """Cursor before the oldest retained event (what replay -2 starts from)."""
        self._purge(channel)
        return self._channels[channel].purged_max

    def is_valid(self, channel: str, replay_id: int) -> bool:
        """An id is usable while the event it names is retained: a quiet channel's last id goes stale
        after the retention window too (the known "replayId invalid" of channels idle for days)."""
        self._purge(channel)
        chan = self._channels[channel]
        oldest = chan.events[0].replay_id if chan.events else chan.last_id + 1
        return oldest <= replay_id <= chan.last_id

    def after(self, channel: str, cursor: int, limit: int) -> list[Message]:
        self._purge(channel)
        out = []
        for stored in self._channels[channel].events:
            if stored.replay_id > cursor:
                out.append({"data": stored.data, "channel": channel})
                if len(out) >= limit:
                    break
        return out

    def _purge(self, channel: str) -> None:
        chan = self._channels[channel]
        horizon = self._clock() - self.retention
        while chan.events and chan.events[0].published_at < horizon:
            chan.purged_max = chan.events.popleft().replay_id


def _schema_id(channel: str, payload: dict[str, Any]) -> str:
    digest = hashlib.sha256((channel + ",".join(sorted(payload))).encode()).digest()
    return base64.urlsafe_b64encode(digest)[:22].decode()
