"""Property tests: random and malformed payloads never raise; they give an event or a named Rejected."""

from __future__ import annotations

import csv
import io
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forwarder.events import SecurityEvent
from forwarder.normalize import Rejected, normalize, normalize_doc
from forwarder.normalize.families import ELF_TABLE, RTEM_TABLE, SAT_TABLE
from forwarder.records import Record

KNOWN_KEYS = sorted({*RTEM_TABLE, *ELF_TABLE, *SAT_TABLE, "Status", "LOGIN_STATUS", "Score", "Operation"})
KINDS = [
    ("streaming", "LoginEventStream"), ("streaming", "SessionHijackingEvent"), ("query", "LoginEvent"),
    ("query", "LoginHistory"), ("eventlogfile", "Login"), ("eventlogfile", "Logout"),
    ("eventlogfile", "ApexCallout"), ("eventlogfile", "LoginAs"), ("setupaudittrail", "SetupAuditTrail"),
    ("streaming", "BrandNewEventStream"), ("eventlogfile", "NextReleaseType"),
]  # fmt: skip

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=40),
    st.sampled_from(["", "Success", "LOGIN_NO_ERROR", "Salesforce.com IP", "20231301250000.000",
                     "2023-03-08T18:16:15.886+0000", "0055j000000utlP", "1", "-1", "TLSv1.2", "x" * 5000]),
)  # fmt: skip
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner))
keys = st.one_of(st.sampled_from(KNOWN_KEYS), st.text(max_size=20))
payloads = st.dictionaries(keys, values, max_size=25)


def _check(record: Record) -> None:
    doc = normalize_doc(record)
    if isinstance(doc, Rejected):
        assert doc.reason.startswith(f"{doc.field}: "), doc.reason
        keys = {k.encode("utf-8", "replace").decode("utf-8") for k in record.payload}  # as reasons show them
        if "missing" in doc.reason:  # a missing event time names every field it was looked for in
            assert all(record.payload.get(name) in (None, "") for name in doc.field.split("|")), doc.reason
        else:
            assert doc.field in keys, doc.reason
        return
    stored = orjson.loads(orjson.dumps(doc))  # the journal can store it (non-finite floats become null)
    event = normalize(record)
    assert isinstance(event, SecurityEvent), event
    assert event.to_doc() == stored


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(KINDS), payload=payloads)
def test_random_payloads_give_an_event_or_a_named_rejection(
    kind: tuple[str, str], payload: dict[str, Any]
) -> None:
    _check(Record(kind[0], kind[1], payload))


@settings(max_examples=100, deadline=None)
@given(
    kind=st.sampled_from(KINDS), junk=st.one_of(st.none(), st.integers(), st.text(), st.lists(st.integers()))
)
def test_non_object_payload_is_rejected_naming_payload(kind: tuple[str, str], junk: Any) -> None:
    result = normalize_doc(Record(kind[0], kind[1], junk))
    assert isinstance(result, Rejected)
    assert result.reason.startswith("payload:")


@settings(max_examples=150, deadline=None)
@given(blob=st.binary(max_size=200))
def test_invalid_utf8_in_csv_bytes_still_normalises(blob: bytes) -> None:
    """An ELF CSV decoded with surrogateescape keeps undecodable bytes as lone surrogates."""
    text = (
        b'"EVENT_TYPE","TIMESTAMP","USER_NAME","URI"\n"Login","20230315013819.200","'
        + blob.replace(b'"', b"").replace(b"\n", b"").replace(b"\r", b"")
        + b'","/x"\n'
    )
    rows = list(csv.DictReader(io.StringIO(text.decode("utf-8", "surrogateescape"), newline="")))
    for row in rows:
        _check(Record("eventlogfile", "Login", dict(row)))


@settings(max_examples=100, deadline=None)
@given(name=st.from_regex(r"[A-Z][A-Za-z]{2,30}", fullmatch=True), payload=payloads)
def test_unknown_event_types_are_never_rejected_for_being_unknown(name: str, payload: dict[str, Any]) -> None:
    clean = {k: v for k, v in payload.items() if isinstance(v, str | int | float | bool) and k in ("a", "b")}
    clean["SomethingNew"] = "value"
    result = normalize_doc(Record("streaming", name + "Stream", clean))
    assert not isinstance(result, Rejected), result
    assert result["event"]["dataset"].startswith("salesforce.")
    assert result["salesforce"]["something_new"] == "value"
