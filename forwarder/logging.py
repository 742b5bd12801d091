"""structlog setup: JSON by default, console on a TTY, and a redaction processor for secrets.

Redaction works on two levels: values under secret-looking keys are replaced whole, and secret-shaped
substrings (Authorization headers, Salesforce session ids, ``key=value`` secrets) are masked in any string.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

REDACTED = "[REDACTED]"

_SECRET_KEY = re.compile(
    r"(pass(word)?|secret|token|api[_-]?key|authorization|private[_-]?key|cookie|session[_-]?id|"
    r"assertion|credential|routing[_-]?key|signature)",
    re.IGNORECASE,
)
_SECRET_TEXT = [
    # "Authorization: Bearer x", "Splunk <hec token>", "DD-API-KEY: x"
    re.compile(r"(?i)\b((?:bearer|splunk|basic)\s+)[A-Za-z0-9._~+/=!-]{8,}"),
    # Salesforce access tokens / session ids: the org id, "!", then the opaque part.
    re.compile(r"\b00D[A-Za-z0-9]{12,15}![A-Za-z0-9._]{20,}"),
    # key=value / "key": "value" pairs in URLs, bodies and exception texts.
    re.compile(
        r"(?i)((?:access_token|refresh_token|client_secret|api_key|apikey|password|assertion|token)"
        r"[\"']?\s*[:=]\s*[\"']?)[^\s&\"',}]+"
    ),
]


def redact_text(text: str) -> str:
    """Mask secret-shaped substrings of ``text``."""
    for pattern in _SECRET_TEXT:
        text = pattern.sub(lambda m: (m.group(1) if m.re.groups and m.lastindex else "") + REDACTED, text)
    return text


def _redact(value: Any, key: str = "") -> Any:
    if key and _SECRET_KEY.search(key) and not key.endswith(("_file", "_count", "_seconds")):
        return REDACTED if value not in (None, "", False) else value
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: _redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact(v) for v in value]
    return value


def redact_processor(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: redact every field (and the rendered exception) of a log event."""
    for key in list(event_dict):
        event_dict[key] = _redact(event_dict[key], key if key not in ("event", "exception") else "")
    return event_dict


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is at the time of the write, not at configure time (test runners
    and daemon managers replace it; a logger bound to a closed stream would fail every later log call)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure(level: str = "info", fmt: str = "auto") -> None:
    """Configure structlog and route stdlib logging (aiohttp, asyncio) through the same pipeline."""
    use_console = fmt == "console" or (fmt == "auto" and sys.stderr.isatty())
    renderer: Any = structlog.dev.ConsoleRenderer() if use_console else structlog.processors.JSONRenderer()
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    # Exceptions are rendered to text before redaction so secrets inside exception messages are masked.
    tail: list[Any] = [structlog.processors.format_exc_info, redact_processor]
    structlog.configure(
        processors=[*shared, structlog.processors.StackInfoRenderer(), *tail, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(_CurrentStderr())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail, renderer],
            foreign_pre_chain=shared,
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(logging.getLevelNamesMapping()[level.upper()], logging.INFO))
