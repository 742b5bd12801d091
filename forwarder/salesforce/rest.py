"""Salesforce REST: SOQL query + queryMore, streamed LogFile download, and the one error table.

Every answer is classified here (STYLE.md 4): ``RetryableError`` (rate limit, unavailable, expired session,
malformed 2xx), ``SalesforceApiError`` (a ``PermanentError`` carrying ``status`` and ``error_code``).
``Sforce-Limit-Info`` feeds a metric and the API budget guard pollers call before each poll.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
import structlog

from forwarder import metrics
from forwarder.errors import PermanentError, RetryableError
from forwarder.salesforce.auth import Authenticator, SalesforceSession

log = structlog.get_logger()

Sleep = Callable[[float], Awaitable[None]]

# Sforce-Limit-Info: api-usage=10018/100000 (Limit Info Header, REST API Developer Guide; facts D2).
_LIMIT_RE = re.compile(r"api-usage=(\d+)/(\d+)")

# Statuses that mean "try again later" (facts D2: 420/502 Salesforce Edge, 503 maintenance; 500 is used
# for QUERY_TIMEOUT; 429 by proxies in front of an org).
_RETRYABLE_STATUS = frozenset({420, 429, 500, 502, 503, 504})
# 403 REQUEST_LIMIT_EXCEEDED is the daily/concurrent API limit (facts D2): wait, do not give up.
_RATE_LIMIT_CODES = frozenset({"REQUEST_LIMIT_EXCEEDED", "CONCURRENT_REQUEST_LIMIT_EXCEEDED"})
_RATE_LIMIT_WAIT = 60.0
# A queryMore locator that expired (15 minutes idle) or was evicted: re-running the query is the cure
# (SOQL and SOSL Reference, "Query More Results"; errorCode INVALID_QUERY_LOCATOR).
_RESTART_CODES = frozenset({"INVALID_QUERY_LOCATOR"})
# Salesforce rejects URIs over 16,384 bytes with 414 (facts D2); we refuse to send them at all.
MAX_URI_BYTES = 16_384
# Queries answer within 120 s or time out server-side (QUERY_TIMEOUT). A LogFile body can take many
# minutes to drain at journal speed, so downloads have no total limit, only a per-read one.
QUERY_TIMEOUT = aiohttp.ClientTimeout(total=180, sock_connect=30)
DOWNLOAD_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=180)


class SalesforceApiError(PermanentError):
    """Salesforce refused the request for good: ``status`` and ``error_code`` (e.g. ``INVALID_FIELD``)."""

    def __init__(self, status: int, error_code: str, message: str) -> None:
        self.status = status
        self.error_code = error_code
        super().__init__(f"{status} {error_code}: {message}"[:300])


class RateLimitedError(RetryableError):
    """The org is over its API request limit (403 REQUEST_LIMIT_EXCEEDED): every request would fail."""


@dataclass(frozen=True)
class ApiUsage:
    """The org's daily API usage from the last ``Sforce-Limit-Info`` header."""

    used: int
    limit: int

    @property
    def share(self) -> float:
        return self.used / self.limit if self.limit else 0.0


def parse_limit_info(header: str | None) -> ApiUsage | None:
    """``api-usage=135/5000`` -> ApiUsage(135, 5000); None when absent or unreadable."""
    match = _LIMIT_RE.search(header or "")
    return ApiUsage(int(match[1]), int(match[2])) if match else None


def error_code(body: bytes) -> tuple[str, str]:
    """The first ``errorCode`` and ``message`` of a Salesforce error array (facts D2), or ("", "")."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "", ""
    if isinstance(data, list) and data and isinstance(data[0], dict):
        return str(data[0].get("errorCode", "")), str(data[0].get("message", ""))
    return "", ""


def classify(status: int, body: bytes, retry_after: str | None) -> Exception:
    """The error for a non-2xx answer, by status and ``errorCode`` (never by message text)."""
    code, message = error_code(body)
    hint = _seconds(retry_after)
    if status in _RETRYABLE_STATUS:
        return RetryableError(f"salesforce answered {status} {code}".strip(), hint)
    if status == 403 and code in _RATE_LIMIT_CODES:
        return RateLimitedError(f"salesforce rate limit: {code}", hint or _RATE_LIMIT_WAIT)
    if status == 401:
        return RetryableError(f"salesforce session refused: {code or 401}", hint)
    if code in _RESTART_CODES:
        return RetryableError(f"query locator no longer valid: {code}", hint)
    return SalesforceApiError(status, code or "HTTP_ERROR", message)


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def query_page(body: bytes) -> tuple[list[dict[str, Any]], str | None]:
    """Records and ``nextRecordsUrl`` of one query answer; a malformed 2xx is retryable (facts D1)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise RetryableError("malformed query answer: not JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("records"), list):
        raise RetryableError("malformed query answer: no records array")
    records = data["records"]
    if not all(isinstance(r, dict) for r in records):
        raise RetryableError("malformed query answer: a record is not an object")
    next_url = data.get("nextRecordsUrl")
    if data.get("done") is False and not isinstance(next_url, str):
        raise RetryableError("malformed query answer: not done but no nextRecordsUrl")
    return records, next_url if isinstance(next_url, str) and data.get("done") is False else None


class RestClient:
    """One org's REST API over one aiohttp session."""

    def __init__(
        self,
        auth: Authenticator,
        http: aiohttp.ClientSession,
        api_version: str,
        *,
        budget_share: float | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._auth = auth
        self._http = http
        self.api_version = api_version
        # Default: the share configured with the org (SalesforceConfig.api_budget_share).
        self.budget_share = auth.config.api_budget_share if budget_share is None else budget_share
        self.usage: ApiUsage | None = None
        self.requests = 0
        self._sleep = sleep

    @property
    def data_path(self) -> str:
        return f"/services/data/v{self.api_version}"

    async def query(self, soql: str) -> AsyncIterator[dict[str, Any]]:
        """Every record of ``soql``, following ``nextRecordsUrl`` (queryMore) page by page.

        The ``attributes`` key is kept as Salesforce sent it. Raises ``RetryableError`` or
        ``SalesforceApiError`` from the error table; a caller retrying restarts the query.
        """
        path: str | None = f"{self.data_path}/query?q={quote(soql, safe='')}"
        while path is not None:
            body = await self.get_bytes(path)
            records, path = query_page(body)
            for record in records:
                yield record

    async def get_bytes(self, path: str) -> bytes:
        """GET ``path`` (instance-relative) and return the body of a 2xx answer."""
        try:
            async with self._request(path, {}, QUERY_TIMEOUT) as resp:
                return await resp.read()
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, TimeoutError) as exc:
            raise RetryableError(f"salesforce answer broke off: {type(exc).__name__}") from None

    async def stream_log_file(self, path: str, chunk_size: int = 256 * 1024) -> AsyncIterator[bytes]:
        """The LogFile body at ``path`` as decoded (un-gzipped) byte chunks, never whole in memory.

        We ask for gzip: Salesforce recommends compression for large log files (facts A3). A connection
        reset mid-body raises ``RetryableError``; the caller resumes by rows, not bytes.
        """
        headers = {"Accept-Encoding": "gzip"}
        try:
            async with self._request(path, headers, DOWNLOAD_TIMEOUT) as resp:
                async for chunk in resp.content.iter_chunked(chunk_size):
                    yield chunk
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, TimeoutError) as exc:
            raise RetryableError(f"log file download broke off: {type(exc).__name__}") from None

    def _request(self, path: str, headers: dict[str, str], timeout: aiohttp.ClientTimeout) -> _Request:
        return _Request(self, path, headers, timeout)

    async def _send(
        self, path: str, headers: dict[str, str], limits: aiohttp.ClientTimeout
    ) -> aiohttp.ClientResponse:
        """Send with the current token; again with a fresh one after a 401 INVALID_SESSION_ID (facts D2)."""
        for attempt in range(2):
            session = await self._auth.session()
            resp = await self._get(session, path, headers, limits)
            if resp.status != 401 or attempt == 1:
                return resp
            resp.release()
            self._auth.invalidate(session.access_token)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _get(
        self, session: SalesforceSession, path: str, headers: dict[str, str], limits: aiohttp.ClientTimeout
    ) -> aiohttp.ClientResponse:
        url = session.instance_url + path
        if len(url.encode()) > MAX_URI_BYTES:
            raise SalesforceApiError(414, "URI_TOO_LONG", f"request URI of {len(url)} bytes not sent")
        self.requests += 1
        try:
            auth_header = {"Authorization": f"Bearer {session.access_token}"}
            resp = await self._http.get(
                url, headers={**auth_header, **headers}, ssl=self._auth.ssl, timeout=limits
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            metrics.salesforce_api_requests.labels(outcome="unreachable").inc()
            raise RetryableError(f"salesforce unreachable: {type(exc).__name__}") from None
        self._note_usage(resp.headers.get("Sforce-Limit-Info"))
        return resp

    async def _check(self, resp: aiohttp.ClientResponse) -> None:
        if 200 <= resp.status < 300:
            metrics.salesforce_api_requests.labels(outcome="ok").inc()
            return
        try:
            body = await resp.read()
        except (aiohttp.ClientError, TimeoutError):
            body = b""
        finally:
            resp.release()
        error = classify(resp.status, body, resp.headers.get("Retry-After"))
        outcome = "retryable" if isinstance(error, RetryableError) else "permanent"
        metrics.salesforce_api_requests.labels(outcome=outcome).inc()
        raise error

    def _note_usage(self, header: str | None) -> None:
        usage = parse_limit_info(header)
        if usage is not None:
            self.usage = usage
            metrics.salesforce_api_usage_ratio.set(usage.share)

    def over_budget(self) -> bool:
        """True while the last known daily API usage is at or above the configured share."""
        return self.usage is not None and self.usage.share >= self.budget_share

    async def budget_gate(self, source: str, recheck: float = 300.0) -> None:
        """Wait while over the API budget, re-reading usage from ``/limits`` every ``recheck`` seconds.

        Pollers call this before each poll, so they pause (and say so once) instead of eating the org's
        daily request allowance that other integrations need.
        """
        if not self.over_budget():
            return
        assert self.usage is not None
        log.warning("api_budget_paused", source=source, used=self.usage.used, limit=self.usage.limit,
                    share=self.budget_share)
        while self.over_budget():
            await self._sleep(recheck)
            try:
                await self.get_bytes(f"{self.data_path}/limits")
            except (RetryableError, PermanentError):
                continue
        log.info("api_budget_resumed", source=source)


class _Request:
    """``async with`` wrapper: send, classify, and always release the connection."""

    def __init__(
        self, client: RestClient, path: str, headers: dict[str, str], timeout: aiohttp.ClientTimeout
    ) -> None:
        self._client, self._path, self._headers, self._timeout = client, path, headers, timeout
        self._resp: aiohttp.ClientResponse | None = None

    async def __aenter__(self) -> aiohttp.ClientResponse:
        self._resp = await self._client._send(self._path, self._headers, self._timeout)
        await self._client._check(self._resp)
        return self._resp

    async def __aexit__(self, *exc: object) -> None:
        if self._resp is not None:
            self._resp.release()
