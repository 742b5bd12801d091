"""The poll loop every REST source shares: budget gate, one poll, backoff on transient errors, and refusals
reported without stopping (so a fixed permission needs no restart and other sources keep running)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, NoReturn

import structlog

from forwarder import metrics
from forwarder.errors import AuthenticationError, PermanentError, RetryableError
from forwarder.salesforce.rest import RestClient

log = structlog.get_logger()

Sleep = Callable[[float], Awaitable[None]]


def backoff_delay(backoff: tuple[float, float], attempt: int, hint: float | None) -> float:
    """Seconds before retry ``attempt`` (1-based): the server's hint, else exponential, capped."""
    base, cap = backoff
    return min(cap, hint if hint is not None else base * 2 ** (attempt - 1))


async def poll_forever(
    name: str,
    poll: Callable[[], Awaitable[Any]],
    *,
    rest: RestClient,
    interval: float,
    backoff: tuple[float, float],
    sleep: Sleep,
) -> NoReturn:
    """Call ``poll`` every ``interval`` seconds forever; a transient error retries it, skipping nothing."""
    failures = 0
    while True:
        await rest.budget_gate(name)
        try:
            await poll()
            failures = 0
        except RetryableError as exc:
            failures += 1
            metrics.source_errors.labels(source=name, error="retryable").inc()
            wait = backoff_delay(backoff, failures, exc.retry_after)
            log.warning("poll_retry", source=name, error=str(exc), wait_s=wait)
            await sleep(wait)
            continue
        except (PermanentError, AuthenticationError) as exc:
            metrics.source_errors.labels(source=name, error="permanent").inc()
            log.error("poll_refused", source=name, error=str(exc))
        await sleep(interval)
