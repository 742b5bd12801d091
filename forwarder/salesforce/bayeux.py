"""A small Bayeux 1.0 long-polling client for the Salesforce Streaming API, on aiohttp.

Why our own: docs/streaming.md (every aiocometd-based client drops a rejected re-subscription silently).
It keeps no background task and no queue: the caller sends each /meta/connect when it is ready, which is
the flow control. Every reply is classified once, here, into a value or one of the errors below.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import aiohttp
import orjson

from forwarder.errors import RetryableError

Message = dict[str, Any]

#: The stale replay id reply (Streaming API Error Codes v67); real replies have two spaces after
#: "invalid." while the docs show one, so the match accepts either, and nothing else.
_STALE_REPLAY = re.compile(
    r"^400::The replayId \{[^}]*\} you provided was invalid\.\s{1,2}Please provide a valid ID, -2 to "
    r"replay all events, or -1 to replay only new events\.$"
)
#: Long-polling is the only transport Salesforce offers (facts B4).
_HANDSHAKE = {"version": "1.0", "minimumVersion": "1.0", "supportedConnectionTypes": ["long-polling"]}
#: Socket timeout 110 s (Clients and Timeouts, v67) plus slack for the response to travel.
DEFAULT_CONNECT_TIMEOUT = 110.0
_HTTP_SLACK = 30.0


class BayeuxError(RetryableError):
    """A CometD request failed in a way a new attempt can fix; subclasses say what to redo."""


class AuthExpired(BayeuxError):
    """``401::Authentication invalid`` or HTTP 401/403: get a new token, then handshake again."""


class RehandshakeNeeded(BayeuxError):
    """``403::Unknown client`` or advice ``reconnect: handshake|none``: handshake again, resubscribe."""


class ServerBusy(RehandshakeNeeded):
    """``503::Server is too busy`` in ``ext.sfdc.failureReason``: wait, then handshake again."""


class ProtocolError(BayeuxError):
    """A 2xx body that is not Bayeux (HTML, empty, ``[]``, truncated JSON) or an unexpected reply."""


class ReplyKind(StrEnum):
    OK = "ok"
    AUTH = "auth"
    REHANDSHAKE = "rehandshake"
    STALE_REPLAY = "stale_replay"
    RETRY = "retry"


@dataclass(frozen=True, slots=True)
class Event:
    """One delivered platform event: ``{channel, data: {schema, payload, event: {EventUuid, replayId}}}``."""

    channel: str
    replay_id: int
    payload: dict[str, Any]
    event_uuid: str | None


@dataclass(frozen=True, slots=True)
class SubscribeResult:
    channel: str
    kind: ReplyKind
    error: str | None


def classify(reply: Mapping[str, Any]) -> ReplyKind:
    """Map one meta reply to what the caller must do, by the documented codes (Handling Streaming API
    Errors, v67): the ``error`` code and ``ext.sfdc.failureReason``, then the advice."""
    if reply.get("successful") is True:
        return ReplyKind.OK
    error = str(reply.get("error") or "")
    reason = _failure_reason(reply)
    advice = str((reply.get("advice") or {}).get("reconnect") or "")
    if _STALE_REPLAY.match(error):
        return ReplyKind.STALE_REPLAY
    if reason.startswith("503::"):  # "Server is too busy" arrives wrapped in a 401 error on connect
        return ReplyKind.REHANDSHAKE if advice in ("none", "handshake") else ReplyKind.RETRY
    if error.startswith("401::") or reason.startswith("401::"):
        return ReplyKind.AUTH
    if error.startswith("403::Unknown client") or advice in ("handshake", "none"):
        return ReplyKind.REHANDSHAKE
    return ReplyKind.RETRY


def _failure_reason(reply: Mapping[str, Any]) -> str:
    return str(((reply.get("ext") or {}).get("sfdc") or {}).get("failureReason") or "")


def parse_event(message: Mapping[str, Any]) -> Event | None:
    """An event message, or None for meta replies; raises ProtocolError on a broken event."""
    channel = message.get("channel")
    if not isinstance(channel, str) or channel.startswith("/meta/"):
        return None
    data = message.get("data")
    try:
        replay_id = data["event"]["replayId"]  # type: ignore[index]
        payload = data["payload"]  # type: ignore[index]
    except (KeyError, TypeError) as exc:
        raise ProtocolError(f"event without data.event.replayId/payload on {channel}") from exc
    if not isinstance(replay_id, int) or not isinstance(payload, dict):
        raise ProtocolError(f"event with a malformed replayId or payload on {channel}")
    return Event(channel, replay_id, payload, data["event"].get("EventUuid"))  # type: ignore[index]


class BayeuxClient:
    """One CometD session (one clientId) against ``endpoint`` = ``<instance_url>/cometd/<version>``."""

    def __init__(self, http: aiohttp.ClientSession, endpoint: str, access_token: str) -> None:
        self._http = http
        self._endpoint = endpoint
        self._token = access_token
        self._ids = itertools.count(1)
        self._cookies: dict[str, str] = {}  # BAYEUX_BROWSER and the load balancer's (facts B4)
        self.client_id: str | None = None
        #: The server's long-poll timeout from its last advice (seconds).
        self.poll_timeout = DEFAULT_CONNECT_TIMEOUT
        self.interval = 0.0

    @property
    def access_token(self) -> str:
        return self._token

    async def handshake(self) -> str:
        reply = _only(await self._send([{"channel": "/meta/handshake", **_HANDSHAKE}]), "/meta/handshake")
        self._raise_for(reply)
        client_id = reply.get("clientId")
        if not isinstance(client_id, str) or not client_id:
            raise ProtocolError("handshake reply without clientId")
        self.client_id = client_id
        return client_id

    async def subscribe(self, channel: str, replay_id: int) -> SubscribeResult:
        """Subscribe with the replay extension; a stale id or a refusal is a value, session loss raises."""
        msg = {"channel": "/meta/subscribe", "subscription": channel, "ext": {"replay": {channel: replay_id}}}
        reply = _only(await self._send([self._with_client(msg)]), "/meta/subscribe")
        kind = classify(reply)
        if kind in (ReplyKind.AUTH, ReplyKind.REHANDSHAKE):
            self._raise_for(reply)
        return SubscribeResult(channel, kind, None if kind is ReplyKind.OK else str(reply.get("error")))

    async def connect(self) -> list[Event]:
        """One long-poll: the events it delivered (maybe none). The reply's advice updates the timings."""
        msg = self._with_client({"channel": "/meta/connect", "connectionType": "long-polling"})
        messages = await self._send([msg], limit_s=self.poll_timeout + _HTTP_SLACK)
        events = [e for e in map(parse_event, messages) if e is not None]
        reply = _only(messages, "/meta/connect")
        self._raise_for(reply)
        advice = reply.get("advice") or {}
        if isinstance(advice.get("timeout"), int | float):
            self.poll_timeout = advice["timeout"] / 1000
        if isinstance(advice.get("interval"), int | float):
            self.interval = min(advice["interval"] / 1000, 10.0)
        return events

    async def disconnect(self) -> None:
        if self.client_id is not None:
            await self._send([self._with_client({"channel": "/meta/disconnect"})], limit_s=5.0)
            self.client_id = None

    def _with_client(self, msg: Message) -> Message:
        if self.client_id is None:
            raise RehandshakeNeeded("no clientId: handshake first")
        return {**msg, "clientId": self.client_id}

    def _raise_for(self, reply: Message) -> None:
        kind = classify(reply)
        text = f"{reply.get('channel')}: {reply.get('error')}"
        if kind is ReplyKind.AUTH:
            raise AuthExpired(text)
        if kind is ReplyKind.REHANDSHAKE:
            self.client_id = None
            raise (ServerBusy if _failure_reason(reply).startswith("503::") else RehandshakeNeeded)(text)
        if kind is not ReplyKind.OK:
            raise BayeuxError(text)

    async def _send(self, messages: list[Message], limit_s: float = 30.0) -> list[Message]:
        for msg in messages:
            msg["id"] = str(next(self._ids))
        async with self._http.post(
            self._endpoint,
            data=orjson.dumps(messages),
            headers={"Authorization": f"OAuth {self._token}", "Content-Type": "application/json"},
            cookies=self._cookies,
            timeout=aiohttp.ClientTimeout(total=limit_s),
        ) as resp:
            body = await resp.read()
            self._cookies.update({k: m.value for k, m in resp.cookies.items()})
            return _decode(resp.status, body)


def _decode(status: int, body: bytes) -> list[Message]:
    """Bayeux replies are a JSON array of objects; anything else is classified by the HTTP status."""
    if status in (401, 403):
        raise AuthExpired(f"HTTP {status}")  # also covers REST-style bodies (cometd-clients.md e3)
    try:
        decoded = orjson.loads(body)
    except orjson.JSONDecodeError:
        decoded = None
    if not isinstance(decoded, list) or not decoded or not all(isinstance(m, dict) for m in decoded):
        raise ProtocolError(f"HTTP {status}: not a Bayeux message array ({len(body)} bytes)")
    return decoded


def _only(messages: list[Message], channel: str) -> Message:
    for msg in messages:
        if msg.get("channel") == channel or ("channel" not in msg and "successful" in msg):
            return msg
    raise ProtocolError(f"no {channel} reply in the response")
