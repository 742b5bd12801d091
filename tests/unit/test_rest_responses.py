"""RestClient against each documented Salesforce answer (facts D1-D2), served by a real local server."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import aiohttp
import orjson
import pytest
from aiohttp import web

from forwarder.errors import PermanentError, RetryableError
from forwarder.salesforce.auth import Authenticator, SalesforceConfig
from forwarder.salesforce.rest import (
    ApiUsage,
    RestClient,
    SalesforceApiError,
    classify,
    parse_limit_info,
    query_page,
)
from forwarder.testing.fixtures import SHARED_FIXTURES

FACTS = SHARED_FIXTURES / "rest/compiled-rest-oauth-examples.json"


def fact(example_id: str) -> dict[str, Any]:
    examples = orjson.loads(FACTS.read_bytes())["examples"]
    return next(e for e in examples if e["id"] == example_id)


@dataclass
class Org:
    url: str = ""
    tokens: int = 0
    seen: list[tuple[str, str]] = field(default_factory=list)
    answers: list[tuple[int, bytes, dict[str, str]]] = field(default_factory=list)


@pytest.fixture
async def org() -> AsyncIterator[Org]:
    state = Org()

    async def token(request: web.Request) -> web.Response:
        state.tokens += 1
        body = {"access_token": f"tok{state.tokens}", "instance_url": state.url}
        return web.json_response(body)

    async def data(request: web.Request) -> web.StreamResponse:
        state.seen.append((request.path_qs, request.headers.get("Authorization", "")))
        status, body, headers = state.answers.pop(0)
        return web.Response(status=status, body=body, headers=headers)

    app = web.Application()
    app.router.add_post("/services/oauth2/token", token)
    app.router.add_get("/services/data/{tail:.*}", data)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    yield state
    await runner.cleanup()


@pytest.fixture
async def client(org: Org) -> AsyncIterator[RestClient]:
    cfg = SalesforceConfig.model_validate(
        {"login_url": org.url, "auth": {"type": "client_credentials", "client_id": "c", "client_secret": "s"}}
    )
    async with aiohttp.ClientSession() as http:
        yield RestClient(Authenticator(cfg, http), http, "62.0", budget_share=0.5)


JSON = {"Content-Type": "application/json;charset=UTF-8", "Sforce-Limit-Info": "api-usage=12/15000"}


def page(records: list[dict[str, Any]], next_url: str | None = None) -> bytes:
    body: dict[str, Any] = {"totalSize": 3, "done": next_url is None, "records": records}
    if next_url:
        body["nextRecordsUrl"] = next_url
    return orjson.dumps(body)


async def test_query_follows_next_records_url(org: Org, client: RestClient) -> None:
    next_url = fact("query_next_records_url")["values"][0].replace("v66.0", "v62.0")
    org.answers = [(200, page([{"Id": "a"}, {"Id": "b"}], next_url), JSON), (200, page([{"Id": "c"}]), JSON)]
    ids = [r["Id"] async for r in client.query("SELECT Id FROM Account WHERE Name = 'x y'")]
    assert ids == ["a", "b", "c"]
    assert unquote(org.seen[0][0]) == "/services/data/v62.0/query?q=SELECT Id FROM Account WHERE Name = 'x y'"
    assert org.seen[1][0] == next_url
    assert org.seen[0][1] == "Bearer tok1"
    assert client.usage == ApiUsage(12, 15000)


def test_documented_query_answer_parses() -> None:
    records, next_url = query_page(orjson.dumps(fact("query_response_done")["body"]))
    assert [r["Name"] for r in records] == ["Test 1", "Test 2"]
    assert next_url is None


async def test_invalid_session_renews_token_once(org: Org, client: RestClient) -> None:
    expired = orjson.dumps(fact("error_401_invalid_session")["body"])
    org.answers = [(401, expired, JSON), (200, page([{"Id": "a"}]), JSON)]
    assert [r["Id"] async for r in client.query("SELECT Id FROM X")] == ["a"]
    assert [auth for _, auth in org.seen] == ["Bearer tok1", "Bearer tok2"]


async def test_second_401_is_retryable_not_a_loop(org: Org, client: RestClient) -> None:
    expired = orjson.dumps(fact("error_401_invalid_session")["body"])
    org.answers = [(401, expired, JSON), (401, expired, JSON)]
    with pytest.raises(RetryableError, match="INVALID_SESSION_ID"):
        await client.get_bytes("/services/data/v62.0/query?q=x")
    assert org.tokens == 2


@pytest.mark.parametrize(
    ("example", "status", "kind", "code"),
    [
        ("error_401_invalid_auth_header", 401, RetryableError, None),
        ("error_403_request_limit", 403, RetryableError, None),
        ("error_400_malformed_id", 400, SalesforceApiError, "MALFORMED_ID"),
        ("error_404_not_found", 404, SalesforceApiError, "NOT_FOUND"),
    ],
)
def test_documented_errors_are_classified(example: str, status: int, kind: type, code: str | None) -> None:
    error = classify(status, orjson.dumps(fact(example)["body"]), None)
    assert isinstance(error, kind)
    if code:
        assert isinstance(error, SalesforceApiError)
        assert error.error_code == code
        assert isinstance(error, PermanentError)


def test_rate_limit_waits_at_least_a_minute_without_a_hint() -> None:
    error = classify(403, orjson.dumps(fact("error_403_request_limit")["body"]), None)
    assert isinstance(error, RetryableError)
    assert error.retry_after == 60.0


@pytest.mark.parametrize("status", [420, 500, 502, 503, 504])
def test_edge_and_maintenance_statuses_are_retryable(status: int) -> None:
    error = classify(status, b'[{"message":"query timeout","errorCode":"QUERY_TIMEOUT"}]', "5")
    assert isinstance(error, RetryableError)
    assert error.retry_after == 5.0


@pytest.mark.parametrize("status", [414, 431])
def test_uri_too_long_is_permanent(status: int) -> None:
    assert isinstance(classify(status, b"", None), SalesforceApiError)


@pytest.mark.parametrize(
    "body",
    [
        b"<html>oops</html>",
        b"",
        b"[]",
        b'{"done": true}',
        b'{"done": false, "records": []}',
        b'{"done": true, "records": [1]}',
    ],
)
def test_malformed_2xx_query_answers_are_retryable(body: bytes) -> None:
    with pytest.raises(RetryableError, match="malformed"):
        query_page(body)


def test_limit_info_header_parses() -> None:
    assert parse_limit_info(fact("elf_blob_response")["headers"]["Sforce-Limit-Info"]) == ApiUsage(135, 5000)
    assert parse_limit_info("api-usage=10018/100000") == ApiUsage(10018, 100000)
    assert parse_limit_info(None) is None
    assert parse_limit_info("garbage") is None


async def test_log_file_streams_gzip_decoded(org: Org, client: RestClient) -> None:
    csv = b'"EVENT_TYPE","USER_ID"\n' + b'"Login","005x"\n' * 50_000
    headers = {
        "Content-Type": "application/octetstream",
        "Content-Encoding": "gzip",
        "Sforce-Limit-Info": "api-usage=135/5000",
    }
    org.answers = [(200, gzip.compress(csv), headers)]
    chunks = [
        c async for c in client.stream_log_file("/services/data/v62.0/sobjects/EventLogFile/0AT1/LogFile")
    ]
    assert b"".join(chunks) == csv
    assert len(chunks) > 1


async def test_uri_over_16k_is_never_sent(org: Org, client: RestClient) -> None:
    with pytest.raises(SalesforceApiError, match="URI_TOO_LONG"):
        await client.get_bytes("/services/data/v62.0/query?q=" + "x" * 17_000)
    assert org.seen == []


async def test_budget_gate_pauses_until_usage_drops(org: Org, client: RestClient) -> None:
    naps: list[float] = []

    async def nap(seconds: float) -> None:
        naps.append(seconds)

    client._sleep = nap
    org.answers = [
        (200, page([]), {"Sforce-Limit-Info": "api-usage=9000/10000"}),
        (200, b"{}", {"Sforce-Limit-Info": "api-usage=8000/10000"}),
        (200, b"{}", {"Sforce-Limit-Info": "api-usage=100/10000"}),
    ]
    _ = [r async for r in client.query("SELECT Id FROM X")]
    assert client.over_budget()
    await client.budget_gate("test", recheck=1.0)
    assert naps == [1.0, 1.0]
    assert not client.over_budget()
    assert org.seen[-1][0] == "/services/data/v62.0/limits"


def test_expired_query_locator_restarts_the_query() -> None:
    body = b'[{"message":"invalid query locator","errorCode":"INVALID_QUERY_LOCATOR"}]'
    assert isinstance(classify(400, body, None), RetryableError)


async def test_download_outlives_the_session_total_timeout() -> None:
    import asyncio

    async def slow(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        for _ in range(4):
            await resp.write(b'"A"\n' * 10)
            await asyncio.sleep(0.2)  # server pacing: the body takes longer than the session's total limit
        await resp.write_eof()
        return resp

    async def token(request: web.Request) -> web.Response:
        return web.json_response({"access_token": "t", "instance_url": str(request.url.origin())})

    app = web.Application()
    app.router.add_post("/services/oauth2/token", token)
    app.router.add_get("/services/data/v62.0/sobjects/EventLogFile/x/LogFile", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    cfg = SalesforceConfig.model_validate(
        {"login_url": url, "auth": {"type": "client_credentials", "client_id": "c", "client_secret": "s"}}
    )
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.3)) as http:
            rest = RestClient(Authenticator(cfg, http), http, "62.0")
            body = b"".join(
                [
                    c
                    async for c in rest.stream_log_file(
                        "/services/data/v62.0/sobjects/EventLogFile/x/LogFile"
                    )
                ]
            )
    finally:
        await runner.cleanup()
    assert body == b'"A"\n' * 40
