"""Row content hashes of recently delivered hourly files, so a re-issued hour skips rows already sent.

Facts A2: late rows of an hour arrive as a new file with a higher ``Sequence``; consumers must de-duplicate.
"""

from __future__ import annotations


class RowDedup:
    """Content hashes of emitted rows per (event type, hour), bounded; re-issued files are checked here.

    Hashes join the set only once their batch is durable, so a retried download never skips its own rows.
    """

    def __init__(self, max_rows: int) -> None:
        self._max = max_rows
        self._hours: dict[tuple[str, str], set[int]] = {}
        self._size = 0

    @property
    def enabled(self) -> bool:
        return self._max > 0

    def knows(self, key: tuple[str, str]) -> bool:
        return key in self._hours

    def contains(self, key: tuple[str, str], digest: int) -> bool:
        bucket = self._hours.get(key)
        return bucket is not None and digest in bucket

    def add(self, key: tuple[str, str], digests: list[int]) -> None:
        if self._max == 0 or not digests:
            return
        while self._size + len(digests) > self._max and self._hours:
            self._size -= len(self._hours.pop(next(iter(self._hours))))
        bucket = self._hours.setdefault(key, set())
        before = len(bucket)
        bucket.update(digests[: self._max])
        self._size += len(bucket) - before
