"""Generated records have the fields and value formats of the real samples in shared/fixtures/salesforce."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import pytest

from forwarder.testing.fixtures import SHARED_FIXTURES
from forwarder.testing.simulator.traffic import Activity, Traffic

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "salesforce"
if not FIXTURES.exists():  # the tree may be checked out elsewhere; the fixtures live beside it
    FIXTURES = SHARED_FIXTURES

_SHAPES = (
    ("empty", re.compile(r"")),
    ("elf_timestamp", re.compile(r"\d{14}\.\d{1,3}")),  # Elastic fixtures lost trailing zeros
    ("iso_z", re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z")),
    ("iso_+0000", re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000")),
    ("uuid", re.compile(r"[0-9a-z]{8}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{12}")),
    ("ip", re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}")),
    ("number", re.compile(r"-?\d{1,11}(\.\d+)?")),
    ("token15", re.compile(r"[A-Za-z0-9]{15}")),
    ("token18", re.compile(r"[A-Za-z0-9]{18}")),
    ("token16", re.compile(r"[A-Za-z0-9+/_-]{16}")),
    ("token22", re.compile(r"[A-Za-z0-9_-]{22}")),
)


def shape(value: Any) -> str:
    """A value's format class: what a parser downstream relies on, not the value itself."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "json_number"
    if isinstance(value, dict):
        return "object"
    for name, pattern in _SHAPES:
        if pattern.fullmatch(value):
            return name
    return "text"


def _sample() -> list[Activity]:
    traffic = Traffic(7)
    return [*traffic.baseline(300), *traffic.attacks(), traffic.login_as(), traffic.logout(traffic.users[3])]


SAMPLE = _sample()


Candidates = list[dict[str, Any]]


def _all(pick: Any) -> Candidates:
    return [found for a in SAMPLE if (found := pick(a)) is not None]


def elf_row(event_type: str) -> Candidates:
    return _all(lambda a: a.elf.get(event_type))


def stream_payload(channel: str) -> Candidates:
    return _all(lambda a: a.payload if a.channel == f"/event/{channel}" else None)


def storage(obj: str) -> Candidates:
    return _all(lambda a: a.objects.get(obj))


def _shape(value: Any, masked: bool) -> str:
    found = shape(value)
    if masked and isinstance(value, str) and re.fullmatch(r"[0-9a-f]{24,40}", value):
        return "ip"  # AppOmni masked IPv6 addresses to bare hex
    if masked and (
        found.startswith("token")
        or (re.fullmatch(r"[A-Za-z0-9]{12,18}", str(value)) and re.search(r"\d", str(value)))
    ):
        return "token"
    return found  # AppOmni masked ids to odd lengths


def _mismatches(ours: dict[str, Any], real: dict[str, Any], strings_only: bool, masked: bool) -> list[str]:
    bad = []
    for key, value in real.items():
        if strings_only and not isinstance(value, str):
            continue  # Beats re-typed CSV strings as JSON numbers
        theirs, mine = _shape(value, masked), _shape(ours.get(key), masked)
        if "empty" in (theirs, mine) or "null" in (theirs, mine):
            continue
        if theirs != mine:
            bad.append(f"{key}: ours {ours.get(key)!r} ({mine}) vs real {value!r} ({theirs})")
    return bad


def assert_like(
    candidates: Candidates, real: dict[str, Any], *, strings_only: bool = False, masked: bool = False
) -> None:
    """Every real field is present, and some generated record agrees with the real one on every format."""
    real = {k: v for k, v in real.items() if k != "attributes" and "," not in k}  # AppOmni has one broken key
    assert candidates
    assert sorted(set(real) - set(candidates[0])) == []
    best = min((_mismatches(c, real, strings_only, masked) for c in candidates[:60]), key=len)
    assert best == []


def _json_lines(path: Path) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [row.get("json", row) for row in rows]


ELF_JSON = [
    "elf/elastic-integrations/test-login-eventlogfile.log",
    "elf/elastic-integrations/test-login-rest.log",
    "elf/elastic-integrations/test-logout-eventlogfile.log",
    "elf/elastic-integrations/test-logout-rest.log",
    "elf/elastic-beats/login-rest-salesforce_login.ndjson.log",
    "elf/elastic-beats/logout-salesforce_logout_elf.ndjson.log",
    "elf/elastic-beats/apex-salesforce_apex_execution.ndjson.log",
]
APPOMNI_ELF = [
    "elf/appomni/salesforce_elf_login_event/authentication_account_login_elf.json",
    "elf/appomni/salesforce_elf_logout_event/authentication_account_logout_elf.json",
    "elf/appomni/salesforce_elf_search_event/activity_audit_query_resource_elf_search.json",
    "elf/appomni/salesforce_elf_soap_api_event/activity_audit_read_resource_soapapi.json",
]
ELF_CSV = {
    "elf/logstash-input-sfdc_elf/sample_data1.csv": "API",
    "elf/logstash-input-sfdc_elf/sample_data2.csv": "BulkApi",
    "elf/logstash-input-sfdc_elf/sample_data3.csv": "Login",
    "elf/logstash-input-sfdc_elf/sample_data5.csv": "RestApi",
}


@pytest.mark.parametrize("name", ELF_JSON)
def test_elf_rows_match_elastic_rows(name: str) -> None:
    for real in _json_lines(FIXTURES / name):
        if "elastic-integrations/test-logout" in name:
            # doc-style codes (SESSION_LEVEL "1", 18-char USER_ID) where real rows differ (SOURCES.md): fields only
            assert sorted(set(real) - set(elf_row("Logout")[0])) == []
            continue
        assert_like(elf_row(real["EVENT_TYPE"]), real, strings_only=True)


@pytest.mark.parametrize("name", APPOMNI_ELF)
def test_elf_rows_match_appomni_rows(name: str) -> None:
    real = json.loads((FIXTURES / name).read_text())
    assert_like(elf_row(real["EVENT_TYPE"]), real, masked=True)


@pytest.mark.parametrize(("name", "event_type"), ELF_CSV.items())
def test_elf_rows_have_every_column_of_real_salesforce_csv(name: str, event_type: str) -> None:
    with (FIXTURES / name).open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert_like(elf_row(event_type), rows[0])


def test_bulk_api_columns_are_in_the_real_order() -> None:
    header = (FIXTURES / "elf/logstash-input-sfdc_elf/sample_data2.csv").read_text().splitlines()[0]
    assert list(elf_row("BulkApi")[0]) == [c.strip('"') for c in header.split(",")]


@pytest.mark.parametrize(
    ("name", "channel"),
    [
        ("streaming/elastic/integrations-test-login-stream.log", "LoginEventStream"),
        ("streaming/elastic/integrations-test-logout-stream.log", "LogoutEventStream"),
    ],
)
def test_stream_payloads_match_elastic_stream_payloads(name: str, channel: str) -> None:
    for real in _json_lines(FIXTURES / name):
        assert_like(stream_payload(channel), real)


APPOMNI_STREAMS = sorted((FIXTURES / "streaming/appomni").glob("*/*.json"))


@pytest.mark.parametrize("path", APPOMNI_STREAMS, ids=lambda p: p.name)
def test_storage_records_match_appomni_rtem_records(path: Path) -> None:
    real = json.loads(path.read_text())["data"]["payload"]  # AppOmni stores storage-object rows (+0000 dates)
    obj = real["attributes"]["type"] if "attributes" in real else None
    channel = json.loads(path.read_text())["channel"].rsplit("/", 1)[-1]
    ours = storage(obj) if obj else storage(channel + "Store")
    assert_like(ours, real, masked=True)


@pytest.mark.parametrize(
    ("name", "obj"),
    [
        ("rest/elastic/integrations-test-login-object.log", "LoginEvent"),
        ("rest/elastic/beats-salesforce_login_object.ndjson.log", "LoginEvent"),
        ("rest/elastic/integrations-test-logout-object.log", "LogoutEvent"),
        ("rest/elastic/beats-salesforce_logout_object.ndjson.log", "LogoutEvent"),
    ],
)
def test_storage_records_have_the_fields_of_elastic_object_rows(name: str, obj: str) -> None:
    # Elastic's object rows spell dates with Z; SOQL answers +0000 (facts B3), so compare fields only.
    for real in _json_lines(FIXTURES / name):
        assert sorted(set(real) - set(storage(obj)[0])) == []


@pytest.mark.parametrize(
    "name",
    [
        "setupaudittrail/elastic/integrations-test-setupaudittrail.log",
        "setupaudittrail/elastic/beats-salesforce_setupaudittrail.ndjson.log",
    ],
)
def test_setup_audit_trail_records_match_real_records(name: str) -> None:
    for real in _json_lines(FIXTURES / name):
        assert_like(storage("SetupAuditTrail"), real)


def _elf_records() -> Candidates:
    from forwarder.testing.simulator.org import OrgData

    traffic = Traffic(7)
    org = OrgData(traffic)
    org.build_log_files(org.add_activities(traffic.baseline(150)))
    return [org.elf_record(f, "52.0") for f in org.log_files.values()]


@pytest.mark.parametrize(
    "name",
    [
        "rest/newrelic-exporter/sample_log_records.json",
        "elf/logstash-input-sfdc_elf/create_event_ELF_list1.json",
    ],
)
def test_event_log_file_records_match_real_query_records(name: str) -> None:
    data = json.loads((FIXTURES / name).read_text())
    for real in data if isinstance(data, list) else data["records"]:
        real = {k: v for k, v in real.items() if k not in ("Id", "LogFile")}  # publishers replaced these
        assert_like(_elf_records(), real)


def test_log_file_field_types_use_the_real_vocabulary() -> None:
    real = json.loads((FIXTURES / "elf/logstash-input-sfdc_elf/create_event_ELF_list1.json").read_text())
    vocabulary = set(real["records"][0]["LogFileFieldTypes"].split(",")) | {"DateTime"}  # doc vocabulary
    for record in _elf_records():
        assert set(record["LogFileFieldTypes"].split(",")) <= vocabulary
        assert len(record["LogFileFieldTypes"].split(",")) == len(record["LogFileFieldNames"].split(","))
