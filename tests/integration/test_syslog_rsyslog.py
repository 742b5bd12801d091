"""The syslog sink end to end through a real rsyslogd started here (UDP, TCP octet-counted and LF, TLS with
both of rsyslog's TLS drivers, mutual TLS): rsyslog's own parse shows the PRI, APP-NAME, MSGID, escaped
structured data and the message we meant, for JSON and CEF payloads."""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from rsyslog import Rsyslog

from forwarder.errors import RetryableError
from forwarder.testing.receivers import sample_event
from sinks.syslog import SyslogConfig, SyslogSink

SD_ID = "sfforwarder@32473"
TRICKY = 'a "q" ] \\ z'  # the three characters RFC 5424 §6.3.3 escapes, and their neighbours
_ids = itertools.count(1000)


@pytest.fixture(scope="module")
def rsyslog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rsyslog]:
    server = Rsyslog(tmp_path_factory.mktemp("rsyslog"))
    server.start()
    yield server
    server.stop()


# (port, scheme, framing, rsyslog input name, needs a client certificate)
TRANSPORTS = {
    "udp": ("UDP", "udp", "octet_counting", "udp", False),
    "tcp_octet_counting": ("TCP", "tcp", "octet_counting", "tcp", False),
    "tcp_lf": ("TCP", "tcp", "lf", "tcp", False),
    "tls_gnutls": ("TLS_GTLS", "tls", "octet_counting", "tls-gtls", False),
    "tls_openssl": ("TLS_OSSL", "tls", "octet_counting", "tls-ossl", False),
    "mutual_tls": ("MTLS", "tls", "octet_counting", "mtls-ossl", True),
}


def make_sink(rsyslog: Rsyslog, transport: str, **fields: Any) -> SyslogSink:
    port, scheme, framing, _, client_cert = TRANSPORTS[transport]
    tls: dict[str, Any] = {"ca_file": str(rsyslog.pki.ca)}
    if client_cert:
        tls |= {"cert_file": str(rsyslog.pki.client_cert), "key_file": str(rsyslog.pki.client_key)}
    config: dict[str, Any] = {
        "type": "syslog",
        "name": f"rsyslog-{transport}",
        "address": rsyslog.address(port, scheme),
        "framing": framing,
        "hostname": "fwd-test",
        "facility": "local4",
        "connect_timeout": 5,
        **({"tls": tls} if scheme == "tls" else {}),
        **fields,
    }
    return SyslogSink(SyslogConfig.model_validate(config))


def tricky_events(count: int) -> list[dict[str, Any]]:
    """Login events with SD-escaped characters in a param value and a line break in a field."""
    events = []
    for severity in [85, 45, 10][:count]:
        event = sample_event(next(_ids), timestamp="2026-11-26T06:00:00.123456+00:00")
        event["event"]["severity"] = severity
        event["user"]["name"] = TRICKY
        event["message"] = "first line\nsecond | line = with = signs \\ and a backslash"
        events.append(event)
    return events


def expected_pri(event: dict[str, Any]) -> int:
    # local4 (20) * 8 + syslog severity: 85 -> 2 crit, 45 -> 4 warning, 10 -> 6 info (docs/syslog.md)
    return 20 * 8 + {85: 2, 45: 4, 10: 6}[event["event"]["severity"]]


async def deliver(rsyslog: Rsyslog, sink: SyslogSink, events: list[dict[str, Any]]) -> dict[str, Any]:
    await sink.send([sink.encode(e) for e in events])
    await sink.close()
    return rsyslog.wait_for_ids({e["event"]["id"] for e in events})


def assert_header(record: dict[str, Any], event: dict[str, Any], transport: str) -> None:
    assert record["input"] == TRANSPORTS[transport][3]
    assert record["pri"] == expected_pri(event)
    assert record["facility"] == 20
    assert record["version"] == "1"
    assert record["timestamp"] == "2026-11-26T06:00:00.123456Z"
    assert record["hostname"] == "fwd-test"
    assert record["app_name"] == "sf-forwarder"
    assert record["msgid"] == "salesforce.login"
    sd = record["rfc5424-sd"][SD_ID]
    assert sd["id"] == event["event"]["id"]
    assert sd["user"] == TRICKY
    assert sd["src"] == "203.0.113.7"
    assert '\\"q\\" \\] \\\\ z' in record["structured_data"]  # escaped on the wire, unescaped by rsyslog


@pytest.mark.parametrize("transport", list(TRANSPORTS))
async def test_json_events_arrive_parsed_by_rsyslog(rsyslog: Rsyslog, transport: str) -> None:
    events = tricky_events(3)
    received = await deliver(rsyslog, make_sink(rsyslog, transport), events)
    for event in events:
        record = received[event["event"]["id"]]
        assert_header(record, event, transport)
        assert orjson.loads(record["msg"]) == event


@pytest.mark.parametrize("transport", list(TRANSPORTS))
async def test_cef_events_arrive_parsed_by_rsyslog(rsyslog: Rsyslog, transport: str) -> None:
    events = tricky_events(3)
    received = await deliver(rsyslog, make_sink(rsyslog, transport, message="cef"), events)
    for event in events:
        record = received[event["event"]["id"]]
        assert_header(record, event, transport)
        msg = record["msg"]
        severity = round(event["event"]["severity"] / 10)
        assert msg.startswith("CEF:0|Salesforce|sf-forwarder|0.1.0|login|first line second \\| line ")
        assert f"|{severity}|rt=" in msg
        assert f" externalId={event['event']['id']} " in msg
        assert ' suser=a "q" ] \\\\ z ' in msg  # CEF extension escaping: backslash doubled, no SD rules
        assert " msg=first line\\nsecond | line \\= with \\= signs \\\\ and a backslash " in msg
        assert "\n" not in msg


async def test_octet_counting_carries_line_breaks_and_large_messages(rsyslog: Rsyslog) -> None:
    event = tricky_events(1)[0]
    event["user"]["name"] = "line1\nline2"
    event["salesforce"]["raw"]["pad"] = "x" * 30_000
    sink = make_sink(rsyslog, "tls_openssl", max_message_bytes=60_000)
    record = (await deliver(rsyslog, sink, [event]))[event["event"]["id"]]
    assert record["rfc5424-sd"][SD_ID]["user"] == "line1\nline2"
    assert orjson.loads(record["msg"]) == event


async def test_udp_truncation_is_flagged_and_json_stays_valid(rsyslog: Rsyslog) -> None:
    event = tricky_events(1)[0]
    event["salesforce"]["raw"]["pad"] = "x" * 5000
    record = (await deliver(rsyslog, make_sink(rsyslog, "udp"), [event]))[event["event"]["id"]]
    assert record["rfc5424-sd"][SD_ID]["truncated"] == "raw_dropped"
    body = orjson.loads(record["msg"])
    assert body["event"] == event["event"]
    assert "raw" not in body["salesforce"]


async def test_rfc3164_messages_carry_pri_tag_and_message(rsyslog: Rsyslog) -> None:
    event = tricky_events(1)[0]
    sink = make_sink(rsyslog, "tcp_octet_counting", format="rfc3164")
    await sink.send([sink.encode(event)])
    await sink.close()
    record = _wait_for_3164(rsyslog, event["event"]["id"])
    assert record["pri"] == expected_pri(event)
    assert record["hostname"] == "fwd-test"
    assert record["app_name"] == "sf-forwarder"
    assert orjson.loads(record["msg"].lstrip(" ")) == event  # rsyslog keeps 3164's leading space (ref §3.2)


def _wait_for_3164(rsyslog: Rsyslog, event_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for record in rsyslog.records():
            if record.get("version") != "1" and event_id in record.get("msg", ""):
                return record
        time.sleep(0.05)  # rsyslog's output file offers no event to wait on; bounded by the deadline
    rsyslog.fail(f"RFC 3164 message {event_id} never arrived")
    raise AssertionError  # unreachable: fail() raises


async def test_mutual_tls_without_a_client_certificate_fails_the_health_check(rsyslog: Rsyslog) -> None:
    with_cert = make_sink(rsyslog, "mutual_tls")
    await with_cert.check()
    config = with_cert.config.model_copy(update={"tls": with_cert.config.tls.model_copy(
        update={"cert_file": None, "key_file": None})})  # fmt: skip
    without_cert = SyslogSink(config)
    # Under TLS 1.3 the refusal comes after our handshake finished (reference §3.3): check() waits for it.
    with pytest.raises(RetryableError, match=r"refused|closed"):
        await without_cert.check()
    await without_cert.close()


async def test_untrusted_server_certificate_is_refused_not_sent(rsyslog: Rsyslog, tmp_path: Path) -> None:
    sink = make_sink(rsyslog, "tls_openssl", tls={"ca_file": str(rsyslog.pki.other_ca)})
    event = tricky_events(1)[0]
    with pytest.raises(RetryableError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        await sink.send([sink.encode(event)])
    await sink.close()
    assert not re.search(re.escape(event["event"]["id"]), rsyslog.output.read_text())


async def test_rsyslog_restart_is_retryable_and_the_next_send_reconnects(tmp_path: Path) -> None:
    server = Rsyslog(tmp_path)
    server.start()
    try:
        sink = make_sink(server, "tls_openssl")
        first, second = tricky_events(2)
        await sink.send([sink.encode(first)])
        server.wait_for_ids({first["event"]["id"]})
        server.stop()
        batch = [sink.encode(second)]
        with pytest.raises(RetryableError):  # the closed connection is noticed, not written into
            await sink.send(batch)
        server.start()
        await sink.send(batch)  # delivery's retry of the same batch
        await sink.close()
        server.wait_for_ids({second["event"]["id"]})
    finally:
        server.stop()
