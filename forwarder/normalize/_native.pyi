"""Types of the compiled shape builder (``_native.pyx``)."""

from collections.abc import Callable, Sequence
from typing import Any

from forwarder.events import EventDoc
from forwarder.normalize.engine import Family
from forwarder.records import Record

class Unsupported(Exception): ...

class Builder:
    source: str
    kind: str
    def __init__(
        self, family: Family, source: str, kind: str, provider: str, shape: tuple[str, ...], raw: bool
    ) -> None: ...
    def run(
        self,
        records: Sequence[Record],
        start: int,
        events: list[EventDoc],
        rejected: list[Any],
        ingested: str | None,
        slow: Callable[[Record], Any],
    ) -> int: ...
