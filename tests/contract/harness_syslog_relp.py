"""Contract harness: SyslogSink over RELP against a real rsyslogd with imrelp (tests/integration/rsyslog.py).

RELP acknowledges every message, and the fixture's imrelp ruleset writes before it acknowledges, so unlike
the TCP harness no wait is needed: when ``send`` returns the events are in rsyslog's file. Like syslog over
TCP there are no status codes, size refusals or credentials ("status", "too_large", "auth" skipped).
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Self

from forwarder.events import EventDoc
from forwarder.testing.receivers import sample_event
from sinks import SinkLimits
from sinks.syslog import SyslogConfig, SyslogSink

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from rsyslog import Rsyslog  # the rsyslogd fixture of the integration tests

SD_ID = "sfforwarder@32473"


class _CountingSends:
    """The real sink, counting the sends that returned (each one acknowledged message by message)."""

    def __init__(self, sink: SyslogSink) -> None:
        self._sink = sink
        self.name = sink.name
        self.limits: SinkLimits = sink.limits
        self.sends = 0

    def encode(self, event: EventDoc) -> bytes:
        return self._sink.encode(event)

    async def send(self, batch: Sequence[bytes]) -> None:
        await self._sink.send(batch)
        self.sends += 1

    async def check(self) -> None:
        await self._sink.check()

    async def close(self) -> None:
        await self._sink.close()


class SyslogRelpHarness:
    name = "syslog_relp"
    capabilities = {"health"}

    def __init__(self) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="relp-contract-"))
        self.rsyslog = Rsyslog(self._dir)

    async def __aenter__(self) -> Self:
        await asyncio.to_thread(self.rsyslog.start)
        config = SyslogConfig(
            type="syslog", name="syslog_relp", address=self.rsyslog.address("RELP", "relp"), connect_timeout=5
        )
        self.sink = _CountingSends(SyslogSink(config))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.sink.close()
        await asyncio.to_thread(self.rsyslog.stop)
        shutil.rmtree(self._dir, ignore_errors=True)

    def batch(self, n: int, start: int = 0) -> list[bytes]:
        return [self.sink.encode(sample_event(i)) for i in range(start, start + n)]

    def delivered_ids(self) -> set[str]:
        ids = {r.get("rfc5424-sd", {}).get(SD_ID, {}).get("id") for r in self.rsyslog.records()}
        return {i for i in ids if isinstance(i, str)}

    def request_count(self) -> int:
        # RELP has one command per message; a "request" here is one acknowledged send of a batch.
        return self.sink.sends

    def script_status(self, status: int, retry_after: float | None = None) -> None:
        raise NotImplementedError("RELP answers 200 or an error text, no HTTP-like status to script")

    def refuse_credentials(self) -> None:
        raise NotImplementedError("RELP has no credentials; TLS identity is tested against rsyslog")

    async def stop_receiver(self) -> None:
        await asyncio.to_thread(self.rsyslog.stop)


HARNESS = SyslogRelpHarness
