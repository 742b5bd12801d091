"""Ingest holds the cyclic collector from normalisation until the batch's documents are freed."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path

from forwarder.ingest import collector_held
from forwarder.records import Record


def login_row(i: int) -> Record:
    payload = {
        "EVENT_TYPE": "Login", "TIMESTAMP_DERIVED": "2026-11-25T00:00:00.000Z", "USER_ID": f"005{i:012d}",
        "SOURCE_IP": "198.51.100.7", "LOGIN_STATUS": "LOGIN_NO_ERROR", "RUN_TIME": i,
    }  # fmt: skip
    return Record("eventlogfile", "Login", payload, envelope=ENVELOPE, fields=FIELDS)


ENVELOPE = {"log_file_id": "0AT01", "log_file_date": "2026-11-25T00:00:00.000+0000",
            "log_file_interval": "Daily", "log_file_sequence": 0}  # fmt: skip
FIELDS = ("EVENT_TYPE", "TIMESTAMP_DERIVED", "USER_ID", "SOURCE_IP", "LOGIN_STATUS", "RUN_TIME")


#: Run in a fresh interpreter: threads and state other tests leave behind in this one (a thread that
#: spawns a process re-enables the collector, on 3.11, after its fork) must not decide the result.
_EMIT_CHECK = """
import asyncio, gc, json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from test_ingest_gc import login_row
from forwarder.ingest import make_emit
from forwarder.journal.sqlite import SqliteJournal
from forwarder.records import Lane

async def main():
    journal = await SqliteJournal.open(Path(sys.argv[1]) / "j.db", consumers=[])
    collections = []
    def seen(phase, info):
        if phase == "start":
            collections.append(info)
    try:
        emit = make_emit(journal, "eventlogfile", Lane.BULK, raw="none")
        records = [login_row(i) for i in range(2000)]
        gc.collect()
        gc.callbacks.append(seen)
        try:
            await emit(records, {"row": 2000})
        finally:
            gc.callbacks.remove(seen)
        newest = (await journal.stats())["lanes"]["bulk"]["newest"]
        outcome = {"collections": collections, "enabled": gc.isenabled(), "newest": newest}
        (Path(sys.argv[1]) / "outcome.json").write_text(json.dumps(outcome))
    finally:
        await journal.close()

asyncio.run(main())
"""


def test_an_emit_of_2000_rows_runs_no_collection_and_restores_the_collector(tmp_path: Path) -> None:
    here = str(Path(__file__).parent)
    result = subprocess.run(
        [sys.executable, "-c", _EMIT_CHECK, str(tmp_path), here], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    outcome = json.loads((tmp_path / "outcome.json").read_text())
    assert outcome["collections"] == []  # the documents were freed by reference counting, never scanned
    assert outcome["enabled"] is True
    assert outcome["newest"] == 2000


def test_interleaved_holds_enable_the_collector_once_the_last_ends() -> None:
    first, second = collector_held(), collector_held()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert not gc.isenabled()
    second.__exit__(None, None, None)
    assert gc.isenabled()


def test_a_collector_disabled_by_the_operator_stays_disabled() -> None:
    gc.disable()
    try:
        with collector_held():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
