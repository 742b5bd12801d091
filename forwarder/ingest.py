"""The path from a source's ``emit`` to the journal: normalise each record, then one durable append.

Records that fail normalisation are dead-lettered in the same transaction as the events and the
position, so a batch is either wholly in (events + rejections + position) or not at all.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Literal

import structlog

from forwarder import metrics
from forwarder.journal import DeadLetter, Journal
from forwarder.normalize import Rejected
from forwarder.normalize.batch import normalize_batch
from forwarder.records import Emit, Lane, Position, Record

INGEST_CONSUMER = "ingest"
log = structlog.get_logger()


def rejected_letter(rejected: Rejected) -> DeadLetter:
    """A dead letter for a record that could not be normalised, with enough to replay it by hand."""
    record = rejected.record
    payload: dict[str, Any] = {
        "source": record.source,
        "kind": record.kind,
        "received_at": record.received_at.isoformat(),
        "payload": json_safe(record.payload),
    }
    if record.envelope:
        payload["envelope"] = json_safe(record.envelope)
    return DeadLetter(consumer=INGEST_CONSUMER, reason=rejected.reason, payload=payload)


def json_safe(value: Any) -> Any:
    """The record as the journal can store it. A record is often rejected precisely because it holds what
    JSON cannot (integers past 64 bits, bytes): those values are kept as their text, never dropped."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str | float):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**64 else str(value)  # orjson's integer range
    return repr(value)


_held = 0  # emits inside ``collector_held`` (they interleave at their awaits)
_was_enabled = False


@contextmanager
def collector_held() -> Iterator[None]:
    """The cyclic collector off from normalisation until the batch's documents are freed again.

    A batch is ~15 containers per event and no cycles; reference counting frees them all after the append,
    and every free lowers the collector's allocation count again. Re-enabled right after normalisation
    (before the append), the count stood at ~30,000 and the next allocation scanned all those documents
    for nothing (measured ~2 us per ELF row). Counted, so interleaved emits restore the state only once.
    """
    global _held, _was_enabled
    if _held == 0:
        _was_enabled = gc.isenabled()
        gc.disable()
    _held += 1
    try:
        yield
    finally:
        _held -= 1
        if _held == 0 and _was_enabled:
            gc.enable()


def make_emit(journal: Journal, source: str, lane: Lane, *, raw: Literal["full", "none"] = "full") -> Emit:
    """The ``emit`` callback handed to one source."""
    received = metrics.records_received.labels(source)
    ingested = metrics.events_ingested.labels(source, lane.value)
    rejected_count = metrics.records_rejected.labels(source)

    async def emit(records: Sequence[Record], position: Position | None) -> None:
        with collector_held():
            events, rejected = normalize_batch(records, raw=raw, ingested=datetime.now(UTC))
            letters = [rejected_letter(item) for item in rejected]
            with metrics.journal_append_seconds.time():
                await journal.append(source, lane, events, letters, position)
            count = len(events)
            del events  # freed here, while the collector is still held
        received.inc(len(records))
        ingested.inc(count)
        if letters:
            rejected_count.inc(len(letters))
            metrics.dead_letters.labels(INGEST_CONSUMER).inc(len(letters))
            log.warning("records_rejected", source=source, count=len(letters), first_reason=letters[0].reason)

    return emit
