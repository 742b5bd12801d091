"""SetupAuditTrail polling with an overlap window. STUB: config only."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from forwarder.settings import Settings


class SetupAuditTrailConfig(Settings):
    enabled: bool = Field(True, description="Poll SetupAuditTrail.")
    poll_interval: timedelta = Field(timedelta(minutes=1), description="Time between polls.")
    overlap: timedelta = Field(timedelta(minutes=5), description="Re-query this far behind the watermark.")
    initial_span: timedelta = Field(timedelta(days=1), description="How far back the first run reads.")
