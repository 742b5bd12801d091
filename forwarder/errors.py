"""The exception tree: classify once, at the edge (STYLE.md principle 4).

Normal data flow (a rejected record, a stale replay id) is a value or a metric, never one of these.
"""

from __future__ import annotations


class ForwarderError(Exception):
    """Base of every error the forwarder raises on purpose."""


class ConfigError(ForwarderError):
    """The configuration file is invalid; ``problems`` holds one line per error, each naming its path."""

    def __init__(self, file: str, problems: list[str]) -> None:
        self.file = file
        self.problems = problems
        super().__init__("\n".join(f"{file}: {p}" for p in problems))


class RetryableError(ForwarderError):
    """Transient failure (rate limited, unavailable, auth expired): try the same thing again later.

    ``retry_after`` is the server's hint in seconds (``Retry-After``), or None to use the backoff policy.
    """

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class PermanentError(ForwarderError):
    """The peer will never accept this input: dead-letter it with ``str(error)`` as the reason and go on."""


class BatchTooLargeError(PermanentError):
    """The peer refused the batch for its size (HTTP 413): split it and send the halves.

    Raised on a batch of one event, it is an ordinary permanent error for that event.
    """


class AuthenticationError(ForwarderError):
    """Credentials were refused (bad key, revoked client): operator action is needed."""
