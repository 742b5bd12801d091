"""datadog sink. STUB: config only."""

from __future__ import annotations

from typing import Literal

from sinks import SinkConfig


class DatadogConfig(SinkConfig):
    type: Literal["datadog"]
