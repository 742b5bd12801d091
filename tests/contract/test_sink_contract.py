"""The contract every sink passes (STYLE.md, issue 6): accepts a batch in one request, 429 and 5xx are
retryable with the server's retry_after, 400 is permanent, 413 splits, refused credentials pause rather
than drop, an unreachable peer is retryable, close is idempotent."""

from __future__ import annotations

import pytest
from conftest import needs
from sink_harness import SinkHarness

from forwarder.errors import AuthenticationError, BatchTooLargeError, PermanentError, RetryableError


async def test_accepts_a_batch_in_one_request(harness: SinkHarness) -> None:
    n = min(25, harness.sink.limits.max_events)  # webhooks carry one alert per request
    before = harness.request_count()
    await harness.sink.send(harness.batch(n))
    assert harness.delivered_ids() == {f"evt-{i:08d}" for i in range(n)}
    assert harness.request_count() - before == 1


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
async def test_rate_limits_and_server_errors_are_retryable_with_retry_after(
    harness: SinkHarness, status: int
) -> None:
    needs(harness, "status")
    harness.script_status(status, retry_after=7)
    with pytest.raises(RetryableError) as caught:
        await harness.sink.send(harness.batch(3))
    assert caught.value.retry_after == 7
    assert harness.delivered_ids() == set()
    await harness.sink.send(harness.batch(3))  # the same batch again, once the peer recovered
    assert len(harness.delivered_ids()) == 3


async def test_bad_request_is_permanent(harness: SinkHarness) -> None:
    needs(harness, "status")
    harness.script_status(400)
    with pytest.raises(PermanentError) as caught:
        await harness.sink.send(harness.batch(2))
    assert not isinstance(caught.value, BatchTooLargeError | RetryableError)


async def test_payload_too_large_asks_for_a_split(harness: SinkHarness) -> None:
    needs(harness, "too_large")
    harness.script_status(413)
    with pytest.raises(BatchTooLargeError):
        await harness.sink.send(harness.batch(4))


async def test_refused_credentials_pause_instead_of_dropping(harness: SinkHarness) -> None:
    needs(harness, "auth")
    harness.refuse_credentials()
    with pytest.raises(AuthenticationError) as caught:
        await harness.sink.send(harness.batch(2))
    assert not isinstance(caught.value, PermanentError)  # delivery keeps the batch and retries it
    assert harness.delivered_ids() == set()


async def test_unreachable_peer_is_retryable(harness: SinkHarness) -> None:
    await harness.stop_receiver()
    with pytest.raises(RetryableError):
        await harness.sink.send(harness.batch(1))


async def test_health_check_passes_when_up_and_raises_when_down(harness: SinkHarness) -> None:
    needs(harness, "health")
    await harness.sink.check()
    await harness.stop_receiver()
    with pytest.raises(RetryableError):
        await harness.sink.check()


async def test_every_send_is_one_request(harness: SinkHarness) -> None:
    n = min(10, harness.sink.limits.max_events)
    for round_ in range(3):
        await harness.sink.send(harness.batch(n, start=round_ * n))
    assert harness.request_count() == 3
    assert len(harness.delivered_ids()) == 3 * n


async def test_close_is_idempotent(harness: SinkHarness) -> None:
    await harness.sink.send(harness.batch(1))
    await harness.sink.close()
    await harness.sink.close()


async def test_declares_limits_it_can_honour(harness: SinkHarness) -> None:
    limits = harness.sink.limits
    assert limits.max_events >= 1
    assert limits.max_bytes >= 1
    batch = harness.batch(limits.max_events if limits.max_events <= 1000 else 1000)
    await harness.sink.send(batch)
    assert len(harness.delivered_ids()) == len(batch)
