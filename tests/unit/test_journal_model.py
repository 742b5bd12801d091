"""Model-based test of the journal (hypothesis RuleBasedStateMachine): any interleaving of appends, reads,
commits, clean reopens and crashes (the files on disk at an instant, reopened) keeps every event
delivered at least once to every consumer, cursors exactly at what was committed, positions with their events.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from forwarder.journal import DeadLetter
from forwarder.journal.sqlite import SqliteJournal
from forwarder.records import Lane

CONSUMERS = ["a", "b"]
SOURCES = {"streaming": Lane.REALTIME, "eventlogfile": Lane.BULK}


class JournalMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="journal-model-"))
        self.generation = 0
        self.runner = asyncio.Runner()
        self.journal = self.run(SqliteJournal.open(self.path, consumers=CONSUMERS))
        self.events: dict[Lane, dict[int, str]] = {lane: {} for lane in Lane}  # offset -> event id
        self.newest = dict.fromkeys(Lane, 0)
        self.seq = dict.fromkeys(SOURCES, 0)
        self.positions: dict[str, dict[str, int] | None] = dict.fromkeys(SOURCES)
        self.delivered: dict[str, set[str]] = {c: set() for c in CONSUMERS}
        self.committed = {c: dict.fromkeys(Lane, 0) for c in CONSUMERS}
        self.read_upto = {c: dict.fromkeys(Lane, 0) for c in CONSUMERS}

    @property
    def path(self) -> Path:
        return self.dir / f"journal-{self.generation}.db"

    def run(self, coro: Any) -> Any:
        return self.runner.run(coro)

    def teardown(self) -> None:
        self.run(self.journal.close())
        self.runner.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    @rule(source=st.sampled_from(sorted(SOURCES)), count=st.integers(0, 6), rejected=st.booleans())
    def append(self, source: str, count: int, rejected: bool) -> None:
        lane = SOURCES[source]
        first = self.seq[source] + 1
        ids = [f"{source}-{n}" for n in range(first, first + count)]
        docs = [{"event": {"id": i}, "seq": n} for n, i in zip(range(first, first + count), ids, strict=True)]
        letters = [DeadLetter("ingest", "unparseable", {"seq": first})] if rejected else []
        self.run(self.journal.append(source, lane, docs, letters, {"seq": first + count - 1}))
        self.seq[source] = first + count - 1
        self.positions[source] = {"seq": first + count - 1}
        for offset, event_id in enumerate(ids, start=self.newest[lane] + 1):
            self.events[lane][offset] = event_id
        self.newest[lane] += count

    @rule(consumer=st.sampled_from(CONSUMERS), lane=st.sampled_from(list(Lane)), limit=st.integers(1, 8))
    def read(self, consumer: str, lane: Lane, limit: int) -> None:
        after = self.read_upto[consumer][lane]
        entries = self.run(self.journal.read(consumer, lane, after, limit))
        offsets = [e.offset for e in entries]
        expected = sorted(o for o in self.events[lane] if o > after)[:limit]
        assert offsets == expected, "reads return the retained events after the offset, in order"
        for entry in entries:
            assert entry.event["event"]["id"] == self.events[lane][entry.offset]
            self.delivered[consumer].add(self.events[lane][entry.offset])
        if entries:
            self.read_upto[consumer][lane] = offsets[-1]

    @rule(consumer=st.sampled_from(CONSUMERS), lane=st.sampled_from(list(Lane)), data=st.data())
    def commit(self, consumer: str, lane: Lane, data: st.DataObject) -> None:
        low, high = self.committed[consumer][lane], self.read_upto[consumer][lane]
        offset = data.draw(st.integers(min(low, high), high), label="offset")
        self.run(self.journal.commit(consumer, lane, offset))
        self.committed[consumer][lane] = max(low, offset)

    @rule(consumer=st.sampled_from(CONSUMERS), lane=st.sampled_from(list(Lane)), limit=st.integers(1, 8))
    def deliver(self, consumer: str, lane: Lane, limit: int) -> None:
        """A consumer reads a batch, sends it, and commits it."""
        self.read(consumer, lane, limit)
        self.commit_everything_read(consumer, lane)

    @rule(consumer=st.sampled_from(CONSUMERS), lane=st.sampled_from(list(Lane)))
    def commit_everything_read(self, consumer: str, lane: Lane) -> None:
        """What delivery does once every batch it read has been acknowledged."""
        self.run(self.journal.commit(consumer, lane, self.read_upto[consumer][lane]))
        self.committed[consumer][lane] = self.read_upto[consumer][lane]

    @rule()
    def reopen(self) -> None:
        self.run(self.journal.close())
        self.journal = self.run(SqliteJournal.open(self.path, consumers=CONSUMERS))
        self._restart_consumers()

    @precondition(lambda self: self.generation < 6)
    @rule()
    def crash(self) -> None:
        """kill -9 at this instant: reopen a copy of the files as they are on disk now (db and WAL; the
        shared-memory index is rebuilt from the WAL, as after a real crash)."""
        old = self.path
        self.generation += 1
        for suffix in ("", "-wal"):
            if Path(f"{old}{suffix}").exists():
                shutil.copyfile(f"{old}{suffix}", f"{self.path}{suffix}")
        self.run(self.journal.close())
        self.journal = self.run(SqliteJournal.open(self.path, consumers=CONSUMERS))
        self._restart_consumers()

    def _restart_consumers(self) -> None:
        """After a restart, each consumer resumes from its durable cursor."""
        for consumer in CONSUMERS:
            self.read_upto[consumer] = dict(self.committed[consumer])

    @invariant()
    def cursors_are_exactly_what_was_committed(self) -> None:
        for consumer in CONSUMERS:
            for lane in Lane:
                assert self.run(self.journal.cursor(consumer, lane)) == self.committed[consumer][lane]

    @invariant()
    def positions_never_run_ahead_of_their_events(self) -> None:
        for source, lane in SOURCES.items():
            position = self.run(self.journal.position(source))
            assert position == self.positions[source]
            if position is not None:
                newest = self.run(self.journal.stats())["lanes"][lane.value]["newest"]
                assert newest == self.newest[lane], "the events the position covers are in the journal"

    @invariant()
    def every_event_is_delivered_or_still_readable_by_every_consumer(self) -> None:
        for lane in Lane:
            floor = min(self.committed[c][lane] for c in CONSUMERS)
            retained = self.run(self.journal.read("check", lane, floor, 10_000))
            assert [e.offset for e in retained] == sorted(o for o in self.events[lane] if o > floor)
            for consumer in CONSUMERS:
                committed = self.committed[consumer][lane]
                passed = {i for o, i in self.events[lane].items() if o <= committed}
                assert passed <= self.delivered[consumer], "a cursor passed an event never read"


JournalMachine.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestJournalModel = JournalMachine.TestCase
