"""The EventLogFile position rules: parsing file records, windows, failures, completeness, round trips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson

from forwarder.sources._elf_state import ElfState, LogFile, completeness
from forwarder.sources.eventlogfile import EventLogFileConfig
from forwarder.testing.fixtures import SHARED_FIXTURES

FACTS = SHARED_FIXTURES / "rest/compiled-rest-oauth-examples.json"
T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
CONFIG = EventLogFileConfig.model_validate({"start": "2026-11-26", "overlap": "PT1H"})


def log_file(
    ident: str, created: datetime, *, hour: int = 9, sequence: int = 1, interval: str = "Hourly"
) -> LogFile:
    log_date = (
        f"2026-11-26T{hour:02d}:00:00.000+0000" if interval == "Hourly" else "2026-11-26T00:00:00.000+0000"
    )
    return LogFile(
        ident, "Login", log_date, created, f"/x/{ident}/LogFile", interval, sequence, 0.0, "A,B", ""
    )


def test_documented_query_record_parses() -> None:
    examples = orjson.loads(FACTS.read_bytes())["examples"]
    record = next(e for e in examples if e["id"] == "elf_query_record")["body"]
    item = LogFile.from_record(record)
    assert item is not None
    assert (item.id, item.event_type, item.interval, item.sequence) == (
        "00001111AAAABBBB",
        "ApexCallout",
        "Hourly",
        1,
    )
    assert item.created == datetime(2024, 3, 11, 15, 0, tzinfo=UTC)
    assert item.path.endswith("/EventLogFile/00001111AAAABBBB/LogFile")


def test_records_missing_what_is_needed_are_refused() -> None:
    assert LogFile.from_record({"EventType": "Login", "CreatedDate": "2026-11-26T09:00:00.000+0000"}) is None
    assert LogFile.from_record({"Id": "", "EventType": "Login", "CreatedDate": "x", "LogFile": "/y"}) is None
    no_interval = LogFile.from_record(
        {"Id": "0AT1", "EventType": "Login", "CreatedDate": "2026-11-26T09:00:00.000+0000", "LogFile": "/y"}
    )
    assert no_interval is not None
    assert (no_interval.interval, no_interval.sequence) == ("Daily", 0)


def test_query_orders_by_created_date_then_id_and_filters_interval_and_types() -> None:
    state = ElfState.load(None, CONFIG, T0)
    config = CONFIG.model_copy(update={"event_types": ["Login", "API", "x' OR Id != '"]})
    soql = state.soql(config, T0)
    assert soql.endswith("ORDER BY CreatedDate, Id")
    assert "Interval = 'Hourly'" in soql
    assert "EventType IN ('Login', 'API')" in soql
    assert "CreatedDate >= 2026-11-26T00:00:00.000Z" in soql
    state.hourly_field = False
    assert "Interval" not in state.soql(config, T0)


def test_window_floor_covers_gap_band_and_failing_files_but_never_before_start() -> None:
    state = ElfState.load(None, CONFIG, T0)
    state.finish(log_file("a", T0 + timedelta(hours=5)), CONFIG)
    assert state.floor(CONFIG) == T0 + timedelta(hours=3)
    old = log_file("b", T0 + timedelta(hours=1))
    state.note_failure(old, T0 + timedelta(hours=6), permanent=False)
    assert state.floor(CONFIG) == T0 + timedelta(hours=1)
    assert state.in_window(old, CONFIG)
    assert state.too_late(log_file("c", T0 + timedelta(hours=3, minutes=30)), CONFIG)
    assert state.in_window(log_file("d", T0 + timedelta(hours=4)), CONFIG)
    state.watermark = T0 - timedelta(days=3)
    state.failing.clear()
    assert state.floor(CONFIG) == datetime(2026, 11, 26, tzinfo=UTC)


def test_failure_keeps_rows_already_emitted() -> None:
    state = ElfState.load(None, CONFIG, T0)
    item = log_file("a", T0)
    state.progress(item, 4000)
    assert state.note_failure(item, T0 + timedelta(hours=3), permanent=False) is None  # transient: no clock
    since = state.note_failure(item, T0 + timedelta(hours=4), permanent=True)
    assert since == T0 + timedelta(hours=4)
    assert state.current is None
    assert state.rows_done("a") == 4000
    assert state.note_failure(item, T0 + timedelta(hours=5), permanent=True) == since  # first refusal kept


def test_position_round_trips_through_json() -> None:
    state = ElfState.load(None, CONFIG, T0)
    state.finish(log_file("a", T0), CONFIG)
    state.progress(log_file("b", T0 + timedelta(minutes=1)), 10)
    state.note_schema(log_file("a", T0))
    position = orjson.loads(orjson.dumps(state.to_position()))
    again = ElfState.load(position, CONFIG, T0 + timedelta(days=1))
    assert again.to_position() == position


def test_completeness_marks_hours_sequences_and_daily_files() -> None:
    state = ElfState.load(None, CONFIG, T0)
    state.finish(log_file("a", T0, hour=9), CONFIG)
    state.finish(log_file("b", T0 + timedelta(minutes=1), hour=10), CONFIG)
    state.finish(log_file("c", T0 + timedelta(minutes=2), hour=9, sequence=3), CONFIG)
    state.finish(log_file("d", T0 + timedelta(minutes=3), hour=9, sequence=2), CONFIG)
    view = completeness(state.to_position())
    assert view["Login"]["2026-11-26"] == "." * 9 + "31" + "." * 13
    assert "legend" in view
    assert completeness(None) == {}
    daily = ElfState.load(None, CONFIG, T0)
    daily.finish(log_file("e", T0, interval="Daily", sequence=0), CONFIG)
    assert completeness(daily.to_position())["Login"]["2026-11-26"] == "D"


def test_schema_drift_is_reported_only_on_change() -> None:
    state = ElfState.load(None, CONFIG, T0)
    first = log_file("a", T0)
    assert state.note_schema(first) is None
    assert state.note_schema(first) is None
    changed = LogFile("b", "Login", first.log_date, T0, "/b", "Hourly", 1, 0.0, "A,B,C", "")
    assert state.note_schema(changed) is not None


def test_completeness_shows_the_file_in_progress_and_failing_files() -> None:
    state = ElfState.load(None, CONFIG, T0)
    state.progress(log_file("a", T0), 1500)
    state.note_failure(log_file("b", T0), T0 + timedelta(hours=1), permanent=True)
    view = completeness(state.to_position())
    assert view["in_progress"]["row"] == 1500
    assert view["failing"]["b"]["since"] == "2026-11-26T10:00:00.000Z"
