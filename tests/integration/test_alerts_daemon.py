"""The daemon with the default rules against the simulator's attack scenario: every attack's alert reaches
the sink once (one per group per window), though logins arrive twice (stream and EventLogFile)."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from forwarder import config as config_module
from forwarder.app import Forwarder
from forwarder.testing.simulator import Simulator

RULES = Path(__file__).parents[2] / "config" / "rules"
CHANNELS = [
    "/event/LoginEventStream",
    "/event/LoginAsEventStream",
    "/event/ReportEventStream",
    "/event/SessionHijackingEvent",
    "/event/CredentialStuffingEvent",
]
#: The simulator's attacks (forwarder/testing/simulator/traffic/scenarios.py) and the rule each raises.
EXPECTED = {
    "sf-brute-force",
    "sf-brute-force-then-success",
    "sf-password-spray",
    "sf-mass-report-export",
    "sf-bulk-api-exfiltration",
    "sf-admin-privilege-grant",
    "sf-network-access-change",
    "sf-password-policy-weakened",
    "sf-login-as",
    "sf-session-hijacking",
    "sf-credential-stuffing",
    "sf-connected-app-created",  # routine admin work in the baseline creates one
}


def daemon_config(org: Simulator, tmp_path: Path, start: datetime) -> dict[str, Any]:
    return {
        "salesforce": org.salesforce_config(),
        "sources": {
            "streaming": {"channels": CHANNELS, "replay": "earliest"},
            "eventlogfile": {"interval": "Hourly", "poll_interval": "1s", "start": start.date().isoformat()},
            "setupaudittrail": {"poll_interval": "1s", "overlap": "2m", "initial_span": "2d"},
        },
        "rules": {"paths": [str(RULES)]},
        "sinks": [{"name": "archive", "type": "file", "path": str(tmp_path / "events.jsonl")}],
        "state": {"path": str(tmp_path / "state.db")},
        "normalize": {"raw": "none"},
        "server": {"listen": "127.0.0.1:0"},
        "logging": {"level": "warning", "format": "json"},
    }


def alerts_in(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    docs = [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
    return [d for d in docs if d["event"].get("dataset") == "salesforce.alert"]


async def settled(forwarder: Forwarder) -> bool:
    """The engine and the sink have consumed everything appended so far."""
    assert forwarder.journal is not None
    consumers = (await forwarder.journal.stats())["consumers"]
    return all(lane["lag"] == 0 for info in consumers.values() for lane in (info["realtime"], info["bulk"]))


@pytest.mark.timeout(120)
async def test_attack_scenario_raises_each_expected_alert_once(tmp_path: Path) -> None:
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=4)
    async with Simulator(seed=1, scenario="attacks", start=start) as org:
        forwarder = Forwarder(config_module.parse(daemon_config(org, tmp_path, start), "test.yaml"))
        task = asyncio.create_task(forwarder.run())
        try:
            async with asyncio.timeout(90):
                while {a["rule"]["id"] for a in alerts_in(tmp_path / "events.jsonl")} < EXPECTED:
                    assert not task.done(), task
                    await asyncio.sleep(0.2)  # the file sink is written by another task: poll the file
                while not await settled(forwarder):
                    assert forwarder.journal is not None
                    await forwarder.journal.wait_for_events(0.2)  # commits do not wake it: re-check often
        finally:
            forwarder.stop()
            await task
    alerts = alerts_in(tmp_path / "events.jsonl")
    per_rule = Counter(a["rule"]["id"] for a in alerts)
    assert set(per_rule) == EXPECTED, per_rule
    assert all(count == 1 for count in per_rule.values()), per_rule
    assert len({a["event"]["id"] for a in alerts}) == len(alerts)
    brute = next(a for a in alerts if a["rule"]["id"] == "sf-brute-force")
    assert brute["user"]["name"] == "erin.kim@acme.example"
    assert brute["salesforce"]["alert"]["count"] >= 10
    spray = next(a for a in alerts if a["rule"]["id"] == "sf-password-spray")
    assert spray["salesforce"]["alert"]["distinct_count"] >= 10
    assert spray["source"]["ip"] == spray["salesforce"]["alert"]["group_by"]["source.ip"]
