"""The pipeline's fast paths give exactly what the plain paths give: batch normalisation, per-shape hooks,
datetime rewriting by slicing, the once-per-batch ingest time."""

from __future__ import annotations

import gc
from datetime import UTC, datetime
from typing import Any

import pytest

from forwarder.events import format_timestamp
from forwarder.normalize import Rejected, normalize_doc
from forwarder.normalize import hooks as hook_rules
from forwarder.normalize.batch import gc_paused, normalize_batch
from forwarder.normalize.engine import hooks_for
from forwarder.normalize.values import BadValue, iso_text, parse_iso
from forwarder.records import Record

ROW = {
    "EVENT_TYPE": "Login",
    "TIMESTAMP_DERIVED": "2023-03-15T01:38:19.151Z",
    "LOGIN_STATUS": "LOGIN_NO_ERROR",
}


def _records() -> list[Record]:
    good = [Record("eventlogfile", "Login", {**ROW, "REQUEST_ID": f"r{i}"}) for i in range(5)]
    bad = Record("eventlogfile", "Login", {**ROW, "TIMESTAMP_DERIVED": "yesterday"})
    return [*good[:2], bad, *good[2:]]


def test_batch_equals_normalize_doc_per_record_and_splits_rejections() -> None:
    now = datetime(2026, 11, 26, 7, 0, 1, 250_000, tzinfo=UTC)
    records = _records()
    events, rejected = normalize_batch(records, raw="full", ingested=now)
    expected = [normalize_doc(r, raw="full", ingested=now) for r in records]
    assert events == [doc for doc in expected if not isinstance(doc, Rejected)]
    assert [r.record for r in rejected] == [records[2]]
    assert rejected[0].field == "TIMESTAMP_DERIVED"
    assert {doc["event"]["ingested"] for doc in events} == {"2026-11-26T07:00:01.250Z"}


def _fail_while_paused() -> None:
    with gc_paused():
        assert not gc.isenabled()
        raise RuntimeError("boom")


@pytest.mark.parametrize("enabled", [True, False])
def test_gc_pause_restores_the_collector_state_even_on_error(enabled: bool) -> None:
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        with pytest.raises(RuntimeError):
            _fail_while_paused()
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()


def test_ingested_time_changes_with_each_batch() -> None:
    first = datetime(2026, 11, 26, 7, 0, 1, tzinfo=UTC)
    second = datetime(2026, 11, 26, 7, 0, 2, tzinfo=UTC)
    for when in (first, second, first):
        events, _ = normalize_batch(_records()[:1], ingested=when)
        assert events[0]["event"]["ingested"] == format_timestamp(when)


@pytest.mark.parametrize(
    "text",
    [
        "2022-09-13T05:22:43.429Z",
        "2026-11-26T10:00:30Z",
        "2021-11-01T04:52:10.000+0000",
        "2021-11-01T04:52:10.000+0100",
        "2026-11-26T10:00:30+00:00",
        "2026-11-26T10:00:30.5Z",
        "2026-11-26 10:00:30Z",
        "2026-W48-4T10:00:30Z",
        "2026-W48-4T10:00:30.000+0000",
    ],
)
def test_iso_text_fast_paths_equal_parse_and_format(text: str) -> None:
    assert iso_text(text) == format_timestamp(parse_iso(text))


@pytest.mark.parametrize(
    "text", ["2026-13-26T10:00:30Z", "2026-11-26T10:00:61.000+0000", "2026-11-26T25:00:30.000Z"]
)
def test_iso_text_fast_paths_still_reject_invalid_dates(text: str) -> None:
    with pytest.raises(BadValue):
        iso_text(text)


def test_shape_hooks_skip_only_hooks_whose_fields_are_absent() -> None:
    related = hook_rules.related_ips("FORWARDED_FOR_IP")
    finish: tuple[Any, ...] = (hook_rules.tls, related, hook_rules.login_status, hook_rules.logout_codes)
    kept = hooks_for(finish, ("EVENT_TYPE", "LOGIN_STATUS"))
    assert kept == (hook_rules.login_status, hook_rules.logout_codes)  # unmarked hooks always run
    assert hooks_for(finish, ("TLS_PROTOCOL", "FORWARDED_FOR_IP", "Status")) == finish


def test_shape_specialised_document_equals_the_generic_one() -> None:
    # Same fields in two key orders: two shapes, one document.
    row = {**ROW, "TLS_PROTOCOL": "TLSv1.2", "FORWARDED_FOR_IP": "198.51.100.7", "SOURCE_IP": "203.0.113.9"}
    reordered = dict(reversed(list(row.items())))
    first = normalize_doc(Record("eventlogfile", "Login", row))
    second = normalize_doc(Record("eventlogfile", "Login", reordered))
    assert first == second
    assert not isinstance(first, Rejected)
    assert first["tls"]["version"] == "1.2"
    assert first["related"]["ip"] == ["203.0.113.9", "198.51.100.7"]
