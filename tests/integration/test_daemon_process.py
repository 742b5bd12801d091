"""The daemon as operators run it: a real ``sf-forwarder run`` process against the simulator and receivers.

SIGTERM while a sink is failing loses nothing: the batch being retried is the first thing sent after a
restart, and the process exits 0 after a requested stop.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
import yaml

from forwarder.testing.receivers.hec import HecReceiver, hec_fault
from forwarder.testing.simulator import Simulator

HEC_TOKEN = "11111111-2222-3333-4444-555555555555"


@dataclass
class Stack:
    org: Simulator
    hec: HecReceiver
    config: Path
    archive: Path


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    async with (
        Simulator(seed=11, scenario="attacks", start=start, activities=120) as org,
        HecReceiver(tokens={HEC_TOKEN}, acks=True) as hec,
    ):
        config = {
            "salesforce": org.salesforce_config(),
            "sources": {
                "streaming": {"channels": ["/event/LoginEventStream", "/event/ApiEventStream"], "replay": "earliest"},
                "eventlogfile": {"poll_interval": "2s", "start": start.date().isoformat()},
                "setupaudittrail": {"poll_interval": "2s", "initial_span": "1d"},
            },
            "sinks": [
                {"name": "splunk", "type": "splunk_hec", "url": hec.url, "token": HEC_TOKEN,
                 "acknowledgements": {"enabled": True, "poll_interval": 0.05}},
                {"name": "archive", "type": "file", "path": str(tmp_path / "events.jsonl")},
            ],
            "state": {"path": str(tmp_path / "state.db")},
            "server": {"listen": "127.0.0.1:0"},
            "logging": {"level": "info", "format": "json"},
        }  # fmt: skip
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(config))
        yield Stack(org, hec, path, tmp_path / "events.jsonl")


async def start_daemon(config: Path, log: Path) -> asyncio.subprocess.Process:
    with log.open("ab") as stderr:  # the child keeps its own copy of the descriptor
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "forwarder", "run", "-c", str(config),
            stdout=asyncio.subprocess.DEVNULL, stderr=stderr, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip


def archived_ids(path: Path) -> set[str]:
    if not path.exists():
        return set()
    return {orjson.loads(line)["event"]["id"] for line in path.read_bytes().splitlines() if line.strip()}


async def until(predicate: object, timeout: float, what: str) -> None:  # noqa: ASYNC109 - test helper
    try:
        async with asyncio.timeout(timeout):
            while not predicate():  # type: ignore[operator]  # noqa: ASYNC110 - polls another process's files
                await asyncio.sleep(0.2)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def stop(process: asyncio.subprocess.Process) -> int:
    process.send_signal(signal.SIGTERM)
    async with asyncio.timeout(40):
        return await process.wait()


async def test_sigterm_during_sink_outage_loses_nothing(stack: Stack, tmp_path: Path) -> None:
    log = tmp_path / "daemon.log"
    stack.hec.faults.for_seconds(3600, hec_fault(503, 9, "Server is busy"))
    daemon = await start_daemon(stack.config, log)

    # Everything reaches the file sink while Splunk answers 503 and is being retried.
    await until(lambda: len(archived_ids(stack.archive)) >= 200, 90, "events in the archive")
    await until(lambda: len(stack.hec.requests) >= 3, 30, "HEC retries")
    first_run = archived_ids(stack.archive)
    assert stack.hec.unique_ids() == set()
    assert await stop(daemon) == 0, log.read_text()[-3000:]

    # After the restart with Splunk healthy, every event reaches it, at least once, none invented.
    stack.hec.faults.clear()
    daemon = await start_daemon(stack.config, log)
    await until(lambda: stack.hec.unique_ids() >= archived_ids(stack.archive), 90, "HEC to catch up")
    assert await stop(daemon) == 0, log.read_text()[-3000:]
    assert stack.hec.unique_ids() == archived_ids(stack.archive)
    assert first_run <= archived_ids(stack.archive)

    # The journal agrees: nothing left to deliver, nothing dead-lettered, no event ingested twice.
    shown = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "forwarder", "state", "show", "-c", str(stack.config), "--json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await shown.communicate()
    assert shown.returncode == 0, err.decode()
    state = json.loads(out)
    lines = stack.archive.read_bytes().splitlines()
    assert len(lines) == len(archived_ids(stack.archive)), "an event was ingested twice"
    assert "splunk" in json.dumps(state["consumers"])
    assert state["dead_letters"] == {} or sum(state["dead_letters"].values()) == 0
    for consumer in ("splunk", "archive"):
        assert state["consumers"][consumer]["active"] is True
        for lane in ("realtime", "bulk"):
            assert state["consumers"][consumer][lane]["lag"] == 0, (consumer, lane, state["consumers"])
    logged = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert any(e.get("event") == "stopped" for e in logged)
    assert HEC_TOKEN not in log.read_text()
