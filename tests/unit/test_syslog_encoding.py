"""Syslog encoding: RFC 5424 header and STRUCTURED-DATA escaping, RFC 3164, CEF escaping, framing, PRI and
truncation. Properties are checked with hypothesis against independent parsers written here from the RFCs."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from forwarder import metrics
from forwarder.testing.receivers import sample_event
from forwarder.testing.receivers.syslog import parse_message, parse_structured_data, split_frames
from sinks.syslog import SyslogConfig, SyslogSink
from sinks.syslog import cef as c
from sinks.syslog import rfc5424 as r

NOW = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
# Any Unicode text except surrogates (not encodable as UTF-8, never in a JSON event).
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60)
# Hypothesis tests run with deadline=None: on a shared machine timing is noise, not the property.


def make_sink(**fields: Any) -> SyslogSink:
    config = SyslogConfig.model_validate(
        {"type": "syslog", "name": "siem", "address": "tcp://127.0.0.1:6514", "hostname": "fwd1", **fields}
    )
    return SyslogSink(config, clock=lambda: NOW)


# --- STRUCTURED-DATA ---------------------------------------------------------------------------------------
def unescape_param_value(escaped: str) -> str:
    """RFC 5424 §6.3.3 read side: ``\\`` before ``"``, ``\\`` or ``]`` is dropped; any other stays."""
    return re.sub(r'\\(["\\\]])', r"\1", escaped)


@given(TEXT)
@settings(deadline=None)
def test_param_value_escaping_round_trips(value: str) -> None:
    assert unescape_param_value(r.escape_param_value(value)) == value


@given(TEXT)
@settings(deadline=None)
def test_escaped_param_value_never_ends_the_element_early(value: str) -> None:
    escaped = r.escape_param_value(value)
    # Every '"' and ']' is preceded by an odd number of backslashes: a parser cannot mistake it for the end.
    for match in re.finditer(r'["\]]', escaped):
        backslashes = len(escaped[: match.start()]) - len(escaped[: match.start()].rstrip("\\"))
        assert backslashes % 2 == 1


@given(st.dictionaries(st.sampled_from(["id", "user", "src", "note"]), TEXT, min_size=1))
@settings(deadline=None)
def test_structured_data_parses_back_to_its_params(params: dict[str, str]) -> None:
    element = r.structured_data("sfforwarder@32473", params.items())
    parsed, rest = parse_structured_data(element + " MSG")
    assert parsed == {"sfforwarder@32473": params}
    assert rest == "MSG"


@pytest.mark.parametrize(
    ("name", "valid"),
    [("id", True), ("a" * 32, True), ("a" * 33, False), ("a b", False), ("a=b", False), ('a"', False),
     ("a]", False), ("", False), ("é", False)],
)  # fmt: skip
def test_sd_names_follow_rfc5424(name: str, valid: bool) -> None:
    assert r.is_sd_name(name) is valid


@pytest.mark.parametrize(
    ("sd_id", "valid"),
    [("sfforwarder@32473", True), ("origin", False), ("x@abc", False), ("@32473", False), ("a@1@2", False)],
)
def test_private_sd_ids_need_an_enterprise_number(sd_id: str, valid: bool) -> None:
    assert r.is_sd_id(sd_id) is valid


# --- header, PRI ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("ecs", "syslog"), [(100, 2), (80, 2), (79, 3), (60, 3), (59, 4), (40, 4), (39, 6), (0, 6), (None, 6)]
)
def test_ecs_severity_maps_to_syslog_severity(ecs: int | None, syslog: int) -> None:
    assert r.syslog_severity(ecs) == syslog


def test_rfc5424_header_carries_pri_app_name_msgid_and_structured_data() -> None:
    event = sample_event(1)
    event["event"]["severity"] = 85
    parsed = parse_message(make_sink(facility="authpriv").message(event), "tcp")
    assert parsed.pri == 10 * 8 + 2  # authpriv.crit
    assert parsed.version == "1"
    assert parsed.timestamp == "2026-11-26T06:00:00.123000Z"
    assert (parsed.hostname, parsed.app_name, parsed.msgid) == ("fwd1", "sf-forwarder", "salesforce.login")
    assert parsed.structured_data["sfforwarder@32473"]["id"] == "evt-00000001"
    assert parsed.structured_data["sfforwarder@32473"]["src"] == "203.0.113.7"
    assert orjson.loads(parsed.msg) == event


def test_header_fields_are_printable_ascii_and_cut_to_their_limits() -> None:
    event = sample_event(1)
    event["event"]["dataset"] = "salesforce.übersicht with spaces and a very long tail"
    parsed = parse_message(make_sink(app_name="app name").message(event), "tcp")
    assert parsed.app_name == "app_name"
    assert parsed.msgid == "salesforce._bersicht_with_spaces"
    assert len(parsed.msgid) == 32


def test_rfc3164_has_space_padded_day_utc_time_and_tag_with_pid() -> None:
    event = sample_event(1, timestamp="2026-11-05T01:02:03+02:00")
    message = make_sink(format="rfc3164").message(event).decode()
    assert re.match(r"<166>Nov  4 23:02:03 fwd1 sf-forwarder\[\d+\]: \{", message), message


def test_facility_accepts_names_and_numbers() -> None:
    assert make_sink(facility="local7").config.facility == 23
    assert make_sink(facility=4).config.facility == 4
    with pytest.raises(ValidationError):
        make_sink(facility="nonsense")


@pytest.mark.parametrize(
    "fields",
    [
        {"address": "http://host:514"},
        {"address": "tcp://host"},
        {"address": "tcp://user@host:514"},
        {"sd_id": "origin"},
        {"sd_params": {"bad name": "event.id"}},
        {"tls": {"cert_file": "/tmp/c.pem"}},  # client certificate on a plain TCP address
        {"max_message_bytes": 100},
        {"address": "udp://127.0.0.1:514", "max_message_bytes": 70_000},  # beyond a UDP datagram
    ],
)
def test_rejects_invalid_config(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        make_sink(**fields)


# --- CEF -----------------------------------------------------------------------------------------------------
def split_cef_header(line: str) -> list[str]:
    """Split on pipes not escaped by a backslash; the 8th part is the extension (CEF standard)."""
    parts, current, i = [], "", 0
    while i < len(line):
        if line[i] == "\\" and i + 1 < len(line):
            current += line[i : i + 2]
            i += 2
            continue
        if line[i] == "|" and len(parts) < 7:
            parts.append(current)
            current = ""
        else:
            current += line[i]
        i += 1
    return [*parts, current]


def parse_cef_extension(extension: str) -> dict[str, str]:
    """Keys are the words before an unescaped ``=``; a value runs to the next ``key=``."""
    pairs = re.findall(r"(\w+)=((?:\\.|[^\\=])*?)(?=\s\w+=|$)", extension)
    unescape = {"\\\\": "\\", "\\=": "=", "\\n": "\n", "\\r": "\r"}
    return {k: re.sub(r"\\[\\=nr]", lambda m: unescape[m.group(0)], v) for k, v in pairs}


@given(TEXT.filter(lambda s: "\n" not in s and "\r" not in s))
@settings(deadline=None)
def test_cef_header_escaping_keeps_seven_fields(text: str) -> None:
    event = sample_event(1)
    event["event"]["action"] = text or "x"
    line = c.encode_cef(event, "Sales|force", "sf\\fwd", "1.0", NOW)
    parts = split_cef_header(line)
    assert len(parts) == 8
    assert parts[1] == "Sales\\|force"
    assert parts[2] == "sf\\\\fwd"
    assert parts[4].replace("\\|", "|").replace("\\\\", "\\") == (text or "x")


def test_cef_header_has_no_line_breaks() -> None:
    event = sample_event(1)
    event["rule"] = {"id": "r1", "name": "two\nlines\r\nhere"}
    assert "\n" not in c.encode_cef(event, "Salesforce", "sf-forwarder", "1", NOW)


@given(TEXT)
@settings(deadline=None)
def test_cef_extension_values_round_trip(value: str) -> None:
    event = sample_event(1)
    event["message"] = value
    event["user"]["name"] = value + "=tail"
    line = c.encode_cef(event, "Salesforce", "sf-forwarder", "1", NOW)
    assert "\n" not in line
    assert "\r" not in line
    fields = parse_cef_extension(split_cef_header(line)[7])
    assert fields["suser"] == value + "=tail"
    assert fields.get("msg", "") == value
    assert fields["externalId"] == "evt-00000001"


def test_cef_maps_ecs_fields_and_severity() -> None:
    event = sample_event(1)
    event["event"]["severity"] = 73
    line = c.encode_cef(event, "Salesforce", "sf-forwarder", "0.1.0", NOW)
    parts = split_cef_header(line)
    assert parts[:7] == ["CEF:0", "Salesforce", "sf-forwarder", "0.1.0", "login", event["message"], "7"]
    fields = parse_cef_extension(parts[7])
    assert fields["rt"] == str(int(datetime(2026, 11, 26, 6, 0, 0, 123000, tzinfo=UTC).timestamp() * 1000))
    assert fields["src"] == "203.0.113.7"
    assert fields["cat"] == "salesforce.login"
    assert (fields["cs1"], fields["cs1Label"]) == ("00D5j000000XXXXEAA", "Salesforce Organization ID")


def test_cef_puts_ipv6_sources_in_c6a2() -> None:
    event = sample_event(1)
    event["source"]["ip"] = "2001:db8::1"
    fields = parse_cef_extension(split_cef_header(c.encode_cef(event, "S", "P", "1", NOW))[7])
    assert "src" not in fields
    assert fields["c6a2"] == "2001:db8::1"


# --- framing -------------------------------------------------------------------------------------------------
@given(st.lists(TEXT, min_size=1, max_size=5), st.integers(1, 50))
@settings(deadline=None)
def test_octet_counted_frames_split_back_at_any_chunking(messages: list[str], chunk: int) -> None:
    sink = make_sink()
    events = []
    for i, text in enumerate(messages):
        event = sample_event(i)
        event["message"] = text + "\nsecond line"
        events.append(event)
    stream = b"".join(sink.encode(e) for e in events)
    buffer, frames = bytearray(), []
    for start in range(0, len(stream), chunk):
        buffer += stream[start : start + chunk]
        frames += split_frames(buffer)
    assert [orjson.loads(parse_message(f, "tcp").msg)["message"] for f in frames] == [
        e["message"] for e in events
    ]


def test_octet_count_is_in_bytes_not_characters() -> None:
    event = sample_event(1)
    event["message"] = "ünïcödé ✓"
    framed = make_sink().encode(event)
    length, _, message = framed.partition(b" ")
    assert int(length) == len(message)
    assert len(message) > len(message.decode())


def test_lf_framing_keeps_each_message_on_one_line() -> None:
    event = sample_event(1)
    event["user"]["name"] = "evil\nname"
    event["message"] = "multi\nline"
    framed = make_sink(framing="lf").encode(event)
    assert framed.endswith(b"\n")
    assert framed.count(b"\n") == 1


def test_udp_messages_are_bare_datagrams() -> None:
    framed = make_sink(address="udp://127.0.0.1:514").encode(sample_event(1))
    assert framed.startswith(b"<")
    assert not framed.endswith(b"\n")


# --- truncation ----------------------------------------------------------------------------------------------
def truncated(sink: str, how: str) -> float:
    return metrics.syslog_truncated.labels(sink, how)._value.get()


def test_oversized_event_drops_raw_first_and_stays_valid_json() -> None:
    sink = make_sink(address="udp://127.0.0.1:514")  # 2048 bytes by default
    event = sample_event(1, pad=5000)
    before = truncated("siem", "raw_dropped")
    message = sink.message(event)
    parsed = parse_message(message, "udp")
    assert len(message) <= 2048
    body = orjson.loads(parsed.msg)
    assert "raw" not in body["salesforce"]
    assert body["tags"] == ["truncated"]
    assert body["event"] == event["event"]
    assert parsed.structured_data["sfforwarder@32473"]["truncated"] == "raw_dropped"
    assert int(parsed.structured_data["sfforwarder@32473"]["original_size"]) > 5000
    assert truncated("siem", "raw_dropped") == before + 1


@given(st.integers(480, 3000), st.text(alphabet="aé✓𝄞", min_size=3000, max_size=4000))
@settings(deadline=None)
def test_cut_messages_fit_the_limit_on_a_character_boundary_and_are_flagged(limit: int, text: str) -> None:
    sink = make_sink(max_message_bytes=limit)
    event = sample_event(1)
    event["message"] = text
    message = sink.message(event)
    assert len(message) <= limit
    parsed = parse_message(message, "tcp")  # decodes strictly below
    message.decode("utf-8")
    assert parsed.structured_data["sfforwarder@32473"]["truncated"] == "cut"
    assert parsed.structured_data["sfforwarder@32473"]["id"] == "evt-00000001"


def test_messages_within_the_limit_are_untouched() -> None:
    event = sample_event(1)
    parsed = parse_message(make_sink().message(event), "tcp")
    assert "truncated" not in parsed.structured_data["sfforwarder@32473"]
    assert orjson.loads(parsed.msg) == event


def test_text_that_is_not_valid_unicode_cannot_make_a_cef_event_unsendable() -> None:
    event = sample_event(1)
    event["user"]["name"] = "bad \ud800 surrogate"
    message = make_sink(message="cef").message(event)
    assert b"suser=bad ? surrogate" in message


@pytest.mark.parametrize(("dataset", "expected"), [(None, "-"), ("", "-"), (["a", "b"], "['a',_'b']")])
def test_msgid_is_nil_or_printable_for_odd_datasets(dataset: object, expected: str) -> None:
    event = sample_event(1)
    event["event"]["dataset"] = dataset
    assert parse_message(make_sink().message(event), "tcp").msgid == expected


@pytest.mark.parametrize(
    "stamp", ["2026-11-26T06:00:00.123000Z", "2026-11-26T07:00:00.123+01:00", "2026-11-26T06:00:00.123"]
)
def test_timestamps_are_rendered_in_utc_with_microseconds(stamp: str) -> None:
    parsed = parse_message(make_sink().message(sample_event(1, timestamp=stamp)), "tcp")
    assert parsed.timestamp == "2026-11-26T06:00:00.123000Z"


def test_missing_timestamp_falls_back_to_now() -> None:
    event = sample_event(1)
    del event["@timestamp"]
    assert parse_message(make_sink().message(event), "tcp").timestamp == "2026-11-26T06:00:00.000000Z"
