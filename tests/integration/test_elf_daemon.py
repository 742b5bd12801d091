"""The whole daemon (sources, ingest, journal, delivery, file sink) against the simulator: ELF + audit trail.

Every hourly EventLogFile row and every SetupAuditTrail record in range reaches the sink exactly once.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from forwarder import config as config_module
from forwarder.app import Forwarder
from forwarder.testing.simulator.app import Simulator


def write_config(tmp_path: Path, org: Simulator) -> Path:
    data = {
        "salesforce": {"login_url": org.base_url, "auth": {
            "client_id": org.client_id, "username": org.username, "private_key_file": str(org.private_key_path)}},
        "sources": {
            "streaming": {"enabled": False},
            "eventlogfile": {"interval": "Hourly", "start": "2026-11-01", "poll_interval": "PT0.2S"},
            "setupaudittrail": {"poll_interval": "PT0.2S", "initial_span": "P60D"},
        },
        "sinks": [{"name": "archive", "type": "file", "path": str(tmp_path / "events.jsonl")}],
        "state": {"path": str(tmp_path / "state.db")},
        "logging": {"level": "warning", "format": "json"},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def delivered(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


@pytest.mark.timeout(120)
async def test_daemon_delivers_every_log_file_row_and_audit_record_once(tmp_path: Path) -> None:
    async with Simulator(seed=21, activities=150) as org:
        rows = sum(f.source.count for f in org.log_files.values() if f.interval == "Hourly")
        audits = len(org.data.objects["SetupAuditTrail"])
        cfg = config_module.load(write_config(tmp_path, org))
        daemon = Forwarder(cfg, listen="127.0.0.1:0")
        task = asyncio.create_task(daemon.run())
        sink = tmp_path / "events.jsonl"
        try:
            async with asyncio.timeout(90):
                while len(delivered(sink)) < rows + audits:
                    assert not task.done(), task
                    await asyncio.sleep(0.2)  # polling the sink file, not synchronisation
        finally:
            daemon.stop()
            await task
    events = delivered(sink)
    ids = Counter(e["event"]["id"] for e in events)
    providers = Counter(e["event"].get("provider") for e in events)
    assert max(ids.values()) == 1
    assert providers["EventLogFile"] == rows
    assert providers["SetupAuditTrail"] == audits
    assert audits > 0
