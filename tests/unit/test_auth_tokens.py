"""Authenticator against a real local token endpoint: grants, caching, renewal, error classification."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import orjson
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from forwarder.errors import AuthenticationError, RetryableError
from forwarder.salesforce.auth import Authenticator, SalesforceConfig, jwt_audience, parse_token_response
from forwarder.testing.clock import ManualClock
from forwarder.testing.fixtures import SHARED_FIXTURES

FACTS = SHARED_FIXTURES / "rest/compiled-rest-oauth-examples.json"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def fact(example_id: str) -> dict[str, Any]:
    examples = orjson.loads(FACTS.read_bytes())["examples"]
    return next(e for e in examples if e["id"] == example_id)


@dataclass
class TokenServer:
    url: str
    forms: list[dict[str, str]] = field(default_factory=list)
    answers: list[tuple[int, bytes]] = field(default_factory=list)
    gate: asyncio.Event | None = None


@pytest.fixture
async def token_server() -> AsyncIterator[TokenServer]:
    state = TokenServer(url="")

    async def token(request: web.Request) -> web.Response:
        state.forms.append(dict(await request.post()))  # type: ignore[arg-type]
        if state.gate is not None:
            await state.gate.wait()
        if state.answers:
            status, body = state.answers.pop(0)
        else:
            status = 200
            body = orjson.dumps({"access_token": f"tok{len(state.forms)}", "instance_url": state.url + "/"})
        return web.Response(status=status, body=body, content_type="application/json")

    app = web.Application()
    app.router.add_post("/services/oauth2/token", token)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state.url = f"http://127.0.0.1:{port}"
    yield state
    await runner.cleanup()


@pytest.fixture(scope="module")
def rsa_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path_factory.mktemp("keys") / "sf.key"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return path, key.public_key()


def config(url: str, auth: dict[str, Any], **extra: Any) -> SalesforceConfig:
    return SalesforceConfig.model_validate({"login_url": url, "auth": auth, **extra})


def Clock() -> ManualClock:
    return ManualClock(NOW)


async def authenticator(cfg: SalesforceConfig, clock: Callable[[], datetime] = lambda: NOW) -> Authenticator:
    return Authenticator(cfg, aiohttp.ClientSession(), clock=clock)


async def test_jwt_bearer_posts_signed_assertion(
    token_server: TokenServer, rsa_key: tuple[Path, Any]
) -> None:
    path, public = rsa_key
    auth = {"client_id": "cid", "username": "int@example.com", "private_key_file": path}
    cfg = config(token_server.url, auth)
    async with aiohttp.ClientSession() as http:
        session = await Authenticator(cfg, http, clock=lambda: NOW).session()
    form = token_server.forms[0]
    assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    claims = jwt.decode(
        form["assertion"],
        public,
        algorithms=["RS256"],
        audience="https://login.salesforce.com",
        options={"verify_exp": False},
    )
    assert claims["iss"] == "cid"
    assert claims["sub"] == "int@example.com"
    assert claims["exp"] == int((NOW + timedelta(seconds=150)).timestamp())
    assert session.instance_url == token_server.url
    assert session.access_token == "tok1"


def test_audience_follows_login_host() -> None:
    assert jwt_audience("https://test.salesforce.com") == "https://test.salesforce.com"
    assert jwt_audience("https://acme--uat.sandbox.my.salesforce.com") == "https://test.salesforce.com"
    assert jwt_audience("https://acme.my.salesforce.com") == "https://login.salesforce.com"


async def test_client_credentials_and_refresh_forms(token_server: TokenServer) -> None:
    cc = config(token_server.url, {"type": "client_credentials", "client_id": "c", "client_secret": "s3"})
    rt = config(token_server.url, {"type": "refresh_token", "client_id": "c", "refresh_token": "r1"})
    async with aiohttp.ClientSession() as http:
        await Authenticator(cc, http).session()
        await Authenticator(rt, http).session()
    cc_form = {"grant_type": "client_credentials", "client_id": "c", "client_secret": "s3"}
    assert token_server.forms[0] == cc_form
    assert token_server.forms[1] == {"grant_type": "refresh_token", "client_id": "c", "refresh_token": "r1"}


async def test_token_is_cached_and_fetched_once_for_concurrent_callers(token_server: TokenServer) -> None:
    cfg = config(token_server.url, {"type": "client_credentials", "client_id": "c", "client_secret": "s"})
    token_server.gate = asyncio.Event()
    async with aiohttp.ClientSession() as http:
        auth = Authenticator(cfg, http, clock=lambda: NOW)
        waiters = [asyncio.create_task(auth.session()) for _ in range(5)]
        token_server.gate.set()
        sessions = await asyncio.gather(*waiters)
        again = await auth.session()
    assert {s.access_token for s in sessions} == {"tok1"}
    assert again.access_token == "tok1"
    assert len(token_server.forms) == 1


async def test_renews_after_configured_age(token_server: TokenServer) -> None:
    cfg = config(
        token_server.url,
        {"type": "client_credentials", "client_id": "c", "client_secret": "s"},
        token_renew_after="PT10M",
    )
    clock = Clock()
    async with aiohttp.ClientSession() as http:
        auth = Authenticator(cfg, http, clock=clock)
        first = await auth.session()
        clock.now += timedelta(minutes=9)
        same = await auth.session()
        clock.now += timedelta(minutes=1)
        renewed = await auth.session()
    assert (first.access_token, same.access_token, renewed.access_token) == ("tok1", "tok1", "tok2")


async def test_invalidate_drops_only_the_stale_token(token_server: TokenServer) -> None:
    cfg = config(token_server.url, {"type": "client_credentials", "client_id": "c", "client_secret": "s"})
    async with aiohttp.ClientSession() as http:
        auth = Authenticator(cfg, http, clock=lambda: NOW)
        first = await auth.session()
        auth.invalidate(first.access_token)
        second = await auth.session()
        auth.invalidate(first.access_token)  # a late 401 for the old token must not discard the new one
        third = await auth.session()
    assert (second.access_token, third.access_token) == ("tok2", "tok2")


@pytest.mark.parametrize(
    "example", ["oauth_error_not_approved", "oauth_error_audience", "oauth_error_expired_assertion"]
)
def test_refused_grants_need_the_operator(example: str) -> None:
    body = orjson.dumps(fact(example)["body"])
    with pytest.raises(AuthenticationError, match="invalid_grant"):
        parse_token_response(400, body, None, NOW)


def test_documented_success_answers_parse() -> None:
    jwt_ok = parse_token_response(200, orjson.dumps(fact("oauth_jwt_bearer_response")["body"]), None, NOW)
    assert jwt_ok.issued_at == NOW
    body = dict(fact("oauth_client_credentials_response")["body"], issued_at="1764158400000")
    cc_ok = parse_token_response(200, orjson.dumps(body), None, NOW)
    assert cc_ok.issued_at == datetime(2025, 11, 26, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (200, b"<html>maintenance</html>"),
        (200, b""),
        (200, b"[]"),
        (200, b'{"instance_url": "https://x"}'),
        (503, b"<html>down</html>"),
        (400, b'{"error": "rate_limit_exceeded", "error_description": "too many"}'),
    ],
)
def test_malformed_or_transient_answers_are_retryable(status: int, body: bytes) -> None:
    with pytest.raises(RetryableError):
        parse_token_response(status, body, "7", NOW)


async def test_unreachable_endpoint_is_retryable() -> None:
    cfg = config("http://127.0.0.1:9", {"type": "client_credentials", "client_id": "c", "client_secret": "s"})
    async with aiohttp.ClientSession() as http:
        with pytest.raises(RetryableError, match="unreachable"):
            await Authenticator(cfg, http).session()


def test_secret_never_in_error_text() -> None:
    body = b'{"error": "invalid_client", "error_description": "invalid client credentials"}'
    with pytest.raises(AuthenticationError) as info:
        parse_token_response(400, body, None, NOW)
    assert "s3cr3t" not in str(info.value)
