"""Sinks: thin wire-protocol adapters. They encode events, send one batch, and classify the answer.

No retry loops, sleeps or cursors in a sink: ``forwarder.delivery`` owns batching, retries, dead letters
and progress (STYLE.md principle 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from pydantic import Field

from forwarder.events import EventDoc, get_path
from forwarder.settings import Settings


@dataclass(frozen=True, slots=True)
class SinkLimits:
    """What one ``send`` may carry; delivery cuts batches to fit."""

    max_events: int = 500
    max_bytes: int = 1_000_000  # sum of encoded event sizes
    max_wait: float = 1.0  # seconds a partial batch may wait for more events


class Route(Settings):
    """Which events a sink receives. Empty lists mean "all"."""

    kinds: list[Literal["event", "alert"]] = Field(
        default_factory=list, description="event.kind values to send (event, alert); empty: all."
    )
    datasets: list[str] = Field(
        default_factory=list, description="event.dataset values to send (salesforce.login, ...); empty: all."
    )
    min_severity: int = Field(0, ge=0, le=100, description="Send only events with event.severity >= this.")

    def matches(self, event: EventDoc) -> bool:
        """True when the event passes every configured filter."""
        if self.kinds and get_path(event, "event.kind", "event") not in self.kinds:
            return False
        if self.datasets and get_path(event, "event.dataset") not in self.datasets:
            return False
        return int(get_path(event, "event.severity", 0) or 0) >= self.min_severity


class BatchSettings(Settings):
    """Per-sink batching overrides; unset values take the sink's protocol limits."""

    max_events: int | None = Field(None, gt=0, description="Events per request at most.")
    max_bytes: int | None = Field(None, gt=0, description="Encoded bytes per request at most.")
    max_wait: float | None = Field(None, ge=0, description="Seconds a partial batch waits for more events.")


class SinkConfig(Settings):
    """Fields every sink takes. Each sink module subclasses this with ``type: Literal[...]``."""

    name: str = Field(description="Unique sink name: the consumer id of its journal cursor, metrics label.")
    route: Route = Field(default_factory=Route, description="Which events this sink receives.")
    batch: BatchSettings = Field(default_factory=BatchSettings, description="Batching overrides.")
    concurrency: int = Field(1, ge=1, le=16, description="Batches in flight at once.")


class Sink(Protocol):
    """The contract delivery relies on (one instance per configured sink)."""

    name: str
    limits: SinkLimits

    def encode(self, event: EventDoc) -> bytes:
        """The wire form of one event. Raises ``PermanentError`` if this event can never be sent."""
        ...

    async def send(self, batch: Sequence[bytes]) -> None:
        """Deliver one batch of encoded events in one request (or one write), durably where the protocol
        can tell (HEC acks). Returns on success; raises ``RetryableError`` (with ``retry_after``) for a
        transient failure, ``BatchTooLargeError`` to have the batch split, ``PermanentError`` otherwise.
        Never retries or sleeps on its own."""
        ...

    async def check(self) -> None:
        """Health probe for ``/readyz`` and ``doctor``; raises a ``ForwarderError`` when unreachable."""
        ...

    async def close(self) -> None:
        """Release connections; idempotent."""
        ...
