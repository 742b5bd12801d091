"""A sink that fails on cue and a delivery run in a task: the collaborators of the delivery-loop tests
(tests/unit/test_delivery_loop.py, test_dead_letters_delivery.py), not our code."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from forwarder.delivery import Delivery
from forwarder.errors import PermanentError
from sinks import SinkLimits

Doc = dict[str, Any]


class CueSink:
    """Records every accepted batch; ``behaviour(batch_docs, attempt)`` raises to fail on cue."""

    def __init__(self, name: str, limits: SinkLimits | None = None) -> None:
        self.name = name
        self.limits = limits or SinkLimits(max_events=500, max_bytes=1_000_000, max_wait=0.0)
        self.behaviour: Callable[[list[Doc], int], Any] = lambda docs, attempt: None
        self.batches: list[list[Doc]] = []
        self.attempts = 0
        self.changed = asyncio.Condition()

    def encode(self, event: Doc) -> bytes:
        if event.get("unencodable"):
            raise PermanentError("field cannot be encoded")
        if event.get("encoder_bug"):
            raise KeyError("missing")
        return orjson.dumps(event)

    async def send(self, batch: Sequence[bytes]) -> None:
        docs = [orjson.loads(b) for b in batch]
        self.attempts += 1
        async with self.changed:
            self.changed.notify_all()
        outcome = self.behaviour(docs, self.attempts)
        if asyncio.iscoroutine(outcome):
            await outcome
        self.batches.append(docs)
        async with self.changed:
            self.changed.notify_all()

    @property
    def received(self) -> list[int]:
        return [d["n"] for batch in self.batches for d in batch]

    @property
    def ids(self) -> list[str]:
        return [d["event"]["id"] for batch in self.batches for d in batch]

    async def wait_for(self, predicate: Callable[[], bool], within: float = 10) -> None:
        async with asyncio.timeout(within), self.changed:
            await self.changed.wait_for(predicate)

    async def check(self) -> None:
        return None

    async def close(self) -> None:
        return None


class Running:
    """Delivery runs in tasks, stopped (and their failures surfaced) at exit."""

    def __init__(self, *deliveries: Delivery) -> None:
        self.deliveries = deliveries
        self.tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> None:
        self.tasks = [asyncio.create_task(d.run()) for d in self.deliveries]

    async def __aexit__(self, *exc: object) -> None:
        for delivery in self.deliveries:
            await delivery.stop(2.0)
        async with asyncio.timeout(5):
            await asyncio.gather(*self.tasks)
