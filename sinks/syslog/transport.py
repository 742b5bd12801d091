"""Syslog transports: UDP (RFC 5426), TCP (RFC 6587) and TLS (RFC 5425); RELP lives in relp.py. One
connection, opened lazily and again on the next write after any failure; every failure surfaces as
``RetryableError``, never retried here.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

import structlog

from forwarder import metrics
from forwarder.errors import RetryableError
from forwarder.settings import TlsConfig

log = structlog.get_logger()

#: How long ``probe`` waits for a TLS server to refuse a finished handshake. Under TLS 1.3 a server that
#: rejects the client certificate does so *after* the client's handshake completed (reference §3.3), so
#: only a short read shows it.
TLS_REJECT_WINDOW = 0.5
#: Address schemes, and those that run over TLS (``relp+tls``: RELP inside TLS, as librelp's tls="on").
SCHEMES = ("udp", "tcp", "tls", "relp", "relp+tls")
TLS_SCHEMES = ("tls", "relp+tls")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A parsed ``udp://``, ``tcp://``, ``tls://``, ``relp://`` or ``relp+tls://`` address."""

    scheme: str
    host: str
    port: int

    @classmethod
    def parse(cls, address: str) -> Endpoint:
        """Raises ``ValueError`` with a readable reason for anything but ``scheme://host:port``."""
        parts = urlsplit(address)
        if parts.scheme not in SCHEMES:
            raise ValueError("address must start with udp://, tcp://, tls://, relp:// or relp+tls://")
        try:
            port = parts.port
        except ValueError:
            port = None
        # No default port: 514 and 6514 are IANA's for syslog over UDP/TCP and TLS, but RELP has none
        # (rsyslog's imrelp requires `port`; its examples use 2514 and 20514), so the port is always explicit.
        if not parts.hostname or port is None or port == 0:
            raise ValueError("address must be scheme://host:port with a port in 1..65535")
        if parts.path not in ("", "/") or parts.query or parts.username:
            raise ValueError("address takes no path, query or credentials")
        return cls(parts.scheme, parts.hostname, port)

    @property
    def tls(self) -> bool:
        """True for the schemes that run over TLS."""
        return self.scheme in TLS_SCHEMES

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


class Transport(Protocol):
    """What the sink needs from a connection."""

    async def write(self, frames: Sequence[bytes]) -> None:
        """Write every frame; ``RetryableError`` if the connection failed (it is reopened next time)."""
        ...

    async def probe(self) -> None:
        """Raise ``RetryableError`` when the peer cannot be reached (or refuses our TLS identity)."""
        ...

    async def close(self) -> None:
        """Close the connection cleanly; idempotent."""
        ...


def client_ssl_context(tls: TlsConfig, where: str) -> ssl.SSLContext:
    """TLS client context for syslog (RFC 5425 §4.2: TLS 1.2 at least); see ``TlsConfig.client_context``."""
    return tls.client_context(where)


class StreamTransport:
    """TCP or TLS: the frames of one batch go out in one write on a persistent connection."""

    def __init__(
        self,
        sink: str,
        endpoint: Endpoint,
        context: ssl.SSLContext | None,
        connect_timeout: float,
        write_timeout: float,
    ) -> None:
        self._sink = sink
        self._endpoint = endpoint
        self._context = context
        self._connect_timeout = connect_timeout
        self._write_timeout = write_timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        # One connection carries one batch at a time, even with `concurrency` > 1: batches never interleave
        # and a failed connection is replaced once, not by every sender at the same moment.
        self._lock = asyncio.Lock()

    async def write(self, frames: Sequence[bytes]) -> None:
        async with self._lock:
            writer = await self._connection()
            try:
                writer.write(b"".join(frames))
                async with asyncio.timeout(self._write_timeout):
                    await writer.drain()
            except OSError as exc:  # reset, broken pipe, timeout (TimeoutError is an OSError)
                await self._abort()
                why = describe_error(exc)
                raise RetryableError(f"syslog write to {self._endpoint} failed: {why}") from None

    async def probe(self) -> None:
        # A live, quiet connection is proof enough (a server refusing our TLS identity would have closed
        # it); otherwise a fresh connection, and for TLS a short wait for a post-handshake refusal.
        current = self._writer
        if current is not None and not current.is_closing() and peer_is_quiet(current):
            return
        reader, writer = await self._open()
        try:
            if self._context is not None:
                await _await_tls_refusal(reader, self._endpoint)
        finally:
            await close_quietly(writer)

    async def close(self) -> None:
        async with self._lock:
            writer, self._reader, self._writer = self._writer, None, None
            if writer is not None:
                await close_quietly(writer)

    async def _connection(self) -> asyncio.StreamWriter:
        # A peer that closed its side (restart, idle timeout) is noticed here, before the write, because
        # TCP would accept one more write into the void. rsyslog's own TCP sender does the same peek right
        # before send() (rsyslog runtime/nsd_ptcp.c CheckConnection, recv(MSG_DONTWAIT | MSG_PEEK)).
        if self._writer is not None and self._reader is not None:
            if not self._writer.is_closing() and not self._reader.at_eof() and peer_is_quiet(self._writer):
                return self._writer
            await self._abort()
        self._reader, self._writer = await self._open()
        return self._writer

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        server_hostname = self._endpoint.host if self._context is not None else None
        try:
            async with asyncio.timeout(self._connect_timeout):
                pair = await asyncio.open_connection(
                    self._endpoint.host,
                    self._endpoint.port,
                    ssl=self._context,
                    server_hostname=server_hostname,
                )
        except OSError as exc:  # refused, unreachable, TLS handshake or verification failure, timeout
            metrics.syslog_connections.labels(self._sink, "failed").inc()
            why = describe_error(exc)
            log.warning("syslog_connect_failed", sink=self._sink, address=str(self._endpoint), error=why)
            raise RetryableError(f"cannot connect to {self._endpoint}: {why}") from None
        metrics.syslog_connections.labels(self._sink, "opened").inc()
        log.info("syslog_connected", sink=self._sink, address=str(self._endpoint))
        return pair

    async def _abort(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.transport.abort()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


class DatagramTransport:
    """UDP: one datagram per message, no framing (RFC 5426 §3.1). Best effort by nature: a refused port
    (ICMP) is only reported on a later send, and then raised as retryable."""

    def __init__(self, endpoint: Endpoint) -> None:
        self._endpoint = endpoint
        self._transport: asyncio.DatagramTransport | None = None
        self._protocol: _UdpProtocol | None = None

    async def write(self, frames: Sequence[bytes]) -> None:
        transport, protocol = await self._connection()
        for frame in frames:
            transport.sendto(frame)
        self._raise_pending(protocol)

    async def probe(self) -> None:
        _, protocol = await self._connection()
        self._raise_pending(protocol)

    async def close(self) -> None:
        transport, self._transport, self._protocol = self._transport, None, None
        if transport is not None:
            transport.close()

    async def _connection(self) -> tuple[asyncio.DatagramTransport, _UdpProtocol]:
        if self._transport is not None and self._protocol is not None:
            self._raise_pending(self._protocol)
            return self._transport, self._protocol
        loop = asyncio.get_running_loop()
        try:
            transport, protocol = await loop.create_datagram_endpoint(
                _UdpProtocol, remote_addr=(self._endpoint.host, self._endpoint.port)
            )
        except OSError as exc:
            raise RetryableError(f"cannot open {self._endpoint}: {describe_error(exc)}") from None
        self._transport, self._protocol = transport, protocol
        return transport, protocol

    def _raise_pending(self, protocol: _UdpProtocol) -> None:
        if protocol.error is None:
            return
        error, protocol.error = protocol.error, None
        if self._transport is not None:
            self._transport.close()
        self._transport = self._protocol = None
        raise RetryableError(f"syslog datagram to {self._endpoint} failed: {describe_error(error)}")


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.error: OSError | None = None

    def error_received(self, exc: Exception) -> None:
        if isinstance(exc, OSError):
            self.error = exc


def peer_is_quiet(writer: asyncio.StreamWriter) -> bool:
    """True when the peer has sent nothing: a syslog receiver never talks, so pending bytes or EOF in the
    kernel buffer mean it closed or is closing (an EOF the event loop has not processed yet). Peeking on a
    duplicate of the socket leaves asyncio's own reads undisturbed."""
    sock = writer.get_extra_info("socket")
    if sock is None:
        return False
    try:
        with sock.dup() as peek:
            peek.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False


async def _await_tls_refusal(reader: asyncio.StreamReader, endpoint: Endpoint) -> None:
    """A syslog server never sends application data, so anything but silence within the window (an alert
    such as ``certificate required``, or EOF) means it refused the session."""
    try:
        async with asyncio.timeout(TLS_REJECT_WINDOW):
            await reader.read(1)
    except TimeoutError:
        return
    except OSError as exc:
        raise RetryableError(f"{endpoint} refused the TLS session: {describe_error(exc)}") from None
    raise RetryableError(f"{endpoint} closed the TLS session right after the handshake")


async def close_quietly(writer: asyncio.StreamWriter) -> None:
    # A clean close sends TLS close_notify; without it rsyslog logs "TLS connection was non-properly
    # terminated" (reference §3.3). gtls never answers close_notify, hence the suppressed errors.
    writer.close()
    with contextlib.suppress(OSError, TimeoutError):
        async with asyncio.timeout(1.0):
            await writer.wait_closed()


def describe_error(exc: BaseException) -> str:
    """A short, secret-free description of a socket or TLS failure."""
    if isinstance(exc, ssl.SSLError):
        return f"{type(exc).__name__}: {exc.reason or exc}"
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc.strerror or exc}" if isinstance(exc, OSError) else type(exc).__name__
