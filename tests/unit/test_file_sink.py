"""The file sink writes durable JSON lines and rotates by size."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from forwarder.errors import PermanentError, RetryableError
from sinks.file import FileSink, FileSinkConfig


def sink(path: Path, **kwargs: object) -> FileSink:
    return FileSink(FileSinkConfig.model_validate({"name": "f", "type": "file", "path": str(path), **kwargs}))


async def test_writes_one_json_line_per_event(tmp_path: Path) -> None:
    out = sink(tmp_path / "sub" / "events.jsonl")
    events = [{"event": {"id": str(i), "dataset": "salesforce.login"}} for i in range(3)]
    await out.send([out.encode(e) for e in events])
    lines = (tmp_path / "sub" / "events.jsonl").read_bytes().splitlines()
    assert [orjson.loads(line) for line in lines] == events


async def test_rotates_by_size_and_keeps_n(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    out = sink(path, max_bytes=100, keep=2)
    for i in range(6):
        await out.send([out.encode({"n": i, "pad": "x" * 60})])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.jsonl", "events.jsonl.1", "events.jsonl.2"]
    assert orjson.loads(path.read_bytes())["n"] == 5
    assert orjson.loads((tmp_path / "events.jsonl.2").read_bytes())["n"] == 3


async def test_unwritable_path_is_retryable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    out = sink(blocker / "events.jsonl")  # a file where a directory should be
    with pytest.raises(RetryableError):
        await out.send([b"{}\n"])


def test_unencodable_event_is_permanent(tmp_path: Path) -> None:
    with pytest.raises(PermanentError):
        sink(tmp_path / "e.jsonl").encode({"bad": object()})
