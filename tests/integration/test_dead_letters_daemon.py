"""Sink dead letters go back to THAT sink: a real ``sf-forwarder run`` process, a HEC receiver that refuses
(400) and is then fixed, and ``sf-forwarder dead-letters replay`` as a second process on the same journal,
while the daemon runs and while it is stopped.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from forwarder.journal import DeadLetter
from forwarder.journal.sqlite import SqliteJournal
from forwarder.records import Lane
from forwarder.testing.receivers import Fault
from forwarder.testing.receivers.hec import HecReceiver, hec_body
from forwarder.testing.simulator import Simulator

HEC_TOKEN = "11111111-2222-3333-4444-555555555555"
#: HEC's answer to a malformed event (reference §1.3): permanent, the batch is bisected down to each event.
REFUSED = Fault(status=400, body=hec_body(6, "Invalid data format", **{"invalid-event-number": 0}))


@dataclass
class Stack:
    hec: HecReceiver
    config: Path
    state: Path
    archive: Path
    log: Path


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with Simulator(seed=3, activities=10) as org, HecReceiver(tokens={HEC_TOKEN}) as hec:
        config = {
            "salesforce": org.salesforce_config(),
            # No source: the test appends events itself, so it knows exactly which ones a sink refuses.
            "sources": {
                name: {"enabled": False} for name in ("streaming", "eventlogfile", "setupaudittrail")
            },
            "sinks": [
                {"name": "hec", "type": "splunk_hec", "url": hec.url, "token": HEC_TOKEN},
                {"name": "archive", "type": "file", "path": str(tmp_path / "events.jsonl")},
            ],
            "state": {"path": str(tmp_path / "state.db")},
            "server": {"listen": "127.0.0.1:0"},
            "logging": {"level": "info", "format": "json"},
        }
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(config))
        yield Stack(hec, path, tmp_path / "state.db", tmp_path / "events.jsonl", tmp_path / "daemon.log")


def events(prefix: str, count: int) -> list[dict[str, Any]]:
    return [
        {
            "@timestamp": "2026-11-26T06:00:00.000Z",
            "message": f"{prefix} {i}",
            "event": {"id": f"{prefix}-{i}", "kind": "event", "dataset": "salesforce.login"},
        }
        for i in range(count)
    ]


async def append(state: Path, docs: list[dict[str, Any]]) -> None:
    """A writer beside the daemon (WAL): what a source would have appended."""
    journal = await SqliteJournal.open(state)
    try:
        await journal.append("test", Lane.REALTIME, docs, [], None)
    finally:
        await journal.close()


async def start_daemon(stack: Stack) -> asyncio.subprocess.Process:
    with stack.log.open("ab") as stderr:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "forwarder", "run", "-c", str(stack.config),
            stdout=asyncio.subprocess.DEVNULL, stderr=stderr, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip


async def stop(process: asyncio.subprocess.Process) -> int:
    process.send_signal(signal.SIGTERM)
    async with asyncio.timeout(40):
        return await process.wait()


async def cli(stack: Stack, *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "forwarder", "dead-letters", *args, "-c", str(stack.config),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode() + err.decode()


async def listed(stack: Stack) -> dict[str, Any]:
    code, out = await cli(stack, "list", "--json")
    assert code == 0, out
    return dict(json.loads(out[: out.rindex("}") + 1]))


def letters(state: Path, consumer: str) -> int:
    with sqlite3.connect(state) as conn:
        return int(
            conn.execute("SELECT count(*) FROM dead_letters WHERE consumer = ?", (consumer,)).fetchone()[0]
        )


def archived(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [orjson.loads(line)["event"]["id"] for line in path.read_bytes().splitlines() if line.strip()]


async def until(predicate: Callable[[], bool], what: str, timeout: float = 30) -> None:  # noqa: ASYNC109
    try:
        async with asyncio.timeout(timeout):
            while not predicate():  # noqa: ASYNC110 - polls another process's files
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def refuse_first_batch(stack: Stack, ids: set[str]) -> asyncio.subprocess.Process:
    """Start the daemon with HEC refusing everything until ``ids`` are dead letters of hec."""
    stack.hec.faults.for_seconds(3600, REFUSED)
    daemon = await start_daemon(stack)
    await until(lambda: letters(stack.state, "hec") == len(ids), "hec dead letters")
    await until(lambda: set(archived(stack.archive)) == ids, "the archive to get every event")
    assert stack.hec.unique_ids() == set()
    stack.hec.faults.clear()  # the receiver is fixed
    return daemon


async def test_replay_while_the_daemon_runs_reaches_that_sink_only(stack: Stack) -> None:
    refused = events("refused", 6)
    refused_ids = {d["event"]["id"] for d in refused}
    await append(stack.state, refused)
    daemon = await refuse_first_batch(stack, refused_ids)
    try:
        later = events("later", 4)  # delivered normally once HEC is fixed: the daemon is live
        await append(stack.state, later)
        later_ids = {d["event"]["id"] for d in later}
        await until(lambda: stack.hec.unique_ids() == later_ids, "later events at HEC")

        code, out = await cli(stack, "replay", "--consumer", "hec", "--all")
        assert code == 0, out
        assert "6 dead letters marked" in out
        await until(lambda: stack.hec.unique_ids() == refused_ids | later_ids, "replayed events at HEC")
        await until(lambda: letters(stack.state, "hec") == 0, "letters deleted after HEC accepted them")
    finally:
        assert await stop(daemon) == 0, stack.log.read_text()[-3000:]

    assert stack.hec.duplicates() == 0
    assert sorted(archived(stack.archive)) == sorted(refused_ids | later_ids), "the archive got nothing new"
    assert await listed(stack) == {"dead_letters": [], "counts": {}}
    logged = [json.loads(line) for line in stack.log.read_text().splitlines() if line.startswith("{")]
    assert any(e.get("event") == "dead_letters_redelivered" and e.get("sink") == "hec" for e in logged)
    assert HEC_TOKEN not in stack.log.read_text()


async def test_replay_marked_while_stopped_is_sent_by_the_next_run(stack: Stack) -> None:
    refused = events("refused", 5)
    refused_ids = {d["event"]["id"] for d in refused}
    await append(stack.state, refused)
    daemon = await refuse_first_batch(stack, refused_ids)
    assert await stop(daemon) == 0, stack.log.read_text()[-3000:]

    code, out = await cli(stack, "replay", "--consumer", "hec", "--all", "--dry-run")
    assert code == 0, out
    assert "5 dead letters would be sent again, to sink hec only" in out
    assert all(not d["replay_requested"] for d in (await listed(stack))["dead_letters"])
    code, out = await cli(stack, "replay", "--consumer", "hec", "--all")
    assert code == 0, out
    shown = await listed(stack)
    assert shown["counts"] == {"hec": 5}
    assert all(d["replay_requested"] for d in shown["dead_letters"])
    assert {d["payload"]["event"]["id"] for d in shown["dead_letters"]} == refused_ids
    assert stack.hec.unique_ids() == set(), "nothing is sent while no daemon runs"

    daemon = await start_daemon(stack)
    try:
        await until(lambda: stack.hec.unique_ids() == refused_ids, "replayed events at HEC")
        await until(lambda: letters(stack.state, "hec") == 0, "letters deleted")
    finally:
        assert await stop(daemon) == 0, stack.log.read_text()[-3000:]
    assert stack.hec.duplicates() == 0
    assert sorted(archived(stack.archive)) == sorted(refused_ids)


async def test_replay_refused_again_keeps_the_letters_with_the_new_reason(stack: Stack) -> None:
    refused = events("refused", 3)
    await append(stack.state, refused)
    daemon = await refuse_first_batch(stack, {d["event"]["id"] for d in refused})
    try:
        still = Fault(
            status=400, body=hec_body(15, "Error in handling indexed fields", **{"invalid-event-number": 0})
        )
        stack.hec.faults.for_seconds(3600, still)
        sent = len(stack.hec.requests)
        code, out = await cli(stack, "replay", "--consumer", "hec", "--all")
        assert code == 0, out
        await until(lambda: len(stack.hec.requests) >= sent + 5, "the replay, bisected to single events")

        def settled() -> bool:
            with sqlite3.connect(stack.state) as conn:
                rows = conn.execute(
                    "SELECT replay, reason FROM dead_letters WHERE consumer = 'hec'"
                ).fetchall()
            return len(rows) == 3 and all(
                not replay and "indexed fields" in reason for replay, reason in rows
            )

        await until(settled, "letters kept with the new reason, no longer marked")
    finally:
        assert await stop(daemon) == 0, stack.log.read_text()[-3000:]
    assert stack.hec.unique_ids() == set()
    assert (await listed(stack))["counts"] == {"hec": 3}


async def test_ingest_replay_beside_the_running_daemon_reaches_every_sink(stack: Stack) -> None:
    record = {"Id": "0Ym000000000042AAA", "CreatedDate": "2026-11-25T10:00:00.000+0000", "Action": "login"}
    letter = DeadLetter(
        consumer="ingest",
        reason="CreatedDate: refused by an older normaliser",
        payload={"source": "setupaudittrail", "kind": "SetupAuditTrail", "received_at": "2026-11-25T10:00:01+00:00",
                 "payload": record},
    )  # fmt: skip
    journal = await SqliteJournal.open(stack.state)
    try:
        await journal.dead_letter([letter])
    finally:
        await journal.close()
    daemon = await start_daemon(stack)
    try:
        code, out = await cli(stack, "replay", "--consumer", "ingest", "--all")
        assert code == 0, out
        assert "ingest: 1 were normalised and appended" in out
        await until(lambda: stack.hec.unique_ids() == {record["Id"]}, "the replayed event at HEC")
        await until(lambda: archived(stack.archive) == [record["Id"]], "the replayed event in the archive")
    finally:
        assert await stop(daemon) == 0, stack.log.read_text()[-3000:]
    assert letters(stack.state, "ingest") == 0
