"""splunk_hec sink. STUB: config only."""

from __future__ import annotations

from typing import Literal

from sinks import SinkConfig


class SplunkHecConfig(SinkConfig):
    type: Literal["splunk_hec"]
