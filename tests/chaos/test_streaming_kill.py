"""kill -9 a process streaming RTEM into the real SQLite journal, again and again: each event lands once."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import sys
from pathlib import Path

import pytest

from forwarder.journal.sqlite import SqliteJournal
from forwarder.records import Lane
from forwarder.testing.fixtures import SHARED_FIXTURES
from forwarder.testing.simulator.cometd import CometdServer, EventBus, serve

LOGIN = "/event/LoginEventStream"
FIXTURE = SHARED_FIXTURES / "streaming/compiled-bayeux-examples.json"
KILLS = 6

CHILD = """
import asyncio, sys
from dataclasses import dataclass

import aiohttp, structlog

from forwarder.ingest import make_emit
from forwarder.journal.sqlite import SqliteJournal
from forwarder.records import Lane
from forwarder.sources.streaming import StreamingConfig, StreamingSource

structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))


@dataclass
class Session:
    instance_url: str
    access_token: str


class Auth:
    async def session(self):
        return Session(sys.argv[1], "tok")

    def invalidate(self, token):
        pass


async def main():
    journal = await SqliteJournal.open(sys.argv[2], consumers=["check"])
    append = make_emit(journal, "streaming", Lane.REALTIME)

    async def emit(records, position):
        await append(records, position)
        print("EMITTED", position["replay"]["/event/LoginEventStream"], flush=True)

    config = StreamingConfig(channels=["/event/LoginEventStream"], replay="earliest")
    async with aiohttp.ClientSession() as http:
        source = StreamingSource(config, Auth(), "62.0", http, backoff=lambda _: 0.05)
        await source.run(await journal.position("streaming"), emit)


asyncio.run(main())
"""


def login_payload(n: int) -> dict[str, object]:
    examples = {e["id"]: e["message"] for e in json.loads(FIXTURE.read_text())["examples"]}
    payload = dict(examples["loginEventStream_delivery_real_capture"][0]["data"]["payload"])
    payload["EventIdentifier"] = f"chaos-{n:05d}"
    return payload


async def publish(bus: EventBus, stop: asyncio.Event) -> list[int]:
    """Publish until ``stop``, paced so that every kill lands mid-stream."""
    ids: list[int] = []
    while not stop.is_set():
        ids.extend(bus.publish(LOGIN, login_payload(len(ids))) for _ in range(20))
        await asyncio.sleep(0.01)  # traffic pacing, not synchronisation
    return ids


async def start(url: str, path: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, url, str(path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


async def emitted(proc: asyncio.subprocess.Process) -> int:
    """The replay id of the child's next durable batch."""
    assert proc.stdout is not None
    line = await proc.stdout.readline()
    assert line.startswith(b"EMITTED "), line
    return int(line.split()[1])


async def journal_ids(path: Path) -> list[str]:
    journal = await SqliteJournal.open(path, consumers=["check"])
    ids: list[str] = []
    after = 0
    try:
        while entries := await journal.read("check", Lane.REALTIME, after, 1000):
            ids.extend(e.event["event"]["id"] for e in entries)
            after = entries[-1].offset
    finally:
        await journal.close()
    return ids


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_kill_9_mid_stream_keeps_each_event_exactly_once(tmp_path: Path) -> None:
    rng = random.Random(7)
    path = tmp_path / "journal.db"
    bus = EventBus()
    stop = asyncio.Event()
    procs: list[asyncio.subprocess.Process] = []
    async with serve(CometdServer(bus, lambda t: t == "tok", connect_timeout=0.5)) as url:
        publisher = asyncio.create_task(publish(bus, stop))
        try:
            async with asyncio.timeout(90):
                for _ in range(KILLS):
                    procs.append(proc := await start(url, path))
                    for _ in range(rng.randint(1, 6)):
                        await emitted(proc)
                    proc.kill()  # SIGKILL: no cleanup, maybe mid-transaction
                    await proc.wait()
                stop.set()
                published = await publisher
                procs.append(proc := await start(url, path))
                while await emitted(proc) != published[-1]:
                    pass
        finally:
            stop.set()
            for proc in procs:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
    ids = await journal_ids(path)
    assert len(published) > 100
    assert len(ids) == len(set(ids)), "an event was journalled twice"
    assert sorted(ids) == [f"chaos-{n:05d}" for n in range(len(published))]
