"""Alert notification sink (``type: webhook``): generic signed JSON, Slack or PagerDuty, one alert per
request. By default it takes alerts only (``route: {kinds: [alert]}``). Formats: ``generic.py``, ``slack.py``,
``pagerduty.py``; responses are classified in ``_outcome.py``; docs/webhooks.md."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from forwarder import metrics
from forwarder.errors import RetryableError
from forwarder.events import EventDoc
from forwarder.settings import TlsConfig
from sinks import Route, SinkConfig, SinkLimits
from sinks.webhook import generic, pagerduty, slack
from sinks.webhook._outcome import NoRedirectClient, raise_for_response

Format = Literal["generic", "slack", "pagerduty"]

#: Default seconds between requests. Slack: "1 per second per webhook, short bursts allowed"
#: (api.slack.com/docs/rate-limits, reference §6.2); PagerDuty: about 120 events per minute per integration
#: key (events-API-v2 05-Rate-Limits, reference §6.1); a generic endpoint states no limit.
DEFAULT_PACE = {"slack": 1.0, "pagerduty": 0.5, "generic": 0.0}
#: Standard Webhooks "Request timeouts": 15-30 s.
DEFAULT_TIMEOUT = 30.0


def _alerts_only() -> Route:
    return Route(kinds=["alert"])


class WebhookConfig(SinkConfig):
    """Where on-call alerts go: a signed JSON endpoint, a Slack incoming webhook or a PagerDuty service."""

    type: Literal["webhook"] = Field(description="Sink type.")
    format: Format = Field(description="generic (Standard Webhooks signed JSON), slack or pagerduty.")
    route: Route = Field(
        default_factory=_alerts_only,
        description="Which events this sink receives; default alerts only (kinds: [alert]), and only the "
        "rules' alerts (datasets: [salesforce.alert]) when rules run.",
    )
    url: SecretStr | None = Field(
        None,
        description="Endpoint URL. generic: required; slack: the incoming webhook URL (it is the credential, "
        "so give url_file); pagerduty: default https://events.pagerduty.com/v2/enqueue.",
    )
    secret: SecretStr | None = Field(
        None, description="generic: the signing secret, whsec_<base64 of 24-64 random bytes>."
    )
    routing_key: SecretStr | None = Field(
        None, description="pagerduty: the 32-character Events API v2 integration key."
    )
    source: str | None = Field(
        None, description="pagerduty: payload.source; default 'salesforce org <organization.id>'."
    )
    pace: float | None = Field(
        None,
        ge=0,
        le=60,
        description="Seconds between two requests; default 1 for slack (1 message/s per webhook), 0.5 for "
        "pagerduty (120 events/min per key), 0 for generic.",
    )
    timeout: float = Field(DEFAULT_TIMEOUT, gt=0, description="Seconds one request may take in total.")
    connect_timeout: float = Field(10.0, gt=0, description="Seconds to establish a connection.")
    tls: TlsConfig = Field(default_factory=TlsConfig, description="TLS client options.")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parts = urlsplit(value.get_secret_value())
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError("url: expected an http:// or https:// URL with a host")  # value not echoed
        return value

    @field_validator("secret")
    @classmethod
    def _whsec(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            generic.decode_secret(value.get_secret_value())
        return value

    @field_validator("routing_key")
    @classmethod
    def _integration_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not pagerduty.ROUTING_KEY.fullmatch(value.get_secret_value()):
            raise ValueError("routing_key: expected the 32-character integration key")
        return value

    @model_validator(mode="after")
    def _format_needs(self) -> WebhookConfig:
        needed = {"generic": ("url", "secret"), "slack": ("url",), "pagerduty": ("routing_key",)}[self.format]
        missing = [name for name in needed if getattr(self, name) is None]
        if missing:
            raise ValueError(f"format {self.format} needs {' and '.join(missing)} (or {missing[0]}_file)")
        extra = {"secret": "generic", "routing_key": "pagerduty", "source": "pagerduty"}
        for name, fmt in extra.items():
            if getattr(self, name) is not None and self.format != fmt:
                raise ValueError(f"{name} applies to format {fmt} only")
        if (self.batch.max_events or 1) != 1:
            raise ValueError("batch.max_events: webhooks carry one alert per request")
        return self

    def endpoint(self) -> str:
        """The URL requests go to."""
        if self.url is not None:
            return self.url.get_secret_value()
        return pagerduty.DEFAULT_URL

    def peer(self) -> str:
        """``<format> <scheme>://<host>:<port>``: safe to log (a Slack URL's path is the credential)."""
        parts = urlsplit(self.endpoint())
        return f"{self.format} webhook {parts.scheme}://{parts.hostname}:{_port(parts.scheme, parts.port)}"

    def min_interval(self) -> float:
        """The pacing interval in seconds."""
        return DEFAULT_PACE[self.format] if self.pace is None else self.pace


def _port(scheme: str, port: int | None) -> int:
    return port or (443 if scheme == "https" else 80)


class Pacer:
    """Spaces requests ``interval`` seconds apart, across concurrent sends. It is a bounded wait before a
    request (at most ``interval`` per queued message), not a retry: the receiver's own limit (Slack 1/s)
    is kept instead of being hit and answered with 429s."""

    def __init__(
        self,
        interval: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._interval = interval
        self._clock = clock
        self._sleep = sleep
        self._next = 0.0

    async def wait(self, name: str) -> None:
        """Return when this request's slot has come."""
        if self._interval <= 0:
            return
        now = self._clock()
        slot = max(now, self._next)
        self._next = slot + self._interval
        if slot > now:
            metrics.webhook_paced_seconds.labels(name).inc(slot - now)
            await self._sleep(slot - now)


class WebhookSink:
    """One alert per request to the configured endpoint; see the module docstring."""

    def __init__(
        self,
        config: WebhookConfig,
        client: NoRedirectClient | None = None,
        *,
        clock: Callable[[], float] = time.time,
        pacer: Pacer | None = None,
    ) -> None:
        self.config = config
        self.name = config.name
        # One alert per request: a Standard Webhooks message has one id; Slack and PagerDuty take one each.
        self.limits = SinkLimits(max_events=1, max_bytes=pagerduty.MAX_BODY_BYTES, max_wait=0.0)
        self._clock = clock
        self._pacer = pacer or Pacer(config.min_interval())
        self._key = generic.decode_secret(config.secret.get_secret_value()) if config.secret else b""
        self._what = config.peer()
        self._http = client or NoRedirectClient(
            config.tls, config.timeout, config.connect_timeout, config.concurrency
        )

    def encode(self, event: EventDoc) -> bytes:
        """The format's body for one alert (generic: with its message id in front, see generic.encode)."""
        if self.config.format == "slack":
            return slack.encode(event)
        if self.config.format == "pagerduty":
            return pagerduty.encode(event, self.config.source)
        return generic.encode(event)

    async def send(self, batch: Sequence[bytes]) -> None:
        """POST each alert (one per request, a batch is normally one); ok on the format's success answer,
        RetryableError on 408/429/5xx and transport failures, AuthRefusedError (pause, keep the alerts)
        when the endpoint refuses us or is gone, PermanentError when this alert is refused."""
        for encoded in batch:
            await self._pacer.wait(self.name)
            headers, body = self._request(encoded)  # after the wait: signed with the moment it is sent
            response = await self._http.post(self.config.endpoint(), headers, body, what=self._what)
            raise_for_response(self.config.format, response, self._what)

    def _request(self, encoded: bytes) -> tuple[dict[str, str], bytes]:
        if self.config.format == "generic":
            return generic.headers(self._key, encoded, self._clock())
        if self.config.format == "pagerduty":
            assert self.config.routing_key is not None  # the config validator requires it
            body = pagerduty.with_routing_key(encoded, self.config.routing_key.get_secret_value())
            return {"Content-Type": "application/json"}, body
        return {"Content-Type": "application/json"}, encoded

    async def check(self) -> None:
        """Readiness without sending anything: none of the three has a health endpoint, and a probe POST
        would page someone. A TCP connect (and TLS handshake, certificate checked) to the endpoint's host
        proves DNS, reachability and trust; RetryableError otherwise."""
        parts = urlsplit(self.config.endpoint())
        host, port = parts.hostname or "", _port(parts.scheme, parts.port)
        context = self.config.tls.client_context() if parts.scheme == "https" else None
        try:
            async with asyncio.timeout(self.config.connect_timeout):
                _, writer = await asyncio.open_connection(host, port, ssl=context)
            writer.close()
            await writer.wait_closed()
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            raise RetryableError(f"{self._what}: unreachable: {type(exc).__name__}") from None

    async def close(self) -> None:
        """Close the HTTP session; idempotent."""
        await self._http.close()
