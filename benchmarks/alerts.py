"""Rule engine throughput: the default rules as a journal consumer (read, evaluate, append alerts, commit
cursors and window state) against reading and decoding the same journal alone, interleaved rounds, medians
(DESIGN.md benchmark convention). Two cases: a backlog (100,000 events as fast as they go) and the steady
state after it (small batches, each committed, over the large state the backlog left): against a consumer
that reads the same batches and commits its cursor.

Run: ``uv run python benchmarks/alerts.py``. The last line is the JSON array.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import random
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import structlog

from forwarder.alerts.consumer import CONSUMER, RuleConsumer
from forwarder.alerts.engine import Engine
from forwarder.alerts.rules import load_rules
from forwarder.journal.sqlite import SqliteJournal
from forwarder.records import Lane

EVENTS = 100_000
ROUNDS = 3
RULES = Path(__file__).resolve().parents[1] / "config" / "rules"
READ = 2000  # as forwarder.alerts.consumer.READ_LIMIT
DAY = 1_795_000_000
STEADY_BATCHES = 150
STEADY_BATCH = 20


def make_events(count: int, seed: int = 7, start: int = DAY, span: int = 86400) -> list[dict[str, Any]]:
    """A day of org traffic: logins (a fifth failing) by 500 users from 300 addresses, report runs, exports,
    Setup Audit Trail entries (a few privilege grants: alerts), about 600 bytes each as JSON."""
    rng = random.Random(seed)
    docs = []
    for n in range(count):
        user, ip = f"user{rng.randrange(500)}@example.com", f"203.0.{rng.randrange(2)}.{rng.randrange(150)}"
        roll = rng.random()
        dataset, extra = "salesforce.login", {"outcome": "failure" if rng.random() < 0.2 else "success"}
        if roll < 0.3:
            dataset, extra = "salesforce.report", {}
        elif roll < 0.32:
            dataset, extra = "salesforce.report_export", {}
        elif roll < 0.33:
            dataset, extra = (
                "salesforce.setup_audit_trail",
                {"action": "PermSetAssign" if rng.random() < 0.05 else "createduser"},
            )
        at = start + n * span // count
        docs.append(
            {
                "@timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(at)),
                "message": "Permission set Modify_All_Data_Admin: assigned" if "audit" in dataset else None,
                "event": {"id": f"ev-{n}", "kind": "event", "dataset": dataset, "category": ["iam"],
                          "provider": "LoginEventStream", "module": "salesforce", **extra},
                "user": {"id": f"005xx{n % 9999:05d}", "name": user},
                "source": {"ip": ip, "geo": {"country_iso_code": "DE"}},
                "related": {"ip": [ip], "user": [user]},
                "salesforce": {"login_key": f"lk{n}", "session_key": f"sk{n}", "run_time": n % 97},
            }
        )  # fmt: skip
    return docs


async def prepare(path: Path, docs: list[dict[str, Any]]) -> None:
    journal = await SqliteJournal.open(path, consumers=[CONSUMER, "hold"])
    for i in range(0, len(docs), 1000):
        await journal.append("streaming", Lane.REALTIME, docs[i : i + 1000], [], None)
    await journal.close()


async def read_only(path: Path) -> float:
    """The floor: read and decode every event in the consumer's chunk size."""
    journal = await SqliteJournal.open(path, consumers=[CONSUMER, "hold"])
    started, after, count = time.perf_counter(), 0, 0
    while entries := await journal.read("hold", Lane.REALTIME, after, READ):
        after, count = entries[-1].offset, count + len(entries)
    elapsed = time.perf_counter() - started
    await journal.close()
    return count / elapsed


async def engine(path: Path) -> tuple[float, int]:
    """The rule engine consumer over the same events: events/s and alerts raised."""
    journal = await SqliteJournal.open(path, consumers=[CONSUMER, "hold"])
    consumer = RuleConsumer(Engine(load_rules([RULES])), journal)
    await consumer.start()
    started = time.perf_counter()
    while await consumer.step(Lane.REALTIME):
        pass
    await consumer.flush()
    elapsed = time.perf_counter() - started
    newest = (await journal.stats())["lanes"]["realtime"]["newest"]
    await journal.close()
    return EVENTS / elapsed, newest - EVENTS


async def steady(path: Path, docs: list[dict[str, Any]]) -> tuple[float, float]:
    """Events/s of the rule engine and of a cursor-only consumer over small batches, each committed."""
    journal = await SqliteJournal.open(path, consumers=[CONSUMER, "hold"])
    consumer = RuleConsumer(Engine(load_rules([RULES])), journal)
    await consumer.start()
    hold = await journal.cursor("hold", Lane.REALTIME)
    ours = base = 0.0
    for n in range(STEADY_BATCHES + 1):
        await journal.append(
            "streaming", Lane.REALTIME, docs[n * STEADY_BATCH : (n + 1) * STEADY_BATCH], [], None
        )
        started = time.perf_counter()
        while await consumer.step(Lane.REALTIME):
            pass
        await consumer.flush()
        middle = time.perf_counter()
        while entries := await journal.read("hold", Lane.REALTIME, hold, READ):
            hold = entries[-1].offset
            await journal.commit("hold", Lane.REALTIME, hold)
        if n:  # the first commit after a start writes the whole state: not the steady state
            ours, base = ours + middle - started, base + time.perf_counter() - middle
    await journal.close()
    events = STEADY_BATCHES * STEADY_BATCH
    return events / ours, events / base


async def main() -> list[dict[str, Any]]:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    gc.freeze()
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "prepared.db"
        await prepare(source, make_events(EVENTS))
        ours, base, alerts, steady_ours, steady_base = [], [], 0, [], []
        later = make_events((STEADY_BATCHES + 1) * STEADY_BATCH, seed=8, start=DAY + 86400, span=3600)
        for round_ in range(ROUNDS):
            copy = Path(tmp) / f"round{round_}.db"
            shutil.copy(source, copy)
            first, second = (engine, read_only) if round_ % 2 == 0 else (read_only, engine)
            for run in (first, second):
                if run is engine:
                    rate, alerts = await engine(copy)
                    ours.append(rate)
                else:
                    base.append(await read_only(source))
            rates = await steady(copy, later)
            steady_ours.append(rates[0])
            steady_base.append(rates[1])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rules = len(load_rules([RULES]))
    backlog = _case("alerts_default_rules_vs_journal_read", ours, base, peak)
    small = _case("alerts_steady_small_commits_vs_cursor_commits", steady_ours, steady_base, peak)
    return [
        {**backlog, "events": EVENTS, "alerts": alerts, "rules": rules},
        {**small, "batch": STEADY_BATCH, "batches": STEADY_BATCHES},
    ]


def _case(name: str, ours: list[float], base: list[float], peak: float) -> dict[str, Any]:
    ours_m, base_m = statistics.median(ours), statistics.median(base)
    return {
        "name": name,
        "unit": "events/s",
        "ours": round(ours_m),
        "baseline": round(base_m),
        "ratio": round(ours_m / base_m, 3),
        "target": 0.25,
        "peak_rss_mb": round(peak, 1),
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main())))
