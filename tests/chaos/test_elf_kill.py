"""kill -9 the real daemon while it ingests a 500,000-row LogFile plus streams; each event lands once.

The simulator runs in the test process; ``sf-forwarder run`` is a real subprocess on the real SQLite
journal. Kills land at random row counts inside the big file (read from the journal file, read-only).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sqlite3
import sys
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from forwarder.testing.simulator.app import Simulator

BIG_ROWS = 500_000
KILLS = 5
CHANNELS = ["/event/LoginEventStream", "/event/LogoutEventStream", "/event/ApiEventStream"]


def config(tmp_path: Path, org: Simulator) -> Path:
    data = {
        "salesforce": {
            "login_url": org.base_url,
            "auth": {
                "client_id": org.client_id,
                "username": org.username,
                "private_key_file": str(org.private_key_path),
            },
        },
        "sources": {
            "streaming": {"channels": CHANNELS, "replay": "earliest"},
            "eventlogfile": {
                "interval": "Hourly",
                "start": "2026-11-01",
                "poll_interval": "PT1S",
                "batch_rows": 2000,
            },
            "setupaudittrail": {"poll_interval": "PT1S", "initial_span": "P60D"},
        },
        # A sink nobody listens on: delivery retries quietly and the journal keeps every event.
        "sinks": [{"name": "hold", "type": "splunk_hec", "url": "http://127.0.0.1:9", "token": "x"}],
        "state": {"path": str(tmp_path / "state.db")},
        "normalize": {"raw": "none"},  # keeps the run short; the raw copy is not what is under test
        "server": {"listen": "127.0.0.1:0"},
        "logging": {"level": "warning", "format": "json"},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def count_bulk(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as conn:
            # The journal stores record batches: one row holds the events from ``first`` to ``last``.
            return int(conn.execute("SELECT coalesce(sum(last - first + 1), 0) FROM events_bulk").fetchone()[0])
    except sqlite3.OperationalError:  # not created yet
        return 0


def journal_docs(db: Path, lane: str) -> list[dict[str, Any]]:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        rows = conn.execute(f"SELECT docs FROM events_{lane} ORDER BY first")
        return [doc for (docs,) in rows for doc in orjson.loads(docs)]


async def wait_until(check: Callable[[], bool], proc: asyncio.subprocess.Process) -> None:
    """Poll the journal file (read-only) until ``check`` holds; the daemon must stay up meanwhile."""
    while True:
        if await asyncio.to_thread(check):
            return
        assert proc.returncode is None, "daemon exited on its own"
        await asyncio.sleep(0.2)  # polling interval of the progress check, not synchronisation


def stream_ids(org: Simulator) -> set[str]:
    return {
        str(a.payload["EventIdentifier"])
        for a in org.stream_events()
        if a.channel in CHANNELS and a.payload is not None and "EventIdentifier" in a.payload
    }


async def start(cfg: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "forwarder", "run", "-c", str(cfg),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


def expected_bulk(org: Simulator) -> int:
    return sum(f.source.count for f in org.log_files.values() if f.interval == "Hourly")


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_kill_9_mid_file_keeps_each_row_and_stream_event_once(tmp_path: Path) -> None:
    rng = random.Random(11)
    async with Simulator(seed=9, activities=200) as org:
        org.add_log_file("Login", BIG_ROWS, log_date=datetime(2026, 11, 2, 10, tzinfo=UTC))
        total = expected_bulk(org)
        cfg = config(tmp_path, org)
        db = tmp_path / "state.db"
        marks = sorted(rng.sample(range(20_000, BIG_ROWS - 20_000), KILLS))
        proc = None
        try:
            async with asyncio.timeout(280):
                for mark in marks:
                    proc = await start(cfg)
                    await wait_until(lambda m=mark: count_bulk(db) >= m, proc)  # type: ignore[misc]
                    proc.kill()  # SIGKILL: no cleanup, maybe mid-transaction
                    await proc.wait()
                    for _ in range(20):  # streams keep flowing while the daemon is down
                        org.add_activities([org.traffic.login()], log_files=False)
                proc = await start(cfg)
                await wait_until(lambda: count_bulk(db) >= total, proc)
                wanted = stream_ids(org)
                await wait_until(
                    lambda: wanted <= {d["event"]["id"] for d in journal_docs(db, "realtime")}, proc
                )
        finally:
            if proc is not None and proc.returncode is None:
                proc.terminate()
                await proc.wait()
    bulk = Counter(d["event"]["id"] for d in journal_docs(db, "bulk"))
    realtime = Counter(d["event"]["id"] for d in journal_docs(db, "realtime"))
    assert sum(bulk.values()) == total
    assert max(bulk.values()) == 1, "a LogFile row was journalled twice"
    assert max(realtime.values()) == 1, "a stream or audit event was journalled twice"
    assert len(wanted) > 100
