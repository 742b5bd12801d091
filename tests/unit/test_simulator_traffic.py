"""The traffic generator: deterministic, one activity alike in every form, attacks marked with alerts."""

from __future__ import annotations

from datetime import UTC, datetime

from forwarder.testing.simulator.formats import id18, parse_datetime
from forwarder.testing.simulator.traffic import ALERTS, CHANNELS, Traffic


def test_same_seed_gives_the_same_traffic() -> None:
    assert Traffic(5).baseline(80) == Traffic(5).baseline(80)


def test_different_seeds_give_different_traffic() -> None:
    assert Traffic(5).baseline(80) != Traffic(6).baseline(80)


def test_id18_matches_a_real_salesforce_id_pair() -> None:
    # USER_ID / USER_ID_DERIVED of the same real Beats Login row
    assert id18("0055j000000utlP") == "0055j000000utlPAAQ"


def test_a_login_is_the_same_login_on_the_stream_in_soql_and_in_the_log_file() -> None:
    login = Traffic(3).login()
    stream, row = login.payload, login.elf["Login"]
    stored, history = login.objects["LoginEvent"], login.objects["LoginHistory"]
    assert stream is not None
    assert login.channel == "/event/LoginEventStream"
    assert stream["Username"] == row["USER_NAME"] == login.user
    assert stream["UserId"] == row["USER_ID_DERIVED"] == history["UserId"] == stored["UserId"]
    assert row["USER_ID"] == stream["UserId"][:15]
    assert stream["LoginKey"] == row["LOGIN_KEY"] == stored["LoginKey"]
    assert stream["SourceIp"] == row["SOURCE_IP"] == history["SourceIp"]
    instants = {
        parse_datetime(stream["EventDate"]),
        parse_datetime(row["TIMESTAMP_DERIVED"]),
        parse_datetime(history["LoginTime"]),
        parse_datetime(stored["EventDate"]),
    }
    assert instants == {login.at.replace(microsecond=login.at.microsecond // 1000 * 1000)}
    assert stream["LoginHistoryId"] == history["Id"]
    assert stored["EventDate"].endswith("+0000")
    assert stream["EventDate"].endswith("Z")


def test_failed_login_has_failure_status_in_every_form() -> None:
    login = Traffic(3).login(status="Invalid Password")
    assert login.payload is not None
    assert login.payload["Status"] == "Invalid Password"
    assert login.elf["Login"]["LOGIN_STATUS"] == "LOGIN_ERROR_INVALID_PASSWORD"
    assert login.objects["LoginHistory"]["Status"] == "Invalid Password"


def test_activities_after_login_share_the_login_session() -> None:
    traffic = Traffic(4)
    login = traffic.login(traffic.users[5])
    view = traffic.page_view(traffic.users[5])
    assert login.payload is not None
    assert view.payload is not None
    assert view.payload["LoginKey"] == login.payload["LoginKey"]
    assert view.payload["SessionKey"] == login.payload["SessionKey"]


def test_activity_times_never_go_backwards() -> None:
    times = [a.at for a in Traffic(2).baseline(150)]
    assert times == sorted(times)


def test_attacks_raise_every_alert_and_only_attacks_are_marked() -> None:
    traffic = Traffic(9)
    assert {a.alert for a in traffic.baseline(100)} == {None}
    attacks = traffic.attacks()
    assert {a.alert for a in attacks} == set(ALERTS)
    assert all(a.scenario == "attacks" for a in attacks)


def test_brute_force_is_many_failures_then_a_success_from_one_address() -> None:
    attack = [a for a in Traffic(9).attacks() if a.alert == "brute_force_then_success"]
    statuses = [a.payload["Status"] for a in attack if a.payload]
    assert statuses[-1] == "Success"
    assert set(statuses[:-1]) == {"Invalid Password"}
    assert len(statuses) > 10
    assert len({a.payload["SourceIp"] for a in attack if a.payload}) == 1


def test_every_rtem_channel_can_be_generated() -> None:
    traffic = Traffic(1)
    made = {a.channel for a in traffic.baseline(300) + traffic.attacks()}
    for channel in CHANNELS:
        if f"/event/{channel}" not in made:
            made.add(traffic.threat(channel).channel)
    assert made >= {f"/event/{c}" for c in CHANNELS}


def test_elf_rows_are_strings_in_column_order() -> None:
    for activity in Traffic(1).baseline(120):
        for row in activity.elf.values():
            assert all(isinstance(v, str) for v in row.values())
            assert next(iter(row)) == "EVENT_TYPE"


def test_baseline_has_setup_audit_trail_records_with_whole_second_dates() -> None:
    records = [
        a.objects["SetupAuditTrail"] for a in Traffic(2).baseline(100) if "SetupAuditTrail" in a.objects
    ]
    assert len(records) >= 5
    assert all(r["Id"].startswith("0Ym") and len(r["Id"]) == 18 for r in records)
    assert all(r["CreatedDate"].endswith(".000+0000") for r in records)


def test_live_activity_is_dated_when_asked() -> None:
    traffic = Traffic(2)
    at = datetime(2026, 11, 26, 6, 30, tzinfo=UTC)
    activities = [traffic.random_activity(at=at) for _ in range(60)]
    assert {a.at for a in activities} == {at}
    assert len({a.kind for a in activities}) > 5
