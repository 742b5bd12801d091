"""EventLogFile ingestion: throughput against the reference pipeline, and peak RSS by file size.

Run: ``python benchmarks/eventlogfile.py [--quick] [--throughput]`` (the latter: ingest case only).
A server process streams generated Login CSV (the simulator's row generator, gzip level 1) over HTTP;
each measured run is its own process so its peak RSS is its own, pinned to one CPU (``pin``). Ours =
download, parse, type, normalise, journal (SQLite) through the real source and ingest path. Reference
(DESIGN.md) = csv.reader over the decompressed text, row -> dict, orjson.dumps, gzip level 1 over batches
of 1,000, on the same rows in the same run. Last line: the JSON array.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import gzip
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LOG_DATE = datetime(2026, 11, 25, tzinfo=UTC)


def make_file(rows: int) -> Any:
    from forwarder.testing.simulator.org import OrgData
    from forwarder.testing.simulator.traffic import Traffic

    return OrgData(Traffic(7)).add_log_file("Login", rows, log_date=LOG_DATE, interval="Daily")


def pin(role: str) -> None:
    """One core: every measured process (ours and the reference alike) runs on the first allowed CPU, threads
    included (they inherit it); the simulated Salesforce server gets another CPU so it takes none of it."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) > 1:
        os.sched_setaffinity(0, {cpus[0] if role == "measured" else cpus[1]})


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- server -------------------------------------------------------------------------------------------------


async def serve() -> None:
    from aiohttp import web

    from forwarder.testing.simulator.schemas import field_names_header, field_types_header

    current: dict[str, Any] = {}

    async def token(request: web.Request) -> web.Response:
        return web.json_response({"access_token": "bench", "instance_url": str(request.url.origin())})

    async def new_file(request: web.Request) -> web.Response:
        current["file"] = make_file(int(request.query["rows"]))
        return web.json_response({"bytes": current["file"].length})

    async def query(request: web.Request) -> web.Response:
        f = current["file"]
        record = {
            "attributes": {"type": "EventLogFile"}, "Id": f.id, "EventType": "Login",
            "LogDate": "2026-11-25T00:00:00.000+0000", "CreatedDate": "2026-11-26T04:00:00.000+0000",
            "Interval": "Daily", "Sequence": 0, "LogFileLength": float(f.length),
            "LogFileFieldNames": field_names_header("Login"),
            "LogFileFieldTypes": field_types_header("Login"),
            "LogFile": f"/services/data/v62.0/sobjects/EventLogFile/{f.id}/LogFile",
        }
        return web.json_response({"totalSize": 1, "done": True, "records": [record]})

    async def log_file(request: web.Request) -> web.StreamResponse:
        headers = {"Content-Type": "application/octetstream", "Content-Encoding": "gzip"}
        resp = web.StreamResponse(headers=headers)
        await resp.prepare(request)
        comp = zlib.compressobj(1, zlib.DEFLATED, 31)
        for chunk in current["file"].chunks():
            await resp.write(comp.compress(chunk))
        await resp.write(comp.flush())
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_post("/services/oauth2/token", token)
    app.router.add_post("/_bench/file", new_file)
    app.router.add_get("/services/data/v62.0/query", query)
    app.router.add_get("/services/data/v62.0/sobjects/EventLogFile/{id}/LogFile", log_file)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(site._server.sockets[0].getsockname()[1], flush=True)  # type: ignore[union-attr]
    await asyncio.Event().wait()


# --- measured runs (each in its own process) ---------------------------------------------------------


async def ours(url: str, *, source_only: bool = False) -> dict[str, Any]:
    """The real path; ``source_only`` swaps the ingest (normalise + journal) for a counter."""
    import aiohttp

    from forwarder.app import tune_gc
    from forwarder.ingest import make_emit
    from forwarder.journal.sqlite import SqliteJournal
    from forwarder.logging import configure
    from forwarder.records import Lane
    from forwarder.salesforce.auth import Authenticator, SalesforceConfig
    from forwarder.salesforce.rest import RestClient
    from forwarder.sources.eventlogfile import EventLogFileConfig, EventLogFileSource

    configure("warning", "json")
    cfg = SalesforceConfig.model_validate(
        {"login_url": url, "auth": {"type": "client_credentials", "client_id": "b", "client_secret": "b"}}
    )
    source_cfg = EventLogFileConfig.model_validate({"interval": "Daily", "start": "2026-11-25"})
    with tempfile.TemporaryDirectory() as tmp:
        journal = await SqliteJournal.open(Path(tmp) / "journal.db", consumers=[])
        try:
            async with aiohttp.ClientSession() as http:
                source = EventLogFileSource(source_cfg, RestClient(Authenticator(cfg, http), http, "62.0"))
                emit = make_emit(journal, "eventlogfile", Lane.BULK, raw="none")
                counted = 0
                tune_gc()  # as the daemon does at start-up (app.main): the heap of this process, frozen

                async def count(records: Any, position: Any) -> None:
                    nonlocal counted
                    counted += len(records)

                started = time.perf_counter()
                await source.poll(count if source_only else emit)
                seconds = time.perf_counter() - started
            stats = await journal.stats()
        finally:
            await journal.close()
    rows = counted if source_only else _ingested(stats)
    return {"rows": rows, "seconds": seconds, "peak_rss_mb": peak_rss_mb()}


def _ingested(stats: dict[str, Any]) -> int:
    lanes = stats.get("lanes", {})
    bulk = lanes.get("bulk", {}) if isinstance(lanes, dict) else {}
    return int(bulk.get("newest", 0)) if isinstance(bulk, dict) else 0


def reference(rows: int) -> dict[str, Any]:
    """The floor: csv.reader over decompressed text -> dict -> orjson -> gzip-1 per 1,000 rows."""
    import orjson

    log_file = make_file(rows)
    text = _decompressed_lines(log_file.chunks())
    started = time.perf_counter()
    reader = csv.reader(text)
    header = next(reader)
    batch: list[bytes] = []
    count = 0
    for row in reader:
        batch.append(orjson.dumps(dict(zip(header, row, strict=False))))
        count += 1
        if len(batch) == 1000:
            gzip.compress(b"\n".join(batch), 1)
            batch = []
    if batch:
        gzip.compress(b"\n".join(batch), 1)
    seconds = time.perf_counter() - started
    return {"rows": count, "seconds": seconds, "peak_rss_mb": peak_rss_mb()}


def _decompressed_lines(chunks: Iterator[bytes]) -> Iterator[str]:
    # Pre-generated so the reference pays for parsing only (it gets the network and gunzip for free).
    data = b"".join(chunks).decode()
    return iter(data.splitlines(keepends=True))


# --- orchestration ------------------------------------------------------------------------------------------


def child(args: list[str]) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def prepare(url: str, rows: int) -> int:
    import urllib.request

    req = urllib.request.Request(f"{url}/_bench/file?rows={rows}", method="POST")
    with urllib.request.urlopen(req) as resp:
        return int(json.loads(resp.read())["bytes"])


def run_ours(url: str, rows: int, mode: str = "--child-ours") -> dict[str, Any]:
    size = prepare(url, rows)
    result = child([mode, url])
    result["bytes"] = size
    if result["rows"] != rows:
        raise SystemExit(f"ours ingested {result['rows']} of {rows} rows")
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--throughput", action="store_true", help="only the ingest throughput case")
    parser.add_argument("--serve", action="store_true")
    parser.add_argument("--child-ours")
    parser.add_argument("--child-source")
    parser.add_argument("--child-reference", type=int)
    args = parser.parse_args()
    if args.serve:
        pin("server")
        asyncio.run(serve())
        return
    if args.child_ours or args.child_source or args.child_reference:
        pin("measured")
    if args.child_ours:
        print(json.dumps(asyncio.run(ours(args.child_ours))))
        return
    if args.child_source:
        print(json.dumps(asyncio.run(ours(args.child_source, source_only=True))))
        return
    if args.child_reference:
        print(json.dumps(reference(args.child_reference)))
        return
    orchestrate(args.quick, args.rounds, throughput_only=args.throughput)


def orchestrate(quick: bool, rounds: int, *, throughput_only: bool = False) -> None:
    server = subprocess.Popen([sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        url = f"http://127.0.0.1:{server.stdout.readline().strip()}"
        rows = 20_000 if quick else 100_000
        results = [throughput(url, rows, rounds)]
        if not throughput_only:  # the memory cases take minutes: skipped while iterating on speed
            results += [throughput(url, rows, rounds, source_only=True), *memory(url, quick)]
    finally:
        server.terminate()
        server.wait()
    print(json.dumps(results))


def throughput(url: str, rows: int, rounds: int, *, source_only: bool = False) -> dict[str, Any]:
    """Median rows/s of ours and the reference; ``source_only``: download + parse + type, no ingest."""
    ours_rates, ref_rates, rss = [], [], []
    for _ in range(rounds):  # interleaved: a noisy neighbour hurts both sides alike
        mine = run_ours(url, rows, "--child-source" if source_only else "--child-ours")
        ref = child(["--child-reference", str(rows)])
        ours_rates.append(mine["rows"] / mine["seconds"])
        ref_rates.append(ref["rows"] / ref["seconds"])
        rss.append(mine["peak_rss_mb"])
        line = f"round: ours {ours_rates[-1]:.0f} rows/s, reference {ref_rates[-1]:.0f} rows/s"
        print(line, file=sys.stderr)
    ours_rate, ref_rate = statistics.median(ours_rates), statistics.median(ref_rates)
    name = "eventlogfile_source_only_throughput" if source_only else "eventlogfile_ingest_throughput"
    return {"name": name, "unit": "rows/s", "ours": round(ours_rate),
            "baseline": round(ref_rate), "ratio": round(ours_rate / ref_rate, 3), "target": 0.5,
            "peak_rss_mb": round(max(rss), 1), "rows": rows, "rounds": rounds}


def memory(url: str, quick: bool) -> list[dict[str, Any]]:
    small_rows, big_rows = (20_000, 200_000) if quick else (100_000, 2_000_000)
    gb_rows = 50_000 if quick else int(1_073_741_824 / 453.9) + 1
    small, big, gb = (run_ours(url, n) for n in (small_rows, big_rows, gb_rows))
    for case in (small, big, gb):
        print(f"{case['rows']} rows, {case['bytes'] / 1e6:.0f} MB: peak {case['peak_rss_mb']:.1f} MB",
              file=sys.stderr)
    growth = big["peak_rss_mb"] / small["peak_rss_mb"]
    return [
        {"name": "eventlogfile_peak_rss_1gb", "unit": "MB", "ours": round(gb["peak_rss_mb"], 1),
         "baseline": 150, "ratio": round(150 / gb["peak_rss_mb"], 3), "target": 1.0,
         "peak_rss_mb": round(gb["peak_rss_mb"], 1), "bytes": gb["bytes"], "rows": gb["rows"],
         "rows_per_s": round(gb["rows"] / gb["seconds"])},
        {"name": "eventlogfile_rss_growth_100k_to_2m", "unit": "ratio", "ours": round(growth, 3),
         "baseline": 1.2, "ratio": round(1.2 / growth, 3), "target": 1.0,
         "peak_rss_mb": round(big["peak_rss_mb"], 1), "small_rows": small["rows"], "big_rows": big["rows"],
         "small_peak_rss_mb": round(small["peak_rss_mb"], 1)},
    ]


if __name__ == "__main__":
    main()
