"""Every fault switch, flipped directly or through POST /_sim/faults, and the exact answer a client gets."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from forwarder.testing.clock import ManualClock
from forwarder.testing.simulator import Simulator

SESSION_EXPIRED = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]


def Clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def clock() -> ManualClock:
    return Clock()


@pytest.fixture
async def org(clock: ManualClock) -> AsyncIterator[Simulator]:
    async with Simulator(seed=4, clock=clock, connect_timeout=0.2) as sim:
        yield sim


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


async def token(http: aiohttp.ClientSession, org: Simulator) -> str:
    form = {
        "grant_type": "client_credentials",
        "client_id": org.client_id,
        "client_secret": org.client_secret,
    }
    async with http.post(f"{org.base_url}/services/oauth2/token", data=form) as resp:
        return str((await resp.json())["access_token"])


async def query(
    http: aiohttp.ClientSession, org: Simulator, tok: str, q: str = "SELECT Id FROM EventLogFile"
) -> tuple[int, str, str]:
    url = f"{org.base_url}/services/data/v62.0/query"
    async with http.get(url, params={"q": q}, headers={"Authorization": f"Bearer {tok}"}) as resp:
        return resp.status, resp.headers["Content-Type"], await resp.text()


async def admin(http: aiohttp.ClientSession, org: Simulator, body: dict[str, Any]) -> dict[str, Any]:
    async with http.post(f"{org.base_url}/_sim/faults", json=body) as resp:
        assert resp.status == 200
        return dict(await resp.json())


async def bayeux(
    http: aiohttp.ClientSession, org: Simulator, tok: str, msg: dict[str, Any]
) -> list[dict[str, Any]]:
    url = f"{org.base_url}/cometd/62.0"
    async with http.post(url, json=[msg], headers={"Authorization": f"OAuth {tok}"}) as resp:
        return list(await resp.json())


async def handshake(http: aiohttp.ClientSession, org: Simulator, tok: str) -> str:
    reply = await bayeux(
        http,
        org,
        tok,
        {"channel": "/meta/handshake", "version": "1.0", "supportedConnectionTypes": ["long-polling"]},
    )
    return str(reply[0]["clientId"])


def connect(client_id: str) -> dict[str, Any]:
    return {"channel": "/meta/connect", "connectionType": "long-polling", "clientId": client_id}


async def test_expired_sessions_get_401_on_rest_and_on_cometd(
    http: aiohttp.ClientSession, org: Simulator
) -> None:
    tok = await token(http, org)
    client_id = await handshake(http, org, tok)
    await admin(http, org, {"expire_sessions": True})
    status, _, body = await query(http, org, tok)
    assert (status, json.loads(body)) == (401, SESSION_EXPIRED)
    reply = await bayeux(http, org, tok, connect(client_id))
    assert reply[0]["successful"] is False
    assert reply[0]["error"] == "401::Authentication invalid"


async def test_forgotten_cometd_clients_must_handshake_again(
    http: aiohttp.ClientSession, org: Simulator
) -> None:
    tok = await token(http, org)
    client_id = await handshake(http, org, tok)
    org.faults.forget_cometd_clients()
    reply = (await bayeux(http, org, tok, connect(client_id)))[0]
    assert reply["error"] == "403::Unknown client"
    assert reply["advice"]["reconnect"] == "handshake"


async def test_503_for_the_next_n_requests(http: aiohttp.ClientSession, org: Simulator) -> None:
    tok = await token(http, org)
    await admin(http, org, {"unavailable": {"count": 2}})
    for _ in range(2):
        status, content_type, body = await query(http, org, tok)
        assert (status, content_type) == (503, "application/json;charset=UTF-8")
        assert json.loads(body) == [
            {
                "message": "Server temporarily unavailable. Please try again later.",
                "errorCode": "SERVER_UNAVAILABLE",
            }
        ]
    assert (await query(http, org, tok))[0] == 200


async def test_503_for_a_time_span(http: aiohttp.ClientSession, org: Simulator, clock: ManualClock) -> None:
    tok = await token(http, org)
    org.faults.unavailable(seconds=30)
    assert (await query(http, org, tok))[0] == 503
    assert (await query(http, org, tok))[0] == 503
    clock.now += timedelta(seconds=31)
    assert (await query(http, org, tok))[0] == 200


async def test_latency_delays_answers(http: aiohttp.ClientSession, org: Simulator) -> None:
    tok = await token(http, org)
    await admin(http, org, {"latency": 0.3})
    started = time.monotonic()
    assert (await query(http, org, tok))[0] == 200
    assert time.monotonic() - started >= 0.3


async def test_rate_limit_answers_request_limit_exceeded(http: aiohttp.ClientSession, org: Simulator) -> None:
    tok = await token(http, org)
    await admin(http, org, {"rate_limited": True})
    status, _, body = await query(http, org, tok)
    assert (status, json.loads(body)) == (
        403,
        [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}],
    )
    await admin(http, org, {"clear": True})
    assert (await query(http, org, tok))[0] == 200


async def test_log_file_download_reset_mid_body(http: aiohttp.ClientSession, org: Simulator) -> None:
    tok = await token(http, org)
    log_file = org.add_log_file("Login", 20_000, log_date=datetime(2026, 11, 2, 1, tzinfo=UTC))
    await admin(http, org, {"reset_logfile": {"after_bytes": 100_000}})
    url = f"{org.base_url}/services/data/v62.0/sobjects/EventLogFile/{log_file.id}/LogFile"
    received = bytearray()
    plain = {"Authorization": f"Bearer {tok}", "Accept-Encoding": "identity"}  # count wire bytes

    async def download() -> None:
        async with http.get(url, headers=plain) as resp:
            assert resp.status == 200
            async for chunk in resp.content.iter_any():
                received.extend(chunk)

    with pytest.raises(aiohttp.ClientPayloadError):
        await download()
    assert 0 < len(received) <= 100_000
    async with http.get(url, headers=plain) as resp:  # the fault was one-shot
        assert len(await resp.read()) == log_file.length


@pytest.mark.parametrize("event_type", ["Login", "Report", "Search", "ApiTotalUsage"])
async def test_late_rows_come_as_a_new_hourly_file_with_a_higher_sequence(
    http: aiohttp.ClientSession, org: Simulator, event_type: str
) -> None:
    reply = await admin(http, org, {"late_hourly_file": {"event_type": event_type, "rows": 3}})
    late = org.log_files[reply["late_file_id"]]
    earlier = [
        f
        for f in org.log_files.values()
        if f.event_type == event_type
        and f.interval == "Hourly"
        and f.log_date == late.log_date
        and f is not late
    ]
    assert earlier
    assert late.sequence == max(f.sequence for f in earlier) + 1
    assert late.created_date > max(f.created_date for f in earlier)
    assert late.source.count == 3
    old_rows = {tuple(r) for f in earlier for r in f.source.rows()}
    assert not old_rows & {tuple(r) for r in late.source.rows()}  # only the new rows


async def test_without_hourly_entitlement_interval_is_an_invalid_field(
    http: aiohttp.ClientSession, org: Simulator
) -> None:
    tok = await token(http, org)
    await admin(http, org, {"hourly_entitlement": False})
    q = "SELECT Id FROM EventLogFile WHERE Interval = 'Hourly'"
    status, _, body = await query(http, org, tok, q)
    assert status == 400
    assert json.loads(body) == [
        {
            "message": "\nSELECT Id FROM EventLogFile WHERE Interval = 'Hourly'\n                                  ^\n"
            "ERROR at Row:1:Column:35\nNo such column 'Interval' on entity 'EventLogFile'. If you are "
            "attempting to use a custom field, be sure to append the '__c' after the custom field name. "
            "Please reference your WSDL or the describe call for the appropriate names.",
            "errorCode": "INVALID_FIELD",
        }
    ]
    url = f"{org.base_url}/services/data/v62.0/sobjects/EventLogFile/describe"
    async with http.get(url, headers={"Authorization": f"Bearer {tok}"}) as resp:
        names = {f["name"] for f in (await resp.json())["fields"]}
    assert "Interval" not in names
    assert "Sequence" in names
    status, _, body = await query(http, org, tok, "SELECT Id, Sequence FROM EventLogFile")
    assert {r["Sequence"] for r in json.loads(body)["records"]} == {0}  # Daily files only


@pytest.mark.parametrize(
    ("kind", "content_type", "body"),
    [
        ("html", "text/html; charset=utf-8", "<html><body><h1>Maintenance</h1></body></html>"),
        ("empty", "application/json;charset=UTF-8", ""),
        ("array", "application/json;charset=UTF-8", "[]"),
    ],
)
async def test_malformed_2xx_bodies_on_query_and_token(
    http: aiohttp.ClientSession, org: Simulator, kind: str, content_type: str, body: str
) -> None:
    tok = await token(http, org)
    await admin(http, org, {"malformed": {"endpoint": "query", "kind": kind}})
    assert await query(http, org, tok) == (200, content_type, body)
    assert (await query(http, org, tok))[0] == 200  # one-shot by default
    org.faults.malform("token", kind)
    form = {
        "grant_type": "client_credentials",
        "client_id": org.client_id,
        "client_secret": org.client_secret,
    }
    async with http.post(f"{org.base_url}/services/oauth2/token", data=form) as resp:
        assert (resp.status, resp.headers["Content-Type"], await resp.text()) == (200, content_type, body)


async def test_query_records_without_id(http: aiohttp.ClientSession, org: Simulator) -> None:
    tok = await token(http, org)
    org.faults.malform("query", "no_id")
    status, _, body = await query(http, org, tok, "SELECT Id, EventType FROM EventLogFile")
    records = json.loads(body)["records"]
    assert status == 200
    assert records
    assert all("Id" not in r and "EventType" in r for r in records)


async def test_admin_endpoint_rejects_unknown_switch_values(
    http: aiohttp.ClientSession, org: Simulator
) -> None:
    async with http.post(
        f"{org.base_url}/_sim/faults", json={"malformed": {"endpoint": "query", "kind": "odd"}}
    ) as resp:
        assert resp.status == 400
    async with http.post(f"{org.base_url}/_sim/faults", data=b"{not json") as resp:
        assert resp.status == 400


async def test_latency_fault_does_not_block_other_requests(
    http: aiohttp.ClientSession, org: Simulator
) -> None:
    tok = await token(http, org)
    org.faults.latency = 0.2
    started = time.monotonic()
    results = await asyncio.gather(*(query(http, org, tok) for _ in range(5)))
    assert [r[0] for r in results] == [200] * 5
    assert time.monotonic() - started < 0.2 * 5
