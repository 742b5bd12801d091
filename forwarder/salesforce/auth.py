"""OAuth 2.0 for Salesforce: JWT bearer (default), client credentials, refresh token. STUB: config only."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr

from forwarder.settings import Settings, TlsConfig


class JwtBearerAuth(Settings):
    type: Literal["jwt_bearer"] = "jwt_bearer"
    client_id: str = Field(description="Consumer key of the connected app / external client app.")
    username: str = Field(description="Salesforce username the integration runs as (the JWT sub).")
    private_key_file: Path = Field(description="PEM RSA private key whose certificate the app trusts.")


class ClientCredentialsAuth(Settings):
    type: Literal["client_credentials"]
    client_id: str = Field(description="Consumer key of the external client app.")
    client_secret: SecretStr = Field(description="Consumer secret (or client_secret_file).")


class RefreshTokenAuth(Settings):
    type: Literal["refresh_token"]
    client_id: str = Field(description="Consumer key of the connected app.")
    client_secret: SecretStr | None = Field(None, description="Consumer secret, if the app requires it.")
    refresh_token: SecretStr = Field(description="Refresh token (or refresh_token_file).")


AuthConfig = Annotated[
    JwtBearerAuth | ClientCredentialsAuth | RefreshTokenAuth, Field(discriminator="type")
]


class SalesforceConfig(Settings):
    login_url: str = Field(
        "https://login.salesforce.com",
        description="Token host: login.salesforce.com, test.salesforce.com (sandbox) or a My Domain URL.",
    )
    api_version: str = Field("62.0", pattern=r"^\d{2}\.0$", description="REST/CometD API version, e.g. 62.0.")
    auth: AuthConfig = Field(description="How to obtain access tokens.")
    tls: TlsConfig = Field(default_factory=TlsConfig, description="TLS options for Salesforce endpoints.")
