"""The RELP transport against a tiny RELP server written here (asyncio, real loopback sockets): a batch
returns only after every 200, the window bounds what is in flight, and refusals, serverclose, TXNR
mismatches, split frames, garbage and silence all end as a retryable error naming the cause, never a hang.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from structlog.testing import capture_logs

from forwarder.errors import RetryableError
from forwarder.testing.receivers import sample_event
from sinks.syslog import SyslogConfig, SyslogSink
from sinks.syslog.relp import (
    MAX_TXNR,
    OFFERS,
    Frame,
    FrameParser,
    RelpProtocolError,
    encode_frame,
    next_txnr,
    parse_offers,
    parse_response,
)

SERVER_OFFERS = b"relp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog"

#: What the server writes back for one received frame: raw bytes (possibly several frames or garbage).
Answer = Callable[["RelpServer", Frame], bytes]


def standard_answer(server: RelpServer, frame: Frame) -> bytes:
    """librelp's answers: open -> 200 OK + offers, syslog -> 200 OK, close -> 200 OK."""
    if frame.command == "open":
        return encode_frame(frame.txnr, b"rsp", b"200 OK\n" + server.offers)
    return encode_frame(frame.txnr, b"rsp", b"200 OK")


class RelpServer:
    """A RELP server for one test: records every frame, answers through ``answer`` (replaceable), can hold
    its answers back per read (to observe the client's window) or write them one byte at a time."""

    def __init__(self, answer: Answer = standard_answer) -> None:
        self.answer = answer
        self.offers = SERVER_OFFERS
        self.frames: list[Frame] = []
        self.sessions = 0
        self.max_in_flight = 0
        self.bytewise = False
        self.greeting = b""  # written on connect, before anything is read (a non-RELP peer)
        self.close_after: int | None = None  # close the connection after this many syslog frames
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()

    @property
    def messages(self) -> list[bytes]:
        return [f.data for f in self.frames if f.command == "syslog"]

    @property
    def address(self) -> str:
        assert self._server is not None
        return f"relp://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._session, "127.0.0.1", 0)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in self._writers:
                writer.close()
            await asyncio.gather(*self._handlers)
            await self._server.wait_closed()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.sessions += 1
        self._writers.add(writer)
        if (task := asyncio.current_task()) is not None:
            self._handlers.add(task)
        parser = FrameParser()
        writer.write(self.greeting)
        try:
            while data := await reader.read(65536):
                frames = parser.feed(data)
                self.frames += frames
                self.max_in_flight = max(self.max_in_flight, sum(f.command == "syslog" for f in frames))
                if await self._answer_all(frames, writer):
                    break
        except (ConnectionError, RelpProtocolError):
            pass
        finally:
            writer.close()

    async def _answer_all(self, frames: list[Frame], writer: asyncio.StreamWriter) -> bool:
        out = b"".join(self.answer(self, f) for f in frames)
        for chunk in [out[i : i + 1] for i in range(len(out))] if self.bytewise else [out]:
            writer.write(chunk)
            await writer.drain()
        return self.close_after is not None and len(self.messages) >= self.close_after


@pytest.fixture
async def server() -> AsyncIterator[RelpServer]:
    relp = RelpServer()
    await relp.start()
    yield relp
    await relp.stop()


def make_sink(address: str, **fields: Any) -> SyslogSink:
    config = {"type": "syslog", "name": "relp-t", "address": address, "connect_timeout": 2, **fields}
    return SyslogSink(SyslogConfig.model_validate(config))


def batch(sink: SyslogSink, n: int, start: int = 0) -> list[bytes]:
    return [sink.encode(sample_event(i)) for i in range(start, start + n)]


async def test_a_batch_returns_after_every_message_was_acknowledged(server: RelpServer) -> None:
    sink = make_sink(server.address)
    frames = batch(sink, 20)
    await sink.send(frames)
    assert server.messages == frames  # every message arrived, in order, before send returned
    assert [f.txnr for f in server.frames] == list(range(1, 22))  # open is TXNR 1, then 2..21
    assert server.frames[0] == Frame(1, "open", OFFERS)
    await sink.close()
    assert server.frames[-1] == Frame(22, "close", b"")
    assert server.sessions == 1


async def test_messages_go_unframed_as_the_command_data(server: RelpServer) -> None:
    sink = make_sink(server.address, framing="lf")  # framing is irrelevant for RELP
    event = sample_event(1)
    event["user"]["name"] = "line1\nline2"  # LF framing would have replaced it; RELP keeps it
    await sink.send([sink.encode(event)])
    await sink.close()
    assert server.messages[0] == sink.message(event)
    assert server.messages[0].startswith(b"<")
    assert b'user="line1\nline2"' in server.messages[0]


async def test_no_more_than_the_window_is_in_flight(server: RelpServer) -> None:
    sink = make_sink(server.address, relp_window=4)
    await sink.send(batch(sink, 30))
    await sink.close()
    assert len(server.messages) == 30
    assert server.max_in_flight == 4  # the server answers per read: a client ignoring the window shows 30


async def test_a_refused_message_fails_the_batch_with_the_servers_text(server: RelpServer) -> None:
    def refuse_third(srv: RelpServer, frame: Frame) -> bytes:
        if frame.command == "syslog" and frame.txnr == 4:  # the third message (open is TXNR 1)
            return encode_frame(frame.txnr, b"rsp", b"500 queue full, try again later")
        return standard_answer(srv, frame)

    server.answer = refuse_third
    sink = make_sink(server.address)
    with (
        capture_logs() as logs,
        pytest.raises(RetryableError, match="refused 1 of 5 messages: 500 queue full"),
    ):
        await sink.send(batch(sink, 5))
    assert "evt-" not in str(logs)  # never the message contents in logs
    server.answer = standard_answer
    await sink.send(batch(sink, 5))  # the delivery layer's retry: the session is still good
    await sink.close()
    assert len(server.messages) == 10
    assert server.sessions == 1


async def test_serverclose_mid_batch_is_retryable_and_the_retry_opens_a_fresh_session(
    server: RelpServer,
) -> None:
    def serverclose_after_two(srv: RelpServer, frame: Frame) -> bytes:
        if frame.command == "syslog" and len(srv.messages) == 2:
            return standard_answer(srv, frame) + b"0 serverclose 0\n"
        return standard_answer(srv, frame)

    server.answer = serverclose_after_two
    server.close_after = 2
    sink = make_sink(server.address, relp_window=1)
    frames = batch(sink, 6)
    with pytest.raises(RetryableError, match="serverclose"):
        await sink.send(frames)
    server.answer, server.close_after = standard_answer, None
    await sink.send(frames)
    await sink.close()
    assert server.sessions == 2
    second_session = server.frames[[f.command for f in server.frames].index("open", 1) :]
    assert [f.txnr for f in second_session] == list(range(1, 9))  # TXNR restarts at 1
    assert server.messages[2:] == frames  # at-least-once: the two acknowledged ones came twice


async def test_a_session_the_server_closed_while_idle_is_replaced_before_the_next_batch(
    server: RelpServer,
) -> None:
    server.answer = lambda srv, f: standard_answer(srv, f) + (b"0 serverclose 0\n" if f.txnr == 3 else b"")
    server.close_after = 2
    sink = make_sink(server.address)
    await sink.send(batch(sink, 2))  # answered, then the server hints serverclose and hangs up
    server.answer, server.close_after = standard_answer, None
    await sink.send(batch(sink, 2, start=2))  # no error: a new session, not a write into the old one
    await sink.close()
    assert server.sessions == 2
    assert len(server.messages) == 4


async def test_a_connection_lost_before_the_acks_is_retryable(server: RelpServer) -> None:
    server.answer = lambda srv, f: b"" if f.command == "syslog" else standard_answer(srv, f)
    server.close_after = 3
    sink = make_sink(server.address)
    with pytest.raises(RetryableError, match="closed the connection"):
        await sink.send(batch(sink, 3))
    await sink.close()


async def test_answers_split_into_single_bytes_are_reassembled(server: RelpServer) -> None:
    server.bytewise = True
    sink = make_sink(server.address)
    await sink.send(batch(sink, 5))
    await sink.close()
    assert len(server.messages) == 5


async def test_an_rsp_with_the_wrong_txnr_ends_the_session(server: RelpServer) -> None:
    def off_by_one(srv: RelpServer, frame: Frame) -> bytes:
        if frame.command == "syslog":
            return encode_frame(frame.txnr + 1, b"rsp", b"200 OK")
        return standard_answer(srv, frame)

    server.answer = off_by_one
    sink = make_sink(server.address)
    with pytest.raises(RetryableError, match=r"rsp for TXNR 3, expected 2"):
        await sink.send(batch(sink, 2))
    await sink.close()


@pytest.mark.parametrize(
    "greeting",
    [b"HTTP/1.1 400 Bad Request\r\n\r\n", b"\x16\x03\x01\x02\x00", b"1 rsp 999999 ", b"1 rsp 5 200 OKX"],
    ids=["http", "tls_record", "oversized_frame", "no_trailer"],
)
async def test_a_peer_speaking_garbage_is_a_clear_retryable_error(
    server: RelpServer, greeting: bytes
) -> None:
    server.greeting = greeting
    sink = make_sink(server.address)
    async with asyncio.timeout(5):
        with pytest.raises(RetryableError, match="cannot open a RELP session") as caught:
            await sink.send(batch(sink, 1))
    assert any(why in str(caught.value) for why in ("not a RELP frame", "bytes, more than", "no LF trailer"))
    assert server.messages == []


async def test_a_silent_peer_times_out_instead_of_hanging(server: RelpServer) -> None:
    server.answer = lambda srv, f: b""
    sink = make_sink(server.address, connect_timeout=0.2)
    with pytest.raises(RetryableError, match="timed out"):
        await sink.check()


async def test_acks_that_never_come_fail_the_batch_after_write_timeout(server: RelpServer) -> None:
    server.answer = lambda srv, f: b"" if f.command == "syslog" else standard_answer(srv, f)
    sink = make_sink(server.address, write_timeout=0.2)
    with pytest.raises(RetryableError, match="no acknowledgement in time"):
        await sink.send(batch(sink, 3))
    server.answer = standard_answer
    await sink.send(batch(sink, 3))  # a fresh session: the old one cannot be trusted any more
    await sink.close()
    assert server.sessions == 2


async def test_a_refused_open_fails_the_health_check_with_the_servers_text(server: RelpServer) -> None:
    server.answer = lambda srv, f: encode_frame(
        f.txnr, b"rsp", b"500 required command not supported by client"
    )
    sink = make_sink(server.address)
    with pytest.raises(RetryableError, match="refused the session: 500 required command not supported"):
        await sink.check()


async def test_a_server_without_the_syslog_command_is_refused(server: RelpServer) -> None:
    server.offers = b"relp_version=0\ncommands="
    sink = make_sink(server.address)
    with pytest.raises(RetryableError, match="does not accept the syslog command"):
        await sink.check()


async def test_the_health_check_opens_the_session_the_next_batch_uses(server: RelpServer) -> None:
    sink = make_sink(server.address)
    await sink.check()
    await sink.check()
    await sink.send(batch(sink, 2))
    await sink.close()
    await sink.close()
    assert server.sessions == 1
    assert [f.command for f in server.frames] == ["open", "syslog", "syslog", "close"]


async def test_an_unreachable_server_is_retryable(server: RelpServer) -> None:
    address = server.address
    await server.stop()
    sink = make_sink(address)
    with pytest.raises(RetryableError, match="cannot open a RELP session"):
        await sink.send(batch(sink, 1))


def test_txnr_wraps_to_one_after_999_999_999() -> None:
    assert next_txnr(1) == 2
    assert next_txnr(MAX_TXNR - 1) == MAX_TXNR
    assert next_txnr(MAX_TXNR) == 1


def test_frames_encode_as_the_spec_shows() -> None:
    assert encode_frame(1, b"syslog", b"<14>1 - - - - - - hi") == b"1 syslog 20 <14>1 - - - - - - hi\n"
    assert encode_frame(7, b"close", b"") == b"7 close 0\n"  # no SP, no DATA when DATALEN is 0


def test_responses_and_offers_parse_like_librelp() -> None:
    rsp = parse_response(b"200 OK\n" + SERVER_OFFERS)
    assert (rsp.code, rsp.text) == (200, "OK")
    assert parse_offers(rsp.body) == {
        "relp_version": ["0"],
        "relp_software": ["librelp", "1.11.0", "http://librelp.adiscon.com"],
        "commands": ["syslog"],
    }
    assert parse_response(b"500 bad\x07 text").text == "bad  text"
    with pytest.raises(RelpProtocolError):
        parse_response(b"OK")


frame_strategy = st.builds(
    Frame,
    st.integers(0, MAX_TXNR),
    st.sampled_from(["rsp", "syslog", "serverclose", "open"]),
    st.binary(max_size=300),
)


@given(st.lists(frame_strategy, max_size=8), st.lists(st.integers(1, 50), max_size=20))
def test_frames_split_anywhere_parse_back_unchanged(frames: list[Frame], cuts: list[int]) -> None:
    wire = b"".join(encode_frame(f.txnr, f.command.encode(), f.data) for f in frames)
    parser, parsed, at = FrameParser(), [], 0
    for size in [*cuts, len(wire)]:
        parsed += parser.feed(wire[at : at + size])
        at += size
    assert parsed == frames


@given(st.lists(st.binary(max_size=80), max_size=6))
def test_any_bytes_give_frames_or_a_protocol_error_never_anything_else(chunks: list[bytes]) -> None:
    parser = FrameParser(max_datalen=64)
    try:
        for chunk in chunks:
            for frame in parser.feed(chunk):
                assert 0 <= frame.txnr <= MAX_TXNR
                assert len(frame.data) <= 64
    except RelpProtocolError:
        pass


@pytest.mark.parametrize(
    "wire",
    [b"x rsp 0\n", b"1234567890 rsp 0\n", b"1 rsp 0 \n", b"1 r$p 0\n", b"1 rsp 3\n", b"1 rsp 2 abc\n"],
)
def test_malformed_frames_are_protocol_errors(wire: bytes) -> None:
    with pytest.raises(RelpProtocolError):
        FrameParser().feed(wire)


def test_relp_addresses_and_options_are_validated() -> None:
    with pytest.raises(ValidationError, match="scheme://host:port"):
        make_sink("relp://127.0.0.1")  # RELP has no standard port
    for window in (0, 1025):
        with pytest.raises(ValidationError, match="relp_window"):
            make_sink("relp://127.0.0.1:2514", relp_window=window)
    tls = {"cert_file": "/c.pem", "key_file": "/k.pem"}
    with pytest.raises(ValidationError, match="not tls:// or relp\\+tls://"):
        make_sink("relp://127.0.0.1:2514", tls=tls)
    config = {"type": "syslog", "name": "x", "address": "relp+tls://h:2514", "tls": tls}
    assert SyslogConfig.model_validate(config).endpoint.tls
