"""An rsyslog-free syslog target for the demo and unit tests: an asyncio TCP (optionally TLS) and UDP listener
that splits octet-counted and LF-framed streams (RFC 6587, detected per frame like rsyslog ``imtcp``),
parses RFC 5424 messages and records them.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from collections import deque
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

import orjson

#: Frames of a connection kept unread beyond this are a framing bug, not a reason to eat memory.
_MAX_FRAME = 1_000_000


@dataclass(frozen=True, slots=True)
class SyslogMessage:
    """One received message; RFC 5424 fields are None when the message is not RFC 5424 (e.g. RFC 3164)."""

    raw: bytes
    transport: str  # "tcp", "tls" or "udp"
    pri: int | None = None
    version: str | None = None
    timestamp: str | None = None
    hostname: str | None = None
    app_name: str | None = None
    procid: str | None = None
    msgid: str | None = None
    structured_data: dict[str, dict[str, str]] = field(default_factory=dict)
    msg: str = ""

    @property
    def facility(self) -> int | None:
        """PRIVAL // 8 (RFC 5424 §6.2.1)."""
        return None if self.pri is None else self.pri // 8

    @property
    def severity(self) -> int | None:
        """PRIVAL % 8 (RFC 5424 §6.2.1)."""
        return None if self.pri is None else self.pri % 8


def split_frames(buffer: bytearray) -> list[bytes]:
    """Remove and return the complete frames at the start of ``buffer``. A frame starting with a digit is
    octet-counted (``LEN SP MSG``, RFC 6587 §3.4.1); anything else ends at LF (§3.4.2)."""
    frames: list[bytes] = []
    while buffer:
        frame = _take_frame(buffer)
        if frame is None:
            break
        frames.append(frame)
    return frames


def _take_frame(buffer: bytearray) -> bytes | None:
    if buffer[:1].isdigit():
        space = buffer.find(b" ", 0, 12)
        if space > 0 and buffer[:space].isdigit():
            end = space + 1 + int(buffer[:space])
            if len(buffer) < end:
                return None
            frame = bytes(buffer[space + 1 : end])
            del buffer[:end]
            return frame
    newline = buffer.find(b"\n")
    if newline < 0:
        return None
    frame = bytes(buffer[:newline]).rstrip(b"\r")
    del buffer[: newline + 1]
    return frame


def parse_message(raw: bytes, transport: str) -> SyslogMessage:
    """Parse RFC 5424 (``<PRI>1 TS HOST APP PROCID MSGID SD [MSG]``); other forms keep PRI and the rest."""
    text = raw.decode("utf-8", "replace")
    if not text.startswith("<") or ">" not in text[:5]:
        return SyslogMessage(raw, transport, msg=text)
    close = text.index(">")
    pri = int(text[1:close]) if text[1:close].isdigit() else None
    rest = text[close + 1 :]
    if not rest.startswith("1 "):
        return SyslogMessage(raw, transport, pri=pri, msg=rest)
    parts = rest.split(" ", 6)
    if len(parts) < 7:
        return SyslogMessage(raw, transport, pri=pri, msg=rest)
    version, timestamp, hostname, app_name, procid, msgid, tail = parts
    sd, msg = parse_structured_data(tail)
    return SyslogMessage(raw, transport, pri, version, timestamp, hostname, app_name, procid, msgid, sd, msg)


def parse_structured_data(text: str) -> tuple[dict[str, dict[str, str]], str]:
    """STRUCTURED-DATA at the start of ``text`` (NILVALUE or SD-ELEMENTs, values unescaped per RFC 5424
    §6.3.3) and the MSG after it."""
    if text.startswith("-"):
        return {}, text[2:]
    elements: dict[str, dict[str, str]] = {}
    pos = 0
    while pos < len(text) and text[pos] == "[":
        pos = _parse_element(text, pos + 1, elements)
    return elements, text[pos + 1 :] if text[pos : pos + 1] == " " else text[pos:]


def _parse_element(text: str, pos: int, out: dict[str, dict[str, str]]) -> int:
    end = pos
    while end < len(text) and text[end] not in " ]":
        end += 1
    params = out.setdefault(text[pos:end], {})
    pos = end
    while pos < len(text) and text[pos] == " ":
        equals = text.index("=", pos)
        name = text[pos + 1 : equals]
        value, pos = _parse_value(text, equals + 2)  # skip '="'
        params[name] = value
    return pos + 1  # skip ']'


def _parse_value(text: str, pos: int) -> tuple[str, int]:
    chars: list[str] = []
    while pos < len(text) and text[pos] != '"':
        if text[pos] == "\\" and pos + 1 < len(text) and text[pos + 1] in '"\\]':
            pos += 1
        chars.append(text[pos])
        pos += 1
    return "".join(chars), pos + 1  # skip the closing quote


def event_id(message: SyslogMessage) -> str | None:
    """The event id of a message from our sink: the ``id`` SD-PARAM, else ``event.id`` of a JSON MSG, else
    CEF ``externalId``."""
    for params in message.structured_data.values():
        if "id" in params:
            return params["id"]
    body = message.msg.split(": ", 1)[-1] if message.version is None else message.msg  # RFC 3164 TAG
    if body.startswith("{"):
        with contextlib.suppress(orjson.JSONDecodeError):
            value = orjson.loads(body).get("event", {}).get("id")
            return value if isinstance(value, str) else None
    found = re.search(r"(?:^|\s)externalId=(\S+)", body)
    return found.group(1) if found else None


class SyslogReceiver:
    """Listens on 127.0.0.1 (free ports by default) and records what arrives. ``ssl`` turns TCP into TLS."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        tcp_port: int = 0,
        udp_port: int | None = 0,
        ssl_context: ssl.SSLContext | None = None,
        keep: int = 10_000,
    ) -> None:
        self.host = host
        self.tcp_port = tcp_port
        self.udp_port = udp_port
        self._ssl = ssl_context
        self.messages: deque[SyslogMessage] = deque(maxlen=keep)
        self.received = 0  # every message ever received, including those no longer kept
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._ids: dict[str, int] = {}
        self._changed = asyncio.Condition()

    @property
    def tcp_address(self) -> str:
        """``tcp://`` or ``tls://`` address for a sink config."""
        return f"{'tls' if self._ssl else 'tcp'}://{self.host}:{self.tcp_port}"

    @property
    def udp_address(self) -> str:
        """``udp://`` address for a sink config."""
        return f"udp://{self.host}:{self.udp_port}"

    async def start(self) -> Self:
        """Bind and listen; the chosen ports are then in ``tcp_port`` and ``udp_port``."""
        self._server = await asyncio.start_server(self._serve, self.host, self.tcp_port, ssl=self._ssl)
        self.tcp_port = self._server.sockets[0].getsockname()[1]
        if self.udp_port is not None:
            loop = asyncio.get_running_loop()
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _UdpReceiver(self), local_addr=(self.host, self.udp_port)
            )
            self._udp = transport
            self.udp_port = transport.get_extra_info("sockname")[1]
        return self

    async def wait_for(self, count: int, timeout: float = 5.0) -> list[SyslogMessage]:  # noqa: ASYNC109 - test helper
        """The kept messages once at least ``count`` were received in total; ``TimeoutError`` otherwise."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: self.received >= count)
        return list(self.messages)

    async def wait_for_unique(self, count: int, timeout: float = 10.0) -> None:  # noqa: ASYNC109 - test helper
        """Return once ``count`` distinct event ids arrived; ``TimeoutError`` otherwise."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: len(self._ids) >= count)

    def unique_ids(self) -> set[str]:
        """Event ids received at least once (like the HTTP receivers' ``unique_ids``)."""
        return set(self._ids)

    def duplicates(self) -> int:
        """Received events beyond the first of their id."""
        return sum(n - 1 for n in self._ids.values())

    async def drop_connections(self) -> None:
        """Fault injection: close every client connection (as a receiver restart would)."""
        for writer in list(self._writers):
            writer.close()
        for writer in list(self._writers):
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()

    async def stop(self) -> None:
        """Stop listening and close every connection; idempotent."""
        if self._server is not None:
            self._server.close()
            await self.drop_connections()
            await self._server.wait_closed()
            self._server = None
        if self._udp is not None:
            self._udp.close()
            self._udp = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def record(self, raw: bytes, transport: str) -> None:
        """Parse and keep one message, waking ``wait_for``."""
        message = parse_message(raw, transport)
        key = event_id(message)
        async with self._changed:
            self.messages.append(message)
            self.received += 1
            if key is not None:
                self._ids[key] = self._ids.get(key, 0) + 1
            self._changed.notify_all()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        transport = "tls" if self._ssl else "tcp"
        buffer = bytearray()
        try:
            while chunk := await reader.read(65536):
                buffer += chunk
                for frame in split_frames(buffer):
                    await self.record(frame, transport)
                if len(buffer) > _MAX_FRAME:
                    break
        except (OSError, ssl.SSLError):
            pass  # a client that vanished or failed its handshake: keep serving the others
        finally:
            self._writers.discard(writer)
            writer.close()


class _UdpReceiver(asyncio.DatagramProtocol):
    def __init__(self, owner: SyslogReceiver) -> None:
        self._owner = owner
        self._tasks: set[asyncio.Task[None]] = set()

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        task = asyncio.get_running_loop().create_task(self._owner.record(data, "udp"))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
