"""kill -9 a real process that appends to and consumes from the journal, at random moments, many times;
after each kill the journal opens, nothing acknowledged is missing and no position is ahead of its events.
"""

from __future__ import annotations

import asyncio
import random
import signal
import sys
from pathlib import Path

import pytest

from forwarder.journal.sqlite import SqliteJournal
from forwarder.records import Lane

WRITER = Path(__file__).with_name("journal_writer.py")
SOURCES = {"streaming": Lane.REALTIME, "eventlogfile": Lane.BULK}
KILLS = 22


async def run_and_kill(path: Path, seed: int, delay: float) -> list[str]:
    """Start the writer, kill -9 it ``delay`` seconds in; the lines it printed (acknowledged steps)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(WRITER), str(path), str(seed), stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    lines: list[str] = []

    async def collect() -> None:
        assert proc.stdout is not None
        while line := await proc.stdout.readline():
            lines.append(line.decode().strip())

    reader = asyncio.create_task(collect())
    await asyncio.wait({reader}, timeout=delay)
    proc.send_signal(signal.SIGKILL)
    async with asyncio.timeout(10):
        await reader
        assert await proc.wait() == -signal.SIGKILL
    return lines


async def check(path: Path, acked: dict[str, int], committed: dict[str, int]) -> dict[str, int]:
    journal = await SqliteJournal.open(path, consumers=["c"], exclusive=True)
    try:
        positions = {}
        for source, lane in SOURCES.items():
            position = await journal.position(source)
            seq = position["seq"] if position else 0
            assert seq >= acked[source], f"{source}: acknowledged append {acked[source]} lost (at {seq})"
            cursor = await journal.cursor("c", lane)
            assert cursor >= committed[lane.value], f"{lane}: acknowledged commit lost"
            entries = await journal.read("c", lane, cursor, 1_000_000)
            # Every event after the cursor is there, in order, and the position covers exactly them.
            assert [e.offset for e in entries] == list(range(cursor + 1, seq + 1))
            assert all(e.event["seq"] == e.offset for e in entries)
            positions[source] = seq
        return positions
    finally:
        await journal.close()


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_journal_survives_kill_9_at_random_moments(tmp_path: Path) -> None:
    rng = random.Random(20261126)
    path = tmp_path / "journal.db"
    acked = dict.fromkeys(SOURCES, 0)
    committed = {lane.value: 0 for lane in Lane}
    appended_total = 0
    killed_while_writing = 0
    for kill in range(KILLS):
        lines = await run_and_kill(path, seed=kill, delay=rng.uniform(0.0, 0.9))
        for line in lines:
            words = line.split()
            if words[0] == "appended":
                acked[words[1]] = int(words[2])
                appended_total += 1
            elif words[0] == "committed":
                committed[words[1]] = max(committed[words[1]], int(words[2]))
        killed_while_writing += any(line.startswith("appended") for line in lines)
        positions = await check(path, acked, committed)
        acked = positions  # the next run resumes from what is durable (possibly ahead of the last line seen)
    print(f"{KILLS} kills, {killed_while_writing} while appending, {appended_total} appends acknowledged")
    assert killed_while_writing >= KILLS // 2, "most kills land while the writer is appending"
