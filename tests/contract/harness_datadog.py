"""Contract harness: DatadogSink against the in-process Datadog Logs receiver."""

from __future__ import annotations

from typing import Self

from pydantic import SecretStr

from forwarder.testing.receivers import sample_event
from forwarder.testing.receivers.datadog import DEFAULT_API_KEY, DatadogReceiver, dd_fault
from sinks.datadog import DatadogConfig, DatadogSink


class DatadogHarness:
    name = "datadog"
    capabilities = {"status", "too_large", "auth", "health"}

    def __init__(self) -> None:
        self.receiver = DatadogReceiver()

    async def __aenter__(self) -> Self:
        await self.receiver.start()
        config = DatadogConfig(
            type="datadog",
            name="dd",
            url=self.receiver.intake_url,
            api_key=SecretStr(DEFAULT_API_KEY),
            timeout=5,
        )
        self.sink = DatadogSink(config)
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
        self.receiver.faults.next(dd_fault(status, retry_after=retry_after))

    def refuse_credentials(self) -> None:
        self.receiver.api_keys = {"another-key"}

    async def stop_receiver(self) -> None:
        await self.receiver.stop()


HARNESS = DatadogHarness
