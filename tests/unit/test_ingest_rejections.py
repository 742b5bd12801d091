"""Records that fail normalisation are dead-lettered whole, even when they hold what JSON cannot."""

from __future__ import annotations

from pathlib import Path

import orjson

from forwarder.ingest import json_safe, make_emit
from forwarder.journal.sqlite import SqliteJournal
from forwarder.records import Lane, Record


def test_json_safe_keeps_every_value_as_text_when_json_cannot_hold_it() -> None:
    payload = {"Huge": 2**70, "Raw": b"\xff", "Nested": [1, {"n": -(2**64)}], "ok": 1.5, "none": None}
    safe = json_safe(payload)
    assert orjson.loads(orjson.dumps(safe)) == {
        "Huge": str(2**70), "Raw": "b'\\xff'", "Nested": [1, {"n": str(-(2**64))}], "ok": 1.5, "none": None,
    }  # fmt: skip


async def test_rejected_record_is_dead_lettered_with_its_position(tmp_path: Path) -> None:
    journal = await SqliteJournal.open(tmp_path / "j.db", consumers=["archive"])
    try:
        emit = make_emit(journal, "setupaudittrail", Lane.REALTIME)
        bad = Record("setupaudittrail", "SetupAuditTrail", {"Id": 2**70, "CreatedDate": "not a date"})
        await emit([bad], {"watermark": "2026-11-26T00:00:00Z"})
        letters = await journal.dead_letters()
        assert len(letters) == 1
        assert letters[0].consumer == "ingest"
        assert letters[0].payload["payload"]["Id"] == str(2**70)
        assert letters[0].reason.split(":")[0] in {"Id", "CreatedDate"}
        assert await journal.position("setupaudittrail") == {"watermark": "2026-11-26T00:00:00Z"}
        assert await journal.read("archive", Lane.REALTIME, 0, 10) == []
    finally:
        await journal.close()
