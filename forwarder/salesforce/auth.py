"""OAuth 2.0 for Salesforce: JWT bearer (default), client credentials, refresh token.

``Authenticator`` caches one access token, renews it before it ages out and once after a 401, and never
runs two token requests at a time. Token endpoint answers are classified here, once (STYLE.md 4).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import aiohttp
import jwt
import orjson
import structlog
from pydantic import Discriminator, Field, SecretStr, Tag

from forwarder.errors import AuthenticationError, RetryableError
from forwarder.settings import Settings, TlsConfig

log = structlog.get_logger()

Clock = Callable[[], datetime]


class JwtBearerAuth(Settings):
    type: Literal["jwt_bearer"] = "jwt_bearer"
    client_id: str = Field(description="Consumer key of the connected app / external client app.")
    username: str = Field(description="Salesforce username the integration runs as (the JWT sub).")
    private_key_file: Path = Field(description="PEM RSA private key whose certificate the app trusts.")
    audience: str | None = Field(
        None,
        description="JWT aud; default https://test.salesforce.com for sandboxes, else https://login.salesforce.com"
        " (an Experience Cloud site uses its own URL).",
    )


class ClientCredentialsAuth(Settings):
    type: Literal["client_credentials"]
    client_id: str = Field(description="Consumer key of the external client app.")
    client_secret: SecretStr = Field(description="Consumer secret (or client_secret_file).")


class RefreshTokenAuth(Settings):
    type: Literal["refresh_token"]
    client_id: str = Field(description="Consumer key of the connected app.")
    client_secret: SecretStr | None = Field(None, description="Consumer secret, if the app requires it.")
    refresh_token: SecretStr = Field(description="Refresh token (or refresh_token_file).")


def _auth_type(value: Any) -> str:
    # ``type`` may be omitted for the default and recommended flow, JWT bearer.
    if isinstance(value, dict):
        return str(value.get("type", "jwt_bearer"))
    return str(getattr(value, "type", "jwt_bearer"))


AuthConfig = Annotated[
    Annotated[JwtBearerAuth, Tag("jwt_bearer")]
    | Annotated[ClientCredentialsAuth, Tag("client_credentials")]
    | Annotated[RefreshTokenAuth, Tag("refresh_token")],
    Discriminator(_auth_type),
]


class SalesforceConfig(Settings):
    login_url: str = Field(
        "https://login.salesforce.com",
        description="Token host: login.salesforce.com, test.salesforce.com (sandbox) or a My Domain URL.",
    )
    api_version: str = Field("62.0", pattern=r"^\d{2}\.0$", description="REST/CometD API version, e.g. 62.0.")
    auth: AuthConfig = Field(description="How to obtain access tokens.")
    tls: TlsConfig = Field(default_factory=TlsConfig, description="TLS options for Salesforce endpoints.")
    token_renew_after: timedelta = Field(
        timedelta(minutes=30),
        description="Fetch a new token after this age; Salesforce token answers carry no expiry and the"
        " org's session timeout can be as short as 15 minutes of inactivity.",
    )
    api_budget_share: float = Field(
        0.8,
        gt=0,
        le=1,
        description="Pollers pause while the org's daily API usage (Sforce-Limit-Info) is above this share.",
    )


@dataclass(frozen=True)
class SalesforceSession:
    """An access token and the instance it is valid for."""

    instance_url: str
    access_token: str
    issued_at: datetime


# OAuth "error" codes after which retrying the same credentials cannot help: the operator must act.
# Source: Salesforce Help "OAuth 2.0 Token Endpoint errors" via salesforce-facts.md D3.
_FATAL_OAUTH_ERRORS = frozenset(
    {
        "invalid_grant",
        "invalid_client_id",
        "invalid_client",
        "invalid_client_credentials",
        "unsupported_grant_type",
        "invalid_request",
        "inactive_user",
        "inactive_org",
        "unauthorized_client",
    }
)


JWT_LIFETIME = timedelta(seconds=150)


def jwt_audience(login_url: str) -> str:
    """JWT ``aud`` for a login host: sandboxes use test.salesforce.com, everything else login.salesforce.com.

    Source: Salesforce Help "OAuth 2.0 JWT Bearer Flow for Server-to-Server Integration" (facts D3).
    """
    host = (urlsplit(login_url).hostname or "").lower()
    if host == "test.salesforce.com" or host.endswith(".sandbox.my.salesforce.com"):
        return "https://test.salesforce.com"
    return "https://login.salesforce.com"


def jwt_assertion(cfg: JwtBearerAuth, login_url: str, now: datetime) -> str:
    """A signed RS256 assertion. Salesforce accepts ``exp`` at most 3 minutes ahead (facts D3): 150 s
    leaves room for clock skew either way."""
    key = cfg.private_key_file.read_bytes()
    claims = {
        "iss": cfg.client_id,
        "sub": cfg.username,
        "aud": cfg.audience or jwt_audience(login_url),
        "exp": int((now + JWT_LIFETIME).timestamp()),
    }
    return jwt.encode(claims, key, algorithm="RS256")


def token_form(config: SalesforceConfig, now: datetime) -> dict[str, str]:
    """The form body of the token request for the configured grant."""
    auth = config.auth
    if isinstance(auth, JwtBearerAuth):
        return {
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "assertion": jwt_assertion(auth, config.login_url, now),
        }
    if isinstance(auth, ClientCredentialsAuth):
        return {
            "grant_type": "client_credentials",
            "client_id": auth.client_id,
            "client_secret": auth.client_secret.get_secret_value(),
        }
    form = {
        "grant_type": "refresh_token",
        "client_id": auth.client_id,
        "refresh_token": auth.refresh_token.get_secret_value(),
    }
    if auth.client_secret is not None:
        form["client_secret"] = auth.client_secret.get_secret_value()
    return form


def parse_token_response(
    status: int, body: bytes, retry_after: str | None, now: datetime
) -> SalesforceSession:
    """Classify one token endpoint answer: a session, ``AuthenticationError`` or ``RetryableError``."""
    data = _json_object(body)
    if status == 200:
        token, instance = (data or {}).get("access_token"), (data or {}).get("instance_url")
        if not isinstance(token, str) or not token or not isinstance(instance, str) or not instance:
            raise RetryableError("token endpoint answered 200 without access_token/instance_url")
        return SalesforceSession(instance.rstrip("/"), token, _issued_at(data or {}, now))
    error = str((data or {}).get("error", ""))
    description = str((data or {}).get("error_description", ""))[:200]
    if status in (400, 401, 403) and error in _FATAL_OAUTH_ERRORS:
        raise AuthenticationError(f"token request refused: {error}: {description}")
    raise RetryableError(f"token endpoint answered {status} {error}".strip(), _seconds(retry_after))


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def _issued_at(data: dict[str, Any], now: datetime) -> datetime:
    # client credentials and refresh answers carry issued_at in epoch milliseconds; JWT bearer does not.
    raw = data.get("issued_at")
    if isinstance(raw, str) and raw.isdigit():
        return datetime.fromtimestamp(int(raw) / 1000, UTC)
    return now


def _seconds(retry_after: str | None) -> float | None:
    try:
        return float(retry_after) if retry_after else None
    except ValueError:
        return None


class Authenticator:
    """Hands out a cached ``SalesforceSession``; one token request in flight at most."""

    def __init__(
        self,
        config: SalesforceConfig,
        http: aiohttp.ClientSession,
        clock: Clock = lambda: datetime.now(UTC),
    ) -> None:
        self._config = config
        self._http = http
        self._clock = clock
        self._current: SalesforceSession | None = None
        self._fetched_at: datetime | None = None
        self._lock = asyncio.Lock()
        self._ssl = config.tls.client_context("salesforce.tls")
        self.token_requests = 0

    async def session(self) -> SalesforceSession:
        """The current session, fetching a new token if none is cached or it is due for renewal.

        Raises ``RetryableError`` (endpoint down, malformed answer) or ``AuthenticationError`` (refused).
        """
        async with self._lock:
            if self._current is None or self._due():
                self._current = await self._fetch()
                self._fetched_at = self._clock()
            return self._current

    @property
    def config(self) -> SalesforceConfig:
        return self._config

    @property
    def ssl(self) -> ssl.SSLContext:
        """TLS settings for every Salesforce endpoint (token, REST, CometD), from ``salesforce.tls``."""
        return self._ssl

    def invalidate(self, access_token: str) -> None:
        """Forget ``access_token`` after a 401; the next ``session()`` fetches a new one.

        Only the token the caller saw is dropped, so many callers failing at once cause one renewal.
        """
        if self._current is not None and self._current.access_token == access_token:
            self._current = None
            log.info("salesforce_token_invalidated")

    def _due(self) -> bool:
        return self._fetched_at is None or self._clock() - self._fetched_at >= self._config.token_renew_after

    async def _fetch(self) -> SalesforceSession:
        url = self._config.login_url.rstrip("/") + "/services/oauth2/token"
        now = self._clock()
        self.token_requests += 1
        try:
            async with self._http.post(url, data=token_form(self._config, now), ssl=self._ssl) as resp:
                body = await resp.read()
                result = parse_token_response(resp.status, body, resp.headers.get("Retry-After"), now)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise RetryableError(f"token endpoint unreachable: {type(exc).__name__}") from None
        log.info("salesforce_token_issued", instance_url=result.instance_url, grant=self._config.auth.type)
        return result
