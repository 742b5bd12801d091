"""Shared plumbing of the HTTP sinks: one aiohttp session with TLS and timeouts, gzip bodies, the
status -> outcome table, and ``Retry-After`` parsing. A sink makes one request per ``send``; no retries here.
"""

from __future__ import annotations

import asyncio
import io
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from urllib.parse import urlsplit

import aiohttp
from isal import isal_zlib
from multidict import CIMultiDict

from forwarder.errors import AuthenticationError, BatchTooLargeError, PermanentError, RetryableError
from forwarder.settings import TlsConfig

#: ``Retry-After`` is honoured up to this many seconds (reference §7.4: cap at 60 s).
RETRY_AFTER_CAP = 60.0
#: Bodies above this size are sent as a stream (aiohttp's TOO_LARGE_BYTES_BODY).
_STREAM_BODY_BYTES = 1 << 20
#: Server answers are kept in error messages only up to this length (they may echo payload data).
_BODY_EXCERPT = 300


class AuthRefusedError(AuthenticationError):
    """Credentials were refused (401/403). Neither retryable nor permanent on purpose: delivery keeps the
    batch and retries it with backoff while logging at ERROR, so a revoked or rotated token pauses the sink
    with its backlog buffered instead of dead-lettering it (reference §0.4; Vector drops: vector#10870)."""


class Outcome(StrEnum):
    """What a response means for the batch, decided once by a sink's table."""

    OK = "ok"
    RETRY = "retry"
    TOO_LARGE = "too_large"
    AUTH = "auth"
    PERMANENT = "permanent"


@dataclass(frozen=True, slots=True)
class Response:
    """A finished HTTP exchange: status, the headers a sink needs, and the raw body."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def excerpt(self) -> str:
        """The start of the body for error messages (never request data or credentials)."""
        return self.body[:_BODY_EXCERPT].decode("utf-8", "replace")


def http_outcome(status: int) -> Outcome:
    """The generic HTTP rule: 2xx ok; 408, 429 and 5xx except 501 retry (Vector
    ``src/sinks/util/retries.rs``, Datadog v2 table); 413 split; 401/403 pause; any other 4xx permanent."""
    if 200 <= status < 300:
        return Outcome.OK
    if status == 413:
        return Outcome.TOO_LARGE
    if status in (401, 403):
        return Outcome.AUTH
    if status in (408, 429) or (status >= 500 and status != 501):
        return Outcome.RETRY
    return Outcome.PERMANENT


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta-seconds or an HTTP-date (RFC 9110 §10.2.3),
    capped at ``RETRY_AFTER_CAP``. None when absent or unparsable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), RETRY_AFTER_CAP)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 HTTP-dates are always GMT
        when = when.replace(tzinfo=UTC)
    delay = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(delay, 0.0), RETRY_AFTER_CAP)


def raise_for(outcome: Outcome, response: Response, what: str) -> None:
    """Raise the exception of a non-OK outcome; ``what`` names the peer and is safe to log."""
    detail = f"{what}: HTTP {response.status}: {response.excerpt()}"
    if outcome is Outcome.OK:
        return
    if outcome is Outcome.RETRY:
        raise RetryableError(detail, retry_after=parse_retry_after(response.headers.get("Retry-After")))
    if outcome is Outcome.AUTH:
        raise AuthRefusedError(f"{detail} (credentials refused; check the token)")
    if outcome is Outcome.TOO_LARGE:
        raise BatchTooLargeError(detail)
    raise PermanentError(detail)


def check_http_url(value: str) -> str:
    """Config validator: an absolute http(s) URL with a host (a bare host is a common slip)."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http:// or https:// URL with a host, got {value!r}")
    return value


def gzip_body(body: bytes, level: int = 1) -> bytes:
    """gzip framing (RFC 1952) via ISA-L (levels 0-3): sinks are CPU-bound long before the network is, and
    compression was half of a sink's CPU with zlib. ISA-L level 1 runs ~6x faster than zlib level 1 on
    event JSON and compresses slightly better; any gzip reader decodes it (benchmarks/sinks.py)."""
    compressor = isal_zlib.compressobj(level, isal_zlib.DEFLATED, 31)
    return compressor.compress(body) + compressor.flush()


#: Bodies from this size on are compressed in a worker thread (ISA-L releases the GIL). Smaller ones take
#: ~1 ms or less inline, and the thread hop cost more CPU than it saved in benchmarks/sinks.py.
_THREAD_GZIP_BYTES = 8 << 20


async def gzip_off_loop(body: bytes) -> bytes:
    """``gzip_body``, in a worker thread for large bodies so the event loop keeps running."""
    if len(body) < _THREAD_GZIP_BYTES:
        return gzip_body(body)
    return await asyncio.to_thread(gzip_body, body)


class HttpClient:
    """One lazily created aiohttp session per sink. Transport failures become ``RetryableError``: the
    request may or may not have arrived, so a resend may duplicate (receivers de-duplicate on event id)."""

    def __init__(self, tls: TlsConfig, timeout: float, connect_timeout: float, max_connections: int) -> None:
        self._tls = tls
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=connect_timeout)
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(ssl=self._tls.client_context(), limit=self._max_connections)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=self._timeout, auto_decompress=True, raise_for_status=False
            )
        return self._session

    async def request(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None = None, *, what: str
    ) -> Response:
        """One request; the response body is read whole. ``what`` names the peer in errors (no secrets)."""
        # aiohttp warns that a large bytes body "might lock the event loop"; a stream is written in chunks.
        data = io.BytesIO(body) if body is not None and len(body) > _STREAM_BODY_BYTES else body
        try:
            async with self._get_session().request(method, url, data=data, headers=dict(headers)) as resp:
                return Response(resp.status, CIMultiDict(resp.headers), await resp.read())  # case-insensitive
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise RetryableError(f"{what}: {type(exc).__name__}: {_safe(exc)}") from None
        except ssl.SSLError as exc:  # wrong CA, bad client certificate: an operator must act, but keep data
            raise RetryableError(f"{what}: TLS error: {exc.reason or exc}") from None

    async def close(self) -> None:
        """Close the session; idempotent."""
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()


def _safe(exc: BaseException) -> str:
    # aiohttp errors name the host and port, never headers; keep them short anyway.
    return str(exc)[:_BODY_EXCERPT]
