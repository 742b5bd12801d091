"""DatadogSink against the Datadog receiver: what goes on the wire, the health check, late events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from forwarder.errors import AuthenticationError, RetryableError
from forwarder.testing.receivers import sample_event
from forwarder.testing.receivers.datadog import DEFAULT_API_KEY, DatadogReceiver, dd_fault
from sinks.datadog import DatadogConfig, DatadogSink


def _sink(receiver: DatadogReceiver, **kw: object) -> DatadogSink:
    config = {"type": "datadog", "name": "dd", "url": receiver.intake_url, "api_key": DEFAULT_API_KEY, **kw}
    return DatadogSink(DatadogConfig.model_validate(config))


@pytest.fixture
async def receiver() -> AsyncIterator[DatadogReceiver]:
    async with DatadogReceiver() as started:
        yield started


async def test_sends_a_gzipped_json_array_with_the_api_key(receiver: DatadogReceiver) -> None:
    sink = _sink(receiver, tags=["env:test"])
    batch = [sink.encode(sample_event(i)) for i in range(3)]
    await sink.send(batch)
    await sink.close()
    (request,) = receiver.requests
    assert request.path == "/api/v2/logs"
    assert request.headers["DD-API-KEY"] == DEFAULT_API_KEY
    assert request.headers["Content-Encoding"] == "gzip"
    assert request.headers["Content-Type"] == "application/json"
    assert request.body_bytes == sum(map(len, batch)) + len(batch) + 1  # "[" a "," b "," c "]"
    first = receiver.events[0]
    assert first["ddsource"] == "salesforce"
    assert first["ddtags"] == "env:test,dataset:salesforce.login"
    assert first["usr"]["name"] == "alice@example.com"
    assert first["evt"] == {"name": "login", "outcome": "success"}


async def test_large_uncompressed_batches_stream_without_warnings(receiver: DatadogReceiver) -> None:
    sink = _sink(receiver, compression=False)
    batch = [sink.encode(sample_event(i, pad=500_000)) for i in range(6)]  # ~3 MB body
    await sink.send(batch)
    await sink.close()
    assert len(receiver.unique_ids()) == 6
    assert "Content-Encoding" not in receiver.requests[0].headers


async def test_request_timeout_is_retryable(receiver: DatadogReceiver) -> None:
    sink = _sink(receiver, timeout=0.2)
    receiver.faults.next(dd_fault(202, delay=2))
    with pytest.raises(RetryableError):
        await sink.send([sink.encode(sample_event(1))])
    await sink.close()


async def test_health_check_validates_the_api_key(receiver: DatadogReceiver) -> None:
    sink = _sink(receiver)
    await sink.check()
    receiver.api_keys = {"rotated"}
    with pytest.raises(AuthenticationError) as caught:
        await sink.check()
    assert DEFAULT_API_KEY not in str(caught.value)
    await sink.close()


async def test_a_day_old_event_arrives_restamped_with_its_original_time(receiver: DatadogReceiver) -> None:
    old = (datetime.now(UTC) - timedelta(days=1)).replace(microsecond=0)
    sink = _sink(receiver)
    await sink.send([sink.encode(sample_event(1, timestamp=old.isoformat()))])
    await sink.close()
    (entry,) = receiver.events
    assert entry["forwarder"] == {"late": True, "original_timestamp": old.isoformat()}
    assert entry["timestamp"] > int((old + timedelta(hours=23)).timestamp() * 1000)
    assert entry["@timestamp"] == old.isoformat()
