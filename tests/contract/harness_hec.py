"""Contract harness: SplunkHecSink against the in-process HEC receiver (acks off: the ack path has its own
tests in tests/unit/test_hec_*.py and tests/integration/test_hec_*.py)."""

from __future__ import annotations

from typing import Self

from pydantic import SecretStr
from sink_harness import HttpHarness

from forwarder.testing.receivers.hec import DEFAULT_TOKEN, HecReceiver, hec_fault
from sinks.splunk_hec import SplunkHecConfig, SplunkHecSink

_TEXT = {
    400: (6, "Invalid data format"),
    429: (9, "Server is busy"),
    500: (8, "Internal server error"),
    503: (9, "Server is busy"),
    413: (6, "Content too large"),
}


class HecHarness(HttpHarness):
    name = "splunk_hec"

    def __init__(self) -> None:
        self.receiver = HecReceiver()

    async def __aenter__(self) -> Self:
        await self.receiver.start()
        config = SplunkHecConfig(
            type="splunk_hec", name="hec", url=self.receiver.url, token=SecretStr(DEFAULT_TOKEN), timeout=5
        )
        self.sink = SplunkHecSink(config)
        return self

    def script_status(self, status: int, retry_after: float | None = None) -> None:
        code, text = _TEXT.get(status, (8, "scripted"))
        self.receiver.faults.next(hec_fault(status, code, text, retry_after=retry_after))

    def refuse_credentials(self) -> None:
        self.receiver.tokens = {"another-token"}


HARNESS = HecHarness
