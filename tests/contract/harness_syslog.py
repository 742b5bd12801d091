"""Contract harness: SyslogSink over TCP (octet counting) against the receivers module's syslog listener.

Syslog has no status codes, no size refusal and no credentials, so the "status", "too_large" and "auth"
checks are skipped for it (syslog over TCP/TLS has no application-level answer at all: RFC 6587, RFC 5425).
It also has no acknowledgement: a finished write says nothing about receipt. The suite inspects the
receiver as soon as ``send`` returns, so the harness's sink returns only once the receiver has parsed every
frame of the batch (the frames themselves travel through the real sink and a real socket). RELP, which
does acknowledge, runs the suite without that wait in harness_syslog_relp.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Self

from forwarder.events import EventDoc
from forwarder.testing.receivers import sample_event
from forwarder.testing.receivers.syslog import SyslogReceiver
from sinks import SinkLimits
from sinks.syslog import SyslogConfig, SyslogSink


class _UntilReceived:
    """The real sink, plus a wait for the receiver to have read the batch before ``send`` returns."""

    def __init__(self, sink: SyslogSink, receiver: SyslogReceiver) -> None:
        self._sink = sink
        self._receiver = receiver
        self.name = sink.name
        self.limits: SinkLimits = sink.limits
        self.writes = 0

    def encode(self, event: EventDoc) -> bytes:
        return self._sink.encode(event)

    async def send(self, batch: Sequence[bytes]) -> None:
        target = self._receiver.received + len(batch)
        await self._sink.send(batch)
        await self._receiver.wait_for(target)
        self.writes += 1

    async def check(self) -> None:
        await self._sink.check()

    async def close(self) -> None:
        await self._sink.close()


class SyslogHarness:
    name = "syslog"
    capabilities = {"health"}

    def __init__(self) -> None:
        self.receiver = SyslogReceiver(udp_port=None)

    async def __aenter__(self) -> Self:
        await self.receiver.start()
        config = SyslogConfig(
            type="syslog", name="syslog", address=self.receiver.tcp_address, connect_timeout=5
        )
        self.sink = _UntilReceived(SyslogSink(config), self.receiver)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.sink.close()
        await self.receiver.stop()

    def batch(self, n: int, start: int = 0) -> list[bytes]:
        return [self.sink.encode(sample_event(i)) for i in range(start, start + n)]

    def delivered_ids(self) -> set[str]:
        return self.receiver.unique_ids()

    def request_count(self) -> int:
        # One send is one write of every frame on the one connection; syslog has no request to count at
        # the receiver, so this is the number of sends that fully arrived.
        return self.sink.writes

    def script_status(self, status: int, retry_after: float | None = None) -> None:
        raise NotImplementedError("syslog has no status codes (RFC 6587, RFC 5425)")

    def refuse_credentials(self) -> None:
        raise NotImplementedError("syslog has no credentials; TLS identity is tested against rsyslog")

    async def stop_receiver(self) -> None:
        await self.receiver.stop()


HARNESS = SyslogHarness
