"""Real-Time Event Monitoring over CometD with durable replay. STUB: config only."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from forwarder.settings import Settings


class StreamingConfig(Settings):
    enabled: bool = Field(True, description="Subscribe to the RTEM channels.")
    channels: list[str] = Field(
        default_factory=lambda: ["/event/LoginEventStream", "/event/LogoutEventStream"],
        description="CometD channels, e.g. /event/LoginEventStream.",
    )
    replay: Literal["latest", "earliest"] = Field(
        "latest", description="Where a channel starts when the journal has no replay id for it."
    )
