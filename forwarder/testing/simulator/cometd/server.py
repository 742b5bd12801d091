"""The simulator's Bayeux long-polling server at ``POST /cometd/{version}`` with the replay extension.

Shapes and error strings follow the Streaming API Developer Guide v67 (facts section B) and the compiled
fixture of real messages (``tests/unit/test_cometd_server.py`` compares them field for field).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from forwarder.testing.simulator.cometd.bus import EventBus

Message = dict[str, Any]

# Exact error texts: Streaming API Error Codes / Handling Streaming API Errors (v67). Real stale-replay
# responses carry TWO spaces after "invalid." (StreamSets, .NET and PHP client regexes; facts B6).
STALE_REPLAY = (
    "400::The replayId {{{}}} you provided was invalid.  Please provide a valid ID, -2 to replay all "
    "events, or -1 to replay only new events."
)
UNKNOWN_CHANNEL = "400::The channel you requested to subscribe to doesn't exist {}"
UNKNOWN_CLIENT = "403::Unknown client"
AUTH_INVALID = "401::Authentication invalid"
AUTH_MISSING = "401::Request requires authentication"
HANDSHAKE_DENIED = "403::Handshake denied"
CONNECTION_LIMIT = (
    "403::To protect all customers from excessive use and Denial of Service attacks, we limit the number "
    "of simultaneous connections per server.  Your request has been denied because this limit has been "
    "exceeded.  Please try your request again later."
)
RESTRICTED_CHANNEL = "403::Restricted channel"
SERVER_TOO_BUSY = "503::Server is too busy.  Please try your request again later."
#: Salesforce expires a client that has not reconnected within 40 s (Clients and Timeouts, v67).
RECONNECT_TIMEOUT = 40.0


@dataclass(slots=True)
class _Client:
    browser: str
    cursors: dict[str, int] = field(default_factory=dict)
    last_seen: float = 0.0
    wake: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(slots=True)
class Faults:
    """Switches the tests and the admin endpoint flip; each applies to the next N requests."""

    handshake_denied: str | None = None  # an ext.sfdc.failureReason, e.g. CONNECTION_LIMIT
    subscribe_errors: list[str] = field(default_factory=list)  # consumed one per /meta/subscribe
    malformed: str | None = None  # "html" | "empty" | "array" | "truncated"
    malformed_count: int = 0
    connect_busy: int = 0  # /meta/connect answers the documented "Server is too busy" reply
    rest_401: int = 0  # HTTP 401 with a REST error body, not Bayeux (cometd-clients.md scenario e3)


class CometdServer:
    """Bayeux server at ``POST /cometd/{version}`` backed by an :class:`EventBus`."""

    def __init__(
        self,
        bus: EventBus,
        check_token: Callable[[str], bool],
        *,
        connect_timeout: float = 110.0,
        max_batch: int = 100,
        reconnect_timeout: float = RECONNECT_TIMEOUT,
    ) -> None:
        self.bus = bus
        self.check_token = check_token
        self.connect_timeout = connect_timeout
        self.max_batch = max_batch
        self.reconnect_timeout = reconnect_timeout
        self.faults = Faults()
        #: Channels the user may not read (missing permission): ``403::Restricted channel`` (error table v67).
        self.denied_channels: set[str] = set()
        self.requests: list[list[Message]] = []  # every request body seen, for tests
        self.polling = asyncio.Event()  # set while a /meta/connect is held open, for tests
        self.on_request: Callable[[list[Message]], None] | None = None  # observer hook for tests
        self._clients: dict[str, _Client] = {}
        bus.add_listener(self._wake_all)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/cometd/{version}", self._handle)
        app.router.add_post("/cometd", self._no_version)
        app.router.add_post("/cometd/", self._no_version)

    # --- fault hooks -------------------------------------------------------------------------------
    def forget_clients(self) -> None:
        """Server-side session loss: every known client gets ``403::Unknown client`` next."""
        self._wake_all()
        self._clients.clear()

    def deny_handshakes(self, failure_reason: str | None = CONNECTION_LIMIT) -> None:
        self.faults.handshake_denied = failure_reason

    def fail_subscribes(self, *errors: str) -> None:
        self.faults.subscribe_errors.extend(errors)

    def malformed_responses(self, kind: str | None, count: int = 1_000_000) -> None:
        """Answer the next ``count`` requests with a 200 that is not Bayeux (None turns it off)."""
        self.faults.malformed, self.faults.malformed_count = kind, count if kind else 0

    def busy_connects(self, count: int) -> None:
        self.faults.connect_busy = count

    def rest_unauthorized(self, count: int) -> None:
        """Answer the next ``count`` requests with HTTP 401 and the REST ``INVALID_SESSION_ID`` body."""
        self.faults.rest_401 = count

    @property
    def client_count(self) -> int:
        return len(self._clients)

    # --- HTTP ---------------------------------------------------------------------------------------
    async def _no_version(self, request: web.Request) -> web.Response:
        return _error_response("400::API version in the URI is mandatory. URI format: '/cometd/67.0'")

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if not _supported_version(request.match_info["version"]):
            return _error_response(
                "400::Unsupported API version. Only API versions '37.0' and later are supported. "
                "URI format: '/cometd/67.0'"
            )
        try:
            body = await request.json()
        except ValueError:
            return _error_response("400::Malformed request body")
        messages = body if isinstance(body, list) else [body]
        self.requests.append(messages)
        if self.on_request is not None:
            self.on_request(messages)
        if self.faults.malformed_count > 0:
            self.faults.malformed_count -= 1
            return _malformed(self.faults.malformed or "empty")
        if self.faults.rest_401 > 0:
            self.faults.rest_401 -= 1
            # The REST API's expired-session answer (REST API Developer Guide, "Status Codes and Error
            # Responses"); whether /cometd ever sends it is unknown, so clients must survive it.
            body = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
            return web.json_response(body, status=401)
        return await self._answer(request, messages)

    async def _answer(self, request: web.Request, messages: list[Message]) -> web.Response:
        token = _bearer(request.headers.get("Authorization", ""))
        browser = request.cookies.get("BAYEUX_BROWSER") or uuid.uuid4().hex[:16]
        replies: list[Message] = []
        for msg in messages:
            replies.extend(await self._dispatch(msg, token, browser))
        response = web.json_response(replies)
        if "BAYEUX_BROWSER" not in request.cookies:
            response.set_cookie("BAYEUX_BROWSER", browser, path="/")
        return response

    async def _dispatch(self, msg: Message, token: str | None, browser: str) -> list[Message]:
        channel = msg.get("channel")
        if channel == "/meta/handshake":
            return [self._handshake(msg, token, browser)]
        if token is None or not self.check_token(token):
            return [_auth_invalid(msg)]
        client = self._client(msg)
        if client is None:
            return [_unknown_client(msg)]
        client.last_seen = asyncio.get_running_loop().time()
        if channel == "/meta/subscribe":
            return [self._subscribe(msg, client)]
        if channel == "/meta/unsubscribe":
            client.cursors.pop(str(msg.get("subscription")), None)
            return [_reply(msg, successful=True, subscription=msg.get("subscription"))]
        if channel == "/meta/connect":
            return await self._connect(msg, client)
        if channel == "/meta/disconnect":
            self._clients.pop(str(msg.get("clientId")), None)
            client.wake.set()
            return [_reply(msg, successful=True)]
        return [_reply(msg, successful=False, error=f"400::Invalid channel {channel}")]

    def _client(self, msg: Message) -> _Client | None:
        client = self._clients.get(str(msg.get("clientId")))
        if client is None:
            return None
        now = asyncio.get_running_loop().time()
        if now - client.last_seen > self.reconnect_timeout:
            del self._clients[str(msg.get("clientId"))]
            return None
        return client

    # --- meta channels -----------------------------------------------------------------------------
    def _handshake(self, msg: Message, token: str | None, browser: str) -> Message:
        reason = None
        if token is None:
            reason = AUTH_MISSING
        elif not self.check_token(token):
            reason = AUTH_INVALID
        elif self.faults.handshake_denied:
            reason = self.faults.handshake_denied
        if reason is not None:
            # Both denial samples of "Handling Streaming API Errors" (v67): only the capacity one
            # carries the replay ext keys.
            ext: Message = {"sfdc": {"failureReason": reason}}
            if not reason.startswith("401::"):
                ext.update({"replay": True, "payload.format": True})
            return _reply(
                msg,
                successful=False,
                error=HANDSHAKE_DENIED,
                advice={"reconnect": "none"},
                ext=ext,
            )
        client_id = uuid.uuid4().hex[:26]
        self._clients[client_id] = _Client(browser, last_seen=asyncio.get_running_loop().time())
        return _reply(
            msg,
            successful=True,
            clientId=client_id,
            version="1.0",
            minimumVersion="1.0",
            supportedConnectionTypes=["long-polling"],
            reestablish=False,
            ext={"replay": True, "payload.format": True},
        )

    def _subscribe(self, msg: Message, client: _Client) -> Message:
        sub = msg.get("subscription")
        if not isinstance(sub, str) or not sub:
            return _reply(msg, successful=False, error="400::Channel name not specified")
        if self.faults.subscribe_errors:
            return _reply(msg, successful=False, error=self.faults.subscribe_errors.pop(0), subscription=sub)
        if sub in self.denied_channels:
            return _reply(msg, successful=False, error=RESTRICTED_CHANNEL, subscription=sub)
        if not self.bus.has_channel(sub):
            return _reply(msg, successful=False, error=UNKNOWN_CHANNEL.format(sub), subscription=sub)
        replay = _requested_replay(msg, sub)
        if replay is None or (replay not in (-1, -2) and not self.bus.is_valid(sub, replay)):
            shown = (msg.get("ext") or {}).get("replay", {}).get(sub)
            return _reply(msg, successful=False, error=STALE_REPLAY.format(shown), subscription=sub)
        if replay == -1:
            replay = self.bus.latest(sub)
        elif replay == -2:
            replay = self.bus.earliest_cursor(sub)
        client.cursors[sub] = replay
        return _reply(msg, successful=True, subscription=sub)

    async def _connect(self, msg: Message, client: _Client) -> list[Message]:
        if msg.get("connectionType", "long-polling") != "long-polling":
            return [
                _reply(msg, successful=False, error=f"400::Invalid connection type {msg['connectionType']}")
            ]
        if self.faults.connect_busy > 0:
            self.faults.connect_busy -= 1
            return [
                _reply(
                    msg,
                    successful=False,
                    error=AUTH_INVALID,
                    advice={"reconnect": "none", "interval": 0},
                    ext={"sfdc": {"failureReason": SERVER_TOO_BUSY}},
                )
            ]
        events = self._pending(client)
        if not events and not _is_first_connect(msg):
            client.wake.clear()
            self.polling.set()
            try:
                async with asyncio.timeout(self.connect_timeout):
                    await client.wake.wait()
            except TimeoutError:
                pass
            finally:
                self.polling.clear()
            if client is not self._clients.get(str(msg.get("clientId"))):
                return [_unknown_client(msg)]
            events = self._pending(client)
        client.last_seen = asyncio.get_running_loop().time()
        return [*events, _reply(msg, successful=True, advice=self._advice(client))]

    def _pending(self, client: _Client) -> list[Message]:
        out: list[Message] = []
        for channel, cursor in client.cursors.items():
            batch = self.bus.after(channel, cursor, self.max_batch - len(out))
            if batch:
                client.cursors[channel] = batch[-1]["data"]["event"]["replayId"]
                out.extend(batch)
        return out

    def _advice(self, client: _Client) -> Message:
        advice: Message = {"interval": 0, "reconnect": "retry", "timeout": int(self.connect_timeout * 1000)}
        if sum(1 for c in self._clients.values() if c.browser == client.browser) > 1:
            # Several clients behind one BAYEUX_BROWSER cookie (Step 5 example of the v67 guide).
            advice.update({"interval": 2000, "multiple-clients": True})
        return advice

    def _wake_all(self) -> None:
        for client in self._clients.values():
            client.wake.set()


def _is_first_connect(msg: Message) -> bool:
    # CometD clients send the first connect with advice timeout 0 to learn the server's advice at once.
    return (msg.get("advice") or {}).get("timeout") == 0


def _requested_replay(msg: Message, sub: str) -> int | None:
    """The replay ext value for ``sub`` (-1 when absent, facts B5); ints and numeric strings are seen."""
    value = ((msg.get("ext") or {}).get("replay") or {}).get(sub, -1)
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _supported_version(version: str) -> bool:
    try:
        return float(version) >= 37.0
    except ValueError:
        return False


def _bearer(header: str) -> str | None:
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme in ("OAuth", "Bearer") else None


def _reply(msg: Message, **fields: Any) -> Message:
    base: Message = {"channel": msg.get("channel")}
    if "id" in msg:
        base["id"] = msg["id"]
    if "clientId" in msg and "clientId" not in fields:
        base["clientId"] = msg["clientId"]
    return base | fields


def _auth_invalid(msg: Message) -> Message:
    return _reply(msg, successful=False, error=AUTH_INVALID, advice={"reconnect": "none", "interval": 0})


def _unknown_client(msg: Message) -> Message:
    return _reply(
        msg, successful=False, error=UNKNOWN_CLIENT, advice={"interval": 0, "reconnect": "handshake"}
    )


def _error_response(error: str) -> web.Response:
    return web.json_response([{"successful": False, "error": error}], status=400)


def _malformed(kind: str) -> web.Response:
    bodies = {
        "html": ("<html><body>Service Unavailable</body></html>", "text/html"),
        "array": ("[]", "application/json"),
        "truncated": ('[{"channel": "/meta/co', "application/json"),
    }
    text, ctype = bodies.get(kind, ("", "application/json"))
    return web.Response(text=text, content_type=ctype)


@contextlib.asynccontextmanager
async def serve(server: CometdServer, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Run ``server`` alone on its own aiohttp app (tests, before or without the full simulator)."""
    app = web.Application()
    server.add_routes(app)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.forget_clients()
        await runner.cleanup()
