"""``sf-forwarder dead-letters list | replay | purge`` as operators run it: a real process on a real journal,
one-line errors with exit 2, no deletion without ``--yes`` or a terminal's yes, secrets never printed."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import yaml

from forwarder import dead_letters
from forwarder.ingest import INGEST_CONSUMER, rejected_letter
from forwarder.journal import DeadLetter, StoredDeadLetter
from forwarder.journal.sqlite import SqliteJournal
from forwarder.normalize import Rejected
from forwarder.normalize.batch import normalize_batch
from forwarder.records import Lane, Record

SECRET = "s3cr3t-client-secret"
HEC_TOKEN = "11111111-2222-3333-4444-555555555555"


def write_config(tmp_path: Path) -> Path:
    path = tmp_path / "c.yaml"
    config = {
        "salesforce": {"auth": {"type": "client_credentials", "client_id": "x", "client_secret": SECRET}},
        "sinks": [
            {"name": "hec", "type": "splunk_hec", "url": "http://127.0.0.1:9", "token": HEC_TOKEN},
            {"name": "archive", "type": "file", "path": str(tmp_path / "e.jsonl")},
        ],
        "state": {"path": str(tmp_path / "state" / "state.db")},
    }
    path.write_text(yaml.safe_dump(config))
    return path


def run(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "forwarder", "dead-letters", *args, "-c", str(config)],
        capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def audit(record_id: str, created: str) -> dict[str, Any]:
    """An ingest letter's payload as ``forwarder.ingest.rejected_letter`` stores it."""
    return {
        "source": "setupaudittrail",
        "kind": "SetupAuditTrail",
        "received_at": "2026-11-25T10:00:01+00:00",
        "payload": {"Id": record_id, "CreatedDate": created, "Action": "changedPassword", "Section": "Users"},
    }


def seed(tmp_path: Path, letters: list[DeadLetter]) -> Path:
    async def store() -> None:
        journal = await SqliteJournal.open(tmp_path / "state" / "state.db", consumers=["hec", "archive"])
        try:
            await journal.dead_letter(letters)
        finally:
            await journal.close()

    asyncio.run(store())
    return tmp_path / "state" / "state.db"


def sink_letter(n: int, reason: str = "permanent: splunk_hec: Invalid data format (code 6)") -> DeadLetter:
    return DeadLetter("hec", reason, {"event": {"id": f"e{n}"}, "user": {"name": "alice@example.com"}})


def stored_ids(state: Path) -> list[int]:
    with sqlite3.connect(state) as conn:
        return [int(row[0]) for row in conn.execute("SELECT id FROM dead_letters ORDER BY id")]


def events(state: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(state) as conn:
        rows = conn.execute(f"SELECT docs FROM events_{Lane.REALTIME.value} ORDER BY first").fetchall()
    return [doc for (docs,) in rows for doc in orjson.loads(docs)]


def test_the_ingest_consumer_name_is_the_pipelines() -> None:
    assert dead_letters.INGEST_CONSUMER == INGEST_CONSUMER


def test_missing_journal_is_reported_and_not_created(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    result = run(config, "list")
    assert result.returncode == 0
    assert "no journal at" in result.stdout
    assert run(config, "purge", "--all", "--yes").returncode == 1
    assert not (tmp_path / "state").exists()


def test_list_shows_newest_first_with_counts_per_consumer(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    seed(
        tmp_path, [sink_letter(0), DeadLetter("ingest", "CreatedDate: bad", audit("1", "x")), sink_letter(2)]
    )
    result = run(config, "list")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[:2] for line in lines[:3]] == [["3", "hec"], ["2", "ingest"], ["1", "hec"]]
    assert "Invalid data format" in lines[0]
    assert lines[-1] == "dead letters: 3; per consumer: hec 2, ingest 1"
    limited = run(config, "list", "--consumer", "hec", "--reason", "INVALID DATA", "--limit", "1").stdout
    assert limited.splitlines()[-1] == "dead letters: 2 (newest 1 shown); per consumer: hec 2"
    assert len(limited.splitlines()) == 2


def test_list_json_parses_with_payloads_and_never_prints_secrets(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    seed(tmp_path, [sink_letter(0), DeadLetter("ingest", "CreatedDate: bad", audit("1", "x"))])
    result = run(config, "list", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["counts"] == {"hec": 1, "ingest": 1}
    newest, oldest = report["dead_letters"]
    assert newest["payload"]["payload"]["Id"] == "1"
    assert oldest["payload"] == {"event": {"id": "e0"}, "user": {"name": "alice@example.com"}}
    assert set(oldest) == {"id", "consumer", "created", "reason", "replay_requested", "payload"}
    for text in (result.stdout, result.stderr, run(config, "list").stdout):
        assert SECRET not in text
        assert HEC_TOKEN not in text


def test_ingest_replay_appends_what_normalises_now_once_and_keeps_the_rest(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    state = seed(
        tmp_path,
        [
            DeadLetter(
                "ingest", "CreatedDate: old bug", audit("0Ym000000000001AAA", "2026-11-25T10:00:00.000Z")
            ),
            DeadLetter("ingest", "CreatedDate: old bug", audit("0Ym000000000002AAA", "not a date")),
            sink_letter(3),
        ],
    )
    dry = run(config, "replay", "--consumer", "ingest", "--all", "--dry-run")
    assert dry.stdout.strip() == "ingest: 1 would be normalised and appended; 1 still rejected, kept"
    assert (stored_ids(state), events(state)) == ([1, 2, 3], [])

    result = run(config, "replay", "--consumer", "ingest", "--all")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ingest: 1 were normalised and appended; 1 still rejected, kept"
    [event] = events(state)
    assert event["event"]["id"] == "0Ym000000000001AAA"
    assert event["event"]["dataset"] == "salesforce.setup_audit_trail"
    assert stored_ids(state) == [2, 3]
    kept = json.loads(run(config, "list", "--json", "--consumer", "ingest").stdout)["dead_letters"]
    assert kept[0]["reason"] == "CreatedDate: expected an ISO-8601 datetime"

    again = run(config, "replay", "--consumer", "ingest", "--ids", "2")
    assert again.stdout.strip() == "ingest: 0 were normalised and appended; 1 still rejected, kept"
    assert len(events(state)) == 1, "replayed twice"


def test_eventlogfile_letters_go_back_to_the_bulk_lane() -> None:
    assert dead_letters.lane_of("eventlogfile") is Lane.BULK
    assert dead_letters.lane_of("streaming") is Lane.REALTIME
    assert dead_letters.lane_of("setupaudittrail") is Lane.REALTIME


def test_sink_replay_marks_only_the_given_letters_of_that_sink(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    state = seed(tmp_path, [sink_letter(0), sink_letter(1), DeadLetter("archive", "permanent: disk", {})])
    result = run(config, "replay", "--consumer", "hec", "--ids", "2")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("hec: 1 dead letters marked for redelivery to sink hec only")
    with sqlite3.connect(state) as conn:
        assert conn.execute("SELECT id FROM dead_letters WHERE replay = 1").fetchall() == [(2,)]


def test_usage_errors_are_one_line_and_exit_2(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    state = seed(tmp_path, [sink_letter(0), DeadLetter("archive", "permanent: disk", {})])
    cases = {
        ("replay", "--consumer", "nope", "--all"): "no sink named 'nope'",
        ("replay", "--consumer", "hec", "--ids", "1,2"): "no dead letter 2 of consumer 'hec'",
        ("replay", "--consumer", "hec", "--ids", "1,x"): "expected comma-separated ids",
        ("replay", "--consumer", "hec"): "one of the arguments --ids --all is required",
        ("replay", "--consumer", "hec", "--ids", "1", "--all"): "not allowed with argument",
        ("purge", "--ids", "1", "--older-than", "7d", "--yes"): "--older-than goes with --consumer or --all",
        ("purge", "--all", "--older-than", "soon"): "expected a duration",
        ("list", "--limit", "0"): "expected a positive number",
    }
    for args, message in cases.items():
        result = run(config, *args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert message in result.stderr, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) <= 2, result.stderr  # argparse adds its usage line
        assert "Traceback" not in result.stderr
    assert stored_ids(state) == [1, 2]
    with sqlite3.connect(state) as conn:
        assert conn.execute("SELECT count(*) FROM dead_letters WHERE replay = 1").fetchone()[0] == 0


def test_purge_refuses_without_yes_and_no_terminal(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    state = seed(tmp_path, [sink_letter(0), sink_letter(1)])
    result = run(config, "purge", "--all")
    assert result.returncode == 2
    assert "refusing to delete 2 dead letters (hec 2) without --yes" in result.stderr
    assert stored_ids(state) == [1, 2]


def test_purge_by_ids_and_by_consumer_and_age(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    state = seed(
        tmp_path, [sink_letter(n) for n in range(4)] + [DeadLetter("archive", "permanent: disk", {})]
    )
    with sqlite3.connect(state) as conn:  # letters 1 and 5 are ten days old
        conn.execute("UPDATE dead_letters SET created = '2026-11-16T08:00:00+00:00' WHERE id IN (1, 5)")
        conn.execute("UPDATE dead_letters SET created = '2099-01-01T00:00:00+00:00' WHERE id NOT IN (1, 5)")

    assert run(config, "purge", "--ids", "3", "--yes").stdout.strip() == "deleted 1 dead letters"
    assert stored_ids(state) == [1, 2, 4, 5]
    aged = run(config, "purge", "--consumer", "hec", "--older-than", "7d", "--yes")
    assert aged.stdout.strip() == "deleted 1 dead letters"
    assert stored_ids(state) == [2, 4, 5]  # archive's old letter is another consumer's
    assert (
        run(config, "purge", "--consumer", "nobody", "--yes").stdout.strip()
        == "no dead letters match: nothing purged"
    )
    assert run(config, "purge", "--all", "--yes").stdout.strip() == "deleted 3 dead letters"
    assert stored_ids(state) == []


def on_terminal(config: Path, answer: bytes, *args: str) -> tuple[int, str]:
    """Run with stdin, stdout and stderr on a pseudo-terminal, typing ``answer`` at the prompt."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "forwarder", "dead-letters", *args, "-c", str(config)],
        stdin=follower, stdout=follower, stderr=follower,
    )  # fmt: skip
    os.close(follower)
    output = b""
    try:
        while b"[y/N]" not in output:
            chunk = os.read(leader, 4096)
            if not chunk:
                break
            output += chunk
        os.write(leader, answer)
        code = process.wait(timeout=30)
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal closed with the process (EIO on Linux)
                break
            if not chunk:
                break
            output += chunk
    finally:
        os.close(leader)
    return code, output.decode(errors="replace")


def test_purge_asks_on_a_terminal(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    state = seed(tmp_path, [sink_letter(0), sink_letter(1)])
    code, shown = on_terminal(config, b"n\n", "purge", "--consumer", "hec")
    assert "delete 2 dead letters (hec 2)? [y/N]" in shown
    assert code == 1
    assert stored_ids(state) == [1, 2]
    code, shown = on_terminal(config, b"y\n", "purge", "--ids", "1")
    assert code == 0, shown
    assert "deleted 1 dead letters" in shown
    assert stored_ids(state) == [2]


def test_ingest_replay_on_a_full_journal_stops_and_changes_nothing(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    settings = yaml.safe_load(config.read_text())
    settings["state"] |= {"max_bytes": "300KB", "when_full": "block"}
    config.write_text(yaml.safe_dump(settings))
    state = seed(tmp_path, [DeadLetter("ingest", "old", audit("0Ym000000000001AAA", "2026-11-25T10:00:00Z"))])

    async def fill() -> None:
        journal = await SqliteJournal.open(state)
        try:
            await journal.append("s", Lane.BULK, [{"pad": "x" * 1000, "n": i} for i in range(400)], [], None)
        finally:
            await journal.close()

    asyncio.run(fill())
    result = run(config, "replay", "--consumer", "ingest", "--all")
    assert result.returncode == 1
    assert "size cap" in result.stderr
    assert "Traceback" not in result.stderr
    assert (stored_ids(state), events(state)) == ([1], [])


def test_a_stream_letter_replays_to_the_document_the_record_gives_envelope_included() -> None:
    payload = {
        "EventIdentifier": "06af6d92-1167-467d-a826-ee8583f7134d", "EventDate": "2022-12-28T11:47:22Z",
        "CreatedDate": "2022-12-28T11:47:30Z", "Username": "user@example.com", "UserId": "0055j000000utlPAAQ",
        "SourceIp": "81.2.69.142", "Status": "Success", "LoginType": "Remote Access 2.0",
    }  # fmt: skip
    envelope = {"replay_id": 42, "channel": "/event/LoginEventStream"}
    record = Record("streaming", "LoginEventStream", payload, envelope=envelope)
    stored = orjson.loads(
        orjson.dumps(rejected_letter(Rejected(record, "old")).payload)
    )  # as the journal keeps it
    letter = StoredDeadLetter(7, "ingest", "old", stored, datetime.now(UTC))

    [direct], _ = normalize_batch([record])
    events, done, refused = dead_letters.renormalise([letter], "full")
    assert (done, refused) == ([7], {})
    [replayed] = events[Lane.REALTIME]
    for doc in (direct, replayed):
        doc["event"].pop("ingested", None)
    assert replayed == direct
    assert replayed["salesforce"]["replay_id"] == 42
