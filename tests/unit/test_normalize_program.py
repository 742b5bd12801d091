"""Shape programs (``normalize_batch``'s path) give exactly the reference documents and rejections, and the
ELF content id does not depend on column order or on our envelope keys. Every test runs twice: with the
compiled builder and with the Python programs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from normalize_fixtures import load, record_files, shape_builder
from test_normalize_properties import KINDS, payloads

from forwarder.normalize import Rejected, normalize_doc
from forwarder.normalize.batch import normalize_batch
from forwarder.normalize.engine import content_id
from forwarder.records import Record

NOW = datetime(2026, 11, 26, 7, 0, 1, tzinfo=UTC)


@pytest.fixture(scope="module", params=["native", "python"], autouse=True)
def builder(request: pytest.FixtureRequest) -> Any:
    with shape_builder(request.param):
        yield request.param


def _reference(records: list[Record], raw: Any = "full") -> tuple[list[Any], list[Any]]:
    results = [normalize_doc(record, raw=raw, ingested=NOW) for record in records]
    return [r for r in results if not isinstance(r, Rejected)], [
        r for r in results if isinstance(r, Rejected)
    ]


def _same(records: list[Record], raw: Any = "full") -> None:
    events, rejected = normalize_batch(records, raw=raw, ingested=NOW)
    expected_events, expected_rejected = _reference(records, raw)
    assert orjson.dumps(events) == orjson.dumps(expected_events)  # the same JSON, key order included
    assert [(r.record, r.reason, r.field) for r in rejected] == [
        (r.record, r.reason, r.field) for r in expected_rejected
    ]


def test_batch_programs_equal_the_reference_on_every_fixture() -> None:
    for relative in record_files():
        records = load(relative)
        _same(records)
        _same(records[:20], raw="none")


def test_a_run_with_bad_rows_and_shape_changes_equals_the_reference() -> None:
    row = {"EVENT_TYPE": "Login", "TIMESTAMP_DERIVED": "2023-03-15T01:38:19.151Z", "LOGIN_STATUS": "LOGIN_NO_ERROR",
           "TLS_PROTOCOL": "TLSv1.2", "LOGIN_TYPE": "A", "SOURCE_IP": "203.0.113.9", "REQUEST_ID": "r"}  # fmt: skip
    envelope = {"log_file_id": "0AT1", "log_file_sequence": 1}
    fields = tuple(row)
    variants = [
        (row, envelope, fields),
        ({**row, "TIMESTAMP_DERIVED": "yesterday"}, envelope, fields),  # rejected, named
        ({**row, "LOGIN_STATUS": 7, "TLS_PROTOCOL": 1.2, "LOGIN_TYPE": None}, envelope, fields),  # non-text
        ({**row, "SOURCE_IP": "\udcff"}, envelope, fields),  # lone surrogate: sanitised by the reference
        (row, {"log_file_id": 2**70}, fields),  # envelope value JSON cannot carry
        (row, {"log_file_id": "", "log_file_date": None, "log_file_sequence": 2.0}, None),  # empties dropped
        (row, {7: "not a text key"}, fields),
        (dict(reversed(list(row.items()))), envelope, None),  # another shape
        ({**row, "FORWARDED_FOR_IP": "198.51.100.1"}, None, None),
        ({"EVENT_TYPE": "Login", "TIMESTAMP_DERIVED": "2023-03-15T01:38:19.151Z"}, envelope, None),  # ragged
    ]
    records = [
        Record("eventlogfile", "Login", {**payload, "REQUEST_ID": f"r{i}"}, envelope=env, fields=keys)
        for i, (payload, env, keys) in enumerate(variants * 3)
    ]
    records.insert(4, Record("streaming", "LoginEventStream", {"EventDate": "2026-11-26T10:00:30Z"}))
    _same(records)


def test_stream_program_inline_hooks_equal_the_hooks() -> None:
    base = {"EventDate": "2026-11-26T10:00:30Z", "EventIdentifier": "e1", "Status": "Success",
            "LoginLatitude": 21.1, "LoginLongitude": 72.8, "TlsProtocol": "TLS 1.2", "SourceIp": "198.51.100.4",
            "Username": "a@example.com", "UserId": "0055j000000u001AAA"}  # fmt: skip
    variants = [
        base,
        {**base, "Status": "Invalid Password", "LoginLatitude": 95.0},
        {**base, "Status": None, "LoginLatitude": "21.1", "TlsProtocol": ""},
        {**base, "EventIdentifier": "", "LoginLongitude": float("nan")},
    ]
    _same([Record("streaming", "LoginEventStream", dict(v)) for v in variants * 2])
    envelopes = [{"replay_id": i, "channel": "/event/LoginEventStream"} for i in range(len(variants) * 2)]
    _same([
        Record("streaming", "LoginEventStream", dict(v), envelope=e, from_json=True)
        for v, e in zip(variants * 2, envelopes, strict=True)
    ])


@settings(max_examples=200, deadline=None)
@given(kind=st.sampled_from(KINDS), batch=st.lists(payloads, min_size=1, max_size=4))
def test_batch_programs_equal_the_reference_on_random_payloads(
    kind: tuple[str, str], batch: list[dict[str, Any]]
) -> None:
    _same([Record(kind[0], kind[1], payload) for payload in batch * 2])


def test_content_id_ignores_column_order_and_changes_with_any_value() -> None:
    row = {"EVENT_TYPE": "Login", "USER_ID": "005", "RUN_TIME": 63}
    assert content_id("Login", row) == content_id("Login", dict(reversed(list(row.items()))))
    assert content_id("Login", row) != content_id("Login", {**row, "RUN_TIME": 64})
    assert content_id("Login", row) != content_id("Logout", row)
    # names and values are hashed as separate arrays: moving text between them changes the id
    assert content_id("Login", {"A": "B,C"}) != content_id("Login", {"A,B": "C"})


def test_re_issued_file_rows_keep_their_ids() -> None:
    row = {"EVENT_TYPE": "Login", "TIMESTAMP_DERIVED": "2023-03-15T01:38:19.151Z", "REQUEST_ID": "r1"}
    first = Record("eventlogfile", "Login", row, envelope={"log_file_id": "0AT1", "log_file_sequence": 1})
    again = Record("eventlogfile", "Login", row, envelope={"log_file_id": "0AT2", "log_file_sequence": 2})
    (one,), _ = normalize_batch([first])
    (two,), _ = normalize_batch([again])
    assert one["event"]["id"] == two["event"]["id"]
    assert one["event"]["id"] == normalize_doc(again)["event"]["id"]  # type: ignore[index]


def test_same_shaped_runs_get_a_program_including_soql_records_with_attributes() -> None:
    from forwarder.normalize import batch

    elf = {"EVENT_TYPE": "Login", "TIMESTAMP_DERIVED": "2023-03-15T01:38:19.151Z", "REQUEST_ID": "shape-test"}
    soql = {"attributes": {"type": "LoginEvent"}, "EventDate": "2026-11-26T10:00:30Z", "EventIdentifier": "x"}
    for record in (Record("eventlogfile", "Login", elf), Record("query", "LoginEvent", soql)):
        normalize_batch([record, record])
        assert batch._programs[(record.source, record.kind, True, tuple(record.payload))] is not None
        _same([record, record])
