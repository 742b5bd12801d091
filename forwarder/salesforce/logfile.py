"""EventLogFile CSV: rows parsed as byte chunks stream in, typed by ``LogFileFieldTypes``.

Format (facts A4): header row, every value double-quoted, embedded quotes doubled, LF line ends; a quoted
value may span lines, so a chunk is cut only at a newline outside quotes. The documented blob sample
(facts A3) puts a space after some commas, so spaces before a quoted value are skipped.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
from collections.abc import AsyncIterator, Callable
from typing import Any

Converter = Callable[[str], Any]


def _number(text: str) -> int | float | None:
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return None


def _boolean(text: str) -> bool | None:
    # USER_INITIATED_LOGOUT is 1/0, COUNTS_AGAINST_API_LIMIT true/false (facts A6).
    lowered = text.lower()
    if lowered in ("1", "true"):
        return True
    if lowered in ("0", "false"):
        return False
    return None


# LogFileFieldTypes vocabulary (facts A1): String, EscapedString, Id, ID, IP, Number, Boolean, DateTime, Set.
_CONVERTERS: dict[str, Converter] = {"number": _number, "boolean": _boolean}


def converters(field_types: str, width: int) -> list[tuple[int, Converter]]:
    """(column index, converter) for every non-string column; strings stay as sent."""
    types = [t.strip().lower() for t in field_types.split(",")] if field_types else []
    return [(i, _CONVERTERS[t]) for i, t in enumerate(types[:width]) if t in _CONVERTERS]


def row_hash(event_type: str, values: list[str]) -> int:
    """64-bit content hash of a row: the same event re-issued in a later ``Sequence`` file hashes the same."""
    digest = hashlib.blake2b(event_type.encode(), digest_size=8)
    digest.update("\x1f".join(values).encode())
    return int.from_bytes(digest.digest(), "little")


def _cut(text: str) -> int:
    """Index just past the last newline that ends a record (an even number of quotes before it), or 0."""
    end = len(text)
    quotes = text.count('"')
    while True:
        nl = text.rfind("\n", 0, end)
        if nl < 0:
            return 0
        quotes -= text.count('"', nl, end)
        if quotes % 2 == 0:
            return nl + 1
        end = nl


async def csv_rows(chunks: AsyncIterator[bytes]) -> AsyncIterator[list[list[str]]]:
    """Lists of parsed CSV rows (header included) as complete records arrive; bounded by the chunk size."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending = ""
    async for chunk in chunks:
        text = pending + decoder.decode(chunk)
        cut = _cut(text)
        if cut:
            yield list(csv.reader(io.StringIO(text[:cut]), skipinitialspace=True))
        pending = text[cut:]
    pending += decoder.decode(b"", final=True)
    if pending.strip():
        yield list(csv.reader(io.StringIO(pending), skipinitialspace=True))
