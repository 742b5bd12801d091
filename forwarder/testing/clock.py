"""A clock tests move by hand: components take ``clock=`` callables, so time is injected, never slept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class ManualClock:
    """``clock()`` returns ``now``; tests set ``now`` or ``advance`` it."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now if now is not None else datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> datetime:
        self.now += delta
        return self.now
