"""Each sink's delivery loop redelivers the dead letters an operator marked: to that sink only, through the
same retry and bisect path, deleting a letter only after the sink accepted it (real SqliteJournal)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from delivery_fixtures import CueSink, Doc, Running

from forwarder.delivery import NO_BACKOFF, Delivery
from forwarder.errors import PermanentError, RetryableError
from forwarder.journal import DeadLetter, LetterFilter
from forwarder.journal.sqlite import SqliteJournal
from sinks import SinkLimits


def doc(n: int, **extra: Any) -> Doc:
    return {"event": {"id": f"e{n}", "dataset": "salesforce.login"}, **extra}


def make(sink: CueSink, journal: SqliteJournal, **kwargs: Any) -> Delivery:
    return Delivery(sink, None, journal, backoff=NO_BACKOFF, replay_poll=0.01, idle_wait=0.01, **kwargs)


@pytest.fixture
async def journal(tmp_path: Path) -> AsyncIterator[SqliteJournal]:
    j = await SqliteJournal.open(tmp_path / "j.db", consumers=["hec", "archive"])
    yield j
    await j.close()


async def until_no_letters(journal: SqliteJournal, consumer: str, remaining: int = 0) -> None:
    async with asyncio.timeout(10):
        while sum((await journal.count_dead_letters(LetterFilter(consumer=consumer))).values()) > remaining:
            await journal.wait_for_events(0.01)  # deletes wake nobody: re-check at the timeout


async def until_settled(journal: SqliteJournal, consumer: str) -> None:
    async with asyncio.timeout(10):
        while await journal.requested_dead_letters(consumer, 1):
            await journal.wait_for_events(0.01)


async def test_marked_letters_go_to_their_sink_only_and_are_deleted(journal: SqliteJournal) -> None:
    hec, archive = CueSink("hec"), CueSink("archive")
    await journal.dead_letter([DeadLetter("hec", "permanent: 400", doc(i)) for i in range(3)])
    await journal.dead_letter([DeadLetter("archive", "permanent: disk", doc(9))])
    await journal.request_replay(LetterFilter(consumer="hec"))
    async with Running(make(hec, journal), make(archive, journal)):
        await hec.wait_for(lambda: len(hec.ids) == 3)
        await until_no_letters(journal, "hec")
    assert hec.ids == ["e0", "e1", "e2"]
    assert archive.ids == []
    assert [d.consumer for d in await journal.dead_letters()] == ["archive"]


async def test_marks_made_by_another_connection_are_picked_up_while_running(
    journal: SqliteJournal, tmp_path: Path
) -> None:
    hec = CueSink("hec")
    await journal.dead_letter([DeadLetter("hec", "permanent: 400", doc(i)) for i in range(2)])
    async with Running(make(hec, journal)):
        cli = await SqliteJournal.open(tmp_path / "j.db", consumers=["hec", "archive"])  # the CLI process
        try:
            assert await cli.request_replay(LetterFilter(consumer="hec", ids=(2,))) == 1
        finally:
            await cli.close()
        await hec.wait_for(lambda: hec.ids == ["e1"])
        await until_no_letters(journal, "hec", remaining=1)
    assert [d.payload for d in await journal.dead_letters()] == [doc(0)]


async def test_a_letter_refused_again_stays_with_its_new_reason_and_batch_mates_are_sent(
    journal: SqliteJournal,
) -> None:
    hec = CueSink("hec")

    def refuse(docs: list[Doc]) -> None:
        if any(d.get("bad") for d in docs):
            raise PermanentError("splunk_hec: Invalid data format (code 6)")

    hec.behaviour = lambda docs, attempt: refuse(docs)
    letters = [doc(0), doc(1, bad=True), doc(2), {**doc(3), "unencodable": True}]
    await journal.dead_letter([DeadLetter("hec", "permanent: old", d) for d in letters])
    await journal.request_replay(LetterFilter(consumer="hec"))
    async with Running(make(hec, journal)):
        await until_settled(journal, "hec")
        await until_no_letters(journal, "hec", remaining=2)
    assert sorted(hec.ids) == ["e0", "e2"]
    kept = {d.payload["event"]["id"]: d for d in await journal.dead_letters()}
    assert sorted(kept) == ["e1", "e3"]
    assert kept["e1"].reason == "permanent: splunk_hec: Invalid data format (code 6)"
    assert kept["e3"].reason == "encode: field cannot be encoded"
    assert not any(d.replay_requested for d in kept.values())


async def test_a_stop_during_retries_leaves_the_letters_marked_for_the_next_run(
    journal: SqliteJournal,
) -> None:
    hec = CueSink("hec")

    def unavailable(docs: list[Doc]) -> None:
        raise RetryableError("503", retry_after=0)

    hec.behaviour = lambda docs, attempt: unavailable(docs)
    await journal.dead_letter([DeadLetter("hec", "permanent: 400", doc(i)) for i in range(2)])
    await journal.request_replay(LetterFilter(consumer="hec"))
    async with Running(make(hec, journal)):
        await hec.wait_for(lambda: hec.attempts >= 3)
    assert hec.ids == []
    assert [d.replay_requested for d in await journal.dead_letters()] == [True, True]

    hec.behaviour = lambda docs, attempt: None
    async with Running(make(hec, journal)):
        await hec.wait_for(lambda: len(hec.ids) == 2)
        await until_no_letters(journal, "hec")


async def test_many_letters_go_in_batches_within_the_sink_limits(journal: SqliteJournal) -> None:
    # one event is ~50 bytes: six fit in 300
    hec = CueSink("hec", SinkLimits(max_events=10, max_bytes=300, max_wait=0.0))
    await journal.dead_letter([DeadLetter("hec", "permanent: 400", doc(i)) for i in range(25)])
    await journal.request_replay(LetterFilter(consumer="hec"))
    async with Running(make(hec, journal)):
        await hec.wait_for(lambda: len(hec.ids) == 25)
        await until_no_letters(journal, "hec")
    assert sorted(hec.ids) == sorted(f"e{i}" for i in range(25))
    assert max(len(batch) for batch in hec.batches) <= 10
    assert all(sum(len(orjson.dumps(d)) for d in batch) <= 300 for batch in hec.batches)
