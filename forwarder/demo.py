"""``sf-forwarder demo``: the simulator (attack scenario), local HEC/Datadog/syslog receivers, a signed
webhook and a Slack receiver for the alerts, and the forwarder with ``config/demo.yaml``, all on 127.0.0.1,
with a live summary. No credentials, no network.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import sys
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from forwarder import config as config_module
from forwarder.app import Forwarder, tune_gc
from forwarder.errors import ConfigError
from forwarder.events import EventDoc, get_path
from forwarder.logging import configure
from forwarder.packaged import packaged_path
from forwarder.testing.receivers.datadog import DatadogReceiver
from forwarder.testing.receivers.hec import HecReceiver
from forwarder.testing.receivers.slack import SlackReceiver
from forwarder.testing.receivers.syslog import SyslogReceiver
from forwarder.testing.receivers.webhook import DEFAULT_SECRET, WebhookReceiver
from forwarder.testing.simulator import Simulator

DEMO_CONFIG = packaged_path("demo.yaml")
DEMO_RULES = packaged_path("rules")
SOURCES = ("streaming", "eventlogfile", "setupaudittrail")


def source_of(event: EventDoc) -> str:
    """Which source an event came from, by its ``event.provider``."""
    provider = get_path(event, "event.provider", "")
    if get_path(event, "event.dataset") == "salesforce.alert":
        return "alerts"  # raised by the rule engine: counted apart from what the sources ingested
    if provider == "EventLogFile":
        return "eventlogfile"
    if provider == "SetupAuditTrail":
        return "setupaudittrail"
    return "streaming"


def sources_by_id(events: Iterable[EventDoc]) -> dict[str, str]:
    """event.id -> source, from a complete copy of the events (the demo's file sink)."""
    return {str(get_path(e, "event.id")): source_of(e) for e in events}


def count_by_source(ids: Iterable[str], sources: dict[str, str]) -> dict[str, int]:
    """Unique ids per source; ids the reference copy does not know count as "unknown"."""
    counts = Counter(sources.get(i, "unknown") for i in set(ids))
    return {s: counts.get(s, 0) for s in (*SOURCES, "unknown") if s != "unknown" or counts.get(s)}


def _file_events(path: Path) -> list[EventDoc]:
    if not path.exists():
        return []
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def _fresh_folder(path: Path) -> None:
    """Each demo starts a new simulated org, so state from an earlier run must not be resumed."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)


class Demo:
    """Everything the demo starts, and the numbers it reports."""

    def __init__(self, output: Path, seed: int) -> None:
        self.output = output
        self.seed = seed
        self.hec_token = secrets.token_hex(16)
        self.dd_key = secrets.token_hex(16)
        start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=4)
        self.org = Simulator(seed=seed, scenario="attacks", start=start)
        self.hec = HecReceiver(tokens={self.hec_token}, acks=True)
        self.datadog = DatadogReceiver(api_keys={self.dd_key})
        self.syslog = SyslogReceiver(udp_port=None)
        self.hooks = WebhookReceiver()  # checks the Standard Webhooks signature with DEFAULT_SECRET
        self.slack = SlackReceiver()
        self.start_date = start.date()

    def environment(self) -> dict[str, str]:
        return {
            "SF_DEMO_SALESFORCE_URL": self.org.base_url,
            "SF_DEMO_CLIENT_ID": self.org.client_id,
            "SF_DEMO_USERNAME": self.org.username,
            "SF_DEMO_PRIVATE_KEY": str(self.org.private_key_path),
            "SF_DEMO_START_DATE": self.start_date.isoformat(),
            "SF_DEMO_HEC_URL": self.hec.url,
            "SF_DEMO_HEC_TOKEN": self.hec_token,
            "SF_DEMO_DATADOG_URL": self.datadog.intake_url,
            "SF_DEMO_DATADOG_KEY": self.dd_key,
            "SF_DEMO_SYSLOG_ADDRESS": self.syslog.tcp_address,
            "SF_DEMO_OUTPUT": str(self.output),
            "SF_DEMO_RULES": str(DEMO_RULES),  # demo.yaml uses rules.builtin; a config of your own may not
            "SF_DEMO_WEBHOOK_URL": self.hooks.hook_url,
            "SF_DEMO_WEBHOOK_SECRET": DEFAULT_SECRET,
            "SF_DEMO_SLACK_URL": self.slack.webhook_url,
        }

    def live_traffic(self) -> None:
        """A few new activities now, so the live streams keep moving while the demo runs."""
        now = datetime.now(UTC)
        fresh = [self.org.traffic.random_activity(at=now) for _ in range(3)]
        self.org.add_activities(fresh, log_files=False)

    def summary(self) -> dict[str, Any]:
        archive = sources_by_id(_file_events(self.output / "events.jsonl"))
        sinks = {
            "splunk": count_by_source(self.hec.unique_ids(), archive),
            "datadog": count_by_source(self.datadog.unique_ids(), archive),
            "siem": count_by_source(self.syslog.unique_ids(), archive),
            "archive": count_by_source(archive, archive),
        }
        alerts = Counter(
            str(get_path(e, "rule.id"))
            for e in _file_events(self.output / "events.jsonl")
            if source_of(e) == "alerts"
        )
        # the on-call sinks get the rules' alerts only (webhook default route), so they are counted apart
        paged = {"hooks": len(self.hooks.unique_ids()), "slack": len(self.slack.unique_ids())}
        alerts_by_rule = dict(sorted(alerts.items()))
        return {"sources": _ingested(), "sinks": sinks, "alerts": alerts_by_rule, "paged": paged}


def _ingested() -> dict[str, int]:
    from prometheus_client import REGISTRY

    counts = dict.fromkeys(SOURCES, 0)
    for metric in REGISTRY.collect():
        if metric.name == "forwarder_events_ingested":
            for sample in metric.samples:
                if sample.name.endswith("_total") and sample.labels.get("source") in counts:
                    counts[sample.labels["source"]] += int(sample.value)
    return counts


async def sink_lag(forwarder: Forwarder) -> dict[str, int]:
    """Events in the journal each sink has not yet confirmed, over both lanes."""
    if forwarder.journal is None:
        return {}
    consumers = (await forwarder.journal.stats()).get("consumers", {})
    return {
        name: sum(int(lane.get("lag", 0)) for lane in info.values() if isinstance(lane, dict))
        for name, info in consumers.items()
    }


def _render(summary: dict[str, Any], elapsed: float, lag: dict[str, int] | None) -> str:
    lines = [f"sf-forwarder demo  {elapsed:5.0f}s   (Ctrl-C to stop)", "", "ingested per source:"]
    lines += [f"  {name:<16} {count:>8}" for name, count in summary["sources"].items()]
    header = "delivered per sink      " + "  ".join(f"{s:>15}" for s in SOURCES)
    lines += ["", header + ("        lag" if lag is not None else "")]
    for sink, counts in summary["sinks"].items():
        row = "  ".join(f"{counts[s]:>15}" for s in SOURCES)
        lines.append(f"  {sink:<20}  {row}" + (f"  {lag.get(sink, 0):>9}" if lag is not None else ""))
    alerts = summary.get("alerts") or {}
    lines += ["", f"alerts raised by the default rules: {sum(alerts.values())}"]
    lines += [f"  {rule:<28} {count:>4}" for rule, count in alerts.items()]
    paged = summary.get("paged") or {}
    lines += ["", "alerts sent to on-call: " + ", ".join(f"{sink} {count}" for sink, count in paged.items())]
    return "\n".join(lines)


async def run(duration: float | None, seed: int, output: Path, config_path: Path) -> dict[str, Any]:
    """Run the demo for ``duration`` seconds (None: until interrupted); return the final summary."""
    await asyncio.to_thread(_fresh_folder, output)
    demo = Demo(output, seed)
    async with demo.org, demo.hec, demo.datadog, demo.syslog, demo.hooks, demo.slack:
        os.environ.update(demo.environment())
        config = config_module.load(config_path)
        configure(config.logging.level, config.logging.format)
        forwarder = Forwarder(config)
        tune_gc()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        task = asyncio.create_task(forwarder.run())
        await _watch(demo, forwarder, stop, task, duration)
        await _drain(forwarder, task, seconds=30.0)
        forwarder.stop()
        await task
        return demo.summary()


async def _watch(
    demo: Demo, forwarder: Forwarder, stop: asyncio.Event, task: asyncio.Task[None], duration: float | None
) -> None:
    started = asyncio.get_running_loop().time()
    tty = sys.stdout.isatty()
    while not stop.is_set() and not task.done():
        elapsed = asyncio.get_running_loop().time() - started
        if duration is not None and elapsed >= duration:
            return
        demo.live_traffic()
        if tty:
            lag = await sink_lag(forwarder)
            print("\033[2J\033[H" + _render(demo.summary(), elapsed, lag), flush=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=1.0)


async def _drain(forwarder: Forwarder, task: asyncio.Task[None], seconds: float) -> None:
    """Give the sinks up to ``seconds`` to catch up, so the final counts compare like with like: settled
    means no sink lags and nothing new was ingested for a second (the last live events are in)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            before = None
            while not task.done():
                # The journal's lag is the one signal across all sinks; a short poll reads it simply.
                await asyncio.sleep(1.0)
                now = sum(_ingested().values())
                if now == before and not any((await sink_lag(forwarder)).values()):
                    return
                before = now


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="sf-forwarder demo", description=__doc__)
    parser.add_argument("--duration", type=float, help="Stop after this many seconds (default: Ctrl-C).")
    parser.add_argument("--seed", type=int, default=1, help="Seed of the simulated org's traffic.")
    parser.add_argument(
        "--output", type=Path, default=Path("demo-output"), help="Folder for state and files."
    )
    parser.add_argument(
        "--config", type=Path, default=DEMO_CONFIG, help="Demo config (default: the shipped demo.yaml)."
    )
    args = parser.parse_args(argv)
    try:
        summary = asyncio.run(run(args.duration, args.seed, args.output.resolve(), args.config))
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(_render(summary, args.duration or 0, None))
    print(json.dumps(summary, sort_keys=True))
    return 0
