"""EventLogFile polling: hourly/daily CSV files, streamed row by row. STUB: config only."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Literal

from pydantic import Field

from forwarder.settings import Settings


class EventLogFileConfig(Settings):
    enabled: bool = Field(True, description="Poll EventLogFile.")
    interval: Literal["Hourly", "Daily"] = Field("Hourly", description="Which log files to read.")
    event_types: list[str] = Field(default_factory=list, description="EventType values; empty: all.")
    poll_interval: timedelta = Field(timedelta(minutes=5), description="Time between polls.")
    start: date | None = Field(None, description="First LogDate to read on first start (default: today).")
