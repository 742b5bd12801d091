"""JSON-lines file sink (or stdout): debugging, air-gapped hand-off, and the tests' first end-to-end sink.

Each batch is written and fsynced before ``send`` returns, so delivery only advances past durable lines.
Rotation by size renames ``events.jsonl`` to ``events.jsonl.1`` (shifting older ones) and keeps ``keep``.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import orjson
from pydantic import Field

from forwarder.errors import PermanentError, RetryableError
from forwarder.events import EventDoc
from sinks import SinkConfig, SinkLimits


class FileSinkConfig(SinkConfig):
    type: Literal["file"]
    path: str = Field(description='File to append JSON lines to, or "-" for standard output.')
    max_bytes: int = Field(
        100 * 2**20, gt=0, description="Rotate the file when it would grow past this size."
    )
    keep: int = Field(5, ge=0, description="Rotated files to keep (events.jsonl.1 ... .N).")
    fsync: bool = Field(True, description="fsync after every batch (durable before the cursor moves).")


def encode_line(event: EventDoc) -> bytes:
    """One event as a JSON line."""
    try:
        return orjson.dumps(event) + b"\n"
    except TypeError as exc:  # a value orjson cannot encode: this event can never be written
        raise PermanentError(f"cannot encode event as JSON: {exc}") from None


class FileSink:
    """Appends JSON lines; rotation and fsync run in a worker thread to keep the loop free."""

    def __init__(self, config: FileSinkConfig) -> None:
        self.name = config.name
        self.config = config
        self.limits = SinkLimits(max_events=1000, max_bytes=4 * 2**20, max_wait=0.2)
        self._stdout = config.path == "-"
        self._path = Path(config.path)
        self._closed = False

    def encode(self, event: EventDoc) -> bytes:
        return encode_line(event)

    async def send(self, batch: Sequence[bytes]) -> None:
        data = b"".join(batch)
        try:
            await asyncio.to_thread(self._write, data)
        except OSError as exc:
            # A full disk or a missing mount heals; retrying is the only way not to lose the batch.
            raise RetryableError(f"cannot write {self._path}: {exc.strerror or exc}") from None

    def _write(self, data: bytes) -> None:
        if self._stdout:
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        if self._path.exists() and self._path.stat().st_size + len(data) > self.config.max_bytes:
            self._rotate()
        with self._path.open("ab") as out:
            out.write(data)
            out.flush()
            if self.config.fsync:
                os.fsync(out.fileno())

    def _rotate(self) -> None:
        keep = self.config.keep
        if keep == 0:
            self._path.unlink()
            return
        for index in range(keep - 1, 0, -1):
            older = self._path.with_name(f"{self._path.name}.{index}")
            if older.exists():
                older.replace(self._path.with_name(f"{self._path.name}.{index + 1}"))
        self._path.replace(self._path.with_name(f"{self._path.name}.1"))

    async def check(self) -> None:
        if self._stdout:
            return
        directory = self._path.parent
        if not os.access(directory if directory.exists() else directory.parent, os.W_OK):
            raise RetryableError(f"{directory} is not writable")

    async def close(self) -> None:
        self._closed = True
