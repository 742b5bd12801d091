"""Run a receiver as its own process (benchmarks, the demo): prints one JSON line ``{"url": ...}`` once
listening, serves until SIGTERM/SIGINT. Counts are at ``GET <url>/_receiver/stats``.

    python -m forwarder.testing.receivers hec|datadog [--port N] [--acks] [--keep-events] [--count-only]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from forwarder.testing.receivers import HttpReceiver
from forwarder.testing.receivers.datadog import DatadogReceiver
from forwarder.testing.receivers.hec import HecReceiver


def _receiver(args: argparse.Namespace) -> HttpReceiver:
    common = {"port": args.port, "keep_events": args.keep_events, "count_only": args.count_only}
    if args.kind == "hec":
        return HecReceiver(acks=args.acks, **common)
    return DatadogReceiver(**common)


async def _serve(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with _receiver(args) as receiver:
        sys.stdout.write(f'{{"url": "{receiver.url}"}}\n')
        sys.stdout.flush()
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and serve."""
    parser = argparse.ArgumentParser(prog="python -m forwarder.testing.receivers")
    parser.add_argument("kind", choices=["hec", "datadog"])
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: a free one)")
    parser.add_argument("--acks", action="store_true", help="HEC: indexer acknowledgement on")
    parser.add_argument("--keep-events", action="store_true", help="keep event bodies, not only ids")
    parser.add_argument("--count-only", action="store_true", help="count events without parsing (benchmarks)")
    asyncio.run(_serve(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
