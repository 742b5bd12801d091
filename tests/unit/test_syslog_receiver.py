"""The rsyslog-free syslog target: framing detected per frame like rsyslog imtcp, RFC 5424 and RFC 3164 parsing,
event ids for de-duplication counts."""

from __future__ import annotations

import asyncio

from forwarder.testing.receivers.syslog import SyslogReceiver, event_id, parse_message, split_frames


def test_splits_mixed_octet_counted_and_lf_frames() -> None:
    buffer = bytearray(b"11 <14>1 a\nb c<14>1 lf framed\n9 <14>1")
    assert split_frames(buffer) == [b"<14>1 a\nb c", b"<14>1 lf framed"]
    assert buffer == bytearray(b"9 <14>1")  # incomplete: kept for the next read


def test_parses_rfc5424_with_escaped_structured_data() -> None:
    raw = b'<165>1 2026-11-26T06:00:00.000000Z h app 42 salesforce.login [x@32473 id="e1" n="a\\"b\\]c\\\\d"] hi'
    message = parse_message(raw, "tcp")
    assert (message.facility, message.severity) == (20, 5)
    assert (message.hostname, message.app_name, message.procid, message.msgid) == (
        "h",
        "app",
        "42",
        "salesforce.login",
    )
    assert message.structured_data == {"x@32473": {"id": "e1", "n": 'a"b]c\\d'}}
    assert message.msg == "hi"
    assert event_id(message) == "e1"


def test_keeps_rfc3164_messages_whole_and_finds_their_event_id() -> None:
    message = parse_message(b'<166>Nov  4 23:02:03 h sf-forwarder[7]: {"event": {"id": "e2"}}', "udp")
    assert message.pri == 166
    assert message.version is None
    assert event_id(message) == "e2"


def test_finds_cef_external_ids() -> None:
    message = parse_message(b"<14>1 - - - - - - CEF:0|S|P|1|c|n|3|rt=1 externalId=e3 cat=x", "tcp")
    assert event_id(message) == "e3"


async def test_records_frames_from_a_raw_tcp_client() -> None:
    async with SyslogReceiver(udp_port=None) as receiver:
        _, writer = await asyncio.open_connection(receiver.host, receiver.tcp_port)
        writer.write(b'33 <14>1 - h a - m [s@1 id="x1"] one<14>1 - h a - m [s@1 id="x2"] two\n')
        await writer.drain()
        messages = await receiver.wait_for(2)
        writer.close()
        await writer.wait_closed()
    assert [m.msg for m in messages] == ["one", "two"]
    assert receiver.unique_ids() == {"x1", "x2"}
    assert receiver.duplicates() == 0
