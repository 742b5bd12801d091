"""Run a receiver as its own process (benchmarks, the demo): prints one JSON line ``{"url": ...}`` once
listening, serves until SIGTERM/SIGINT. Counts are at ``GET <url>/_receiver/stats``.

    python -m forwarder.testing.receivers hec|datadog|webhook|slack|pagerduty [--port N] [--acks]
        [--keep-events] [--count-only]

webhook, slack and pagerduty also print ``"endpoint"``: the URL their sink posts to (test credentials).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from forwarder.testing.receivers import HttpReceiver
from forwarder.testing.receivers.datadog import DatadogReceiver
from forwarder.testing.receivers.hec import HecReceiver
from forwarder.testing.receivers.pagerduty import PagerDutyReceiver
from forwarder.testing.receivers.slack import SlackReceiver
from forwarder.testing.receivers.webhook import WebhookReceiver


def _receiver(args: argparse.Namespace) -> HttpReceiver:
    common = {"port": args.port, "keep_events": args.keep_events, "count_only": args.count_only}
    if args.kind == "hec":
        return HecReceiver(acks=args.acks, **common)
    if args.kind == "webhook":
        return WebhookReceiver(**common)
    if args.kind == "slack":
        return SlackReceiver(**common)
    if args.kind == "pagerduty":
        return PagerDutyReceiver(**common)
    return DatadogReceiver(**common)


def _endpoint(receiver: HttpReceiver) -> str:
    if isinstance(receiver, WebhookReceiver):
        return receiver.hook_url
    if isinstance(receiver, SlackReceiver):
        return receiver.webhook_url
    if isinstance(receiver, PagerDutyReceiver):
        return receiver.enqueue_url
    return receiver.url


async def _serve(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with _receiver(args) as receiver:
        sys.stdout.write(f'{{"url": "{receiver.url}", "endpoint": "{_endpoint(receiver)}"}}\n')
        sys.stdout.flush()
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and serve."""
    parser = argparse.ArgumentParser(prog="python -m forwarder.testing.receivers")
    parser.add_argument("kind", choices=["hec", "datadog", "webhook", "slack", "pagerduty"])
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: a free one)")
    parser.add_argument("--acks", action="store_true", help="HEC: indexer acknowledgement on")
    parser.add_argument("--keep-events", action="store_true", help="keep event bodies, not only ids")
    parser.add_argument("--count-only", action="store_true", help="count events without parsing (benchmarks)")
    asyncio.run(_serve(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
