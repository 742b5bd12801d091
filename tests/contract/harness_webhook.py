"""Contract harness: WebhookSink (format: generic, Standard Webhooks signed JSON) against the in-process
consumer, which verifies every signature and timestamp. One alert per request (limits.max_events = 1)."""

from __future__ import annotations

from typing import Any, Self

from sink_harness import HttpHarness

from forwarder.testing.receivers import Fault, sample_alert
from forwarder.testing.receivers.webhook import DEFAULT_SECRET, WebhookReceiver
from sinks.webhook import WebhookConfig, WebhookSink


def webhook_sink(fmt: str, **fields: Any) -> WebhookSink:
    """A sink of ``fmt`` with a 5 s timeout and no pacing (the suite sends back to back)."""
    config = {"type": "webhook", "name": f"hook-{fmt}", "format": fmt, "timeout": 5, "pace": 0, **fields}
    return WebhookSink(WebhookConfig.model_validate(config))


def status_fault(status: int, retry_after: float | None, body: bytes = b"") -> Fault:
    """``status`` with ``Retry-After`` when given."""
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
    return Fault(status=status, body=body, headers=headers)


class WebhookHarness(HttpHarness):
    name = "webhook"

    def __init__(self) -> None:
        self.receiver = WebhookReceiver()

    async def __aenter__(self) -> Self:
        await self.receiver.start()
        self.sink = webhook_sink("generic", url=self.receiver.hook_url, secret=DEFAULT_SECRET)
        return self

    def batch(self, n: int, start: int = 0) -> list[bytes]:
        return [self.sink.encode(sample_alert(i)) for i in range(start, start + n)]

    def script_status(self, status: int, retry_after: float | None = None) -> None:
        self.receiver.faults.next(status_fault(status, retry_after))

    def refuse_credentials(self) -> None:
        self.receiver.secrets = ["whsec_" + "QUJD" * 8]  # the consumer rotated to a secret we do not have


HARNESS = WebhookHarness
