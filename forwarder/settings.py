"""Base of every config model: strict keys, field descriptions, and ``<secret>_file`` variants.

Kept apart from ``forwarder.config`` so that source and sink modules can define their own config models
without importing the whole configuration tree.
"""

from __future__ import annotations

import re
import ssl
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from forwarder.errors import ConfigError


class Settings(BaseModel):
    """Strict config section. For every ``SecretStr`` field ``x`` the file also accepts ``x_file``: a path
    whose content (stripped of surrounding whitespace) becomes the secret, as Kubernetes secret mounts give.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _read_secret_files(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for name, field in cls.model_fields.items():
            if isinstance(data.get(name), str) and _is_duration(field.annotation):
                data[name] = parse_duration(data[name])
        for name, field in cls.model_fields.items():
            key = f"{name}_file"
            if key not in data or not _is_secret(field.annotation):
                continue
            path = data.pop(key)
            if name in data:
                raise ValueError(f"give either {name} or {key}, not both")
            try:
                data[name] = Path(str(path)).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ValueError(f"{key}: cannot read {path}: {exc.strerror or exc}") from None
        return data

    @classmethod
    def secret_file_keys(cls) -> set[str]:
        """The ``*_file`` keys this section accepts (used by the JSON schema and the docs)."""
        return {f"{n}_file" for n, f in cls.model_fields.items() if _is_secret(f.annotation)}


_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta | str:
    """``500ms``, ``30s``, ``5m``, ``1h``, ``2d`` -> timedelta; anything else is left for pydantic (ISO 8601
    ``PT5M`` and plain seconds still work, and a wrong value gets pydantic's message)."""
    match = _DURATION.fullmatch(text)
    if not match:
        return text
    return timedelta(seconds=float(match.group(1)) * _DURATION_UNITS[match.group(2)])


def _is_duration(annotation: Any) -> bool:
    return annotation is timedelta or timedelta in getattr(annotation, "__args__", ())


def _is_secret(annotation: Any) -> bool:
    return annotation is SecretStr or (
        hasattr(annotation, "__args__") and SecretStr in getattr(annotation, "__args__", ())
    )


class TlsConfig(Settings):
    """TLS client options of a network peer. Verification is on unless turned off explicitly."""

    verify: bool = Field(True, description="Verify the server certificate and host name.")
    ca_file: Path | None = Field(None, description="PEM bundle of CAs to trust instead of the system store.")
    cert_file: Path | None = Field(None, description="Client certificate (PEM) for mutual TLS.")
    key_file: Path | None = Field(None, description="Private key (PEM) of the client certificate.")

    def client_context(self, where: str = "tls") -> ssl.SSLContext:
        """The client context for every TLS peer (Salesforce, HTTP sinks, syslog): TLS 1.2 at least (RFC 5425
        §4.2, RFC 9662; Salesforce requires it too), system or given CAs, a client certificate for mutual
        TLS, and with ``verify: false`` no server check (the client certificate is still presented).
        Unreadable certificate files are a ``ConfigError`` naming ``where``."""
        try:
            context = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
            if self.cert_file:
                context.load_cert_chain(str(self.cert_file), str(self.key_file) if self.key_file else None)
        except (OSError, ssl.SSLError) as exc:
            message = getattr(exc, "strerror", None) or str(exc)
            raise ConfigError(where, [f"tls: cannot load certificates: {message}"]) from None
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if not self.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context
