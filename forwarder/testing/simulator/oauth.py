"""``POST /services/oauth2/token``: JWT bearer, client credentials and refresh token grants, and sessions.

Bodies and errors follow Salesforce Help "OAuth 2.0 JWT Bearer Flow for Server-to-Server Integration",
"OAuth 2.0 Client Credentials Flow" and the real captures in salesforce-facts.md D3.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from aiohttp import web

from forwarder.testing.simulator.faults import Faults
from forwarder.testing.simulator.responses import json_response, malformed_response

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
#: Audiences Salesforce accepts for the JWT bearer flow (Help: "aud ... https://login.salesforce.com,
#: https://test.salesforce.com, or the community URL"); the simulator's own base URL is added.
AUDIENCES = ("https://login.salesforce.com", "https://test.salesforce.com")
#: "exp ... within 3 minutes" (JWT bearer Help page): an assertion may not live longer than this.
MAX_ASSERTION_LIFETIME = timedelta(minutes=3)


@dataclass
class Session:
    token: str
    username: str
    expires_at: datetime


@dataclass(frozen=True)
class Identity:
    """The org's connected app and integration user."""

    org_id: str
    user_id: str
    username: str
    client_id: str
    client_secret: str
    public_key_pem: bytes


class OAuth:
    """Issues and checks access tokens; a token stops working after ``token_lifetime`` or on expire_all()."""

    def __init__(
        self, identity: Identity, faults: Faults, *, token_lifetime: timedelta, clock: Callable[[], datetime]
    ) -> None:
        self.identity = identity
        self.token_lifetime = token_lifetime
        self.clock = clock
        self.base_url = ""
        self.sessions: dict[str, Session] = {}
        self.refresh_token = f"5Aep861{secrets.token_urlsafe(60)}"
        self.faults = faults
        self.issued = 0

    def check(self, token: str) -> bool:
        session = self.sessions.get(token)
        return session is not None and self.clock() < session.expires_at

    def expire_all(self) -> None:
        for session in self.sessions.values():
            session.expires_at = self.clock()

    async def handle(self, request: web.Request) -> web.Response:
        if kind := self.faults.take_malformed("token"):
            return malformed_response(kind)
        form = await request.post()
        grant = str(form.get("grant_type", ""))
        fields = {k: str(v) for k, v in form.items()}
        if grant == JWT_GRANT:
            return self._jwt(fields)
        if grant == "client_credentials":
            return self._client_credentials(fields)
        if grant == "refresh_token":
            return self._refresh(fields)
        return oauth_error("unsupported_grant_type", "grant type not supported")

    async def revoke(self, request: web.Request) -> web.Response:
        """``POST /services/oauth2/revoke``: 200 when the token existed, else 400 ``invalid_token``.

        A refresh token takes its access tokens with it (Mobile SDK guide, "Revoking OAuth Tokens").
        """
        token = str((await request.post()).get("token", ""))
        if token in self.sessions:
            del self.sessions[token]
            return web.Response(status=200)
        if token and hmac.compare_digest(token, self.refresh_token):
            self.refresh_token = f"5Aep861{secrets.token_urlsafe(60)}"  # the old one is dead for good
            self.sessions.clear()
            return web.Response(status=200)
        return oauth_error("invalid_token", "invalid token")

    def _jwt(self, form: dict[str, str]) -> web.Response:
        try:
            header = jwt.get_unverified_header(form.get("assertion", ""))
            claims = jwt.decode(form.get("assertion", ""), options={"verify_signature": False})
        except jwt.PyJWTError:
            return oauth_error("invalid_grant", "invalid assertion")
        if header.get("alg") != "RS256":  # RS256 only (JWT bearer Help page)
            return oauth_error("invalid_grant", "invalid assertion")
        if claims.get("iss") != self.identity.client_id:
            return oauth_error("invalid_client_id", "client identifier invalid")
        try:
            jwt.decode(
                form["assertion"],
                self.identity.public_key_pem,
                algorithms=["RS256"],
                options={"verify_exp": False, "verify_aud": False},
            )
        except jwt.PyJWTError:
            return oauth_error("invalid_grant", "invalid assertion")
        if claims.get("aud") not in (*AUDIENCES, self.base_url):
            return oauth_error("invalid_grant", "audience is invalid")
        subject = claims.get("prn") or claims.get("sub")  # legacy ``prn`` wins if both are present
        if subject != self.identity.username:
            return oauth_error("invalid_grant", "user hasn't approved this consumer")
        return self._check_exp(claims) or self._grant(signed=False)

    def _check_exp(self, claims: dict[str, Any]) -> web.Response | None:
        try:
            exp = datetime.fromtimestamp(int(claims["exp"]), UTC)
        except (KeyError, TypeError, ValueError):
            return oauth_error("invalid_grant", "invalid assertion")
        now = self.clock()
        if exp <= now:
            return oauth_error("invalid_grant", "expired authorization code")
        if exp > now + MAX_ASSERTION_LIFETIME + timedelta(seconds=30):
            return oauth_error("invalid_grant", "invalid assertion")
        return None

    def _client_credentials(self, form: dict[str, str]) -> web.Response:
        if form.get("client_id") != self.identity.client_id:
            return oauth_error("invalid_client_id", "client identifier invalid")
        if not hmac.compare_digest(form.get("client_secret", ""), self.identity.client_secret):
            return oauth_error("invalid_client", "invalid client credentials")
        return self._grant(signed=True)

    def _refresh(self, form: dict[str, str]) -> web.Response:
        if form.get("client_id") != self.identity.client_id:
            return oauth_error("invalid_client_id", "client identifier invalid")
        if not hmac.compare_digest(form.get("refresh_token", ""), self.refresh_token):
            return oauth_error("invalid_grant", "expired access/refresh token")
        return self._grant(signed=True)

    def _grant(self, *, signed: bool) -> web.Response:
        """Success body; JWT bearer responses carry no refresh_token, issued_at or signature (facts D3)."""
        token = f"{self.identity.org_id}!{secrets.token_urlsafe(72)}"
        now = self.clock()
        self.sessions[token] = Session(token, self.identity.username, now + self.token_lifetime)
        self.issued += 1
        ident = f"{self.base_url}/id/{self.identity.org_id}/{self.identity.user_id}"
        body: dict[str, Any] = {
            "access_token": token,
            "scope": "api",
            "instance_url": self.base_url,
            "id": ident,
            "token_type": "Bearer",
        }
        if signed:
            issued_at = str(int(now.timestamp() * 1000))
            mac = hmac.new(self.identity.client_secret.encode(), (ident + issued_at).encode(), hashlib.sha256)
            body |= {"issued_at": issued_at, "signature": base64.b64encode(mac.digest()).decode()}
        return json_response(body, headers=_NO_CACHE)


_NO_CACHE = {"Cache-Control": "no-cache,must-revalidate,max-age=0,no-store,private"}


def oauth_error(error: str, description: str) -> web.Response:
    """OAuth errors: HTTP 400 ``{"error","error_description"}`` (stackexchange q/207685 capture)."""
    return json_response({"error": error, "error_description": description}, status=400, headers=_NO_CACHE)
