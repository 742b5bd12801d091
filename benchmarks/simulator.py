"""Simulator LogFile serving: a generated 1,000,000-row Login file against the reference pipeline.

Run: ``python benchmarks/simulator.py [--rows N] [--rounds R]``. The simulator runs in its own process
(so its peak RSS is its own) and serves the file over HTTP; ours = rows/s a client receives the CSV
(identity, and gzip as a second case). Baseline (DESIGN.md "Benchmarks convention") = the reference
pipeline consuming the same CSV: csv.reader over the text, row -> dict, orjson.dumps, zlib level 1 over
batches of 1,000. Rounds are interleaved; medians are reported. Last line: the JSON array.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import resource
import signal
import statistics
import sys
import tempfile
import time
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


# --- the simulator process ----------------------------------------------------------------------------------
async def serve(rows: int) -> None:
    from forwarder.testing.simulator import Simulator

    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with Simulator(seed=1, activities=50) as org:
        log_file = org.add_log_file("Login", rows, log_date=datetime(2026, 11, 25, 3, tzinfo=UTC))
        info = {
            "base_url": org.base_url,
            "client_id": org.client_id,
            "client_secret": org.client_secret,
            "file_id": log_file.id,
            "bytes": log_file.length,
        }
        print(json.dumps(info), flush=True)
        await stop.wait()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"peak_rss_mb": round(peak, 1)}), flush=True)


# --- the client side ----------------------------------------------------------------------------------------
async def token(info: dict[str, Any]) -> str:
    form = {
        "grant_type": "client_credentials",
        "client_id": info["client_id"],
        "client_secret": info["client_secret"],
    }
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{info['base_url']}/services/oauth2/token", data=form) as resp,
    ):
        return str((await resp.json())["access_token"])


async def download(
    info: dict[str, Any], tok: str, encoding: str, sink: Path | None = None
) -> tuple[float, int]:
    url = f"{info['base_url']}/services/data/v62.0/sobjects/EventLogFile/{info['file_id']}/LogFile"
    headers = {"Authorization": f"Bearer {tok}", "Accept-Encoding": encoding}
    size = 0
    started = time.perf_counter()
    async with aiohttp.ClientSession(auto_decompress=True) as http, http.get(url, headers=headers) as resp:
        resp.raise_for_status()
        out = sink.open("wb") if sink else None
        async for chunk in resp.content.iter_chunked(1 << 20):
            size += len(chunk)
            if out:
                out.write(chunk)
        if out:
            out.close()
    return time.perf_counter() - started, size


def _lines(path: Path) -> Iterator[str]:
    with path.open(newline="", encoding="utf-8") as handle:
        yield from handle


def reference(path: Path) -> tuple[float, int]:
    """DESIGN.md reference pipeline over the same CSV text."""
    started = time.perf_counter()
    reader = csv.reader(_lines(path))
    header = next(reader)
    batch: list[bytes] = []
    rows = out = 0
    for row in reader:
        batch.append(orjson.dumps(dict(zip(header, row, strict=True))))
        rows += 1
        if len(batch) == 1000:
            out += len(zlib.compress(b"\n".join(batch), 1))
            batch = []
    if batch:
        out += len(zlib.compress(b"\n".join(batch), 1))
    return time.perf_counter() - started, rows


def case(
    name: str, rows: int, ours_s: list[float], ref_s: list[float], peak: float, target: float, **extra: Any
) -> dict[str, Any]:
    ours, base = rows / statistics.median(ours_s), rows / statistics.median(ref_s)
    return {
        "name": name,
        "unit": "rows/s",
        "ours": round(ours),
        "baseline": round(base),
        "ratio": round(ours / base, 3),
        "target": target,
        "peak_rss_mb": peak,
        "rows": rows,
        **extra,
    }


async def _start_server(rows: int) -> tuple[asyncio.subprocess.Process, dict[str, Any]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--serve",
        "--rows",
        str(rows),
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    while not (line := (await proc.stdout.readline()).decode()).startswith("{"):
        assert line, "simulator exited early"
    return proc, json.loads(line)


async def _stop_server(proc: asyncio.subprocess.Process) -> float:
    proc.send_signal(signal.SIGTERM)
    out, _ = await proc.communicate()
    return float(json.loads(out.decode().strip().splitlines()[-1])["peak_rss_mb"])


async def measure(rows: int, rounds: int) -> list[dict[str, Any]]:
    proc, info = await _start_server(rows)
    try:
        tok = await token(info)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "login.csv"
            _, size = await download(info, tok, "identity", path)  # warm-up; the reference reads this copy
            assert size == info["bytes"], (size, info["bytes"])
            plain: list[float] = []
            gz: list[float] = []
            ref: list[float] = []
            for index in range(rounds):
                plain.append((await download(info, tok, "identity"))[0])
                gz.append((await download(info, tok, "gzip"))[0])
                seconds, counted = reference(path)
                assert counted == rows
                ref.append(seconds)
                times = f"identity {plain[-1]:.2f}s gzip {gz[-1]:.2f}s reference {ref[-1]:.2f}s"
                print(f"round {index + 1}: {times}", file=sys.stderr)
    finally:
        peak = await _stop_server(proc)
    return [
        case(
            "simulator_logfile_serve_1m_login",
            rows,
            plain,
            ref,
            peak,
            3.0,
            bytes=info["bytes"],
            rounds=rounds,
        ),
        case(
            "simulator_logfile_serve_1m_login_gzip",
            rows,
            gz,
            ref,
            peak,
            1.0,
            bytes=info["bytes"],
            rounds=rounds,
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.rows))
        return
    results = asyncio.run(measure(args.rows, args.rounds))
    for result in results:
        print(
            f"{result['name']}: ours {result['ours']:,} rows/s, reference {result['baseline']:,} rows/s, "
            f"ratio {result['ratio']}, simulator peak RSS {result['peak_rss_mb']} MB",
            file=sys.stderr,
        )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
