"""EventLogFile records and their CSV bodies, written exactly as Salesforce does, generated on the fly.

CSV rules (salesforce-facts.md A4, real 2015 logstash CSVs): header and every value double-quoted, embedded
quotes doubled (a value Salesforce itself quotes comes out tripled), comma separated, LF line ends. Large
files are produced chunk by chunk from templates, never held in memory.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from forwarder.testing.simulator import formats as fmt
from forwarder.testing.simulator.schemas import field_names

CHUNK_BYTES = 256 * 1024  # stored files: bytes per write


def quote(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def encode_line(values: list[str]) -> str:
    return ",".join(quote(v) for v in values) + "\n"


class RowSource(Protocol):
    """Where a file's rows come from: stored rows, or a generator for files of any size."""

    @property
    def count(self) -> int: ...

    def rows(self) -> Iterator[list[str]]: ...

    def chunks(self) -> Iterator[bytes]: ...

    def byte_length(self) -> int: ...


@dataclass
class StoredRows:
    header: list[str]
    data: list[list[str]]

    @property
    def count(self) -> int:
        return len(self.data)

    def rows(self) -> Iterator[list[str]]:
        return iter(self.data)

    def byte_length(self) -> int:
        return sum(len(chunk) for chunk in self.chunks())

    def chunks(self) -> Iterator[bytes]:
        buf = [encode_line(self.header)]
        size = len(buf[0])
        for row in self.data:
            line = encode_line(row)
            buf.append(line)
            size += len(line)
            if size >= CHUNK_BYTES:
                yield "".join(buf).encode()
                buf, size = [], 0
        if buf:
            yield "".join(buf).encode()


_VARYING = ("TIMESTAMP", "REQUEST_ID", "TIMESTAMP_DERIVED")


@dataclass
class GeneratedRows:
    """``count`` unique rows over one hour: template rows cycled with a fresh timestamp and REQUEST_ID each.

    Every row differs (rows are de-duplicated downstream by content hash), yet producing one costs a single
    ``%`` format, so a million-row file streams faster than any client can parse it.
    """

    event_type: str
    templates: list[list[str]]
    total: int
    start: datetime
    seed: int = 0
    span: timedelta = timedelta(hours=1)
    _prefix: str = field(init=False)

    @property
    def count(self) -> int:
        return self.total

    def __post_init__(self) -> None:
        self._prefix = fmt.token(random.Random(self.seed), 12)
        self.header = field_names(self.event_type)
        # (2015-schema types such as BulkApi have no TIMESTAMP_DERIVED column)
        self._slots = [self.header.index(name) if name in self.header else -1 for name in _VARYING]

    def _line_templates(self) -> list[str]:
        """Each template row as a ``%`` format: timestamp, ms, row index (REQUEST_ID tail), ISO time, ms."""
        out = []
        for row in self.templates:
            values = [quote(v).replace("%", "%%") for v in row]
            ts, rid, derived = self._slots
            values[ts], values[rid] = '"%s.%03d"', f'"{self._prefix}%010x"'
            if derived >= 0:
                values[derived] = '"%s.%03dZ"'
            out.append(",".join(values) + "\n")
        return out

    def _timing(self) -> tuple[int, float]:
        """Rows spread evenly over the span: first row's epoch ms, and ms between rows."""
        return int(self.start.timestamp() * 1000), self.span.total_seconds() * 1000 / max(self.count, 1)

    def rows(self) -> Iterator[list[str]]:
        base_ms, step = self._timing()
        ts, rid, derived = self._slots
        for index in range(self.count):
            row = list(self.templates[index % len(self.templates)])
            at = datetime.fromtimestamp(0, self.start.tzinfo) + timedelta(
                milliseconds=base_ms + int(index * step)
            )
            row[ts] = fmt.elf_timestamp(at)
            if derived >= 0:
                row[derived] = fmt.elf_timestamp_derived(at)
            row[rid] = f"{self._prefix}{index:010x}"
            yield row

    def byte_length(self) -> int:
        """Exact size without generating: every varying value has a fixed width."""
        sample = ("20261101000000", 0, 0, "2026-11-01T00:00:00", 0)[: 5 if self._slots[2] >= 0 else 3]
        sizes = [len((line % sample).encode()) for line in self._line_templates()]
        full, rest = divmod(self.count, len(sizes))
        return len(encode_line(self.header).encode()) + full * sum(sizes) + sum(sizes[:rest])

    def chunks(self) -> Iterator[bytes]:
        """The hot loop: one bytes ``%`` per row, time strings rebuilt once per second, ~1.8 MB per chunk."""
        lines, tz = [line.encode() for line in self._line_templates()], self.start.tzinfo
        nlines = len(lines)
        base_ms, step = self._timing()
        derived = self._slots[2] >= 0
        yield encode_line(self.header).encode()
        current, compact, iso = -1, b"", b""
        buf: list[bytes] = []
        for index in range(self.count):
            sec, ms = divmod(base_ms + int(index * step), 1000)
            if sec != current:
                at = datetime.fromtimestamp(sec, tz)
                current = sec
                compact, iso = at.strftime("%Y%m%d%H%M%S").encode(), at.strftime("%Y-%m-%dT%H:%M:%S").encode()
            args = (compact, ms, index, iso, ms) if derived else (compact, ms, index)
            buf.append(lines[index % nlines] % args)
            if len(buf) == 4096:  # fewer event-loop round trips per MB
                yield b"".join(buf)
                buf.clear()
        if buf:
            yield b"".join(buf)


@dataclass
class LogFile:
    """One EventLogFile record (object reference v67, facts A1) and the source of its CSV body."""

    id: str
    event_type: str
    log_date: datetime
    interval: str  # "Daily" | "Hourly"
    sequence: int
    created_date: datetime
    source: RowSource
    api_version: float = 67.0
    _length: int | None = None

    @property
    def length(self) -> int:
        """``LogFileLength``: bytes of the (uncompressed) CSV."""
        if self._length is None:
            self._length = self.source.byte_length()
        return self._length

    def chunks(self) -> Iterator[bytes]:
        return self.source.chunks()


def compressed(chunks: Iterator[bytes], encoding: str) -> Iterator[bytes]:
    """gzip or deflate (zlib-wrapped, RFC 9110 8.4.1.2) on the fly; level 1 keeps the server fast."""
    comp = zlib.compressobj(1, zlib.DEFLATED, 31 if encoding == "gzip" else 15)
    for chunk in chunks:
        if out := comp.compress(chunk):
            yield out
    yield comp.flush()
