"""The rule engine's state, written incrementally. The engine reports what changed since the last commit
(the entries a batch touched, the ones evicted at ``max_groups`` or pruned behind the watermark, the whole
document after a start); in a real SQLite journal a commit writes only those, a restore rebuilds the same
document (key order too), and the single-document state of earlier versions is migrated in place on open."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from forwarder.alerts.consumer import CONSUMER, RuleConsumer
from forwarder.alerts.engine import Engine
from forwarder.alerts.rules import Rule
from forwarder.journal import StateChanges
from forwarder.journal.sqlite import SqliteJournal
from forwarder.records import Lane

START = datetime(2026, 11, 26, 8, tzinfo=UTC)

BRUTE = Rule.model_validate(
    {
        "id": "brute",
        "name": "Brute force",
        "description": "d",
        "severity": "high",
        "type": "threshold",
        "match": {"field": "event.outcome", "equals": "failure"},
        "threshold": {"count": 3, "window": "4m", "group_by": ["user.name"]},
        "suppress": {"for": "10m"},
    }
)
FAILED = Rule.model_validate(
    {
        "id": "failed",
        "name": "Any failure",
        "description": "d",
        "severity": "low",
        "type": "match",
        "match": {"field": "event.outcome", "equals": "failure"},
        "suppress": {"for": "1m", "by": ["user.name"]},
    }
)


def failure(seconds: float, user: str, n: int = 0) -> dict[str, Any]:
    at = START + timedelta(seconds=seconds)
    return {
        "@timestamp": at.isoformat().replace("+00:00", "Z"),
        "event": {"id": f"{user}-{seconds}-{n}", "dataset": "salesforce.login", "outcome": "failure"},
        "user": {"name": user},
    }


def paths(entries: list[tuple[tuple[str, ...], Any]]) -> set[tuple[str, ...]]:
    return {path for path, _ in entries}


def written(changes: StateChanges) -> set[tuple[str, ...]]:
    return paths(changes.updates) | paths(changes.appends)


def busy(rules: list[Rule], users: int = 10, max_groups: int = 40) -> Engine:
    """An engine holding ``users`` users' state, committed: a few changes are a small share of it."""
    engine = Engine(rules, max_groups=max_groups)
    engine.evaluate([failure(0, f"bg{n}") for n in range(users)], "realtime")
    engine.committed()
    return engine


def test_first_changes_after_a_start_are_the_whole_document() -> None:
    engine = Engine([BRUTE, FAILED])
    engine.evaluate([failure(1, "a"), failure(2, "b")], "realtime")
    changes = engine.changes()
    assert changes.replace
    assert changes.appends == [((), engine.state)]
    restored = Engine([BRUTE, FAILED], state=engine.state)
    assert restored.changes().replace


def test_changes_after_a_commit_hold_only_what_the_batch_touched() -> None:
    engine = busy([BRUTE, FAILED], max_groups=100)
    engine.evaluate([failure(4, "b")], "realtime")
    changes = engine.changes()
    assert not changes.replace
    assert not changes.deletes
    assert paths(changes.updates) == {("watermarks", "realtime")}
    assert all("bg" not in path[-1] for path in written(changes) if path[0] == "rules")
    buckets = {p for p in paths(changes.appends) if p[:3] == ("rules", "brute", "buckets")}
    assert len(buckets) == 4  # b's four hopping windows
    assert all(p[-1].endswith('|["b"]') for p in buckets)
    for path, value in changes.updates + changes.appends:
        holder: Any = engine.state
        for key in path:
            holder = holder[key]
        assert holder == value
    engine.committed()
    assert engine.pending_changes() == 0


def test_a_window_counted_again_is_an_update_in_place() -> None:
    engine = busy([BRUTE])
    engine.evaluate([failure(1, "bg3")], "realtime")
    changes = engine.changes()
    assert not changes.appends
    assert {p[-1] for p in paths(changes.updates) if p[0] == "rules"} == {
        k for k in engine.state["rules"]["brute"]["buckets"] if k.endswith('|["bg3"]')
    }


def test_evicted_entries_are_reported_deleted_and_not_written() -> None:
    engine = busy([BRUTE])  # at max_groups: 10 users x 4 windows
    oldest = {k for k in engine.state["rules"]["brute"]["buckets"] if k.endswith('|["bg0"]')}
    engine.evaluate([failure(2, "b")], "realtime")  # b's four windows evict bg0's
    changes = engine.changes()
    assert not changes.replace
    deleted = {path[-1] for path in changes.deletes if path[:3] == ("rules", "brute", "buckets")}
    assert deleted == oldest
    assert not deleted & {path[-1] for path in written(changes)}
    assert set(engine.state["rules"]["brute"]["buckets"]).isdisjoint(deleted)


def test_entries_behind_the_watermark_are_reported_deleted() -> None:
    engine = Engine([BRUTE, FAILED])
    engine.evaluate([failure(1, "a"), failure(2, "a"), failure(3, "a")], "realtime")
    old = [(*parent, key) for parent in rule_objects(engine) for key in lookup(engine, parent)]
    engine.evaluate([failure(3500, f"bg{n}") for n in range(30)], "realtime")  # within allowed lateness
    engine.committed()
    engine.lateness_ms = 60_000
    engine.evaluate([failure(3600, "z")], "realtime")  # a minute of lateness: a's entries expire
    changes = engine.changes()
    assert not changes.replace
    assert set(old) <= set(changes.deletes)
    assert not [k for parent in rule_objects(engine) for k in lookup(engine, parent) if k.endswith('["a"]')]


def rule_objects(engine: Engine) -> list[tuple[str, ...]]:
    return [("rules", rule, name) for rule, slot in engine.state["rules"].items() for name in slot]


def lookup(engine: Engine, parent: tuple[str, ...]) -> dict[str, Any]:
    holder: Any = engine.state
    for key in parent:
        holder = holder[key]
    return dict(holder)


def test_an_entry_removed_then_written_again_is_deleted_then_appended() -> None:
    engine = Engine([FAILED], max_groups=10)
    engine.evaluate([failure(0, "a")] + [failure(1, f"bg{n}") for n in range(9)], "realtime")
    engine.committed()
    engine.evaluate([failure(2, "b"), failure(200, "a")], "realtime")  # a evicted by b, then a back
    changes = engine.changes()
    assert not changes.replace
    suppress = ("rules", "failed", "suppress")
    assert (*suppress, '["a"]') in changes.deletes
    assert (*suppress, '["a"]') in paths(changes.appends)


def test_a_commit_changing_most_entries_writes_the_whole_document() -> None:
    engine = busy([BRUTE])
    engine.evaluate([failure(1, f"bg{n}") for n in range(10)], "realtime")  # every window counted again
    assert engine.changes().replace


def test_writes_since_the_last_whole_document_are_compacted_into_one() -> None:
    engine = busy([BRUTE], users=10, max_groups=10_000)
    replaced = []
    for n in range(60):
        engine.evaluate([failure(1 + n, f"new{n}")], "realtime")
        replaced.append(engine.changes().replace)
        engine.committed()
    assert replaced.count(True) == 1  # after about as many entries written as held
    assert replaced.count(False) == 59


def test_state_of_a_rule_no_longer_enabled_is_dropped_on_restore() -> None:
    engine = Engine([BRUTE, FAILED])
    engine.evaluate([failure(1, "a")], "realtime")
    restored = Engine([FAILED], state=engine.state)
    assert set(restored.state["rules"]) == {"failed"}
    changes = restored.changes()
    assert changes.replace
    assert "brute" not in changes.appends[0][1]["rules"]


#: Records every write to the state rows, to see what one commit wrote (a real SQLite trigger).
AUDIT = [
    "CREATE TABLE audit (op TEXT NOT NULL, key TEXT NOT NULL)",
    "CREATE TRIGGER audit_insert AFTER INSERT ON consumer_state_items"
    " BEGIN INSERT INTO audit VALUES ('insert', new.key); END",
    "CREATE TRIGGER audit_update AFTER UPDATE ON consumer_state_items"
    " BEGIN INSERT INTO audit VALUES ('update', new.key); END",
    "CREATE TRIGGER audit_delete AFTER DELETE ON consumer_state_items"
    " BEGIN INSERT INTO audit VALUES ('delete', old.key); END",
]


@contextmanager
def database(path: Path) -> Iterator[sqlite3.Connection]:
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        yield conn


def audited(path: Path) -> list[tuple[str, list[Any]]]:
    """The writes recorded since the last call (and forget them)."""
    with database(path) as conn:
        rows = conn.execute("SELECT op, key FROM audit ORDER BY rowid").fetchall()
        conn.execute("DELETE FROM audit")
    return [(op, orjson.loads(key)) for op, key in rows]


async def started(path: Path, engine: Engine) -> tuple[SqliteJournal, RuleConsumer]:
    journal = await SqliteJournal.open(path, consumers=[CONSUMER, "hold"])  # hold: keeps events to read
    consumer = RuleConsumer(engine, journal)
    await consumer.start()
    return journal, consumer


async def feed(journal: SqliteJournal, consumer: RuleConsumer, docs: list[dict[str, Any]]) -> None:
    """Append ``docs`` and commit their evaluation (one commit)."""
    await journal.append("streaming", Lane.REALTIME, docs, [], None)
    while await consumer.step(Lane.REALTIME):
        pass
    await consumer.flush()


def same(stored: dict[str, Any] | None, engine: Engine) -> bool:
    """``stored``, restored into an engine of the same rules, equals ``engine``'s state with every object's
    keys in the same order (eviction takes the first)."""
    restored = Engine([c.rule for c in engine.rules], state=stored).state
    return stored is not None and orjson.dumps(restored) == orjson.dumps(engine.state)


async def test_a_commit_writes_only_the_changed_entries_and_deletes_the_evicted(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    journal, consumer = await started(path, Engine([BRUTE, FAILED], max_groups=40))
    await feed(journal, consumer, [failure(0, f"bg{n}") for n in range(10)])  # brute at its cap: 40 windows
    with database(path) as conn:
        for statement in AUDIT:
            conn.execute(statement)
    try:
        await feed(journal, consumer, [failure(3, "b")])
        writes = audited(path)
        assert ["watermarks", "realtime"] in [key for _, key in writes]
        assert not [key for _, key in writes if key and "bg" in key[-1] and not key[-1].endswith('["bg0"]')]
        assert len([key for _, key in writes if key[-1].endswith('|["b"]')]) == 4  # b's four windows
        assert len(writes) < 20
        with database(path) as conn:
            gone = [orjson.loads(k) for (k,) in conn.execute(select_deleted)]
        assert {key[-1].rsplit("|", 1)[1] for key in gone} == {'["bg0"]'}  # evicted at max_groups
        assert len(gone) == 4
        assert same(await journal.consumer_state(CONSUMER), consumer.engine)
    finally:
        await journal.close()


select_deleted = "SELECT key FROM consumer_state_items WHERE value IS NULL"
select_entries = "SELECT count(*) FROM consumer_state_items WHERE key != '[]'"


def traffic(seed: int, count: int) -> list[dict[str, Any]]:
    """Failures of 12 users over four hours, a few arriving late: windows fill, fire, get evicted, expire."""
    rng = random.Random(seed)
    docs = []
    for n in range(count):
        seconds = n * 25 - (rng.randrange(600) if rng.random() < 0.1 else 0)
        docs.append(failure(max(seconds, 0), f"user{rng.randrange(12)}", n))
    return docs


async def test_restore_gives_the_state_as_it_was_after_every_commit(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    rules = [BRUTE, FAILED]
    journal, consumer = await started(path, Engine(rules, max_groups=24))
    docs, kinds = traffic(3, 600), set()
    try:
        for i in range(0, len(docs), 3):
            await feed(journal, consumer, docs[i : i + 3])
            assert same(await journal.consumer_state(CONSUMER), consumer.engine)
            with database(path) as conn:
                kinds |= {bool(n) for (n,) in conn.execute(select_entries)}
    finally:
        await journal.close()
    assert kinds == {True, False}  # commits of changed entries and of the whole document (compaction)
    assert len(consumer.engine.state["rules"]["brute"]["buckets"]) == 24  # evicting at the cap
    journal, restarted = await started(path, Engine(rules, max_groups=24))
    try:
        assert orjson.dumps(restarted.engine.state) == orjson.dumps(consumer.engine.state)
        more = traffic(4, 90)
        await feed(journal, restarted, more)
        consumer.engine.evaluate(more, "realtime")  # the engine that never stopped, over the same events
        assert same(await journal.consumer_state(CONSUMER), consumer.engine)
    finally:
        await journal.close()


def legacy_journal(path: Path, state: dict[str, Any]) -> None:
    """A journal as the single-document versions wrote it: the state as one row of ``consumer_state``."""
    with database(path) as conn:
        conn.execute("DROP TABLE consumer_state_items")
        conn.execute("INSERT INTO consumer_state VALUES (?, ?)", (CONSUMER, orjson.dumps(state)))


async def test_single_document_state_is_migrated_in_place_and_resumes_mid_window(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    engine = Engine([BRUTE])
    engine.evaluate([failure(1, "a"), failure(2, "a")], "realtime")
    journal = await SqliteJournal.open(path, consumers=[CONSUMER, "hold"])
    await journal.close()
    legacy_journal(path, engine.state)
    journal, consumer = await started(path, Engine([BRUTE]))
    try:
        assert orjson.dumps(consumer.engine.state) == orjson.dumps(engine.state)
        with database(path) as conn:
            assert conn.execute("SELECT count(*) FROM consumer_state").fetchone()[0] == 0
            assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
        await feed(journal, consumer, [failure(3, "a")])
        alerts = [e.event for e in await journal.read("reader", Lane.REALTIME, 0, 100)]
        assert [a["event"]["dataset"] for a in alerts[1:]] == ["salesforce.alert"]
        with database(path) as conn:
            keys = [orjson.loads(k) for (k,) in conn.execute("SELECT key FROM consumer_state_items")]
        assert keys == [[]]  # the first commit after a start writes the whole document
        assert same(await journal.consumer_state(CONSUMER), consumer.engine)
    finally:
        await journal.close()


async def test_entries_apply_over_the_whole_document_in_order(tmp_path: Path) -> None:
    journal = await SqliteJournal.open(tmp_path / "state.db", consumers=[CONSUMER])
    try:
        entries = StateChanges([], [(("rules", "x", "seen", "k"), 1), (("version",), 1)], [])
        await journal.commit_derived(CONSUMER, {}, [], entries)
        assert await journal.consumer_state(CONSUMER) == {"rules": {"x": {"seen": {"k": 1}}}, "version": 1}
        await journal.commit_derived(CONSUMER, {}, [], {"version": 1, "watermarks": {"a": 1, "b": 2}})
        assert await journal.consumer_state(CONSUMER) == {"version": 1, "watermarks": {"a": 1, "b": 2}}
        changes = StateChanges([(("watermarks", "a"), 3)], [(("watermarks", "c"), 4)], [("version",)])
        await journal.commit_derived(CONSUMER, {}, [], changes)
        stored = await journal.consumer_state(CONSUMER)
        assert stored == {"watermarks": {"a": 3, "b": 2, "c": 4}}
        assert list(stored["watermarks"]) == ["a", "b", "c"]  # updated in place, appended after
        again = StateChanges([], [(("watermarks", "a"), 5), (("version",), 1)], [("watermarks", "a")])
        await journal.commit_derived(CONSUMER, {}, [], again)  # removed, then added back: now the last
        stored = await journal.consumer_state(CONSUMER)
        assert orjson.dumps(stored) == orjson.dumps({"watermarks": {"b": 2, "c": 4, "a": 5}, "version": 1})
    finally:
        await journal.close()


def test_pruning_only_objects_with_expired_entries_keeps_the_same_state() -> None:
    rules, docs = [BRUTE, FAILED], traffic(5, 900)
    engine, scanning = Engine(rules, max_groups=24), Engine(rules, max_groups=24)
    alerts, scanned = [], []
    for i in range(0, len(docs), 7):
        scanning._expiry.clear()  # unknown: this one looks at every entry of every object
        alerts += engine.evaluate(docs[i : i + 7], "realtime")
        scanned += scanning.evaluate(docs[i : i + 7], "realtime")
        assert orjson.dumps(engine.state) == orjson.dumps(scanning.state)
    assert [a["event"]["id"] for a in alerts] == [a["event"]["id"] for a in scanned]
    assert len(alerts) > 10
