"""Journal throughput: append + read + commit through ``SqliteJournal`` against a plain SQLite
``executemany`` insert of the same rows, interleaved rounds, medians (DESIGN.md benchmark convention).

Run: ``uv run python benchmarks/journal.py``. The last line is the JSON array.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import resource
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import structlog

from forwarder.journal.sqlite import SqliteJournal
from forwarder.records import Lane

EVENTS = 200_000
BATCH = 1_000
ROUNDS = 5


def make_events(count: int) -> list[dict[str, Any]]:
    """ECS-shaped login events of a realistic size (about 600 bytes as JSON)."""
    return [
        {
            "@timestamp": f"2026-11-26T06:{n // 60 % 60:02d}:{n % 60:02d}.000Z",
            "message": "Login succeeded",
            "event": {
                "id": f"3c8b1f0e-{n:08d}",
                "kind": "event",
                "category": ["authentication"],
                "type": ["start"],
                "action": "login",
                "outcome": "success",
                "dataset": "salesforce.login",
                "provider": "EventLogFile",
                "module": "salesforce",
            },
            "user": {"id": f"005xx000001{n % 9999:04d}", "name": f"user{n % 500}@example.com"},
            "source": {"ip": f"203.0.113.{n % 250}", "geo": {"country_iso_code": "DE"}},
            "user_agent": {"original": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36"},
            "organization": {"id": "00Dxx0000001gPL"},
            "salesforce": {
                "login_key": f"lk{n}",
                "session_key": f"sk{n}",
                "api_type": "N/A",
                "run_time": n % 97,
            },
        }
        for n in range(count)
    ]


async def ours(events: list[dict[str, Any]], directory: Path) -> tuple[float, float]:
    """Seconds for append + read + commit of every event, and the worst event-loop stall seen."""
    stall = _StallMeter()
    journal = await SqliteJournal.open(directory / "ours.db", max_bytes=2 * 2**30, consumers=["bench"])
    meter = asyncio.create_task(stall.run())
    started = time.perf_counter()
    after = 0
    for start in range(0, len(events), BATCH):  # as in the daemon: delivery reads right behind the source
        await journal.append("eventlogfile", Lane.BULK, events[start : start + BATCH], [], {"row": start})
        while entries := await journal.read("bench", Lane.BULK, after, BATCH):
            after = entries[-1].offset
            await journal.commit("bench", Lane.BULK, after)
    elapsed = time.perf_counter() - started
    stall.stop = True
    await meter
    await journal.close()
    assert after == len(events)
    return elapsed, stall.worst


def baseline(events: list[dict[str, Any]], directory: Path) -> float:
    """Seconds for the floor: serialise and executemany-insert the same rows, same pragmas and batches."""
    conn = sqlite3.connect(directory / "baseline.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE events (off INTEGER PRIMARY KEY AUTOINCREMENT, doc BLOB NOT NULL)")
    started = time.perf_counter()
    for start in range(0, len(events), BATCH):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO events (doc) VALUES (?)", [(orjson.dumps(e),) for e in events[start : start + BATCH]]
        )
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


class _StallMeter:
    """Worst gap between 1 ms ticks of the event loop: how long disk work ever held the loop."""

    def __init__(self) -> None:
        self.worst = 0.0
        self.stop = False

    async def run(self) -> None:
        last = time.perf_counter()
        while not self.stop:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            self.worst, last = max(self.worst, now - last - 0.001), now


def main() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    events = make_events(EVENTS)
    # The inputs stay alive all run; a daemon never holds 200,000 events at once, so keep the collector
    # from rescanning them (it would bill ours, which allocates decoded documents, for the harness's heap).
    gc.freeze()
    ours_rates, base_rates, stalls = [], [], []
    for round_no in range(ROUNDS):
        with tempfile.TemporaryDirectory() as tmp:
            directory = Path(tmp)
            if round_no % 2:  # alternate who goes first: the page cache and CPU boost favour neither
                base = baseline(events, directory)
                mine, stall = asyncio.run(ours(events, directory))
            else:
                mine, stall = asyncio.run(ours(events, directory))
                base = baseline(events, directory)
        ours_rates.append(EVENTS / mine)
        base_rates.append(EVENTS / base)
        stalls.append(stall)
        print(
            f"round {round_no}: ours {EVENTS / mine:,.0f} events/s, baseline {EVENTS / base:,.0f} events/s, "
            f"worst loop stall {stall * 1000:.1f} ms"
        )
    ours_median, base_median = statistics.median(ours_rates), statistics.median(base_rates)
    result = {
        "name": "journal_append_read_commit",
        "unit": "events/s",
        "ours": round(ours_median),
        "baseline": round(base_median),
        "ratio": round(ours_median / base_median, 3),
        "target": 0.5,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "events": EVENTS,
        "batch": BATCH,
        "worst_loop_stall_ms": round(max(stalls) * 1000, 1),
    }
    print(json.dumps([result]))


if __name__ == "__main__":
    main()
