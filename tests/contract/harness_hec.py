"""Contract harness: SplunkHecSink against the in-process HEC receiver (acks off: the ack path has its own
tests in tests/unit/test_hec_*.py and tests/integration/test_hec_*.py)."""

from __future__ import annotations

from typing import Self

from pydantic import SecretStr

from forwarder.testing.receivers import sample_event
from forwarder.testing.receivers.hec import DEFAULT_TOKEN, HecReceiver, hec_fault
from sinks.splunk_hec import SplunkHecConfig, SplunkHecSink

_TEXT = {
    400: (6, "Invalid data format"),
    429: (9, "Server is busy"),
    500: (8, "Internal server error"),
    503: (9, "Server is busy"),
    413: (6, "Content too large"),
}


class HecHarness:
    name = "splunk_hec"
    capabilities = {"status", "too_large", "auth", "health"}

    def __init__(self) -> None:
        self.receiver = HecReceiver()

    async def __aenter__(self) -> Self:
        await self.receiver.start()
        config = SplunkHecConfig(
            type="splunk_hec", name="hec", url=self.receiver.url, token=SecretStr(DEFAULT_TOKEN), timeout=5
        )
        self.sink = SplunkHecSink(config)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.sink.close()
        await self.receiver.stop()

    def batch(self, n: int, start: int = 0) -> list[bytes]:
        return [self.sink.encode(sample_event(i)) for i in range(start, start + n)]

    def delivered_ids(self) -> set[str]:
        return self.receiver.unique_ids()

    def request_count(self) -> int:
        return len(self.receiver.requests)

    def script_status(self, status: int, retry_after: float | None = None) -> None:
        code, text = _TEXT.get(status, (8, "scripted"))
        self.receiver.faults.next(hec_fault(status, code, text, retry_after=retry_after))

    def refuse_credentials(self) -> None:
        self.receiver.tokens = {"another-token"}

    async def stop_receiver(self) -> None:
        await self.receiver.stop()


HARNESS = HecHarness
