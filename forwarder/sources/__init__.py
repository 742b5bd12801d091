"""Sources read Salesforce and hand batches of records plus the position covering them to ``emit``."""

from __future__ import annotations

from typing import Protocol

from forwarder.records import Emit, Lane, Position


class Source(Protocol):
    """A Salesforce reader. It knows nothing about sinks, cursors or the journal's internals."""

    name: str
    lane: Lane

    async def run(self, position: Position | None, emit: Emit) -> None:
        """Read forever from ``position`` (None: first start), calling ``emit`` for each batch.

        ``emit`` returns only when the batch and its position are durable, which is the flow control: a
        source reads no further than the journal accepts. Transient Salesforce errors are retried inside;
        ``run`` returns or raises only on cancellation or an error an operator must fix.
        """
        ...
