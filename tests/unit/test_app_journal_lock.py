"""Two daemons on one state file would deliver everything twice: the second one must refuse to start."""

from __future__ import annotations

from pathlib import Path

import pytest

from forwarder import config
from forwarder.app import open_journal


def make_config(tmp_path: Path) -> config.Config:
    return config.parse(
        {
            "salesforce": {"auth": {"type": "client_credentials", "client_id": "x", "client_secret": "y"}},
            "sinks": [{"name": "archive", "type": "file", "path": str(tmp_path / "e.jsonl")}],
            "state": {"path": str(tmp_path / "state.db"), "synchronous": "full"},
        },
        "test.yaml",
    )


async def test_second_daemon_on_one_state_file_fails_at_once(tmp_path: Path) -> None:
    cfg = make_config(tmp_path)
    first = await open_journal(cfg, exclusive=True)
    try:
        with pytest.raises(RuntimeError, match="in use by another sf-forwarder process"):
            await open_journal(cfg, exclusive=True)
        reader = await open_journal(cfg)  # state show may still look while the daemon runs
        await reader.close()
    finally:
        await first.close()
    again = await open_journal(cfg, exclusive=True)  # the lock goes with the first daemon
    await again.close()
