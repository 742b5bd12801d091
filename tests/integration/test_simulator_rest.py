"""The simulator's OAuth and REST endpoints as a client sees them over HTTP."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import aiohttp
import jwt
import pytest
import yarl
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from forwarder.testing.clock import ManualClock
from forwarder.testing.fixtures import SHARED_FIXTURES
from forwarder.testing.simulator import Simulator

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
DESCRIBE = SHARED_FIXTURES / "elf/logstash-input-sfdc_elf/eventlogfile_describe.json"


def Clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def clock() -> ManualClock:
    return Clock()


@pytest.fixture
async def org(clock: ManualClock) -> AsyncIterator[Simulator]:
    async with Simulator(seed=3, page_size=10, clock=clock, token_lifetime=timedelta(minutes=30)) as sim:
        yield sim


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def client_credentials(http: aiohttp.ClientSession, org: Simulator) -> str:
    form = {
        "grant_type": "client_credentials",
        "client_id": org.client_id,
        "client_secret": org.client_secret,
    }
    async with http.post(f"{org.base_url}/services/oauth2/token", data=form) as resp:
        assert resp.status == 200
        return str((await resp.json())["access_token"])


async def get(
    http: aiohttp.ClientSession, org: Simulator, path: str, token: str | None, **kw: Any
) -> tuple[int, Any, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    headers |= kw.pop("headers", {})
    async with http.get(org.base_url + path, headers=headers, **kw) as resp:
        text = await resp.text()
        return resp.status, resp.headers, json.loads(text) if text else None


async def soql(
    http: aiohttp.ClientSession, org: Simulator, token: str, q: str, version: str = "62.0"
) -> tuple[int, Any, Any]:
    return await get(http, org, f"/services/data/v{version}/query", token, params={"q": q})


def assertion(org: Simulator, **claims: Any) -> str:
    body = {
        "iss": org.client_id,
        "sub": org.username,
        "aud": "https://login.salesforce.com",
        "exp": int(time.time()) + 120,
    } | claims
    return jwt.encode(body, org.private_key_path.read_bytes(), algorithm="RS256")


async def token_call(
    http: aiohttp.ClientSession, org: Simulator, form: dict[str, str]
) -> tuple[int, Any, Any]:
    async with http.post(f"{org.base_url}/services/oauth2/token", data=form) as resp:
        return resp.status, resp.headers, await resp.json(content_type=None)


# --- OAuth ----------------------------------------------------------------------------------------------------
async def test_client_credentials_grant_returns_salesforce_token_body(
    http: aiohttp.ClientSession, org: Simulator
) -> None:
    form = {
        "grant_type": "client_credentials",
        "client_id": org.client_id,
        "client_secret": org.client_secret,
    }
    status, headers, body = await token_call(http, org, form)
    assert status == 200
    assert headers["Content-Type"] == "application/json;charset=UTF-8"
    assert set(body) == {
        "access_token",
        "signature",
        "scope",
        "instance_url",
        "id",
        "token_type",
        "issued_at",
    }
    assert body["instance_url"] == org.base_url
    assert body["token_type"] == "Bearer"
    assert body["id"].endswith(f"/id/{org.org_id}/{org.traffic.users[1].id}")


async def test_jwt_bearer_grant_has_no_refresh_token(http: aiohttp.ClientSession, org: Simulator) -> None:
    status, _, body = await token_call(http, org, {"grant_type": JWT_GRANT, "assertion": assertion(org)})
    assert status == 200
    assert set(body) == {"access_token", "scope", "instance_url", "id", "token_type"}


@pytest.mark.parametrize(
    ("claims", "error", "description"),
    [
        ({"aud": "https://evil.example"}, "invalid_grant", "audience is invalid"),
        ({"exp": int(time.time()) - 10}, "invalid_grant", "expired authorization code"),
        ({"exp": int(time.time()) + 3600}, "invalid_grant", "invalid assertion"),
        ({"iss": "someone-else"}, "invalid_client_id", "client identifier invalid"),
        ({"sub": "nobody@acme.example"}, "invalid_grant", "user hasn't approved this consumer"),
    ],
)
async def test_jwt_bearer_rejections(
    http: aiohttp.ClientSession, org: Simulator, claims: dict[str, Any], error: str, description: str
) -> None:
    status, headers, body = await token_call(
        http, org, {"grant_type": JWT_GRANT, "assertion": assertion(org, **claims)}
    )
    assert (status, body) == (400, {"error": error, "error_description": description})
    assert headers["Content-Type"] == "application/json;charset=UTF-8"


async def test_jwt_signed_by_another_key_is_an_invalid_assertion(
    http: aiohttp.ClientSession, org: Simulator
) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    claims = {
        "iss": org.client_id,
        "sub": org.username,
        "aud": "https://login.salesforce.com",
        "exp": int(time.time()) + 60,
    }
    form = {"grant_type": JWT_GRANT, "assertion": jwt.encode(claims, other, algorithm="RS256")}
    assert (await token_call(http, org, form))[2] == {
        "error": "invalid_grant",
        "error_description": "invalid assertion",
    }
    hs = jwt.encode(claims, "secret-key-long-enough-for-hs256-000000", algorithm="HS256")
    assert (await token_call(http, org, {"grant_type": JWT_GRANT, "assertion": hs}))[0] == 400


async def test_client_credentials_with_a_wrong_secret(http: aiohttp.ClientSession, org: Simulator) -> None:
    form = {"grant_type": "client_credentials", "client_id": org.client_id, "client_secret": "nope"}
    assert (await token_call(http, org, form))[2] == {
        "error": "invalid_client",
        "error_description": "invalid client credentials",
    }


async def test_refresh_token_grant(http: aiohttp.ClientSession, org: Simulator) -> None:
    form = {"grant_type": "refresh_token", "client_id": org.client_id, "refresh_token": org.refresh_token}
    status, _, body = await token_call(http, org, form)
    assert status == 200
    assert "refresh_token" not in body
    form["refresh_token"] = "stale"
    assert (await token_call(http, org, form))[2] == {
        "error": "invalid_grant",
        "error_description": "expired access/refresh token",
    }


async def test_unknown_grant_type(http: aiohttp.ClientSession, org: Simulator) -> None:
    body = (await token_call(http, org, {"grant_type": "password"}))[2]
    assert body == {"error": "unsupported_grant_type", "error_description": "grant type not supported"}


async def test_token_expires_after_its_lifetime(
    http: aiohttp.ClientSession, org: Simulator, clock: ManualClock
) -> None:
    token = await client_credentials(http, org)
    assert (await get(http, org, "/services/data/v62.0/limits", token))[0] == 200
    clock.now += timedelta(minutes=31)
    status, _, body = await get(http, org, "/services/data/v62.0/limits", token)
    assert (status, body) == (
        401,
        [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}],
    )


async def test_requests_without_a_token_are_refused(http: aiohttp.ClientSession, org: Simulator) -> None:
    status, _, body = await get(http, org, "/services/data/v62.0/limits", None)
    assert (status, body[0]["errorCode"]) == (401, "INVALID_SESSION_ID")


# --- REST -----------------------------------------------------------------------------------------------------
async def test_versions_list_every_supported_version_without_limit_header(
    http: aiohttp.ClientSession, org: Simulator
) -> None:
    status, headers, body = await get(http, org, "/services/data/", None)
    assert status == 200
    assert "Sforce-Limit-Info" not in headers
    assert [v["version"] for v in body] == [f"{v}.0" for v in range(37, 68)]
    assert body[-1] == {"label": "Summer '26", "url": "/services/data/v67.0", "version": "67.0"}


@pytest.mark.parametrize(("version", "status"), [("37.0", 200), ("67.0", 200), ("36.0", 404), ("68.0", 404)])
async def test_api_versions_accepted(
    http: aiohttp.ClientSession, org: Simulator, version: str, status: int
) -> None:
    token = await client_credentials(http, org)
    got, _, body = await soql(http, org, token, "SELECT Id FROM EventLogFile", version)
    assert got == status
    if status == 404:
        assert body == [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}]


async def test_query_pages_with_next_records_url_until_done(
    http: aiohttp.ClientSession, org: Simulator
) -> None:
    token = await client_credentials(http, org)
    status, headers, page = await soql(
        http, org, token, "SELECT Id, EventType, LogFile FROM EventLogFile ORDER BY CreatedDate"
    )
    assert status == 200
    assert headers["Content-Type"] == "application/json;charset=UTF-8"
    assert list(page) == ["totalSize", "done", "nextRecordsUrl", "records"]
    total, records = page["totalSize"], list(page["records"])
    assert total == len(org.log_files) > 20
    while not page["done"]:
        assert re.fullmatch(r"/services/data/v62\.0/query/01g\w+-\d+", page["nextRecordsUrl"])
        last_url = page["nextRecordsUrl"]
        status, _, page = await get(http, org, page["nextRecordsUrl"], token)
        assert page["totalSize"] == total
        records += page["records"]
    assert "nextRecordsUrl" not in page
    assert sorted(r["Id"] for r in records) == sorted(org.log_files)
    status, _, again = await get(http, org, last_url, token)  # a page can be fetched again (retries)
    assert status == 200
    assert again["records"] == page["records"]
    first = records[0]
    assert first["attributes"] == {
        "type": "EventLogFile",
        "url": f"/services/data/v62.0/sobjects/EventLogFile/{first['Id']}",
    }
    assert first["LogFile"] == f"/services/data/v62.0/sobjects/EventLogFile/{first['Id']}/LogFile"


async def test_batch_size_header_is_clamped_to_200(http: aiohttp.ClientSession) -> None:
    async with Simulator(seed=2, activities=500) as org:
        token = await client_credentials(http, org)
        path = "/services/data/v62.0/query"
        _, _, page = await get(
            http,
            org,
            path,
            token,
            params={"q": "SELECT Id FROM LoginHistory"},
            headers={"Sforce-Query-Options": "batchSize=5"},
        )
        assert len(page["records"]) == min(200, page["totalSize"])


async def test_limit_info_header_counts_calls_and_budget_ends_in_request_limit_exceeded(
    http: aiohttp.ClientSession,
) -> None:
    async with Simulator(seed=2, api_limit=2) as org:
        token = await client_credentials(http, org)
        _, headers, _ = await get(http, org, "/services/data/v62.0/limits", token)
        assert headers["Sforce-Limit-Info"] == "api-usage=1/2"
        _, headers, _ = await get(http, org, "/services/data/v62.0/limits", token)
        assert headers["Sforce-Limit-Info"] == "api-usage=2/2"
        status, _, body = await get(http, org, "/services/data/v62.0/limits", token)
        assert (status, body) == (
            403,
            [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}],
        )


async def test_malformed_soql_is_a_400_with_the_parser_message(
    http: aiohttp.ClientSession, org: Simulator
) -> None:
    token = await client_credentials(http, org)
    status, _, body = await soql(http, org, token, "SELECT Id FROM EventLogFile WHERE")
    assert status == 400
    assert body == [
        {
            "message": "\nSELECT Id FROM EventLogFile WHERE\n                                 ^\n"
            "ERROR at Row:1:Column:34\nunexpected token: <EOF>",
            "errorCode": "MALFORMED_QUERY",
        }
    ]


async def test_where_on_created_date_and_interval(http: aiohttp.ClientSession, org: Simulator) -> None:
    token = await client_credentials(http, org)
    cut = min(f.created_date for f in org.log_files.values()) + timedelta(hours=1)
    q = (
        f"SELECT Id, Sequence FROM EventLogFile WHERE Interval = 'Hourly' AND CreatedDate > "
        f"{cut.strftime('%Y-%m-%dT%H:%M:%SZ')} ORDER BY CreatedDate"
    )
    _, _, page = await soql(http, org, token, q)
    want = {f.id for f in org.log_files.values() if f.interval == "Hourly" and f.created_date > cut}
    assert page["totalSize"] == len(want) > 0


async def test_relationship_fields_nest_with_their_own_attributes(
    http: aiohttp.ClientSession, org: Simulator
) -> None:
    token = await client_credentials(http, org)
    _, _, page = await soql(http, org, token, "SELECT Id, Action, CreatedBy.Username FROM SetupAuditTrail")
    record = page["records"][0]
    assert record["CreatedBy"]["attributes"]["type"] == "User"
    assert record["CreatedBy"]["Username"].endswith("@acme.example")


async def test_storage_objects_hold_the_same_events_as_the_streams(
    http: aiohttp.ClientSession, org: Simulator
) -> None:
    token = await client_credentials(http, org)
    for channel, obj in (("LoginEventStream", "LoginEvent"), ("ApiEventStream", "ApiEvent")):
        ids: set[str] = set()
        path: str | None = None
        _, _, page = await soql(http, org, token, f"SELECT EventIdentifier FROM {obj}")
        while True:
            ids |= {r["EventIdentifier"] for r in page["records"]}
            if page["done"]:
                break
            path = page["nextRecordsUrl"]
            _, _, page = await get(http, org, str(path), token)
        on_bus = org.bus.after(f"/event/{channel}", org.bus.earliest_cursor(f"/event/{channel}"), 100_000)
        assert ids == {m["data"]["payload"]["EventIdentifier"] for m in on_bus}
        assert ids


async def test_describe_has_the_shape_of_the_real_describe(
    http: aiohttp.ClientSession, org: Simulator
) -> None:
    token = await client_credentials(http, org)
    status, _, body = await get(http, org, "/services/data/v62.0/sobjects/EventLogFile/describe", token)
    real = json.loads(DESCRIBE.read_text())
    assert status == 200
    assert set(body) == set(real)
    assert set(body["fields"][0]) == set(real["fields"][0])
    assert {f["name"] for f in real["fields"]} <= {f["name"] for f in body["fields"]}
    event_types = next(f for f in body["fields"] if f["name"] == "EventType")["picklistValues"]
    assert {"Login", "API", "LoginAs", "ReportExport"} <= {v["value"] for v in event_types}


async def test_log_file_streams_csv_gzipped_on_request(http: aiohttp.ClientSession, org: Simulator) -> None:
    token = await client_credentials(http, org)
    log_file = next(f for f in org.log_files.values() if f.event_type == "Login")
    url = f"{org.base_url}/services/data/v62.0/sobjects/EventLogFile/{log_file.id}/LogFile"
    headers = {"Authorization": f"Bearer {token}", "Accept-Encoding": "gzip"}
    async with http.get(url, headers=headers) as resp:
        assert resp.headers["Content-Encoding"] == "gzip"
        assert resp.headers["Content-Type"] == "application/octetstream"
        assert resp.headers["Transfer-Encoding"] == "chunked"
        assert resp.headers["Sforce-Limit-Info"].startswith("api-usage=")
        body = await resp.read()
    assert body == b"".join(log_file.chunks())
    async with http.get(
        url, headers={"Authorization": f"Bearer {token}", "Accept-Encoding": "identity"}
    ) as resp:
        assert "Content-Encoding" not in resp.headers
        assert await resp.read() == body


async def test_unknown_log_file_is_not_found(http: aiohttp.ClientSession, org: Simulator) -> None:
    token = await client_credentials(http, org)
    status, _, body = await get(
        http, org, "/services/data/v62.0/sobjects/EventLogFile/0AT000000000000AAA/LogFile", token
    )
    assert (status, body[0]["errorCode"]) == (404, "NOT_FOUND")


async def test_big_generated_file_added_by_a_test_is_served(
    http: aiohttp.ClientSession, org: Simulator
) -> None:
    token = await client_credentials(http, org)
    log_file = org.add_log_file("Login", 50_000, log_date=datetime(2026, 11, 2, 5, tzinfo=UTC))
    _, _, page = await soql(
        http, org, token, f"SELECT LogFileLength, Sequence FROM EventLogFile WHERE Id = '{log_file.id}'"
    )
    assert page["records"][0]["LogFileLength"] == float(log_file.length)
    status, _, _ = await get(http, org, f"/services/data/v62.0/sobjects/EventLogFile/{log_file.id}", token)
    assert status == 200
    url = f"{org.base_url}/services/data/v62.0/sobjects/EventLogFile/{log_file.id}/LogFile"
    async with http.get(url, headers={"Authorization": f"Bearer {token}"}) as resp:
        body = await resp.read()
    assert len(body) == log_file.length
    assert body.count(b"\n") == 50_001


async def test_uri_limit_is_16_kb_like_salesforce(http: aiohttp.ClientSession, org: Simulator) -> None:
    token = await client_credentials(http, org)
    headers = {"Authorization": f"Bearer {token}"}

    def url(length: int) -> yarl.URL:
        path = "/services/data/v62.0/query?q=" + quote("SELECT Id FROM EventLogFile WHERE Id != '")
        pad = "A" * (length - len(path) - len(quote("'")))
        return yarl.URL(org.base_url + path + pad + quote("'"), encoded=True)

    async with http.get(url(15_000), headers=headers) as resp:
        assert resp.status == 200  # aiohttp's own 8 KB request-line limit would refuse this
    async with http.get(url(16_500), headers=headers) as resp:
        assert resp.status == 414


async def test_revoked_tokens_stop_working(http: aiohttp.ClientSession, org: Simulator) -> None:
    token = await client_credentials(http, org)
    async with http.post(f"{org.base_url}/services/oauth2/revoke", data={"token": token}) as resp:
        assert resp.status == 200
    assert (await get(http, org, "/services/data/v62.0/limits", token))[0] == 401
    async with http.post(f"{org.base_url}/services/oauth2/revoke", data={"token": token}) as resp:
        assert (resp.status, await resp.json()) == (
            400,
            {"error": "invalid_token", "error_description": "invalid token"},
        )


async def test_an_authorization_header_in_another_scheme_is_invalid_auth_header(
    http: aiohttp.ClientSession, org: Simulator
) -> None:
    status, _, body = await get(
        http, org, "/services/data/v62.0/limits", None, headers={"Authorization": "Basic dXNlcjpwYXNz"}
    )
    assert (status, body) == (401, [{"message": "INVALID_AUTH_HEADER", "errorCode": "INVALID_AUTH_HEADER"}])


async def test_with_files_at_creation_a_file_appears_at_its_created_date(http: aiohttp.ClientSession) -> None:
    clock = Clock()
    clock.now = datetime(2026, 11, 1, 9, tzinfo=UTC)
    async with Simulator(
        seed=3, clock=clock, files_at_creation=True, token_lifetime=timedelta(days=30)
    ) as org:
        token = await client_credentials(http, org)
        first = min(org.log_files.values(), key=lambda f: f.created_date)
        q = "SELECT Id FROM EventLogFile"
        assert (await soql(http, org, token, q))[2]["totalSize"] == 0
        path = f"/services/data/v62.0/sobjects/EventLogFile/{first.id}/LogFile"
        assert (await get(http, org, path, token))[0] == 404
        clock.now = first.created_date
        ids = {r["Id"] for r in (await soql(http, org, token, q))[2]["records"]}
        assert first.id in ids
        assert len(ids) < len(org.log_files)
        async with http.get(org.base_url + path, headers={"Authorization": f"Bearer {token}"}) as resp:
            assert resp.status == 200
