"""Replaying ingest letters is crash-safe: ``kill -9`` of ``sf-forwarder dead-letters replay`` at random moments
never loses a letter and never appends an event twice (each chunk's appends and deletes are one transaction).
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import sys
from collections import Counter
from pathlib import Path

import orjson
import yaml

from forwarder.journal import DeadLetter
from forwarder.journal.sqlite import SqliteJournal
from forwarder.records import Lane

#: Letters stored before each kill: 4 in 5 normalise now, 1 in 5 is still bad.
PER_ROUND = 4000
ROUNDS = 4
INVALID = PER_ROUND // 5


def audit_letter(i: int, *, valid: bool) -> DeadLetter:
    """An ingest letter as ``forwarder.ingest.rejected_letter`` stores it. The valid ones normalise with
    today's code (the "fix" being replayed); the invalid ones still have no usable CreatedDate."""
    created = "2026-11-25T10:00:00.000+0000" if valid else "not a date"
    record = {"Id": f"0Ym{i:015d}", "CreatedDate": created, "Action": "changedPassword", "Section": "Users"}
    payload = {
        "source": "setupaudittrail",
        "kind": "SetupAuditTrail",
        "received_at": "2026-11-25T10:00:01+00:00",
        "payload": record,
    }
    return DeadLetter(consumer="ingest", reason="CreatedDate: old normaliser refused it", payload=payload)


async def seed(state: Path, round_: int) -> set[str]:
    """Store a round of letters; the ids of the ones that normalise now."""
    journal = await SqliteJournal.open(state)
    try:
        first = round_ * PER_ROUND
        letters = [audit_letter(i, valid=i % 5 != 0) for i in range(first, first + PER_ROUND)]
        await journal.dead_letter(letters)
    finally:
        await journal.close()
    return {
        d.payload["payload"]["Id"] for d in letters if d.payload["payload"]["CreatedDate"] != "not a date"
    }


def snapshot(state: Path) -> tuple[Counter[str], set[str], list[tuple[str, str]]]:
    """(event ids appended with their counts, ids of letters still stored, (id, reason) of invalid ones)."""
    with sqlite3.connect(state) as conn:
        appended: Counter[str] = Counter()
        for (docs,) in conn.execute(f"SELECT docs FROM events_{Lane.REALTIME.value}"):
            appended.update(doc["event"]["id"] for doc in orjson.loads(docs))
        rows = conn.execute("SELECT payload, reason FROM dead_letters WHERE consumer = 'ingest'").fetchall()
    stored = [(orjson.loads(p)["payload"], r) for p, r in rows]
    kept = {record["Id"] for record, _ in stored}
    invalid = [(record["Id"], reason) for record, reason in stored if record["CreatedDate"] == "not a date"]
    return appended, kept, invalid


def stored_letters(state: Path) -> int:
    with sqlite3.connect(state) as conn:
        return int(conn.execute("SELECT count(*) FROM dead_letters").fetchone()[0])


async def replay(config: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "forwarder", "dead-letters", "replay", "--consumer", "ingest", "--all",
        "-c", str(config), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def kill_mid_replay(config: Path, state: Path, rng: random.Random) -> bool:
    """Start a replay, wait until it committed at least one chunk, kill -9 it a random moment later.
    True when the kill landed while it was still running."""
    before = stored_letters(state)
    process = await replay(config)
    async with asyncio.timeout(60):
        while stored_letters(state) == before and process.returncode is None:  # noqa: ASYNC110 - another process
            await asyncio.sleep(0.005)
        await asyncio.sleep(rng.uniform(0, 0.05))  # the random moment, not a synchronisation
    running = process.returncode is None
    if running:
        process.kill()
    await process.wait()
    return running


def check_invariants(state: Path, valid: set[str], invalid_total: int) -> None:
    appended, kept, invalid = snapshot(state)
    assert max(appended.values(), default=1) == 1, "an event was appended twice"
    assert set(appended) <= valid
    assert set(appended) | (kept & valid) == valid, "a letter was lost (neither stored nor appended)"
    assert not set(appended) & kept, "a letter was both appended and kept"
    assert len(invalid) == invalid_total


async def test_kill_9_during_ingest_replay_loses_nothing_and_appends_nothing_twice(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "salesforce": {
                    "auth": {"type": "client_credentials", "client_id": "x", "client_secret": "y"}
                },
                "sinks": [{"name": "archive", "type": "file", "path": str(tmp_path / "events.jsonl")}],
                "state": {"path": str(state)},
            }
        )
    )
    rng = random.Random(8)
    valid: set[str] = set()
    killed = 0
    for round_ in range(ROUNDS):
        valid |= await seed(state, round_)
        killed += await kill_mid_replay(config, state, rng)
        check_invariants(state, valid, INVALID * (round_ + 1))
    assert killed >= ROUNDS // 2, f"only {killed} kills landed during a replay"

    process = await replay(config)
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    assert f"; {INVALID * ROUNDS} still rejected, kept" in out.decode()
    appended, kept, invalid = snapshot(state)
    assert set(appended) == valid
    assert set(appended.values()) == {1}
    assert kept == {record_id for record_id, _ in invalid}
    assert all(reason == "CreatedDate: expected an ISO-8601 datetime" for _, reason in invalid), invalid[:3]
