"""The rule engine: every condition operator, combinators, threshold windows and their edges, distinct
counts, group_by, suppression, deterministic ids, bounded state, and the default rules' own examples."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forwarder.alerts.conditions import compile_condition
from forwarder.alerts.engine import Engine, Stats
from forwarder.alerts.rules import Rule, load_rules
from forwarder.alerts.selftest import run_examples

RULES = Path(__file__).parents[2] / "config" / "rules"


def cond(spec: dict[str, Any]) -> Any:
    rule = Rule.model_validate(
        {"id": "t", "name": "t", "description": "t", "severity": "low", "type": "match", "match": spec}
    )
    return compile_condition(rule.match)


DOC = {
    "@timestamp": "2026-11-26T08:00:00.000Z",
    "event": {"id": "e1", "dataset": "salesforce.login", "category": ["authentication", "iam"]},
    "user": {"name": "Erin@acme.example"},
    "source": {"ip": "185.220.101.9"},
    "salesforce": {"rows_processed": 250000, "score": "61.5"},
    "message": "Permission set Modify_All_Data_Admin: assigned",
}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"field": "event.dataset", "equals": "salesforce.login"}, True),
        ({"field": "event.dataset", "equals": "salesforce.logout"}, False),
        ({"field": "user.name", "equals": "erin@acme.example", "ignore_case": True}, True),
        ({"field": "event.category", "equals": "iam"}, True),  # any element of a list field
        ({"field": "event.dataset", "in": ["salesforce.api", "salesforce.login"]}, True),
        ({"field": "event.dataset", "in": ["salesforce.api"]}, False),
        ({"field": "event.dataset", "prefix": "salesforce."}, True),
        ({"field": "event.dataset", "prefix": "login"}, False),
        ({"field": "message", "contains": "Modify_All_Data"}, True),
        ({"field": "message", "contains": "modify_all_data"}, False),
        ({"field": "message", "regex": "modify[ _]all", "ignore_case": True}, True),
        ({"field": "message", "regex": "^assigned"}, False),
        ({"field": "source.ip", "exists": True}, True),
        ({"field": "user.target.name", "exists": True}, False),
        ({"field": "user.target.name", "exists": False}, True),
        ({"field": "source.ip", "cidr": "185.220.100.0/22"}, True),
        ({"field": "source.ip", "cidr": ["10.0.0.0/8", "2001:db8::/32"]}, False),
        ({"field": "user.name", "cidr": "0.0.0.0/0"}, False),  # not an address
        ({"field": "salesforce.rows_processed", "gt": 249999}, True),
        ({"field": "salesforce.rows_processed", "gt": 250000}, False),
        ({"field": "salesforce.rows_processed", "gte": 250000}, True),
        ({"field": "salesforce.rows_processed", "lt": 250000}, False),
        ({"field": "salesforce.rows_processed", "lte": 250000}, True),
        ({"field": "salesforce.score", "gte": 60, "lt": 80}, True),  # numeric text, a range
        ({"field": "user.name", "gt": 1}, False),  # not a number
        ({"field": "@timestamp", "prefix": "2026-11-26"}, True),
    ],
)
def test_condition_operators(spec: dict[str, Any], expected: bool) -> None:
    assert cond(spec)(DOC) is expected


def test_combinators_all_any_not() -> None:
    login = {"field": "event.dataset", "equals": "salesforce.login"}
    api = {"field": "event.dataset", "equals": "salesforce.api"}
    assert cond({"all": [login, {"field": "source.ip", "exists": True}]})(DOC)
    assert not cond({"all": [login, api]})(DOC)
    assert cond({"any": [api, login]})(DOC)
    assert not cond({"any": [api]})(DOC)
    assert cond({"not": api})(DOC)
    assert not cond({"not": {"any": [api, login]}})(DOC)


def failure(second: int, user: str = "erin", ip: str = "185.220.101.9", minute: int = 0) -> dict[str, Any]:
    return {
        "@timestamp": f"2026-11-26T08:{minute:02d}:{second:02d}.000Z",
        "event": {"id": f"{user}-{minute}-{second}", "dataset": "salesforce.login", "outcome": "failure"},
        "user": {"name": user},
        "source": {"ip": ip},
        "related": {"ip": [ip], "user": [user]},
    }


def threshold_rule(**overrides: Any) -> Rule:
    spec: dict[str, Any] = {
        "id": "brute",
        "name": "Brute force",
        "description": "d",
        "severity": "medium",
        "type": "threshold",
        "match": {"field": "event.outcome", "equals": "failure"},
        "threshold": {"count": 3, "window": "5m", "group_by": ["user.name"]},
    }
    spec.update(overrides)
    return Rule.model_validate(spec)


def test_threshold_fires_at_exactly_n_and_once_per_window() -> None:
    engine = Engine([threshold_rule()])
    assert engine.evaluate([failure(1), failure(2)], "realtime") == []  # N-1
    alerts = engine.evaluate([failure(3)], "realtime")  # exactly N
    assert len(alerts) == 1
    assert engine.evaluate([failure(4), failure(5)], "realtime") == []  # same window: no second alert
    alert = alerts[0]
    assert alert["event"]["kind"] == "alert"
    assert alert["event"]["dataset"] == "salesforce.alert"
    assert alert["event"]["severity"] == 47
    assert alert["@timestamp"] == "2026-11-26T08:00:03.000Z"  # the triggering event's time
    assert alert["user"] == {"name": "erin"}
    assert alert["salesforce"]["alert"]["count"] == 3
    assert alert["salesforce"]["alert"]["event_ids"] == ["erin-0-1", "erin-0-2", "erin-0-3"]
    assert alert["salesforce"]["alert"]["window"] == {
        "start": "2026-11-26T08:00:00.000Z",
        "end": "2026-11-26T08:05:00.000Z",
    }
    assert alert["rule"]["id"] == "brute"
    assert alert["related"] == {"ip": ["185.220.101.9"], "user": ["erin"]}
    assert "3 events" in alert["message"]
    assert "user.name=erin" in alert["message"]


def test_tumbling_windows_split_at_boundaries() -> None:
    engine = Engine(
        [threshold_rule(threshold={"count": 3, "window": "5m", "hop": "5m", "group_by": ["user.name"]})]
    )
    # 2 events before 08:05:00, 2 at/after it: two windows of 2 each, no alert.
    docs = [failure(58, minute=4), failure(59, minute=4), failure(0, minute=5), failure(1, minute=5)]
    assert engine.evaluate(docs, "realtime") == []
    assert len(engine.evaluate([failure(2, minute=5)], "realtime")) == 1  # third in the second window


def test_hopping_windows_catch_a_burst_across_a_boundary_once() -> None:
    engine = Engine([threshold_rule()])  # default hop: a quarter of the window
    docs = [failure(58, minute=4), failure(59, minute=4), failure(0, minute=5), failure(1, minute=5)]
    alerts = engine.evaluate(docs, "realtime")
    assert len(alerts) == 1
    assert alerts[0]["salesforce"]["alert"]["window"]["start"] == "2026-11-26T08:03:45.000Z"
    assert engine.evaluate([failure(s, minute=5) for s in range(2, 30)], "realtime") == []  # same burst


def test_hop_must_divide_the_window() -> None:
    with pytest.raises(ValueError, match="hop must be positive and divide window evenly"):
        threshold_rule(threshold={"count": 3, "window": "5m", "hop": "2m"})


def test_next_window_fires_again_without_suppression() -> None:
    engine = Engine([threshold_rule()])
    first = engine.evaluate([failure(1), failure(2), failure(3)], "realtime")
    second = engine.evaluate([failure(1, minute=6), failure(2, minute=6), failure(3, minute=6)], "realtime")
    assert len(first) == len(second) == 1
    assert first[0]["event"]["id"] != second[0]["event"]["id"]
    assert first[0]["salesforce"]["alert"]["dedup_key"] == second[0]["salesforce"]["alert"]["dedup_key"]


def test_group_by_counts_each_group_apart() -> None:
    engine = Engine([threshold_rule()])
    docs = [failure(1, "a"), failure(2, "b"), failure(3, "a"), failure(4, "b"), failure(5, "a")]
    alerts = engine.evaluate(docs, "realtime")
    assert [a["user"]["name"] for a in alerts] == ["a"]


def test_distinct_counts_values_not_events() -> None:
    rule = threshold_rule(
        threshold={"count": 3, "window": "15m", "group_by": ["source.ip"], "distinct": "user.name"}
    )
    engine = Engine([rule])
    same_user = [failure(i, "a") for i in range(5)]
    assert engine.evaluate(same_user, "realtime") == []
    alerts = engine.evaluate([failure(10, "b"), failure(11, "c")], "realtime")
    assert len(alerts) == 1
    assert alerts[0]["salesforce"]["alert"]["distinct_count"] == 3
    assert alerts[0]["source"] == {"ip": "185.220.101.9"}


def test_occurrence_counts_the_same_event_from_two_sources_once() -> None:
    rule = threshold_rule(occurrence=["@timestamp", "user.name", "source.ip"])
    engine = Engine([rule])
    stream = [failure(i) for i in (1, 2)]
    elf = [{**d, "event": {**d["event"], "id": d["event"]["id"] + "-elf"}} for d in stream]
    assert engine.evaluate(stream, "realtime") + engine.evaluate(elf, "bulk") == []


def test_suppression_counts_repeats_and_reports_them_on_the_next_alert() -> None:
    rule = threshold_rule(suppress={"for": "1h", "by": ["user.name"]})
    engine = Engine([rule])
    stats = Stats()
    burst = [failure(s, minute=m) for m in (0, 10, 20) for s in (1, 2, 3)]
    alerts = engine.evaluate(burst, "realtime", stats)
    assert len(alerts) == 1
    assert stats.suppressed["brute"] == 2
    later = [{**failure(s), "@timestamp": f"2026-11-26T09:30:0{s}.000Z"} for s in (1, 2, 3)]
    again = engine.evaluate(later, "realtime")
    assert len(again) == 1
    assert again[0]["salesforce"]["alert"]["suppressed_before"] == 2


def test_match_rule_suppression_by_field() -> None:
    rule = Rule.model_validate(
        {"id": "m", "name": "M", "description": "d", "severity": "high", "type": "match",
         "match": {"field": "event.outcome", "equals": "failure"}, "suppress": {"for": "10m", "by": ["user.name"]}}
    )  # fmt: skip
    alerts = Engine([rule]).evaluate([failure(1, "a"), failure(2, "a"), failure(3, "b")], "realtime")
    assert [a["user"]["name"] for a in alerts] == ["a", "b"]
    assert alerts[0]["event"]["severity"] == 73
    assert alerts[0]["event"]["risk_score"] == 73.0


def test_same_input_gives_same_ids() -> None:
    docs = [failure(s, u) for u in ("a", "b") for s in range(4)]
    first = Engine([threshold_rule()]).evaluate(docs, "realtime")
    second = Engine([threshold_rule()]).evaluate(docs, "realtime")
    assert [a["event"]["id"] for a in first] == [a["event"]["id"] for a in second]
    assert len({a["event"]["id"] for a in first}) == 2


def test_state_round_trips_through_json_mid_window() -> None:
    engine = Engine([threshold_rule()])
    engine.evaluate([failure(1), failure(2)], "realtime")
    restored = Engine([threshold_rule()], state=orjson.loads(orjson.dumps(engine.state)))
    assert len(restored.evaluate([failure(3)], "realtime")) == 1


def test_late_events_beyond_allowed_lateness_are_counted_not_evaluated() -> None:
    engine = Engine([threshold_rule()], allowed_lateness=timedelta(minutes=30))
    stats = Stats()
    engine.evaluate([{**failure(1), "@timestamp": "2026-11-26T10:00:00.000Z"}], "realtime", stats)
    engine.evaluate([failure(1), failure(2), failure(3)], "realtime", stats)
    assert stats.late["realtime"] == 3
    # The bulk lane has its own watermark: the same old events are on time there.
    assert len(engine.evaluate([failure(1), failure(2), failure(3)], "bulk", stats)) == 1


def test_our_own_alerts_are_skipped_but_threat_detection_alerts_are_evaluated() -> None:
    rule = Rule.model_validate(
        {"id": "td", "name": "TD", "description": "d", "severity": "high", "type": "match",
         "match": {"field": "event.kind", "equals": "alert"}}
    )  # fmt: skip
    engine = Engine([rule])
    td = {
        "@timestamp": "2026-11-26T08:00:00.000Z",
        "event": {"id": "x", "kind": "alert", "dataset": "salesforce.session_hijacking"},
    }
    alerts = engine.evaluate([td], "realtime")
    assert len(alerts) == 1
    assert engine.evaluate(alerts, "realtime") == []


def test_groups_per_rule_are_capped_oldest_evicted() -> None:
    engine = Engine([threshold_rule()], max_groups=5)
    stats = Stats()
    engine.evaluate([failure(1, f"user{i}") for i in range(20)], "realtime", stats)
    assert engine.groups()["brute"] <= 5 + 5  # windows, plus the groups' last firings
    assert stats.evicted["brute"] >= 15


def test_old_windows_are_pruned_as_the_watermark_moves() -> None:
    engine = Engine([threshold_rule()], allowed_lateness=timedelta(minutes=10))
    engine.evaluate([failure(1, f"user{i}") for i in range(50)], "realtime")
    engine.evaluate([{**failure(1), "@timestamp": "2026-11-26T12:00:00.000Z"}], "realtime")
    assert engine.groups()["brute"] == 4  # the 4 overlapping windows of the one recent event


def test_template_message_fills_fields() -> None:
    rule = threshold_rule(message="{count} failures for {user.name} from {source.ip} in {window}")
    alerts = Engine([rule]).evaluate([failure(1), failure(2), failure(3)], "realtime")
    assert alerts[0]["message"] == "3 failures for erin from 185.220.101.9 in 5m"
    assert alerts[0]["event"]["reason"] == alerts[0]["message"]


def test_default_rules_pass_their_embedded_examples() -> None:
    rules = load_rules([RULES])
    assert len(rules) >= 10
    outcomes = run_examples(rules)
    assert [o for o in outcomes if not o.passed] == []
    assert all(r.tests for r in rules)


def test_copies_arriving_after_their_window_was_pruned_do_not_raise_it_again() -> None:
    engine = Engine([threshold_rule()], allowed_lateness=timedelta(minutes=10))
    stream = [failure(1), failure(2), failure(3)]
    assert len(engine.evaluate(stream, "realtime")) == 1
    engine.evaluate([{**failure(9, "other"), "@timestamp": "2026-11-26T13:00:00.000Z"}], "realtime")
    assert engine.groups()["brute"] <= 4  # only the 13:00 event's windows: the 08:00 ones are gone
    elf = [{**d, "event": {**d["event"], "id": d["event"]["id"] + "-elf"}} for d in stream]
    assert engine.evaluate(elf, "bulk") == []  # same window, same group: the same alert id, raised before


def success(second: int, user: str = "erin", minute: int = 0) -> dict[str, Any]:
    doc = failure(second, user, minute=minute)
    doc["event"] = {**doc["event"], "id": f"ok-{user}-{second}", "outcome": "success"}
    return doc


def sequence_rule() -> Rule:
    return threshold_rule(then={"field": "event.outcome", "equals": "success"})


def test_sequence_fires_on_the_then_event_after_the_count() -> None:
    engine = Engine([sequence_rule()])
    assert engine.evaluate([failure(1), failure(2), failure(3)], "realtime") == []  # armed, not fired
    alerts = engine.evaluate([success(4)], "realtime")
    assert len(alerts) == 1
    assert alerts[0]["@timestamp"] == "2026-11-26T08:00:04.000Z"
    assert alerts[0]["salesforce"]["alert"]["event_ids"][-1] == "ok-erin-4"
    assert engine.evaluate([success(5)], "realtime") == []  # once per group per window length


def test_sequence_needs_the_count_first_and_the_same_group() -> None:
    engine = Engine([sequence_rule()])
    assert engine.evaluate([success(1), failure(2), failure(3), failure(4)], "realtime") == []
    assert (
        engine.evaluate([failure(5, "a"), failure(6, "a"), failure(7, "a"), success(8, "b")], "realtime")
        == []
    )


def test_then_is_only_for_threshold_rules() -> None:
    with pytest.raises(ValueError, match="type match takes no threshold or then"):
        Rule.model_validate(
            {"id": "m", "name": "M", "description": "d", "severity": "low", "type": "match",
             "match": {"field": "a", "exists": True}, "then": {"field": "b", "exists": True}}
        )  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 1800), st.sampled_from("abc"), st.booleans()), max_size=60),
    st.lists(st.integers(1, 20), min_size=1, max_size=10),
)
def test_alerts_do_not_depend_on_how_the_input_is_chunked(
    events: list[tuple[int, str, bool]], sizes: list[int]
) -> None:
    """A restart re-reads the journal in other chunks than the first run: the alerts must be the same."""
    docs = [
        {
            **(failure(0, user) if failed else success(0, user)),
            "@timestamp": f"2026-11-26T08:{s // 60:02d}:{s % 60:02d}.000Z",
        }
        for s, user, failed in events
    ]
    docs = [{**d, "event": {**d["event"], "id": f"e{i}"}} for i, d in enumerate(docs)]
    rules = [threshold_rule(suppress={"for": "10m"}), sequence_rule().model_copy(update={"id": "seq"})]
    whole = [a["event"]["id"] for a in Engine(rules).evaluate(docs, "realtime")]
    engine, chunked, at, step = Engine(rules), [], 0, 0
    while at < len(docs):
        size, step = sizes[step % len(sizes)], step + 1
        chunked += [a["event"]["id"] for a in engine.evaluate(docs[at : at + size], "realtime")]
        engine = Engine(rules, state=orjson.loads(orjson.dumps(engine.state)))  # as after a restart
        at += size
    assert chunked == whole
