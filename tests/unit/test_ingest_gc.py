"""Ingest holds the cyclic collector from normalisation until the batch's documents are freed."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

from forwarder.ingest import collector_held, make_emit
from forwarder.journal.sqlite import SqliteJournal
from forwarder.records import Lane, Record


def login_row(i: int) -> Record:
    payload = {
        "EVENT_TYPE": "Login", "TIMESTAMP_DERIVED": "2026-11-25T00:00:00.000Z", "USER_ID": f"005{i:012d}",
        "SOURCE_IP": "198.51.100.7", "LOGIN_STATUS": "LOGIN_NO_ERROR", "RUN_TIME": i,
    }  # fmt: skip
    return Record("eventlogfile", "Login", payload, envelope=ENVELOPE, fields=FIELDS)


ENVELOPE = {"log_file_id": "0AT01", "log_file_date": "2026-11-25T00:00:00.000+0000",
            "log_file_interval": "Daily", "log_file_sequence": 0}  # fmt: skip
FIELDS = ("EVENT_TYPE", "TIMESTAMP_DERIVED", "USER_ID", "SOURCE_IP", "LOGIN_STATUS", "RUN_TIME")


async def test_an_emit_of_2000_rows_runs_no_collection_and_restores_the_collector(tmp_path: Path) -> None:
    journal = await SqliteJournal.open(tmp_path / "j.db", consumers=[])
    collections: list[dict[str, Any]] = []

    def seen(phase: str, info: dict[str, Any]) -> None:
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
        assert collections == []  # the documents were freed by reference counting, never scanned
        assert gc.isenabled()
        assert (await journal.stats())["lanes"]["bulk"]["newest"] == 2000
    finally:
        await journal.close()


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
