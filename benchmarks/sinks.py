"""Sink throughput: events/s each HTTP sink encodes and sends to its receiver (running in a separate process),
against the floor any forwarder pays for the same events: orjson encode + gzip level 1 (zlib) over batches of
1,000. The sinks gzip with ISA-L, so ``ratio_vs_isal_baseline`` also compares against that floor done with it.

    uv run python benchmarks/sinks.py [--events 20000] [--rounds 5]

Rounds interleave baseline and sinks; medians are reported. Last line: JSON array (DESIGN.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
import zlib
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from isal import isal_zlib

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from forwarder.testing.receivers import sample_event
from forwarder.testing.receivers.datadog import DEFAULT_API_KEY
from forwarder.testing.receivers.hec import DEFAULT_TOKEN
from sinks.datadog import DatadogConfig, DatadogSink
from sinks.splunk_hec import SplunkHecConfig, SplunkHecSink

TARGET = 0.5
CONCURRENCY = 2  # sends in flight, as delivery runs them with `concurrency: 2`
ISAL_BASELINE = "baseline_isal"
#: The sinks measured (not ``sinks.Sink``: mypy would take this file, ``sinks.py``, for that package).
HttpSink = SplunkHecSink | DatadogSink


def make_events(n: int, seed: int = 6) -> list[dict[str, Any]]:
    """Login events varied like real traffic (users, addresses, outcomes, ms timestamps over the last
    hour, random session keys), so neither side gets an unrealistically compressible stream."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    events = []
    for i in range(n):
        user = f"user{rng.randrange(5000)}@example.com"
        ip = f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        when = now - timedelta(milliseconds=rng.randrange(3_600_000))
        event = sample_event(i, timestamp=when.isoformat())
        event["event"]["outcome"] = rng.choice(("success", "success", "success", "failure"))
        event["event"]["severity"] = rng.choice((0, 21, 47))
        event["user"] = {"id": f"005{rng.randrange(10**12):012d}AAA", "name": user}
        event["source"]["ip"] = ip
        event["related"] = {"ip": [ip], "user": [user]}
        event["message"] = f"Login {event['event']['outcome']} for {user} from {ip}"
        event["salesforce"]["session_key"] = rng.randbytes(12).hex()
        event["salesforce"]["login_key"] = rng.randbytes(12).hex()
        events.append(event)
    return events


def baseline(events: Sequence[dict[str, Any]], cpu: list[float], gzip: Any = zlib) -> float:
    """Seconds for orjson.dumps of every event + gzip level 1 over batches of 1,000 (no network), with
    zlib (the reference, DESIGN.md) or another zlib-compatible module such as ``isal_zlib``."""
    started, cpu_started = time.perf_counter(), time.process_time()
    for start in range(0, len(events), 1000):
        body = b"\n".join(orjson.dumps(e) for e in events[start : start + 1000])
        compressor = gzip.compressobj(1, gzip.DEFLATED, 31)
        compressor.compress(body)
        compressor.flush()
    cpu.append(time.process_time() - cpu_started)
    return time.perf_counter() - started


def batches(sink: HttpSink, events: Sequence[dict[str, Any]]) -> Iterator[list[bytes]]:
    """Encode and cut batches by the sink's declared limits exactly as delivery's batch builder does
    (``Delivery._add``): greedily over the whole stream, so a batch cut by bytes carries its remainder into
    the next one instead of leaving a tiny tail batch per chunk of ``max_events``."""
    limits, encode = sink.limits, sink.encode
    max_events, max_bytes = limits.max_events, limits.max_bytes
    current: list[bytes] = []
    size = 0
    for event in events:
        encoded = encode(event)
        if current and size + len(encoded) > max_bytes:
            yield current
            current, size = [], 0
        current.append(encoded)
        size += len(encoded)
        if len(current) >= max_events or size >= max_bytes:
            yield current
            current, size = [], 0
    if current:
        yield current


async def ours(sink: HttpSink, events: Sequence[dict[str, Any]], cpu: list[float]) -> float:
    """Seconds to encode every event and send it, ``CONCURRENCY`` requests in flight; appends the CPU
    seconds this process spent to ``cpu`` (the rest of the wall time is the receiver and the network)."""
    slots = asyncio.Semaphore(CONCURRENCY)

    async def send(batch: list[bytes]) -> None:
        try:
            await sink.send(batch)
        finally:
            slots.release()

    started, cpu_started = time.perf_counter(), time.process_time()
    async with asyncio.TaskGroup() as group:
        for batch in batches(sink, events):
            await slots.acquire()
            group.create_task(send(batch))
            await asyncio.sleep(0)  # let the send start (as delivery's journal reads would)
    cpu.append(time.process_time() - cpu_started)
    return time.perf_counter() - started


@asynccontextmanager
async def receiver_process(kind: str) -> AsyncIterator[tuple[str, int]]:
    """``python -m forwarder.testing.receivers <kind>`` in its own process; yields its URL and pid."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "forwarder.testing.receivers", kind, "--count-only", stdout=subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        yield str(json.loads(line)["url"]), process.pid
    finally:
        process.terminate()
        await process.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux ``/proc/<pid>/stat`` fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def received(url: str) -> int:
    async with aiohttp.ClientSession() as session, session.get(f"{url}/_receiver/stats") as response:
        return int((await response.json())["events"])


async def main(n: int, rounds: int) -> list[dict[str, Any]]:
    events = make_events(n)
    async with receiver_process("hec") as (hec_url, hec_pid), receiver_process("datadog") as (dd_url, dd_pid):
        sinks: dict[str, tuple[HttpSink, str, int]] = {
            "splunk_hec": (
                SplunkHecSink(
                    SplunkHecConfig.model_validate(
                        {"type": "splunk_hec", "name": "bench-hec", "url": hec_url, "token": DEFAULT_TOKEN}
                    )
                ),
                hec_url,
                hec_pid,
            ),
            "datadog": (
                DatadogSink(
                    DatadogConfig.model_validate(
                        {
                            "type": "datadog",
                            "name": "bench-dd",
                            "url": f"{dd_url}/api/v2/logs",
                            "api_key": DEFAULT_API_KEY,
                        }
                    )
                ),
                dd_url,
                dd_pid,
            ),
        }
        timings: dict[str, list[float]] = {"baseline": [], ISAL_BASELINE: [], **{name: [] for name in sinks}}
        cpu: dict[str, list[float]] = {"baseline": [], ISAL_BASELINE: [], **{name: [] for name in sinks}}
        receiver_cpu: dict[str, list[float]] = {name: [] for name in sinks}
        for _ in range(rounds):
            timings["baseline"].append(baseline(events, cpu["baseline"]))
            timings[ISAL_BASELINE].append(baseline(events, cpu[ISAL_BASELINE], isal_zlib))
            for name, (sink, _url, pid) in sinks.items():
                before = cpu_seconds(pid)
                timings[name].append(await ours(sink, events, cpu[name]))
                receiver_cpu[name].append(cpu_seconds(pid) - before)
        for name, (sink, url, _pid) in sinks.items():
            got = await received(url)
            assert got == n * rounds, f"{name}: receiver got {got} of {n * rounds} events"
            await sink.close()
    return report(n, timings, cpu, receiver_cpu)


def report(
    n: int, timings: dict[str, list[float]], cpu: dict[str, list[float]], receiver_cpu: dict[str, list[float]]
) -> list[dict[str, Any]]:
    rate: Callable[[str], float] = lambda name: n / statistics.median(timings[name])  # noqa: E731
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return [
        {
            "name": f"sink_{name}_encode_send",
            "unit": "events/s",
            "ours": round(rate(name)),
            "baseline": round(rate("baseline")),
            "ratio": round(rate(name) / rate("baseline"), 3),
            "target": TARGET,
            "peak_rss_mb": round(rss, 1),
            "events": n,
            "rounds": len(timings[name]),
            "concurrency": CONCURRENCY,
            # baseline CPU / our process's CPU: the ratio when the receiver, the network and other load on
            # the machine cost nothing; the wall-clock ratio above is the claim.
            "cpu_ratio": round(statistics.median(cpu["baseline"]) / statistics.median(cpu[name]), 3),
            # The sinks compress with ISA-L (sinks/_http.py); against a floor that does too, the ratio shows
            # what encoding and sending cost beyond it, without the compressor's share of the gain.
            "ratio_vs_isal_baseline": round(rate(name) / rate(ISAL_BASELINE), 3),
            # Medians per round, in seconds: where the wall time goes (the receiver shares the machine's CPUs;
            # its CPU is counted in 10 ms clock ticks).
            "wall_s": round(statistics.median(timings[name]), 4),
            "cpu_s": round(statistics.median(cpu[name]), 4),
            "baseline_s": round(statistics.median(timings["baseline"]), 4),
            "receiver_cpu_s": round(statistics.median(receiver_cpu[name]), 3),
        }
        for name in timings
        if name not in ("baseline", ISAL_BASELINE)
    ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    results = asyncio.run(main(args.events, args.rounds))
    for result in results:
        name, ours_rate, base_rate = result["name"], result["ours"], result["baseline"]
        print(f"{name}: {ours_rate} events/s, baseline {base_rate}, ratio {result['ratio']}")
    print(json.dumps(results))
