"""kill -9 the rule engine (a real process on a real SQLite journal) at random moments of evaluation, several
times; the alerts it ends with equal those of an uninterrupted run: same ids, none twice, none missing.

Run as a script, this file is the evaluator: ``python test_alerts_kill.py JOURNAL`` evaluates the default
rules over everything in the journal, printing ``done`` when nothing is left.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import signal
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from forwarder.alerts import consumer as consumer_module
from forwarder.alerts.consumer import CONSUMER, RuleConsumer
from forwarder.alerts.engine import Engine
from forwarder.alerts.rules import load_rules
from forwarder.journal.sqlite import SqliteJournal
from forwarder.records import Lane

RULES = Path(__file__).parents[2] / "config" / "rules"
HOLD = "hold"  # a consumer that never reads: retention keeps every event and alert for the comparison
KILLS = 5
START = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)


def login(rng: random.Random, n: int) -> dict[str, Any]:
    at = START + timedelta(seconds=n * 2 + rng.randint(0, 1))
    user, ip = f"user{rng.randint(0, 30)}@acme.example", f"198.51.100.{rng.randint(1, 12)}"
    return {
        "@timestamp": f"{at:%Y-%m-%dT%H:%M:%S}.{n % 1000:03d}Z",
        "event": {
            "id": f"stream-{n}",
            "dataset": "salesforce.login",
            "outcome": rng.choice(["failure", "success"]),
        },
        "user": {"name": user},
        "source": {"ip": ip},
        "related": {"ip": [ip], "user": [user]},
    }


def workload(seed: int = 5) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Realtime logins (with a Login-As now and then) and the EventLogFile copy of half of them."""
    rng = random.Random(seed)
    realtime = []
    for n in range(6000):
        doc = login(rng, n)
        if n % 250 == 0:
            doc["event"]["dataset"] = "salesforce.login_as"
        realtime.append(doc)
    bulk = [{**d, "event": {**d["event"], "id": f"elf-{i}"}} for i, d in enumerate(realtime[::2])]
    return realtime, bulk


async def prepare(path: Path) -> None:
    journal = await SqliteJournal.open(path, consumers=[CONSUMER, HOLD])
    realtime, bulk = workload()
    for i in range(0, len(realtime), 500):
        await journal.append("streaming", Lane.REALTIME, realtime[i : i + 500], [], None)
    for i in range(0, len(bulk), 500):
        await journal.append("eventlogfile", Lane.BULK, bulk[i : i + 500], [], None)
    await journal.close()


async def evaluate(path: Path) -> None:
    consumer_module.READ_LIMIT = 100  # many small steps and transactions: many places for a kill to land
    consumer_module.COMMIT_EVENTS = 300
    journal = await SqliteJournal.open(path, consumers=[CONSUMER, HOLD], exclusive=True)
    rules = RuleConsumer(Engine(load_rules([RULES])), journal)
    await rules.start()
    print("started", flush=True)
    while await rules.step(Lane.REALTIME) or await rules.step(Lane.BULK):
        pass
    await rules.flush()
    print("done", flush=True)
    await journal.close()


async def run_evaluator(path: Path, kill_after: float | None) -> bool:
    """One evaluator process; killed with SIGKILL ``kill_after`` seconds after it started evaluating.
    True when it finished on its own."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, str(path), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    assert proc.stdout is not None
    async with asyncio.timeout(60):
        assert await marker(proc.stdout) == "started"
    done = asyncio.ensure_future(marker(proc.stdout))
    finished, _ = await asyncio.wait({done}, timeout=kill_after)
    if not finished:
        proc.send_signal(signal.SIGKILL)
    async with asyncio.timeout(60):
        line = await done
        await proc.wait()
    return line == "done"


async def marker(stdout: asyncio.StreamReader) -> str:
    """The next ``started``/``done`` line (log lines share stdout); "" at end of output (killed)."""
    while line := await stdout.readline():
        if line.strip() in (b"started", b"done"):
            return line.strip().decode()
    return ""


async def alert_ids(path: Path) -> list[str]:
    journal = await SqliteJournal.open(path, consumers=[CONSUMER, HOLD])
    try:
        entries = await journal.read(HOLD, Lane.REALTIME, 0, 1_000_000)
    finally:
        await journal.close()
    return [e.event["event"]["id"] for e in entries if e.event["event"]["dataset"] == "salesforce.alert"]


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_kill_9_during_evaluation_gives_the_alerts_of_an_uninterrupted_run(tmp_path: Path) -> None:
    reference, chaos = tmp_path / "reference.db", tmp_path / "chaos.db"
    await prepare(reference)
    shutil.copy(reference, chaos)
    assert await run_evaluator(reference, None)
    expected = await alert_ids(reference)

    rng = random.Random(17)
    interrupted = 0
    for _ in range(KILLS):
        if await run_evaluator(chaos, rng.uniform(0.05, 0.6)):
            break
        interrupted += 1
    assert await run_evaluator(chaos, None)
    got = await alert_ids(chaos)

    assert interrupted >= 1, "no kill landed during evaluation"
    assert len(expected) > 50
    assert max(Counter(got).values()) == 1, "an alert was appended twice"
    assert sorted(got) == sorted(expected)  # same ids: none missing, none extra


if __name__ == "__main__":
    asyncio.run(evaluate(Path(sys.argv[1])))
