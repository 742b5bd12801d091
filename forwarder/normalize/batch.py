"""Normalise a whole batch with the cyclic garbage collector paused: the pipeline's entry point.

A document is ~15 small dicts and lists and holds no reference cycles, so the collector can only waste
time on them: with a batch of 2,000 documents alive it ran every ~50 events and kept promoting the batch
into full collections of the daemon's heap, which doubled the normalisation time (measured 20 us vs 10 us
per ELF Login row with the daemon's modules loaded). Paused, the batch is collected once, afterwards.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from functools import partial
from typing import Any

from forwarder.events import EventDoc
from forwarder.normalize import RawMode, Rejected, normalize_doc
from forwarder.normalize.engine import _ingested_text
from forwarder.normalize.families import family_for
from forwarder.normalize.program import Program, compile_program
from forwarder.records import Record

try:  # the compiled builder of shape programs (``_native.pyx``), when the install had a C compiler
    from forwarder.normalize import _native
except ImportError:  # pragma: no cover - a build without a compiler: the Python programs run
    _native = None  # type: ignore[assignment]


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic collection inside the block (only for code that allocates trees and never awaits).
    Reference counting still frees everything at once; the collector resumes as it was."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


#: (source, kind, raw, key sequence) -> its program (None: the shape is left to ``normalize_doc``)
_programs: dict[tuple[str, str, bool, tuple[Any, ...]], Program | None] = {}
#: Bounded: key sequences come from outside. Emptied when full (like the converter caches), so shapes that
#: stop arriving make room; a shape is compiled (~1 ms) only for a run of at least two records.
_MAX_PROGRAMS = 256
#: Whether shapes are built by the compiled builder (when it is there); ``SF_FORWARDER_NATIVE=0`` turns it
#: off (the Python programs build the same documents, ~1.5x slower).
_use_native = _native is not None and os.environ.get("SF_FORWARDER_NATIVE", "1") != "0"


def native_available() -> bool:
    """Whether the compiled builder was built at install."""
    return _native is not None


def use_native(enabled: bool) -> None:
    """Build shapes with the compiled builder (only when it is there) or with Python programs."""
    global _use_native
    _use_native = enabled and _native is not None
    _programs.clear()


def _program_for(records: Sequence[Record], index: int, raw: bool) -> Program | None:
    record = records[index]
    payload = record.payload
    if payload.__class__ is not dict:
        return None
    fields = tuple(payload) if record.fields is None else record.fields
    key = (record.source, record.kind, raw, fields)
    try:
        return _programs[key]
    except KeyError:
        pass
    following = records[index + 1].payload if index + 1 < len(records) else None
    if following.__class__ is not dict or tuple(following) != fields:
        return None
    if len(_programs) >= _MAX_PROGRAMS:
        _programs.clear()
    family, provider = family_for(record.source, record.kind)
    program: Program | None = None
    if _use_native:
        with suppress(_native.Unsupported):  # a shape beyond its limits: the Python program builds it
            program = _native.Builder(family, record.source, record.kind, provider, key[3], raw).run
    if program is None:
        program = compile_program(family, record.source, record.kind, provider, key[3], raw=raw)
    _programs[key] = program
    return program


def normalize_batch(
    records: Sequence[Record], *, raw: RawMode = "full", ingested: datetime | None = None
) -> tuple[list[EventDoc], list[Rejected]]:
    """``normalize_doc`` of each record, split into documents and rejections, in record order.

    Runs of records with one source, kind and payload key sequence (an ELF file's rows, a channel's
    events) go through that shape's program (``program.py``), which builds the same documents."""
    events: list[EventDoc] = []
    rejected: list[Rejected] = []
    ingested_text = None if ingested is None else _ingested_text(ingested)
    slow = partial(normalize_doc, raw=raw, ingested=ingested)
    index, total = 0, len(records)
    with gc_paused():
        while index < total:
            record = records[index]
            program = _program_for(records, index, raw == "full")
            if program is not None:
                after = program(records, index, events, rejected, ingested_text, slow)
                if after > index:
                    index = after
                    continue
            result = slow(record)
            if isinstance(result, Rejected):
                rejected.append(result)
            else:
                events.append(result)
            index += 1
    return events, rejected
