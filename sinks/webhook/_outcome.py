"""Webhook responses -> ok / retry / pause / permanent, one table per format over status and body code, and
the HTTP client that never follows redirects (Standard Webhooks: "3xx: Failure", and a followed POST would
carry a signed alert or a Slack message to another host)."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from urllib.parse import urlsplit

import aiohttp
import orjson
from multidict import CIMultiDict

from forwarder.errors import PermanentError, RetryableError
from sinks._http import AuthRefusedError, HttpClient, Response, http_outcome, raise_for

# Slack incoming-webhook error bodies (Slack changelog 2016-05-17 "changes to errors for incoming webhooks",
# reference §6.2). Endpoint problems pause the sink (every later alert would fail the same way, and the
# alerts must wait in the journal, not in the dead letters); message problems dead-letter that alert.
_SLACK_ENDPOINT = frozenset(
    {
        "no_service",  # 404: the webhook was revoked or removed
        "no_team",
        "team_disabled",
        "channel_not_found",  # 404
        "channel_is_archived",  # 410
        "action_prohibited",  # 403: an admin restricted posting
        "invalid_token",  # 403
        "posting_to_general_channel_denied",
    }
)
_SLACK_MESSAGE = frozenset(
    {"invalid_payload", "no_text", "invalid_blocks", "user_not_found", "too_many_attachments"}
)


class EndpointRefusedError(AuthRefusedError):
    """The endpoint is gone, moved or refuses us (Slack 404/410/403 codes, a 410 or a redirect from a generic
    endpoint, PagerDuty's invalid routing key): the sink pauses with its alerts kept, an operator must act."""


class NoRedirectClient(HttpClient):
    """``HttpClient`` whose POSTs never follow a redirect."""

    async def post(self, url: str, headers: Mapping[str, str], body: bytes, *, what: str) -> Response:
        """One POST; transport failures are RetryableError naming ``what`` only (never the URL's path)."""
        try:
            session = self._get_session()
            async with session.post(url, data=body, headers=dict(headers), allow_redirects=False) as resp:
                return Response(resp.status, CIMultiDict(resp.headers), await resp.read())
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise RetryableError(f"{what}: {type(exc).__name__}: {scrub(str(exc), url)}") from None
        except ssl.SSLError as exc:
            raise RetryableError(f"{what}: TLS error: {exc.reason or exc}") from None


def scrub(text: str, url: str) -> str:
    """``text`` without the URL's path and query (aiohttp names the whole URL in some errors, and a Slack
    webhook's path is its credential), cut to 300 characters."""
    parts = urlsplit(url)
    for private in (url, parts.path + ("?" + parts.query if parts.query else ""), parts.path):
        if private and private != "/":
            text = text.replace(private, "/[path]")
    return text[:300]


def raise_for_response(fmt: str, response: Response, what: str) -> None:
    """Raise what ``response`` means for the alert just sent; return when it was accepted."""
    if 300 <= response.status < 400:
        where = urlsplit_host(response.headers.get("Location", ""))
        raise EndpointRefusedError(f"{what}: HTTP {response.status} redirect to {where}: update the url")
    if response.status == 404:  # no such endpoint: every alert would fail alike, so keep them and pause
        raise EndpointRefusedError(f"{what}: HTTP 404 {response.excerpt()[:100]}: check the url")
    if fmt == "slack":
        _slack(response, what)
    elif fmt == "pagerduty":
        _pagerduty(response, what)
    else:
        _generic(response, what)


def urlsplit_host(location: str) -> str:
    """Only the host of a redirect target (its path may be a credential too)."""
    return urlsplit(location).hostname or "another location"


def _generic(response: Response, what: str) -> None:
    # Standard Webhooks "Delivery success and failure": 2xx success; 410 = disable the endpoint; 429, 502, 504
    # throttle; Retry-After honoured. The rest follows the HTTP sinks' table (401/403 pause, 4xx permanent).
    if response.status == 410:
        raise EndpointRefusedError(f"{what}: HTTP 410 Gone: the endpoint asked to stop receiving webhooks")
    raise_for(http_outcome(response.status), response, what)


def _slack(response: Response, what: str) -> None:
    code = response.body[:100].decode("utf-8", "replace").strip()
    if response.status == 200:
        return  # Slack answers "ok"
    if code in _SLACK_ENDPOINT or response.status in (403, 404, 410):
        detail = f"HTTP {response.status} {code or 'error'}"
        raise EndpointRefusedError(f"{what}: {detail}: fix or replace the webhook")
    if code in _SLACK_MESSAGE:
        raise PermanentError(f"{what}: HTTP {response.status} {code}")
    raise_for(http_outcome(response.status), response, what)


def _pagerduty(response: Response, what: str) -> None:
    # Events API v2 Overview, "Response Codes & Retry Logic": 202 accepted; 400 invalid, do not retry;
    # 429 and 5xx retry "after some time". A refused routing key is the operator's to fix: pause.
    if response.status == 202 or 200 <= response.status < 300:
        return
    if response.status == 400:
        errors = _pd_errors(response.body)
        if "routing" in errors.lower():
            raise EndpointRefusedError(f"{what}: HTTP 400: {errors} (check routing_key)")
        raise PermanentError(f"{what}: HTTP 400: {errors}")
    raise_for(http_outcome(response.status), response, what)


def _pd_errors(body: bytes) -> str:
    """PagerDuty's 400 body ``{"status":"invalid event","message":...,"errors":[...]}`` as one line."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:300].decode("utf-8", "replace")
    if not isinstance(parsed, dict):
        return str(parsed)[:300]
    errors = parsed.get("errors")
    listed = "; ".join(str(e) for e in errors) if isinstance(errors, list) else ""
    return (listed or str(parsed.get("message") or "invalid event"))[:300]
