"""Parametrises the sink contract suite over every harness in this folder (harness_*.py)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from sink_harness import SinkHarness, discover

HARNESSES = discover()


@pytest.fixture(params=sorted(HARNESSES))
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[SinkHarness]:
    async with HARNESSES[request.param]() as started:
        yield started


def needs(harness: SinkHarness, capability: str) -> None:
    """Skip a check that does not apply to this sink (e.g. HTTP status codes for syslog)."""
    if capability not in harness.capabilities:
        pytest.skip(f"{harness.name} has no {capability!r}")
