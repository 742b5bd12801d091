"""The daemon with the default rules against the simulator's attack scenario and the three webhook sinks
configured as an operator would (default route): every rule alert reaches the signed-JSON consumer, Slack
and PagerDuty exactly as the archive has it; Salesforce's own Threat Detection events, which the rules pass
through as alerts, and ordinary events do not (one page per incident); every request passes the receivers'
checks."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from forwarder import config as config_module
from forwarder.app import Forwarder
from forwarder.testing.receivers.pagerduty import DEFAULT_ROUTING_KEY, PagerDutyReceiver
from forwarder.testing.receivers.slack import SlackReceiver
from forwarder.testing.receivers.webhook import DEFAULT_SECRET, WebhookReceiver
from forwarder.testing.simulator import Simulator

RULES = Path(__file__).parents[2] / "config" / "rules"
CHANNELS = ["/event/LoginEventStream", "/event/LoginAsEventStream", "/event/SessionHijackingEvent"]
#: Alerts the attack scenario raises at least (tests/integration/test_alerts_daemon.py has the full list).
AT_LEAST = 5


def _config(
    org: Simulator, tmp_path: Path, start: datetime, hooks: str, slack: str, pd: str
) -> dict[str, Any]:
    return {
        "salesforce": org.salesforce_config(),
        "sources": {
            "streaming": {"channels": CHANNELS, "replay": "earliest"},
            "eventlogfile": {"enabled": False},
            "setupaudittrail": {"poll_interval": "1s", "overlap": "2m", "initial_span": "2d"},
        },
        "rules": {"paths": [str(RULES)]},
        "sinks": [
            {"name": "archive", "type": "file", "path": str(tmp_path / "events.jsonl")},
            {"name": "hooks", "type": "webhook", "format": "generic", "url": hooks, "secret": DEFAULT_SECRET},
            {"name": "slack", "type": "webhook", "format": "slack", "url": slack, "pace": 0.05},
            {
                "name": "oncall",
                "type": "webhook",
                "format": "pagerduty",
                "url": pd,
                "routing_key": DEFAULT_ROUTING_KEY,
            },
        ],
        "state": {"path": str(tmp_path / "state.db")},
        "normalize": {"raw": "none"},
        "server": {"listen": "127.0.0.1:0"},
        "logging": {"level": "warning", "format": "json"},
    }


def _alerts(path: Path) -> list[dict[str, Any]]:
    docs = [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
    return [d for d in docs if d["event"].get("kind") == "alert"]


async def _settled(forwarder: Forwarder) -> bool:
    assert forwarder.journal is not None
    consumers = (await forwarder.journal.stats())["consumers"]
    return all(lane["lag"] == 0 for info in consumers.values() for lane in (info["realtime"], info["bulk"]))


@pytest.mark.timeout(150)
async def test_every_alert_reaches_each_webhook_format_and_no_event_does(tmp_path: Path) -> None:
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=4)
    receivers = WebhookReceiver(), SlackReceiver(), PagerDutyReceiver()
    hooks, slack, pd = receivers
    async with Simulator(seed=1, scenario="attacks", start=start) as org, hooks, slack, pd:
        document = _config(org, tmp_path, start, hooks.hook_url, slack.webhook_url, pd.enqueue_url)
        forwarder = Forwarder(config_module.parse(document, "test.yaml"))
        task = asyncio.create_task(forwarder.run())
        try:
            for receiver in receivers:
                await receiver.wait_for_unique(AT_LEAST, timeout=100)
            async with asyncio.timeout(60):
                while not await _settled(forwarder):
                    assert forwarder.journal is not None
                    await forwarder.journal.wait_for_events(0.2)  # commits do not wake it: re-check often
            alerts = _alerts(tmp_path / "events.jsonl")  # read while settled: every sink has all of them
            delivered = [receiver.unique_ids() for receiver in receivers]
            open_keys = set(pd.open_alerts)
        finally:
            forwarder.stop()
            await task
    rule_alerts = [a for a in alerts if a["event"]["dataset"] == "salesforce.alert"]
    ids = {a["event"]["id"] for a in rule_alerts}
    assert len(ids) >= AT_LEAST
    for receiver, got in zip(receivers, delivered, strict=True):
        assert got == ids, type(receiver).__name__
    assert {e["type"] for e in hooks.events} == {"salesforce.alert"}
    assert hooks.refusals == []
    assert slack.problems == []
    assert pd.rejections == []
    assert open_keys == {a["salesforce"]["alert"]["dedup_key"] for a in rule_alerts}  # grouped by rule and key
    # Salesforce's Threat Detection events (event.kind: alert too) reached the archive, not the pagers
    assert any(a["event"]["dataset"] != "salesforce.alert" for a in alerts)
