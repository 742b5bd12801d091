"""Contract harness: WebhookSink (format: pagerduty) against the Events API v2 stand-in, which validates the
schema and routing key. Refused credentials = an integration key PagerDuty does not know (400, paused)."""

from __future__ import annotations

from typing import Self

from harness_webhook import webhook_sink
from sink_harness import HttpHarness

from forwarder.testing.receivers import sample_alert
from forwarder.testing.receivers.pagerduty import DEFAULT_ROUTING_KEY, PagerDutyReceiver, pd_fault


class PagerDutyHarness(HttpHarness):
    name = "webhook_pagerduty"

    def __init__(self) -> None:
        self.receiver = PagerDutyReceiver()

    async def __aenter__(self) -> Self:
        await self.receiver.start()
        self.sink = webhook_sink("pagerduty", url=self.receiver.enqueue_url, routing_key=DEFAULT_ROUTING_KEY)
        return self

    def batch(self, n: int, start: int = 0) -> list[bytes]:
        return [self.sink.encode(sample_alert(i)) for i in range(start, start + n)]

    def script_status(self, status: int, retry_after: float | None = None) -> None:
        self.receiver.faults.next(pd_fault(status, retry_after=retry_after))

    def refuse_credentials(self) -> None:
        self.receiver.routing_keys = {"R" * 32}


HARNESS = PagerDutyHarness
