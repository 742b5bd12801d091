"""The HEC receiver refuses what Splunk refuses, with Splunk's codes (reference §1.3, §5), so sink tests
against it mean something."""

from __future__ import annotations

import asyncio
import gzip
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from forwarder.testing.receivers import sample_event
from forwarder.testing.receivers.hec import DEFAULT_TOKEN, HecReceiver, hec_fault
from sinks.splunk_hec import SplunkHecConfig, SplunkHecSink

AUTH = {"Authorization": f"Splunk {DEFAULT_TOKEN}", "X-Splunk-Request-Channel": "c1"}


@pytest.fixture
async def receiver() -> AsyncIterator[HecReceiver]:
    async with HecReceiver(allowed_indexes={"main"}) as started:
        yield started


async def _post(
    url: str, body: bytes, headers: dict[str, str], path: str = "/services/collector/event"
) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + path, data=body, headers=headers) as resp,
    ):
        return resp.status, orjson.loads(await resp.read())


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 401, 2),
        ({"Authorization": DEFAULT_TOKEN}, 401, 3),  # the "Splunk " prefix is missing
        ({"Authorization": "Splunk wrong"}, 403, 4),
    ],
)
async def test_refuses_missing_malformed_and_unknown_tokens(
    receiver: HecReceiver, headers: dict[str, str], status: int, code: int
) -> None:
    got_status, body = await _post(receiver.url, b'{"event":"a"}', headers)
    assert (got_status, body["code"]) == (status, code)
    assert receiver.event_count == 0


@pytest.mark.parametrize(
    ("payload", "code", "number"),
    [
        (b"", 5, None),
        (b'{"event":"a"} not json', 6, None),
        (b'{"event":"a"}\n{"time":1}', 12, 1),
        (b'{"event":""}', 13, 0),
        (b'{"event":"a","fields":{"nested":{"x":"y"}}}', 15, 0),
        (b'{"event":"a","index":"secret"}', 7, 0),
    ],
)
async def test_refuses_bad_envelopes_with_the_splunk_code(
    receiver: HecReceiver, payload: bytes, code: int, number: int | None
) -> None:
    status, body = await _post(receiver.url, payload, AUTH)
    assert (status, body["code"]) == (400, code)
    assert body.get("invalid-event-number") == number
    assert receiver.event_count == 0


async def test_accepts_gzipped_concatenated_envelopes(receiver: HecReceiver) -> None:
    payload = gzip.compress(b'{"event":"a","fields":{"event_id":"1"}}{"event":{"b":1},"index":"main"}')
    status, body = await _post(receiver.url, payload, {**AUTH, "Content-Encoding": "gzip"})
    assert (status, body) == (200, {"text": "Success", "code": 0})
    assert receiver.event_count == 2
    assert receiver.unique_ids() == {"1"}


async def test_refuses_unknown_content_encoding(receiver: HecReceiver) -> None:
    status, _ = await _post(receiver.url, b'{"event":"a"}', {**AUTH, "Content-Encoding": "br"})
    assert status == 415


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_refuses_corrupt_compressed_bodies(receiver: HecReceiver, encoding: str) -> None:
    truncated = gzip.compress(b'{"event":"a"}' * 50)[:-9]
    for payload in (b"not compressed at all", truncated):
        status, _ = await _post(receiver.url, payload, {**AUTH, "Content-Encoding": encoding})
        assert status == 415
    assert receiver.event_count == 0


async def test_refuses_bodies_over_the_configured_size(receiver: HecReceiver) -> None:
    receiver.max_request_bytes = 10
    status, _ = await _post(receiver.url, b'{"event":"more than ten bytes"}', AUTH)
    assert status == 413


async def test_requires_a_channel_when_acks_are_on() -> None:
    async with HecReceiver(acks=True) as receiver:
        status, body = await _post(
            receiver.url, b'{"event":"a"}', {"Authorization": f"Splunk {DEFAULT_TOKEN}"}
        )
        assert (status, body["code"]) == (400, 10)
        status, body = await _post(receiver.url, b'{"event":"a"}', AUTH)
        assert (status, body["ackId"]) == (200, 0)
        status, body = await _post(receiver.url, b'{"acks":[0,5]}', AUTH, "/services/collector/ack")
        assert body == {"acks": {"0": True, "5": False}}


async def test_ack_endpoint_says_ack_disabled_without_acks(receiver: HecReceiver) -> None:
    status, body = await _post(receiver.url, b'{"acks":[0]}', AUTH, "/services/collector/ack")
    assert (status, body["code"]) == (400, 14)


async def test_a_fault_window_answers_every_request_until_it_ends(receiver: HecReceiver) -> None:
    receiver.faults.for_seconds(30, hec_fault(503, 9, "Server is busy", retry_after=2))
    for _ in range(3):
        status, body = await _post(receiver.url, b'{"event":"a"}', AUTH)
        assert (status, body["code"]) == (503, 9)
    receiver.faults.clear()
    status, _ = await _post(receiver.url, b'{"event":"a"}', AUTH)
    assert status == 200


async def test_runs_as_its_own_process_and_reports_counts() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "forwarder.testing.receivers", "hec", "--acks", stdout=asyncio.subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(30):
            url = orjson.loads(await process.stdout.readline())["url"]
        config = {"type": "splunk_hec", "name": "proc", "url": url, "token": DEFAULT_TOKEN}
        sink = SplunkHecSink(
            SplunkHecConfig.model_validate(
                {**config, "acknowledgements": {"enabled": True, "poll_interval": 0.01}}
            )
        )
        await sink.send([sink.encode(sample_event(i)) for i in range(3)])
        await sink.close()
        async with aiohttp.ClientSession() as session, session.get(f"{url}/_receiver/stats") as resp:
            assert await resp.json() == {"events": 3, "unique": 3, "requests": 1, "duplicates": 0}
    finally:
        process.terminate()
        assert await process.wait() == 0
