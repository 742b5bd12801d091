"""``sf-forwarder backfill`` against a real HTTP org and a real SQLite journal shared with the daemon."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from forwarder import config as config_module
from forwarder.backfill import parse_args, run
from forwarder.ingest import make_emit
from forwarder.journal.sqlite import SqliteJournal
from forwarder.records import Lane
from forwarder.sources.eventlogfile import EventLogFileSource
from tests.integration.elf_org import FakeOrg, serve_org

DAY1 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def write_config(tmp_path: Path, org: FakeOrg) -> Any:
    data = {
        "salesforce": {"login_url": org.url, "auth": {"type": "client_credentials", "client_id": "c",
                                                      "client_secret": "s"}},
        "sources": {"streaming": {"enabled": False}, "eventlogfile": {"interval": "Hourly"}},
        "sinks": [{"name": "archive", "type": "file", "path": str(tmp_path / "events.jsonl")}],
        "state": {"path": str(tmp_path / "state.db")},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def rows(prefix: str, count: int) -> list[list[str]]:
    return [["Login", "20261120100000.000", f"005{prefix}{i:06d}", "1"] for i in range(count)]


def add_days(org: FakeOrg) -> None:
    for day in range(4):  # Nov 20..23, one hourly file per day, created 4 h after its hour
        log_date = DAY1 + timedelta(days=day)
        org.add_file(f"0AT{day}", "Login", log_date + timedelta(hours=5), rows(str(day), 10), log_date=log_date)


async def events_in(path: Path) -> int:
    journal = await SqliteJournal.open(path)
    try:
        stats = await journal.stats()
    finally:
        await journal.close()
    return int(stats["lanes"]["bulk"]["events"])


async def test_dry_run_counts_and_reads_nothing(tmp_path: Path) -> None:
    org = FakeOrg()
    add_days(org)
    async with serve_org(org):
        cfg_path = write_config(tmp_path, org)
        out = io.StringIO()
        args = parse_args(["-c", str(cfg_path), "--source", "eventlogfile", "--since", "2026-11-20",
                           "--until", "2026-11-23", "--dry-run"])
        assert await run(config_module.load(cfg_path), args, out) == 0
    text = out.getvalue()
    assert "files: 3" in text
    assert "api calls: 4" in text
    assert "api budget: 0.00% of today's limit 100000" in text
    assert org.downloads == []
    assert await events_in(tmp_path / "state.db") == 0


async def test_backfill_then_daemon_read_each_file_once(tmp_path: Path) -> None:
    org = FakeOrg()
    add_days(org)
    async with serve_org(org) as rest:
        cfg_path = write_config(tmp_path, org)
        cfg = config_module.load(cfg_path)
        args = parse_args(["-c", str(cfg_path), "--source", "eventlogfile", "--since", "2026-11-20",
                           "--until", "2026-11-22"])
        out = io.StringIO()
        assert await run(cfg, args, out) == 0
        assert "20 events from 2 files" in out.getvalue()
        assert await run(cfg, args, io.StringIO()) == 0  # resumed: nothing new
        assert sorted(org.downloads) == ["0AT0", "0AT1"]
        # The daemon, sharing the journal, starts where the backfill ended (2026-11-22).
        journal = await SqliteJournal.open(tmp_path / "state.db")
        try:
            position = await journal.position("eventlogfile")
            assert position is not None
            assert position["start"] == "2026-11-22T00:00:00.000Z"
            daemon = EventLogFileSource(cfg.sources.eventlogfile, rest)
            daemon.state = None
            from forwarder.sources._elf_state import ElfState

            daemon.state = ElfState.load(position, cfg.sources.eventlogfile, datetime.now(UTC))
            await daemon.poll(make_emit(journal, "eventlogfile", Lane.BULK))
        finally:
            await journal.close()
    assert sorted(org.downloads) == ["0AT0", "0AT1", "0AT2", "0AT3"]
    assert await events_in(tmp_path / "state.db") == 40


async def test_setupaudittrail_backfill_dry_run_and_range(tmp_path: Path) -> None:
    org = FakeOrg()
    now = datetime.now(UTC)
    for i in range(25):
        org.add_audit(f"0Ym{i:04d}", now - timedelta(days=10, minutes=i))
    org.add_audit("0YmRecent", now - timedelta(hours=1))
    async with serve_org(org):
        cfg_path = write_config(tmp_path, org)
        cfg = config_module.load(cfg_path)
        since = (now - timedelta(days=12)).date().isoformat()
        until = (now - timedelta(days=5)).date().isoformat()
        base = ["-c", str(cfg_path), "--source", "setupaudittrail", "--since", since, "--until", until]
        dry = io.StringIO()
        assert await run(cfg, parse_args([*base, "--dry-run"]), dry) == 0
        assert "records: 25" in dry.getvalue()
        out = io.StringIO()
        assert await run(cfg, parse_args(base), out) == 0
    assert "25 records" in out.getvalue()
    journal = await SqliteJournal.open(tmp_path / "state.db")
    try:
        stats = await journal.stats()
        daemon = await journal.position("setupaudittrail")
    finally:
        await journal.close()
    assert stats["lanes"]["realtime"]["events"] == 25
    assert daemon is not None
    assert daemon["start"].startswith(until)


async def test_cli_dry_run_and_run_in_a_real_process(tmp_path: Path) -> None:
    import asyncio
    import sys

    org = FakeOrg()
    add_days(org)
    async with serve_org(org):
        cfg_path = write_config(tmp_path, org)
        base = [sys.executable, "-m", "forwarder", "backfill", "-c", str(cfg_path), "--source", "eventlogfile",
                "--since", "2026-11-20", "--until", "2026-11-23", "--event-types", "Login,Logout"]
        outputs = []
        for extra in (["--dry-run"], []):
            proc = await asyncio.create_subprocess_exec(
                *base, *extra, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
            )
            out, err = await proc.communicate()
            assert proc.returncode == 0, err.decode()
            outputs.append(out.decode())
    assert "files: 3" in outputs[0]
    assert "30 events from 3 files" in outputs[1]
    assert await events_in(tmp_path / "state.db") == 30


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


async def test_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    org = FakeOrg()
    add_days(org)
    async with serve_org(org):
        cfg_path = write_config(tmp_path, org)
        out = Terminal()
        args = parse_args(["-c", str(cfg_path), "--source", "eventlogfile", "--since", "2026-11-20",
                           "--until", "2026-11-23"])
        assert await run(config_module.load(cfg_path), args, out) == 0
    text = out.getvalue()
    assert "\r[" in text
    assert "] 3/3 files, 30 events\n" in text
