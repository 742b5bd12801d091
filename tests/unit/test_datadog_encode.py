"""Datadog log entries: reserved and standard attributes, status bands, the late-event policy, 1 MB fit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forwarder import metrics
from forwarder.errors import PermanentError
from forwarder.events import severity_level
from forwarder.testing.receivers import sample_event
from sinks.datadog import (
    MAX_LOG_BYTES,
    DatadogConfig,
    DatadogSink,
    _json_array,
    fit_log,
    log_entry,
)

NOW = datetime(2026, 11, 26, 7, 0, tzinfo=UTC)


def _config(**kw: object) -> DatadogConfig:
    return DatadogConfig.model_validate(
        {"type": "datadog", "name": "dd", "api_key": "k", "hostname": "fwd-1", **kw}
    )


def _entry(doc: dict[str, Any] | None = None, **kw: object) -> dict[str, Any]:
    return log_entry(_config(**kw), doc or sample_event(3), NOW)


def _late(name: str, policy: str) -> float:
    return float(metrics.datadog_late_events.labels(name, policy)._value.get())


def test_entry_has_the_reserved_attributes() -> None:
    entry = _entry(tags=["env:prod"], service="sfdc")
    assert entry["ddsource"] == "salesforce"
    assert entry["service"] == "sfdc"
    assert entry["hostname"] == "fwd-1"
    assert entry["ddtags"] == "env:prod,dataset:salesforce.login"
    assert entry["message"].startswith("Login succeeded")
    assert entry["timestamp"] == int(datetime(2026, 11, 26, 6, 0, 0, 123000, tzinfo=UTC).timestamp() * 1000)


def test_standard_attributes_sit_beside_the_ecs_fields() -> None:
    entry = _entry()
    assert entry["usr"] == {"id": "005B0000003Hs6YIAS", "name": "alice@example.com"}
    assert entry["network"] == {"client": {"ip": "203.0.113.7"}}
    assert entry["evt"] == {"name": "login", "outcome": "success"}
    assert entry["user"]["name"] == "alice@example.com"
    assert entry["event"]["id"] == "evt-00000003"
    assert entry["source"]["geo"]["country_iso_code"] == "FR"


def test_missing_standard_attributes_are_left_out() -> None:
    doc = sample_event(1)
    del doc["user"], doc["source"]
    entry = _entry(doc)
    assert "usr" not in entry
    assert "network" not in entry


@pytest.mark.parametrize(
    ("user", "usr"),
    [
        ({"id": "005x", "name": "a@b", "email": "a@b.c"}, {"id": "005x", "name": "a@b", "email": "a@b.c"}),
        ({"name": "a@b", "email": "a@b.c"}, {"name": "a@b", "email": "a@b.c"}),
        ({"id": "005x"}, {"id": "005x"}),
        ({"id": None, "name": "a@b"}, {"name": "a@b"}),
        ({"domain": "x"}, None),
    ],
)
@pytest.mark.parametrize(
    ("action", "outcome", "evt"),
    [("login", None, {"name": "login"}), (None, "failure", {"outcome": "failure"}), (None, None, None)],
)
def test_standard_attributes_keep_exactly_the_present_values(
    user: dict[str, Any], usr: dict[str, Any] | None, action: str | None, outcome: str | None, evt: Any
) -> None:
    doc = sample_event(1)
    doc["user"] = user
    doc["event"].update(action=action, outcome=outcome)
    entry = orjson.loads(DatadogSink(_config(name="std"), clock=lambda: NOW).encode(doc))
    assert entry.get("usr") == usr
    assert entry.get("evt") == evt


@pytest.mark.parametrize(
    ("severity", "status"),
    [
        (0, "info"),
        (21, "info"),
        (22, "warning"),
        (47, "warning"),
        (48, "error"),
        (73, "error"),
        (74, "critical"),
        (100, "critical"),
        (None, "info"),
    ],
)
def test_status_follows_severity_bands(severity: int | None, status: str) -> None:
    assert severity_level(severity) == status  # Datadog's status; PagerDuty's severity uses the same


def test_recent_events_keep_their_time() -> None:
    doc = sample_event(1, timestamp=(NOW - timedelta(hours=16)).isoformat())
    entry = _entry(doc)
    assert entry["timestamp"] == int((NOW - timedelta(hours=16)).timestamp() * 1000)
    assert "forwarder" not in entry


def test_late_events_are_restamped_with_the_original_time_kept_and_counted() -> None:
    old = NOW - timedelta(days=2)
    before = _late("late-restamp", "restamp")
    entry = log_entry(_config(name="late-restamp"), sample_event(1, timestamp=old.isoformat()), NOW)
    assert entry["timestamp"] == int(NOW.timestamp() * 1000)
    assert entry["forwarder"] == {"late": True, "original_timestamp": old.isoformat()}
    assert entry["@timestamp"] == old.isoformat()
    assert _late("late-restamp", "restamp") == before + 1


def test_late_events_can_keep_their_original_time() -> None:
    old = NOW - timedelta(days=2)
    before = _late("late-keep", "keep")
    entry = log_entry(
        _config(name="late-keep", late_policy="keep"), sample_event(1, timestamp=old.isoformat()), NOW
    )
    assert entry["timestamp"] == int(old.timestamp() * 1000)
    assert entry["forwarder"]["late"] is True
    assert _late("late-keep", "keep") == before + 1


def test_late_events_can_be_dead_lettered_and_are_counted() -> None:
    old = NOW - timedelta(hours=19)
    before = _late("late-dl", "dead_letter")
    with pytest.raises(PermanentError, match="older than max_age"):
        log_entry(
            _config(name="late-dl", late_policy="dead_letter"),
            sample_event(1, timestamp=old.isoformat()),
            NOW,
        )
    assert _late("late-dl", "dead_letter") == before + 1


def test_a_three_megabyte_event_is_cut_to_one_megabyte_and_flagged() -> None:
    sink = DatadogSink(_config(name="trunc"), clock=lambda: NOW)
    before = metrics.datadog_truncated_events.labels("trunc")._value.get()
    encoded = sink.encode(sample_event(5, pad=3_000_000))
    entry = orjson.loads(encoded)
    assert len(encoded) <= MAX_LOG_BYTES
    assert entry["forwarder"]["truncated"] is True
    assert entry["forwarder"]["original_bytes"] > 3_000_000
    assert entry["event"]["id"] == "evt-00000005"
    assert entry["usr"]["name"] == "alice@example.com"
    assert len(entry["message"]) > 900_000
    assert metrics.datadog_truncated_events.labels("trunc")._value.get() == before + 1


@settings(max_examples=25, deadline=None)
@given(
    filler=st.text(alphabet=st.sampled_from('ab"\\\u00e9\u4e2d\U0001f600\n\x01'), min_size=1, max_size=50),
    repeat=st.integers(min_value=1, max_value=4000),
    limit=st.integers(min_value=2_000, max_value=20_000),
)
def test_fit_log_always_returns_valid_json_within_the_limit(filler: str, repeat: int, limit: int) -> None:
    entry = _entry()
    entry["salesforce"]["raw"]["pad"] = filler * repeat
    encoded, truncated = fit_log(entry, limit)
    assert len(encoded) <= limit
    parsed = orjson.loads(encoded)
    assert truncated == (len(orjson.dumps(entry)) > limit)
    assert parsed["event"]["id"] == "evt-00000003"


@pytest.mark.parametrize(
    ("site", "intake", "validate"),
    [
        (
            "datadoghq.com",
            "https://http-intake.logs.datadoghq.com/api/v2/logs",
            "https://api.datadoghq.com/api/v1/validate",
        ),
        (
            "datadoghq.eu",
            "https://http-intake.logs.datadoghq.eu/api/v2/logs",
            "https://api.datadoghq.eu/api/v1/validate",
        ),
        (
            "us3.datadoghq.com",
            "https://http-intake.logs.us3.datadoghq.com/api/v2/logs",
            "https://api.us3.datadoghq.com/api/v1/validate",
        ),
        (
            "ddog-gov.com",
            "https://http-intake.logs.ddog-gov.com/api/v2/logs",
            "https://api.ddog-gov.com/api/v1/validate",
        ),
    ],
)
def test_site_gives_the_intake_and_validate_urls(site: str, intake: str, validate: str) -> None:
    config = _config(site=site)
    assert config.intake_url() == intake
    assert config.validate_url() == validate


def test_explicit_url_overrides_the_site() -> None:
    config = _config(url="http://127.0.0.1:9000/api/v2/logs")
    assert config.intake_url() == "http://127.0.0.1:9000/api/v2/logs"
    assert config.validate_url() == "http://127.0.0.1:9000/api/v1/validate"


def test_limits_are_the_intake_limits() -> None:
    limits = DatadogSink(_config()).limits
    assert limits.max_events == 1000
    assert limits.max_bytes == 4_250_000


@pytest.mark.parametrize(
    ("batch", "message"),
    [({"max_events": 5000}, "at most 1000 logs"), ({"max_bytes": 50_000_000}, "intake limit 5 MB")],
)
def test_batch_overrides_beyond_the_intake_limits_are_refused(batch: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _config(batch=batch)


def test_url_must_be_http_or_https() -> None:
    with pytest.raises(ValueError, match="http:// or https://"):
        _config(url="http-intake.logs.datadoghq.com/api/v2/logs")


def test_api_key_never_appears_in_the_config_repr() -> None:
    config = _config(api_key="dd-secret-key-value")
    assert "dd-secret-key-value" not in repr(config)


@settings(max_examples=200, deadline=None)
@given(
    message=st.one_of(st.none(), st.just(""), st.text(max_size=30)),
    severity=st.one_of(st.none(), st.integers(min_value=0, max_value=100)),
    age_hours=st.floats(min_value=-1, max_value=40),
    clash=st.sampled_from(
        [None, "usr", "network", "evt", "service", "status", "timestamp", "forwarder", "ddtags"]
    ),
    user=st.one_of(st.none(), st.fixed_dictionaries({"id": st.text(max_size=5)})),
    policy=st.sampled_from(["restamp", "keep"]),
)
def test_fast_encoder_writes_the_reference_log_entry(
    message: str | None, severity: int | None, age_hours: float, clash: str | None, user: Any, policy: str
) -> None:
    doc = sample_event(2, timestamp=(NOW - timedelta(hours=age_hours)).isoformat())
    doc["message"] = message
    doc["event"]["severity"] = severity
    doc["user"] = user
    if clash:
        doc[clash] = {"from": "the document"}
    sink = DatadogSink(_config(name="fast", late_policy=policy, tags=["env:test"]), clock=lambda: NOW)
    expected = orjson.loads(orjson.dumps(log_entry(sink.config, doc, NOW)))
    assert orjson.loads(sink.encode(doc)) == expected
    assert orjson.loads(sink.encode(doc)) == expected  # again, from the caches


def test_odd_documents_take_the_reference_path() -> None:
    sink = DatadogSink(_config(name="odd"), clock=lambda: NOW)
    for odd in ({"dataset": ["a", "b"]}, {"severity": "high"}):
        doc = sample_event(1)
        doc["event"].update(odd)
        assert orjson.loads(sink.encode(doc)) == orjson.loads(orjson.dumps(log_entry(sink.config, doc, NOW)))


def test_truncation_keeps_the_late_flag_and_survives_a_foreign_forwarder_attribute() -> None:
    entry = _entry(sample_event(4, pad=2_000_000, timestamp=(NOW - timedelta(days=3)).isoformat()))
    encoded, truncated = fit_log(entry)
    parsed = orjson.loads(encoded)
    assert truncated
    assert parsed["forwarder"]["late"] is True
    assert parsed["forwarder"]["truncated"] is True
    entry["forwarder"] = "not a dict"
    encoded, truncated = fit_log(entry)
    assert truncated
    assert orjson.loads(encoded)["forwarder"]["truncated"] is True


def test_a_late_event_over_one_megabyte_is_counted_late_once() -> None:
    sink = DatadogSink(_config(name="late-big"), clock=lambda: NOW)
    doc = sample_event(5, pad=1_200_000, timestamp=(NOW - timedelta(days=2)).isoformat())
    before = _late("late-big", "restamp")
    encoded = sink.encode(doc)
    assert len(encoded) <= MAX_LOG_BYTES
    assert orjson.loads(encoded)["forwarder"]["late"] is True
    assert _late("late-big", "restamp") == before + 1


@pytest.mark.parametrize("count", [1, 2, 3, 1000])
def test_batch_body_is_one_json_array_of_the_logs(count: int) -> None:
    logs = [orjson.dumps({"i": i, "message": "a,b]"}) for i in range(count)]
    assert orjson.loads(_json_array(logs)) == [{"i": i, "message": "a,b]"} for i in range(count)]
