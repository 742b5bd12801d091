"""Contract harness: DatadogSink against the in-process Datadog Logs receiver."""

from __future__ import annotations

from typing import Self

from pydantic import SecretStr
from sink_harness import HttpHarness

from forwarder.testing.receivers.datadog import DEFAULT_API_KEY, DatadogReceiver, dd_fault
from sinks.datadog import DatadogConfig, DatadogSink


class DatadogHarness(HttpHarness):
    name = "datadog"

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

    def script_status(self, status: int, retry_after: float | None = None) -> None:
        self.receiver.faults.next(dd_fault(status, retry_after=retry_after))

    def refuse_credentials(self) -> None:
        self.receiver.api_keys = {"another-key"}


HARNESS = DatadogHarness
