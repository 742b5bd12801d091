"""Base of every config model: strict keys, field descriptions, and ``<secret>_file`` variants.

Kept apart from ``forwarder.config`` so that source and sink modules can define their own config models
without importing the whole configuration tree.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator


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
