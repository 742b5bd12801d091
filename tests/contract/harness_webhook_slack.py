"""Contract harness: WebhookSink (format: slack) against the Slack incoming-webhook stand-in, which checks the
secret path and every Block Kit limit. Refused credentials = a revoked webhook (404 no_service)."""

from __future__ import annotations

from typing import Self

from harness_webhook import status_fault, webhook_sink
from sink_harness import HttpHarness

from forwarder.testing.receivers import sample_alert
from forwarder.testing.receivers.slack import SlackReceiver


class SlackHarness(HttpHarness):
    name = "webhook_slack"

    def __init__(self) -> None:
        self.receiver = SlackReceiver()

    async def __aenter__(self) -> Self:
        await self.receiver.start()
        self.sink = webhook_sink("slack", url=self.receiver.webhook_url)
        return self

    def batch(self, n: int, start: int = 0) -> list[bytes]:
        return [self.sink.encode(sample_alert(i)) for i in range(start, start + n)]

    def script_status(self, status: int, retry_after: float | None = None) -> None:
        codes = {400: b"invalid_payload", 429: b"rate_limited", 500: b"rollup_error"}
        self.receiver.faults.next(status_fault(status, retry_after, codes.get(status, b"")))

    def refuse_credentials(self) -> None:
        self.receiver.state = "revoked"


HARNESS = SlackHarness
