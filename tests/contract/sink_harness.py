"""What the sink contract suite needs from each sink: a started receiver, the sink under test, and ways to
script the receiver. Add a sink by dropping ``harness_<sink>.py`` here with a ``HARNESS`` factory."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, Self

from forwarder.testing.receivers import HttpReceiver, sample_event
from sinks import Sink

#: Capabilities a harness may lack (a check that needs one is skipped): "status" (HTTP-like status codes
#: from the receiver), "too_large" (a size refusal), "auth" (credentials refused), "health" (check()).
Capability = str


class SinkHarness(Protocol):
    """One sink wired to its local receiver."""

    name: str
    capabilities: set[Capability]
    sink: Sink

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc: object) -> None: ...

    def batch(self, n: int, start: int = 0) -> list[bytes]:
        """``n`` encoded sample events with ids ``evt-<start>``..."""
        ...

    def delivered_ids(self) -> set[str]:
        """Event ids the receiver accepted."""
        ...

    def request_count(self) -> int:
        """Requests (or writes) the receiver saw."""
        ...

    def script_status(self, status: int, retry_after: float | None = None) -> None:
        """Make the receiver answer the next request with ``status`` (and ``Retry-After``)."""
        ...

    def refuse_credentials(self) -> None:
        """Make the receiver refuse the sink's credentials from now on."""
        ...

    async def stop_receiver(self) -> None:
        """Take the receiver down (the sink's next request finds nobody)."""
        ...


class HttpHarness:
    """What the HTTP sinks' harnesses share: an in-process receiver and the sink built in ``__aenter__``."""

    capabilities = {"status", "too_large", "auth", "health"}
    receiver: HttpReceiver
    sink: Sink

    async def __aexit__(self, *exc: object) -> None:
        await self.sink.close()
        await self.receiver.stop()

    def batch(self, n: int, start: int = 0) -> list[bytes]:
        return [self.sink.encode(sample_event(i)) for i in range(start, start + n)]

    def delivered_ids(self) -> set[str]:
        return self.receiver.unique_ids()

    def request_count(self) -> int:
        return len(self.receiver.requests)

    async def stop_receiver(self) -> None:
        await self.receiver.stop()


def discover() -> dict[str, Callable[[], SinkHarness]]:
    """``HARNESS`` factories of every ``harness_*.py`` beside this file, by file stem."""
    found: dict[str, Callable[[], SinkHarness]] = {}
    for path in sorted(Path(__file__).parent.glob("harness_*.py")):
        spec = importlib.util.spec_from_file_location(f"contract_{path.stem}", path)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        found[path.stem.removeprefix("harness_")] = module.HARNESS
    return found
