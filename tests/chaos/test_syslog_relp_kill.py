"""kill -9 rsyslog while RELP batches are in flight, at random moments, and restart it: every batch the sink
called sent is already in rsyslog's output, every batch is retried whole until it is, and nothing is
missing (duplicates counted: RELP is at-least-once)."""

from __future__ import annotations

import asyncio
import random
import sys
import time
from collections import Counter
from pathlib import Path

import structlog

from forwarder import metrics
from forwarder.errors import RetryableError
from forwarder.testing.receivers import sample_event
from sinks.syslog import SyslogConfig, SyslogSink

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from rsyslog import Rsyslog, parse_line  # the rsyslogd fixture of the integration tests

KILLS = 5
BATCH = 1000
SD_ID = "sfforwarder@32473"
log = structlog.get_logger()


class OutputTail:
    """The event ids rsyslog has written so far, read incrementally (complete lines only)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._offset = 0
        self.ids: Counter[str] = Counter()

    def read(self) -> Counter[str]:
        if self._path.exists():
            with self._path.open("rb") as output:
                output.seek(self._offset)
                data = output.read()
            complete = data[: data.rfind(b"\n") + 1]
            self._offset += len(complete)
            for line in complete.splitlines():
                record = parse_line(line) or {}  # a line cut by SIGKILL holds an unacknowledged message
                self.ids[record.get("rfc5424-sd", {}).get(SD_ID, {}).get("id", "")] += 1
        return self.ids


class Chaos:
    """A sender that never stops sending fresh batches (each retried until it succeeds, as the delivery
    layer does) and a killer that SIGKILLs and restarts rsyslog at random moments while one is in flight."""

    def __init__(self, server: Rsyslog, sink: SyslogSink) -> None:
        self.server = server
        self.sink = sink
        self.tail = OutputTail(server.output)
        self.up = asyncio.Event()
        self.in_flight = asyncio.Event()
        self.delivered = asyncio.Event()
        self.stop = asyncio.Event()
        self.sent: list[str] = []
        self.failures: Counter[str] = Counter()
        self.unwritten_after_success: list[str] = []
        self.batch_seconds = 0.05  # how long the last successful batch took

    async def sender(self) -> None:
        first = 0
        while not self.stop.is_set():
            ids = [f"evt-{i:08d}" for i in range(first, first + BATCH)]
            frames = [self.sink.encode(sample_event(i)) for i in range(first, first + BATCH)]
            started = time.monotonic()
            await self._deliver(frames)
            self.batch_seconds = time.monotonic() - started
            first += BATCH
            self.sent += ids
            # Success means every message was acknowledged, and rsyslog acknowledges after writing (Direct
            # queue, tests/integration/rsyslog.py): the ids must be in the file right now.
            written = self.tail.read()
            self.unwritten_after_success += [i for i in ids if not written[i]]
            self.delivered.set()

    async def _deliver(self, frames: list[bytes]) -> None:
        while True:
            self.in_flight.set()
            try:
                await self.sink.send(frames)
                return
            except RetryableError as exc:
                # "RELP delivery ... failed: why" is a batch cut short; "cannot open ...: why" a reconnect.
                self.failures[str(exc).split(" ", 1)[0] + ": " + str(exc).split(": ", 1)[-1]] += 1
                await self.up.wait()
            finally:
                self.in_flight.clear()

    async def killer(self) -> None:
        for _ in range(KILLS):
            self.delivered.clear()
            await self.delivered.wait()  # the session of the last restart carried a batch
            await self.in_flight.wait()
            # A random moment within that batch (not a synchronisation: any moment must be survived).
            await asyncio.sleep(random.uniform(0, 0.8 * self.batch_seconds))
            self.up.clear()
            await asyncio.to_thread(self.server.kill)
            await asyncio.to_thread(self.server.start)
            self.up.set()
        self.delivered.clear()
        await self.delivered.wait()
        self.stop.set()


async def test_kill_9_mid_batch_loses_no_event_and_success_means_written(tmp_path: Path) -> None:
    server = Rsyslog(tmp_path)
    server.start()
    config = {
        "type": "syslog",
        "name": "relp-chaos",
        "address": server.address("RELP", "relp"),
        "connect_timeout": 2,
        "write_timeout": 10,
        "relp_window": 64,
    }
    sink = SyslogSink(SyslogConfig.model_validate(config))
    chaos = Chaos(server, sink)
    chaos.up.set()
    opened = metrics.syslog_connections.labels("relp-chaos", "opened")._value.get()
    try:
        async with asyncio.timeout(50):
            await asyncio.gather(chaos.sender(), chaos.killer())
    except TimeoutError:
        raise AssertionError(f"stuck; failures so far: {chaos.failures}") from None
    finally:
        await sink.close()
        server.stop()
    written = chaos.tail.read()
    missing = [i for i in chaos.sent if not written[i]]
    duplicates = sum(written[i] - 1 for i in chaos.sent)
    log.info("relp_chaos", sent=len(chaos.sent), duplicates=duplicates, failures=dict(chaos.failures))
    assert chaos.unwritten_after_success == []  # never a success for an unacknowledged message
    assert missing == []
    assert sum(n for why, n in chaos.failures.items() if why.startswith("RELP:")) >= 1  # batches cut short
    assert metrics.syslog_connections.labels("relp-chaos", "opened")._value.get() - opened >= KILLS + 1
