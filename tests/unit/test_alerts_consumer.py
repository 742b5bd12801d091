"""The rule engine as a journal consumer on a real SQLite journal: alerts, cursors and window state commit
together, a restart resumes mid-window, the engine's own alerts are not re-evaluated, and retention waits
for the engine's cursor like a sink's."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from forwarder.alerts.consumer import CONSUMER, RuleConsumer
from forwarder.alerts.engine import Engine
from forwarder.alerts.rules import Rule
from forwarder.journal.sqlite import SqliteJournal
from forwarder.records import Lane

RULE = Rule.model_validate(
    {
        "id": "brute",
        "name": "Brute force",
        "description": "d",
        "severity": "high",
        "type": "threshold",
        "match": {"field": "event.outcome", "equals": "failure"},
        "threshold": {"count": 3, "window": "5m", "group_by": ["user.name"]},
    }
)


def failure(second: int, user: str = "erin") -> dict[str, Any]:
    return {
        "@timestamp": f"2026-11-26T08:00:{second:02d}.000Z",
        "event": {"id": f"{user}-{second}", "dataset": "salesforce.login", "outcome": "failure"},
        "user": {"name": user},
    }


async def open_journal(path: Path, consumers: list[str]) -> SqliteJournal:
    return await SqliteJournal.open(path, consumers=consumers)


async def drain(consumer: RuleConsumer) -> None:
    while await consumer.step(Lane.REALTIME) or await consumer.step(Lane.BULK):
        pass
    await consumer.flush()


async def all_docs(journal: SqliteJournal, lane: Lane) -> list[dict[str, Any]]:
    return [e.event for e in await journal.read("reader", lane, 0, 10_000)]


async def test_alerts_cursor_and_state_commit_together_and_resume_after_restart(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    journal = await open_journal(path, [CONSUMER, "sink"])
    await journal.append("streaming", Lane.REALTIME, [failure(1), failure(2)], [], None)
    consumer = RuleConsumer(Engine([RULE]), journal)
    await consumer.start()
    await drain(consumer)
    assert await journal.cursor(CONSUMER, Lane.REALTIME) == 2
    await journal.close()

    journal = await open_journal(path, [CONSUMER, "sink"])  # a restart: state comes back from the journal
    await journal.append("eventlogfile", Lane.BULK, [failure(3)], [], None)
    consumer = RuleConsumer(Engine([RULE]), journal)
    await consumer.start()
    await drain(consumer)
    await drain(consumer)  # reads its own alert back: skipped
    realtime = await all_docs(journal, Lane.REALTIME)
    alerts = [d for d in realtime if d["event"]["dataset"] == "salesforce.alert"]
    assert len(alerts) == 1
    assert alerts[0]["salesforce"]["alert"]["event_ids"] == ["erin-1", "erin-2", "erin-3"]
    assert await journal.cursor(CONSUMER, Lane.REALTIME) == 3  # past its own alert
    assert await journal.cursor(CONSUMER, Lane.BULK) == 1
    await journal.close()


async def test_retention_waits_for_the_rule_engine_cursor(tmp_path: Path) -> None:
    journal = await open_journal(tmp_path / "state.db", ["sink", CONSUMER])
    try:
        await journal.append("streaming", Lane.REALTIME, [failure(i) for i in range(5)], [], None)
        await journal.commit("sink", Lane.REALTIME, 5)
        assert len(await all_docs(journal, Lane.REALTIME)) == 5  # the engine has not read them
        consumer = RuleConsumer(Engine([RULE]), journal)
        await consumer.start()
        await drain(consumer)
        await journal.commit("sink", Lane.REALTIME, 6)  # the sink also took the alert
        await drain(consumer)
        assert await all_docs(journal, Lane.REALTIME) == []
    finally:
        await journal.close()


async def test_run_evaluates_new_appends_until_stopped(tmp_path: Path) -> None:
    journal = await open_journal(tmp_path / "state.db", [CONSUMER, "sink"])
    consumer = RuleConsumer(Engine([RULE]), journal, idle_wait=5.0)
    task = asyncio.create_task(consumer.run())
    try:
        await journal.append("streaming", Lane.REALTIME, [failure(1), failure(2), failure(3)], [], None)
        async with asyncio.timeout(10):
            while len(await all_docs(journal, Lane.REALTIME)) < 4:
                await journal.wait_for_events(1.0)
        consumer.stop()
        async with asyncio.timeout(10):
            await task
    finally:
        task.cancel()
        await journal.close()
    assert (await journal_state(tmp_path / "state.db"))["rules"]["brute"]["buckets"]


async def journal_state(path: Path) -> dict[str, Any]:
    journal = await open_journal(path, [])
    try:
        state = await journal.consumer_state(CONSUMER)
    finally:
        await journal.close()
    assert state is not None
    return state


async def test_alerts_commit_even_when_the_journal_is_at_its_blocking_cap(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    journal = await open_journal(path, [CONSUMER, "sink"])
    await journal.append("streaming", Lane.REALTIME, [failure(1), failure(2), failure(3)], [], None)
    await journal.close()
    # At the cap with when_full: block. The engine's cursor holds retention, so waiting for room would
    # wait forever: its commit goes in over the cap instead.
    journal = await SqliteJournal.open(path, consumers=[CONSUMER, "sink"], max_bytes=1, when_full="block")
    try:
        consumer = RuleConsumer(Engine([RULE]), journal)
        await consumer.start()
        async with asyncio.timeout(10):
            await drain(consumer)
        docs = await all_docs(journal, Lane.REALTIME)
    finally:
        await journal.close()
    assert [d["event"]["dataset"] for d in docs][-1] == "salesforce.alert"
