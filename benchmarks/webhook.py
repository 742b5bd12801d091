"""Webhook sink throughput: alerts/s the sink encodes (and signs) and POSTs, one alert per request, to its
receiver running in a separate process, against a plain aiohttp POST loop of the same kind of bodies
(encoded and signed beforehand) to the same receiver, with the same requests in flight.

    uv run python benchmarks/webhook.py [--alerts 2000] [--rounds 5]

Rounds interleave baseline and sink; medians are reported. Each request carries a fresh alert id (the
generic receiver skips ids it has seen), so both sides make the receiver do the same work.
Last line: JSON array (DESIGN.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from forwarder.testing.receivers import sample_alert
from forwarder.testing.receivers.pagerduty import DEFAULT_ROUTING_KEY
from forwarder.testing.receivers.webhook import DEFAULT_SECRET
from sinks.webhook import WebhookConfig, WebhookSink

TARGET = 0.8  # the sink's encoding and signing may cost at most a fifth of plain POSTs
CONCURRENCY = 2  # requests in flight, as delivery runs them with `concurrency: 2`
FORMATS = ("generic", "slack", "pagerduty")


def make_sink(fmt: str, endpoint: str) -> WebhookSink:
    """A sink of ``fmt`` posting to ``endpoint``, not paced (the receiver does not rate-limit)."""
    fields: dict[str, Any] = {
        "generic": {"secret": DEFAULT_SECRET},
        "pagerduty": {"routing_key": DEFAULT_ROUTING_KEY},
    }.get(fmt, {})
    config = {"type": "webhook", "name": f"bench-{fmt}", "format": fmt, "url": endpoint, "pace": 0, **fields}
    config["concurrency"] = CONCURRENCY  # its connection pool, as delivery's `concurrency: 2` sizes it
    return WebhookSink(WebhookConfig.model_validate(config))


async def bounded(jobs: list[Callable[[], Any]]) -> None:
    """Run the jobs with ``CONCURRENCY`` in flight."""
    slots = asyncio.Semaphore(CONCURRENCY)

    async def run(job: Callable[[], Any]) -> None:
        try:
            await job()
        finally:
            slots.release()

    async with asyncio.TaskGroup() as group:
        for job in jobs:
            await slots.acquire()
            group.create_task(run(job))


async def ours(sink: WebhookSink, alerts: list[dict[str, Any]]) -> float:
    """Seconds to encode and send every alert through the sink."""
    started = time.perf_counter()
    await bounded([lambda a=a: sink.send([sink.encode(a)]) for a in alerts])
    return time.perf_counter() - started


async def baseline(session: aiohttp.ClientSession, sink: WebhookSink, alerts: list[dict[str, Any]]) -> float:
    """Seconds to POST the same kind of requests, encoded and signed before the clock starts."""
    requests = [sink._request(sink.encode(a)) for a in alerts]  # the sink's exact wire form
    url = sink.config.endpoint()

    async def post(headers: dict[str, str], body: bytes) -> None:
        async with session.post(url, data=body, headers=headers) as response:
            await response.read()
            assert response.status < 300, response.status

    started = time.perf_counter()
    await bounded([lambda h=h, b=b: post(h, b) for h, b in requests])
    return time.perf_counter() - started


@asynccontextmanager
async def receiver_process(kind: str) -> AsyncIterator[tuple[str, str]]:
    """``python -m forwarder.testing.receivers <kind>`` in its own process; yields its URL and endpoint."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "forwarder.testing.receivers", kind, stdout=subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        ready = json.loads(await asyncio.wait_for(process.stdout.readline(), 30))
        yield ready["url"], ready["endpoint"]
    finally:
        process.terminate()
        await process.wait()


async def received(url: str) -> int:
    async with aiohttp.ClientSession() as session, session.get(f"{url}/_receiver/stats") as response:
        return int((await response.json())["unique"])


async def measure(fmt: str, n: int, rounds: int) -> dict[str, Any]:
    """Interleaved rounds of baseline and sink for one format."""
    timings: dict[str, list[float]] = {"ours": [], "baseline": []}
    next_id = 0

    def fresh() -> list[dict[str, Any]]:
        nonlocal next_id
        next_id += n
        return [sample_alert(i) for i in range(next_id - n, next_id)]

    async with receiver_process("webhook" if fmt == "generic" else fmt) as (url, endpoint):
        sink = make_sink(fmt, endpoint)
        connector = aiohttp.TCPConnector(limit=CONCURRENCY)
        async with aiohttp.ClientSession(connector=connector) as session:
            for round_ in range(rounds):
                sides = [("baseline", baseline(session, sink, fresh())), ("ours", ours(sink, fresh()))]
                for name, run in sides if round_ % 2 == 0 else reversed(sides):
                    timings[name].append(await run)
        got = await received(url)
        await sink.close()
    assert got == 2 * n * rounds, f"{fmt}: receiver got {got} of {2 * n * rounds} alerts"
    return report(fmt, n, timings)


def report(fmt: str, n: int, timings: dict[str, list[float]]) -> dict[str, Any]:
    rate = {name: n / statistics.median(values) for name, values in timings.items()}
    return {
        "name": f"webhook_{fmt}_encode_send",
        "unit": "alerts/s",
        "ours": round(rate["ours"]),
        "baseline": round(rate["baseline"]),
        "ratio": round(rate["ours"] / rate["baseline"], 3),
        "target": TARGET,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "alerts": n,
        "rounds": len(timings["ours"]),
        "concurrency": CONCURRENCY,
    }


async def main(n: int, rounds: int) -> list[dict[str, Any]]:
    return [await measure(fmt, n, rounds) for fmt in FORMATS]


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--alerts", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    results = asyncio.run(main(args.alerts, args.rounds))
    for result in results:
        name, ours_rate, base_rate = result["name"], result["ours"], result["baseline"]
        print(f"{name}: {ours_rate} alerts/s, baseline {base_rate}, ratio {result['ratio']}")
    print(json.dumps(results))
