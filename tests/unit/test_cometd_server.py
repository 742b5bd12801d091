"""The simulator's CometD server answers like Salesforce: the compiled real conversation, replay, faults."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from forwarder.testing.clock import ManualClock
from forwarder.testing.fixtures import SHARED_FIXTURES
from forwarder.testing.simulator.cometd import (
    CONNECTION_LIMIT,
    CometdServer,
    EventBus,
    serve,
)

FIXTURE = SHARED_FIXTURES / "streaming/compiled-bayeux-examples.json"
EXAMPLES = {e["id"]: e["message"] for e in json.loads(FIXTURE.read_text())["examples"]}
TOKEN = "00Dxx!good-token"
LOGIN = "/event/LoginEventStream"
# Values that are ids or times: they must be present, but their values are the server's own.
VOLATILE = {"id", "clientId", "replayId", "EventUuid", "schema"}


def Clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 1, tzinfo=UTC))


class Org:
    """A CometD server on a loopback port and a raw Bayeux conversation with it."""

    def __init__(self, server: CometdServer, url: str, http: aiohttp.ClientSession) -> None:
        self.server, self.bus, self.url, self.http = server, server.bus, url, http
        self.token = TOKEN
        self.ids = 0

    async def post(self, *messages: dict[str, Any], version: str = "62.0") -> tuple[int, Any]:
        for msg in messages:
            self.ids += 1
            msg.setdefault("id", str(self.ids))
        async with self.http.post(
            f"{self.url}/cometd/{version}",
            json=list(messages),
            headers={"Authorization": f"OAuth {self.token}"},
        ) as resp:
            text = await resp.text()
            return resp.status, (
                json.loads(text) if text.startswith(("[", "{")) and text.endswith(("]", "}")) else text
            )

    async def handshake(self) -> str:
        _, replies = await self.post(
            {"channel": "/meta/handshake", "version": "1.0", "supportedConnectionTypes": ["long-polling"]}
        )
        return str(replies[0]["clientId"])

    async def subscribe(self, client_id: str, channel: str = LOGIN, replay: Any = -1) -> dict[str, Any]:
        msg = {
            "channel": "/meta/subscribe",
            "clientId": client_id,
            "subscription": channel,
            "ext": {"replay": {channel: replay}},
        }
        _, replies = await self.post(msg)
        return dict(replies[0])

    async def connect(self, client_id: str) -> list[dict[str, Any]]:
        _, replies = await self.post(
            {"channel": "/meta/connect", "clientId": client_id, "connectionType": "long-polling"}
        )
        return list(replies)


@pytest.fixture
def clock() -> ManualClock:
    return Clock()


@pytest.fixture
async def org(clock: ManualClock) -> AsyncIterator[Org]:
    server = CometdServer(EventBus(clock=clock), lambda t: t == TOKEN, connect_timeout=0.2)
    jar = aiohttp.CookieJar(unsafe=True)  # keep BAYEUX_BROWSER on 127.0.0.1
    async with serve(server) as url, aiohttp.ClientSession(cookie_jar=jar) as http:
        yield Org(server, url, http)


def assert_same_fields(
    expected: Any, actual: Any, path: str = "$", extra: frozenset[str] = frozenset()
) -> None:
    """Same keys at every level and same values, except ids/times (present, values free)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), path
        assert set(actual) - extra == set(expected), f"{path}: {sorted(actual)} != {sorted(expected)}"
        for key, value in expected.items():
            if key not in VOLATILE:
                assert_same_fields(value, actual[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), path
        assert len(actual) == len(expected), path
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            assert_same_fields(e, a, f"{path}[{i}]", extra)
    else:
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"


async def test_handshake_reply_matches_the_documented_one(org: Org) -> None:
    _, replies = await org.post(
        {"channel": "/meta/handshake", "version": "1.0", "supportedConnectionTypes": ["long-polling"]}
    )
    assert_same_fields(EXAMPLES["handshake_success"], replies[0])


async def test_subscribe_with_string_replay_ext_matches_the_documented_reply(org: Org) -> None:
    client_id = await org.handshake()
    request = dict(
        EXAMPLES["subscribe_request_with_replay_ext"], clientId=client_id
    )  # replay "-2" as a string
    _, replies = await org.post(request)
    expected = dict(EXAMPLES["subscribe_success"], subscription=LOGIN)
    assert_same_fields(expected, replies[0])


async def test_connect_reply_advises_multiple_clients_behind_one_browser_cookie(org: Org) -> None:
    first = await org.handshake()
    await org.handshake()  # same cookie jar: a second client in the same "browser"
    replies = await org.connect(first)
    expected = dict(
        EXAMPLES["connect_success"], advice=dict(EXAMPLES["connect_success"]["advice"], timeout=200)
    )
    assert_same_fields(expected, replies[-1])


async def test_connect_reply_of_a_lone_client_advises_retry_with_the_configured_timeout(org: Org) -> None:
    client_id = await org.handshake()
    replies = await org.connect(client_id)
    assert replies[-1]["advice"] == {"interval": 0, "reconnect": "retry", "timeout": 200}


async def test_event_delivery_has_the_real_capture_shape(org: Org) -> None:
    captured = EXAMPLES["loginEventStream_delivery_real_capture"][0]
    client_id = await org.handshake()
    await org.subscribe(client_id)
    org.bus.publish(LOGIN, captured["data"]["payload"])
    replies = await org.connect(client_id)
    # 2023 captures and the docs add data.event.EventUuid (API 52.0+; facts B3); the 2021 capture predates it.
    event = replies[0]
    assert set(event["data"]["event"]) == {"EventUuid", "replayId"}
    event["data"]["event"].pop("EventUuid")
    assert_same_fields(captured, event)
    assert isinstance(event["data"]["event"]["replayId"], int)
    assert len(event["data"]["schema"]) == 22
    assert replies[-1]["channel"] == "/meta/connect"


async def test_platform_event_delivery_matches_the_documented_example(org: Org) -> None:
    doc = EXAMPLES["platform_event_delivery"]
    org.bus.create_channel(doc["channel"])
    client_id = await org.handshake()
    await org.subscribe(client_id, doc["channel"])
    org.bus.publish(doc["channel"], doc["data"]["payload"])
    replies = await org.connect(client_id)
    assert_same_fields(doc, replies[0])


async def test_connect_with_a_revoked_token_is_the_documented_401(org: Org) -> None:
    client_id = await org.handshake()
    org.token = "revoked"
    replies = await org.connect(client_id)
    assert_same_fields(EXAMPLES["connect_401_authentication_invalid"], replies[0])


async def test_handshake_with_a_bad_token_is_denied_as_documented(org: Org) -> None:
    org.token = "revoked"
    _, replies = await org.post({"channel": "/meta/handshake", "version": "1.0"})
    # The doc sample omits the replay ext keys our denial carries (the connection-limit sample has them).
    assert_same_fields(EXAMPLES["handshake_denied_auth_invalid"], replies[0], extra=frozenset({"id"}))
    assert replies[0]["ext"]["sfdc"] == {"failureReason": "401::Authentication invalid"}


async def test_deny_handshakes_answers_the_connection_limit_text(org: Org) -> None:
    org.server.deny_handshakes(CONNECTION_LIMIT)
    _, replies = await org.post({"channel": "/meta/handshake", "version": "1.0"})
    assert_same_fields(EXAMPLES["handshake_denied_connection_limit"], replies[0])


async def test_forget_clients_answers_unknown_client_with_handshake_advice(org: Org) -> None:
    client_id = await org.handshake()
    org.server.forget_clients()
    replies = await org.connect(client_id)
    # The doc sample has no channel/clientId/id keys; Bayeux replies always echo them (CometD spec 3.x).
    assert_same_fields(
        EXAMPLES["connect_403_unknown_client"], replies[0], extra=frozenset({"channel", "id", "clientId"})
    )


async def test_forget_clients_ends_a_pending_long_poll_with_unknown_client() -> None:
    server = CometdServer(EventBus(), lambda t: t == TOKEN, connect_timeout=30)
    async with serve(server) as url, aiohttp.ClientSession() as http:
        org = Org(server, url, http)
        client_id = await org.handshake()
        poll = asyncio.create_task(org.connect(client_id))
        async with asyncio.timeout(5):
            await server.polling.wait()
            server.forget_clients()
            replies = await poll
    assert replies[0]["error"] == "403::Unknown client"


async def test_busy_connects_answers_the_documented_server_too_busy(org: Org) -> None:
    client_id = await org.handshake()
    org.server.busy_connects(1)
    replies = await org.connect(client_id)
    assert_same_fields(EXAMPLES["connect_503_server_too_busy"], replies[0])
    assert (await org.connect(client_id))[-1]["successful"] is True


async def test_fail_subscribes_answers_the_given_error_once(org: Org) -> None:
    client_id = await org.handshake()
    org.server.fail_subscribes("403::Restricted channel")
    first = await org.subscribe(client_id)
    assert (first["successful"], first["error"], first["subscription"]) == (
        False,
        "403::Restricted channel",
        LOGIN,
    )
    assert (await org.subscribe(client_id))["successful"] is True


@pytest.mark.parametrize(
    ("kind", "content_type", "body"),
    [
        ("html", "text/html", "<html><body>Service Unavailable</body></html>"),
        ("empty", "application/json", ""),
        ("array", "application/json", "[]"),
    ],
)
async def test_malformed_responses_answer_200_with_a_non_bayeux_body(
    org: Org, kind: str, content_type: str, body: str
) -> None:
    org.server.malformed_responses(kind, count=1)
    async with org.http.post(f"{org.url}/cometd/62.0", json=[{"channel": "/meta/handshake"}]) as resp:
        assert (resp.status, resp.content_type, await resp.text()) == (200, content_type, body)
    _, replies = await org.post({"channel": "/meta/handshake", "version": "1.0"})
    assert replies[0]["successful"] is True


async def test_purged_replay_id_is_refused_with_the_two_space_text(org: Org, clock: ManualClock) -> None:
    old = org.bus.publish(LOGIN, {"n": 1})
    clock.now += timedelta(hours=73)
    org.bus.publish(LOGIN, {"n": 2})
    client_id = await org.handshake()
    reply = await org.subscribe(client_id, replay=old - 1)
    expected = dict(EXAMPLES["subscribe_400_invalid_replay_id"], subscription=LOGIN)
    expected["error"] = expected["error"].replace("{1}", f"{{{old - 1}}}")
    assert_same_fields(expected, reply)
    assert "invalid.  Please" in reply["error"]


async def test_unknown_channel_is_refused_with_the_documented_text(org: Org) -> None:
    client_id = await org.handshake()
    reply = await org.subscribe(client_id, "/event/NoSuchEvent")
    assert reply["error"] == "400::The channel you requested to subscribe to doesn't exist /event/NoSuchEvent"


async def test_api_versions_below_37_are_refused(org: Org) -> None:
    status, replies = await org.post({"channel": "/meta/handshake"}, version="36.0")
    assert status == 400
    assert replies[0]["error"].startswith("400::Unsupported API version. Only API versions '37.0' and later")


async def test_replay_minus_two_returns_every_retained_event_in_order(org: Org, clock: ManualClock) -> None:
    org.bus.publish(LOGIN, {"n": 0})
    clock.now += timedelta(hours=73)  # n=0 falls out of retention
    ids = [org.bus.publish(LOGIN, {"n": n}) for n in range(1, 6)]
    client_id = await org.handshake()
    await org.subscribe(client_id, replay=-2)
    replies = await org.connect(client_id)
    assert [m["data"]["event"]["replayId"] for m in replies[:-1]] == ids
    assert any(b - a > 1 for a, b in itertools.pairwise(ids)), "replay ids must not be contiguous"


async def test_replay_from_an_id_returns_only_later_events(org: Org) -> None:
    ids = [org.bus.publish(LOGIN, {"n": n}) for n in range(5)]
    client_id = await org.handshake()
    await org.subscribe(client_id, replay=ids[2])
    replies = await org.connect(client_id)
    assert [m["data"]["payload"]["n"] for m in replies[:-1]] == [3, 4]


async def test_replay_minus_one_returns_only_new_events(org: Org) -> None:
    org.bus.publish(LOGIN, {"n": 0})
    client_id = await org.handshake()
    await org.subscribe(client_id, replay=-1)
    org.bus.publish(LOGIN, {"n": 1})
    replies = await org.connect(client_id)
    assert [m["data"]["payload"]["n"] for m in replies[:-1]] == [1]


async def test_long_poll_returns_when_an_event_is_published() -> None:
    server = CometdServer(EventBus(), lambda t: t == TOKEN, connect_timeout=30)
    async with serve(server) as url, aiohttp.ClientSession() as http:
        org = Org(server, url, http)
        client_id = await org.handshake()
        await org.subscribe(client_id)
        poll = asyncio.create_task(org.connect(client_id))
        async with asyncio.timeout(5):
            await server.polling.wait()
            server.bus.publish(LOGIN, {"n": 7})
            replies = await poll
    assert replies[0]["data"]["payload"] == {"n": 7}


async def test_unsubscribe_and_disconnect_are_acknowledged(org: Org) -> None:
    client_id = await org.handshake()
    await org.subscribe(client_id)
    _, un = await org.post({"channel": "/meta/unsubscribe", "clientId": client_id, "subscription": LOGIN})
    assert (un[0]["successful"], un[0]["subscription"]) == (True, LOGIN)
    _, bye = await org.post({"channel": "/meta/disconnect", "clientId": client_id})
    assert bye[0]["successful"] is True
    assert (await org.connect(client_id))[0]["error"] == "403::Unknown client"


async def test_rest_unauthorized_answers_http_401_with_the_rest_body(org: Org) -> None:
    org.server.rest_unauthorized(1)
    status, body = await org.post({"channel": "/meta/handshake", "version": "1.0"})
    assert (status, body) == (
        401,
        [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}],
    )
    status, _ = await org.post({"channel": "/meta/handshake", "version": "1.0"})
    assert status == 200


async def test_a_client_that_does_not_come_back_in_time_is_forgotten() -> None:
    server = CometdServer(EventBus(), lambda t: t == TOKEN, connect_timeout=0.1, reconnect_timeout=0.0)
    async with serve(server) as url, aiohttp.ClientSession() as http:
        org = Org(server, url, http)
        client_id = await org.handshake()
        replies = await org.connect(client_id)  # any time at all since the handshake is too long
    assert replies[0]["error"] == "403::Unknown client"
    assert replies[0]["advice"] == {"interval": 0, "reconnect": "handshake"}
