"""``sf-forwarder state show``: reports without creating anything, in text and JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from forwarder import config
from forwarder.app import open_journal
from forwarder.journal import DeadLetter
from forwarder.records import Lane


def write_config(tmp_path: Path) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "salesforce": {
                    "auth": {"type": "client_credentials", "client_id": "x", "client_secret": "y"}
                },
                "sinks": [{"name": "archive", "type": "file", "path": str(tmp_path / "e.jsonl")}],
                "state": {"path": str(tmp_path / "state" / "state.db")},
            }
        )
    )
    return path


def show(path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "forwarder", "state", "show", "-c", str(path), *extra],
        capture_output=True, text=True, check=False,
    )  # fmt: skip


def test_missing_journal_is_reported_and_not_created(tmp_path: Path) -> None:
    result = show(write_config(tmp_path))
    assert result.returncode == 0
    assert "no journal at" in result.stdout
    assert not (tmp_path / "state").exists()


async def test_reports_lag_positions_and_dead_letters(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    journal = await open_journal(config.load(path))
    events = [{"event": {"id": str(i), "dataset": "salesforce.login"}} for i in range(3)]
    letter = DeadLetter(consumer="ingest", reason="CreatedDate: not a datetime", payload={"Id": "1"})
    await journal.append("setupaudittrail", Lane.REALTIME, events, [letter], {"watermark": "2026-11-26"})
    await journal.close()

    state = json.loads(show(path, "--json").stdout)
    assert state["consumers"]["archive"]["realtime"]["lag"] == 3
    assert state["positions"]["setupaudittrail"]["position"] == {"watermark": "2026-11-26"}
    assert state["recent_dead_letters"][0]["reason"] == "CreatedDate: not a datetime"

    text = show(path).stdout
    assert "archive:" in text
    assert "lag: 3" in text
    assert "CreatedDate: not a datetime" in text
