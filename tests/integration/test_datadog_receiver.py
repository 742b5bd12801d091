"""The Datadog receiver refuses what the Logs intake refuses (reference §2, §5), so sink tests against it
mean something."""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest

from forwarder.testing.receivers.datadog import DEFAULT_API_KEY, DatadogReceiver

KEY = {"DD-API-KEY": DEFAULT_API_KEY, "Content-Type": "application/json"}


@pytest.fixture
async def receiver() -> AsyncIterator[DatadogReceiver]:
    async with DatadogReceiver() as started:
        yield started


async def _post(receiver: DatadogReceiver, body: bytes, headers: dict[str, str]) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.post(receiver.intake_url, data=io.BytesIO(body), headers=headers) as resp,
    ):
        await resp.read()
        return resp.status


@pytest.mark.parametrize(("headers", "status"), [({}, 401), ({"DD-API-KEY": "wrong"}, 403)])
async def test_refuses_missing_and_wrong_api_keys(
    receiver: DatadogReceiver, headers: dict[str, str], status: int
) -> None:
    assert await _post(receiver, b'[{"message":"a"}]', headers) == status
    assert receiver.event_count == 0


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [("gzip", gzip.compress), ("deflate", zlib.compress), ("", lambda b: b)],
)
async def test_accepts_gzip_deflate_and_plain_bodies(
    receiver: DatadogReceiver, encoding: str, compress: object
) -> None:
    body = orjson.dumps([{"message": "a", "event": {"id": "1"}}, {"message": "b", "event": {"id": "2"}}])
    headers = {**KEY, "Content-Encoding": encoding} if encoding else KEY
    assert await _post(receiver, compress(body), headers) == 202  # type: ignore[operator]
    assert receiver.unique_ids() == {"1", "2"}


async def test_refuses_more_than_a_thousand_entries(receiver: DatadogReceiver) -> None:
    assert await _post(receiver, orjson.dumps([{"message": "x"}] * 1001), KEY) == 413
    assert await _post(receiver, orjson.dumps([{"message": "x"}] * 1000), KEY) == 202


async def test_refuses_payloads_over_five_megabytes(receiver: DatadogReceiver) -> None:
    big = orjson.dumps([{"message": "x" * 900_000}] * 6)
    assert await _post(receiver, big, KEY) == 413


async def test_counts_logs_over_one_megabyte_as_cut(receiver: DatadogReceiver) -> None:
    assert await _post(receiver, orjson.dumps([{"message": "x" * 1_100_000}]), KEY) == 202
    assert receiver.oversize_logs == 1


async def test_refuses_invalid_json(receiver: DatadogReceiver) -> None:
    assert await _post(receiver, b"[{", KEY) == 400


async def test_validate_endpoint_checks_the_key(receiver: DatadogReceiver) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{receiver.url}/api/v1/validate", headers=KEY) as resp:
            assert resp.status == 200
        async with session.get(f"{receiver.url}/api/v1/validate", headers={"DD-API-KEY": "no"}) as resp:
            assert resp.status == 403
