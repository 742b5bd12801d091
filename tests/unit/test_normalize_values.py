"""Value rules from shared/reference/salesforce-facts.md, one behaviour per test."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from forwarder.normalize import Rejected, normalize_doc
from forwarder.normalize.codes import audit_target
from forwarder.normalize.values import id18
from forwarder.records import Record


def _elf(kind: str, **row: Any) -> dict[str, Any]:
    base = {
        "EVENT_TYPE": kind,
        "TIMESTAMP": "20230315013819.200",
        "TIMESTAMP_DERIVED": "2023-03-15T01:38:19.151Z",
    }
    doc = normalize_doc(Record("eventlogfile", kind, {**base, **row}), raw="none")
    assert not isinstance(doc, Rejected), doc
    return doc


def _stream(kind: str, **payload: Any) -> dict[str, Any]:
    base = {"EventDate": "2023-03-08T18:16:11.493+0000", "EventIdentifier": "ev-1"}
    doc = normalize_doc(Record("streaming", kind, {**base, **payload}), raw="none")
    assert not isinstance(doc, Rejected), doc
    return doc


@pytest.mark.parametrize(
    ("short", "full"),
    [("0055j000000utlP", "0055j000000utlPAAQ"), ("00D5j000000VI3n", "00D5j000000VI3nEAG"),
     ("0055j000000utlPAAQ", "0055j000000utlPAAQ"), ("not-an-id", "not-an-id")],
)  # fmt: skip
def test_fifteen_character_ids_get_their_checksum_suffix(short: str, full: str) -> None:
    assert id18(short) == full


def test_elf_user_id_is_exposed_in_18_character_form_even_without_derived_column() -> None:
    assert _elf("Login", USER_ID="0055j000000utlP")["user"]["id"] == "0055j000000utlPAAQ"


def test_timestamp_derived_wins_and_raw_timestamp_is_kept() -> None:
    doc = _elf("Login")
    assert doc["@timestamp"] == "2023-03-15T01:38:19.151Z"
    assert doc["salesforce"]["timestamp"] == "20230315013819.200"


def test_elf_timestamp_alone_is_read_as_gmt_with_any_fraction_length() -> None:
    doc = normalize_doc(Record("eventlogfile", "Logout", {"TIMESTAMP": 20211019050707.13}), raw="none")
    assert not isinstance(doc, Rejected)
    assert doc["@timestamp"] == "2021-10-19T05:07:07.130Z"


def test_unreadable_event_time_is_rejected_naming_the_field() -> None:
    result = normalize_doc(Record("eventlogfile", "Login", {"TIMESTAMP": "20231399000000.000"}))
    assert isinstance(result, Rejected)
    assert result.reason.startswith("TIMESTAMP:")


def test_salesforce_internal_client_ip_falls_back_to_source_ip_and_is_kept() -> None:
    doc = _elf("Login", CLIENT_IP="Salesforce.com IP", SOURCE_IP="198.51.100.1")
    assert doc["source"]["ip"] == "198.51.100.1"
    assert doc["salesforce"]["client_ip"] == "Salesforce.com IP"


def test_salesforce_internal_ip_alone_gives_no_source_ip() -> None:
    doc = _elf("Logout", CLIENT_IP="Salesforce.com IP")
    assert "source" not in doc


def test_verbose_logout_values_become_their_plain_names() -> None:
    doc = _elf(
        "Logout", USER_TYPE="Standard(db=S,api=Standard)", SESSION_LEVEL="HIGH_ASSURANCE(db=10,api=HIGH_ASSURANCE)",
        APP_TYPE=1000, PLATFORM_TYPE="1015", USER_INITIATED_LOGOUT="1",
    )  # fmt: skip
    extra = doc["salesforce"]
    assert (extra["user_type"], extra["session_level"], extra["app_type"]) == (
        "Standard",
        "HIGH_ASSURANCE",
        "Application",
    )
    assert extra["platform_type"] == "Windows 10"
    assert extra["user_initiated_logout"] is True


def test_login_type_code_maps_to_the_name_streams_use() -> None:
    assert _elf("Login", LOGIN_TYPE="i")["salesforce"]["login_type"] == "Remote Access 2.0"
    assert (
        _stream("LoginEventStream", LoginType="Remote Access 2.0")["salesforce"]["login_type"]
        == "Remote Access 2.0"
    )


@pytest.mark.parametrize(
    ("row", "outcome", "reason"),
    [({"LOGIN_STATUS": "LOGIN_NO_ERROR"}, "success", None),
     ({"LOGIN_STATUS": "LOGIN_ERROR_INVALID_PASSWORD"}, "failure", "LOGIN_ERROR_INVALID_PASSWORD"),
     ({"REQUEST_STATUS": "F"}, "failure", "F")],
)  # fmt: skip
def test_elf_login_status_sets_outcome_and_reason(
    row: dict[str, str], outcome: str, reason: str | None
) -> None:
    event = _elf("Login", **row)["event"]
    assert event["outcome"] == outcome
    assert event.get("reason") == reason


def test_stream_login_status_other_than_success_is_a_failure_with_reason() -> None:
    event = _stream("LoginEventStream", Status="Password Lockout")["event"]
    assert (event["outcome"], event["reason"]) == ("failure", "Password Lockout")


def test_threat_detection_score_sets_risk_and_severity_and_makes_an_alert() -> None:
    doc = _stream("SessionHijackingEvent", Score=0.87, CurrentIp="203.0.113.9", PreviousIp="198.51.100.1",
                  SourceIp="203.0.113.9", Summary="Session hijacked", PolicyId="0NI000000000001")  # fmt: skip
    assert doc["event"]["kind"] == "alert"
    assert (doc["event"]["risk_score"], doc["event"]["severity"]) == (0.87, 87)
    assert doc["rule"]["name"] == "SessionHijacking"
    assert set(doc["related"]["ip"]) == {"203.0.113.9", "198.51.100.1"}
    assert doc["message"] == "Session hijacked"


def test_elf_rows_get_an_id_that_ignores_which_file_they_came_from() -> None:
    row = {"EVENT_TYPE": "Login", "TIMESTAMP": "20230315013819.200", "USER_ID": "0055j000000utlP"}
    first = normalize_doc(Record("eventlogfile", "Login", row, envelope={"log_file_id": "0AT1"}))
    reissued = normalize_doc(
        Record("eventlogfile", "Login", row, envelope={"log_file_id": "0AT2", "log_file_sequence": 2})
    )
    other = normalize_doc(Record("eventlogfile", "Login", {**row, "USER_ID": "0055j000000utlQ"}))
    assert not isinstance(first, Rejected)
    assert not isinstance(reissued, Rejected)
    assert not isinstance(other, Rejected)
    assert first["event"]["id"] == reissued["event"]["id"] != other["event"]["id"]
    assert (first["salesforce"]["log_file_id"], reissued["salesforce"]["log_file_sequence"]) == ("0AT1", 2)


def test_empty_envelope_values_are_left_out_of_the_document() -> None:
    row = {"EVENT_TYPE": "Login", "TIMESTAMP": "20230315013819.200"}
    blank = normalize_doc(Record("eventlogfile", "Login", row, envelope={"log_file_date": ""}))
    dated = normalize_doc(
        Record("eventlogfile", "Login", row, envelope={"log_file_date": "2023-03-15T01:00:00.000+0000"})
    )
    assert not isinstance(blank, Rejected)
    assert not isinstance(dated, Rejected)
    assert blank["event"]["id"] == dated["event"]["id"]
    assert "log_file_date" not in blank["salesforce"]
    assert dated["salesforce"]["log_file_date"] == "2023-03-15T01:00:00.000+0000"
    assert blank["salesforce"]["raw"] == row


def test_stream_event_and_its_storage_object_share_the_event_id() -> None:
    stream = _stream("LoginEventStream")
    stored = normalize_doc(Record("query", "LoginEvent", {"EventDate": "2023-03-08T18:16:11.493+0000",
                                                          "EventIdentifier": "ev-1", "Id": "0Lg000"}))  # fmt: skip
    assert not isinstance(stored, Rejected)
    assert stream["event"]["id"] == stored["event"]["id"] == "ev-1"


@pytest.mark.parametrize(
    ("display", "target"),
    [("Changed email for user Sally Example (UserID: [00500000000000A]) from a@b.com to c@d.com",
      {"id": "00500000000000A", "full_name": "Sally Example"}),
     ("For user user@elastic.co, the User Verified Email status changed to verified", {"name": "user@elastic.co"}),
     ("Time-Based Token removed for john@example.com", {"name": "john@example.com"}),
     ("Created new user Bob Example", {"full_name": "Bob Example"}),
     ("Changed password expiry policy from 90 days to 180 days", {})],
)  # fmt: skip
def test_audit_display_text_names_the_target_user(display: str, target: dict[str, str]) -> None:
    assert audit_target(display) == target


def test_audit_trail_record_is_iam_with_actor_and_target() -> None:
    record = Record("setupaudittrail", "SetupAuditTrail", {
        "Id": "0Ym5j000019nwonCAA", "Action": "deactivateduser", "Section": "Manage Users",
        "Display": "Deactivated user Jane Example (UserID: [0055j000000utlP])", "DelegateUser": "admin@x.com",
        "CreatedDate": "2022-08-16T09:26:38.000+0000", "CreatedById": "0055j000000q9s7AAA",
        "CreatedBy": {"Username": "boss@x.com"},
    })  # fmt: skip
    doc = normalize_doc(record, raw="none")
    assert not isinstance(doc, Rejected)
    assert doc["event"]["category"] == ["iam"]
    assert doc["event"]["id"] == "0Ym5j000019nwonCAA"
    assert doc["user"]["name"] == "boss@x.com"
    assert doc["user"]["target"] == {"id": "0055j000000utlPAAQ", "full_name": "Jane Example"}
    assert doc["salesforce"]["setup_audit_trail"]["delegate_user"] == "admin@x.com"


def test_configuration_changes_are_category_configuration() -> None:
    record = Record("setupaudittrail", "SetupAuditTrail", {
        "Id": "0Ym1", "Action": "tenantSecretCreated", "Section": "Platform Encryption",
        "Display": "Generated tenant secret", "CreatedDate": "2022-08-16T09:26:38.000+0000",
    })  # fmt: skip
    doc = normalize_doc(record)
    assert not isinstance(doc, Rejected)
    assert (doc["event"]["category"], doc["event"]["type"]) == (["configuration"], ["creation"])


def test_unknown_event_type_keeps_every_field_and_falls_back_to_receive_time() -> None:
    received = datetime(2026, 11, 26, 7, 0, tzinfo=UTC)
    doc = normalize_doc(
        Record("streaming", "QuantumEventStream", {"Weird": "x", "Count": 3}, received), raw="none"
    )
    assert not isinstance(doc, Rejected)
    assert doc["event"]["dataset"] == "salesforce.quantum"
    assert doc["salesforce"]["weird"] == "x"
    assert doc["salesforce"]["count"] == 3
    assert doc["@timestamp"] == "2026-11-26T07:00:00.000Z"


def test_raw_record_is_kept_by_default_and_dropped_with_raw_none() -> None:
    payload = {"EventDate": "2022-12-29T11:38:54Z"}
    record = Record("streaming", "LogoutEventStream", payload, envelope={"replay_id": 5})
    full, bare = normalize_doc(record), normalize_doc(record, raw="none")
    assert not isinstance(full, Rejected)
    assert not isinstance(bare, Rejected)
    assert full["salesforce"]["raw"] == {"EventDate": "2022-12-29T11:38:54Z"}
    assert "raw" not in bare["salesforce"]
    assert full["salesforce"]["replay_id"] == 5


def test_wrong_type_in_a_mapped_field_is_rejected_naming_it() -> None:
    result = normalize_doc(Record("streaming", "LoginEventStream", {"EventDate": "2022-12-29T11:38:54Z",
                                                                    "Username": {"nested": 1}}))  # fmt: skip
    assert isinstance(result, Rejected)
    assert result.reason.startswith("Username:")
