"""The rule engine, pure: documents in, alert documents out, all state in one JSON-ready dict whose changed
entries since the last commit it can report (``changes``), so the journal writes only those.

Windows hop (a new one every ``hop``, each ``window`` long) over event time (``@timestamp``), so a replay
gives the same alerts with the same ids. Each lane keeps its own watermark (its newest ``@timestamp``): an
EventLogFile row hours behind the streams is on time for the bulk lane. See docs/alerts.md.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson

from forwarder.alerts.changes import Tracker
from forwarder.alerts.conditions import Predicate, compile_condition, datasets_of, field_values
from forwarder.alerts.document import DATASET, MAX_IDS, Firing, build_alert, digest
from forwarder.alerts.rules import Rule
from forwarder.events import EventDoc
from forwarder.journal import StateChanges, StatePath

STATE_VERSION = 1
#: Default allowed lateness: an event older than its lane's watermark by more is not evaluated (counted).
ALLOWED_LATENESS = timedelta(hours=2)
#: Default cap of windows/groups (and remembered occurrences) per rule; the oldest is evicted (counted).
MAX_GROUPS = 10_000
#: Ids of alerts raised are remembered this long past every lane's watermark: the EventLogFile copy of a
#: stream event can arrive after the stream's window was pruned, and must not raise the same alert again.
FIRED_HORIZON_MS = 7 * 86_400_000
#: The unit written per commit is one window, occurrence, suppression or group's last firing
#: (``rules/<id>/<kind>/<key>``), raised id (``fired/<id>``) or watermark (``watermarks/<lane>``).
_SECTIONS = ("buckets", "seen", "suppress", "fires")
_FIRED: StatePath = ("fired",)
_NEVER = 2**62  # the expiry of an empty object
_WATERMARKS: StatePath = ("watermarks",)


@dataclass
class Stats:
    """What one ``evaluate`` call did, for metrics once its transaction committed."""

    evaluated: Counter[str] = field(default_factory=Counter)
    late: Counter[str] = field(default_factory=Counter)
    fired: Counter[str] = field(default_factory=Counter)
    suppressed: Counter[str] = field(default_factory=Counter)
    evicted: Counter[str] = field(default_factory=Counter)


@dataclass(eq=False)
class _Compiled:
    rule: Rule
    match: Predicate
    window_ms: int
    suppress_ms: int
    hop_ms: int = 0
    then: Predicate | None = None
    at: dict[str, StatePath] = field(default_factory=dict)  # where each of its state objects is


def to_ms(value: Any) -> int | None:
    """``@timestamp`` text -> epoch milliseconds; None when missing or unparseable."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return int(parsed.timestamp() * 1000)


def key_of(doc: EventDoc, paths: Sequence[str]) -> list[Any]:
    """The values of ``paths`` (first value of list fields, None when absent): a group or occurrence key."""
    out = []
    for path in paths:
        values = field_values(doc, path)
        out.append(values[0] if values else None)
    return out


def _text(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


class Engine:
    """Evaluates enabled rules over documents in journal order. ``state`` is saved and restored whole."""

    def __init__(
        self,
        rules: Iterable[Rule],
        *,
        allowed_lateness: timedelta = ALLOWED_LATENESS,
        max_groups: int = MAX_GROUPS,
        state: dict[str, Any] | None = None,
    ) -> None:
        self.rules = [
            _Compiled(
                r,
                compile_condition(r.match),
                int(r.threshold.window.total_seconds() * 1000) if r.threshold else 0,
                int(r.suppress.for_.total_seconds() * 1000) if r.suppress else 0,
            )
            for r in rules
            if r.enabled
        ]
        for compiled in self.rules:
            if compiled.rule.then is not None:
                compiled.then = compile_condition(compiled.rule.then)
            if compiled.rule.threshold is not None:
                compiled.hop_ms = int(compiled.rule.threshold.hop_or_default().total_seconds() * 1000)
            compiled.at = {name: ("rules", compiled.rule.id, name) for name in _SECTIONS}
        self._by_dataset: dict[str, list[_Compiled]] = {}
        self._any_dataset = [c for c in self.rules if _datasets(c.rule) is None]
        self._candidate_cache: dict[str, list[_Compiled]] = {}
        for compiled in self.rules:
            for dataset in _datasets(compiled.rule) or ():
                self._by_dataset.setdefault(dataset, []).append(compiled)
        self.lateness_ms = int(allowed_lateness.total_seconds() * 1000)
        self.max_groups = max_groups
        self.state = _empty()
        self._tracker = Tracker()
        self._expiry: dict[StatePath, int] = {}
        self.restore(state)

    def restore(self, state: dict[str, Any] | None) -> None:
        """Continue from a saved ``state`` (of this state version; anything else starts empty). The state
        of rules not enabled here is dropped; the next ``changes()`` is the whole document."""
        if state and state.get("version") == STATE_VERSION:
            self.state = {**_empty(), **state}
        else:
            self.state = _empty()
        saved = self.state["rules"]
        self.state["rules"] = {c.rule.id: _slot(saved.get(c.rule.id)) for c in self.rules}
        self._tracker = Tracker()
        self._expiry = {}  # unknown: the next prune looks at every entry

    def changes(self) -> StateChanges:
        """The state entries written and removed since the last ``committed()`` (all of them after a start):
        what ``commit_derived`` stores with the alerts and cursors they go with."""
        return self._tracker.changes(self.state, self.entries())

    def committed(self) -> None:
        """The last ``changes()`` are durable (call only after their transaction committed)."""
        self._tracker.committed()

    def entries(self) -> int:
        """Entries in the state: windows, occurrences, suppressions, firings, raised ids, watermarks."""
        slots = self.state["rules"].values()
        held = sum(len(slot[name]) for slot in slots for name in _SECTIONS)
        return held + len(self.state["fired"]) + len(self.state["watermarks"]) + 1

    def pending_changes(self) -> int:
        """Entries the next incremental commit writes or deletes."""
        return self._tracker.pending()

    def evaluate(self, docs: Iterable[EventDoc], lane: str, stats: Stats | None = None) -> list[EventDoc]:
        """Alert documents for ``docs`` (read from ``lane``, in offset order); updates ``state``."""
        stats = stats or Stats()
        alerts: list[EventDoc] = []
        marks = self.state["watermarks"]
        for doc in docs:
            event = doc.get("event")
            if isinstance(event, dict) and event.get("dataset") == DATASET:
                continue  # our own alerts come back on the realtime lane
            ts = to_ms(doc.get("@timestamp"))
            if ts is None:
                continue
            stats.evaluated[lane] += 1
            if ts < marks.get(lane, ts) - self.lateness_ms:
                stats.late[lane] += 1
                continue
            if ts > marks.get(lane, ts - 1):
                marks[lane] = ts
                self._tracker.touch(_WATERMARKS, lane)
            for compiled in self._candidates(event):
                then = compiled.then is not None and compiled.then(doc)
                if then or compiled.match(doc):
                    firing = self._apply(compiled, doc, ts, stats, then=then)
                    if firing is not None:
                        alerts.append(build_alert(firing))
        self._prune(stats)
        return alerts

    def _candidates(self, event: Any) -> list[_Compiled]:
        """The rules that can match a document of this ``event.dataset``, in rule order."""
        dataset = event.get("dataset") if isinstance(event, dict) else None
        key = dataset if isinstance(dataset, str) else ""
        found = self._candidate_cache.get(key)
        if found is None:
            indexed = self._by_dataset.get(key, [])
            found = [c for c in self.rules if c in indexed or c in self._any_dataset]
            if len(self._candidate_cache) < 1000:  # datasets are a small closed set; a bound all the same
                self._candidate_cache[key] = found
        return found

    def groups(self) -> dict[str, int]:
        """Windows and remembered occurrences held per rule (the state-size gauge)."""
        return {
            rid: len(s["buckets"]) + len(s["seen"]) + len(s["suppress"]) + len(s.get("fires", {}))
            for rid, s in self.state["rules"].items()
        }

    # --- one rule, one document ----------------------------------------------------------------------

    def _apply(
        self, compiled: _Compiled, doc: EventDoc, ts: int, stats: Stats, *, then: bool = False
    ) -> Firing | None:
        rule = compiled.rule
        slot = self.state["rules"][rule.id]
        occurrence = digest(_text(key_of(doc, rule.occurrence)))[:16]  # short: windows keep up to count
        if rule.threshold is None:
            seen = slot["seen"]
            if occurrence in seen:
                return None  # the same occurrence from another source (stream and EventLogFile)
            seen[occurrence] = ts
            self._tracker.add(compiled.at["seen"], occurrence)
            self._expires(compiled.at["seen"], ts)
            self._cap(compiled, "seen", seen, stats)
            firing: Firing | None = self._match_firing(rule, doc, ts, occurrence)
        elif then:
            firing = self._then(compiled, slot, doc, ts)
        else:
            firing = self._count(compiled, slot, doc, ts, occurrence, stats)
        if firing is None:
            return None
        fired = self.state["fired"]
        if firing.alert_id in fired:
            return None  # raised before (its window was pruned, then the other lane's copies came)
        firing = self._unless_suppressed(compiled, slot, firing, doc, ts, stats)
        if firing is not None:
            fired[firing.alert_id] = ts
            self._tracker.add(_FIRED, firing.alert_id)
            self._expires(_FIRED, ts + FIRED_HORIZON_MS)
            self._cap(None, "", fired, stats, limit=self.max_groups * 10)
        return firing

    def _match_firing(self, rule: Rule, doc: EventDoc, ts: int, occurrence: str) -> Firing:
        firing = Firing(
            rule,
            doc,
            digest(rule.id, occurrence),
            "",
            dict(zip(rule.occurrence, key_of(doc, rule.occurrence), strict=True)),
        )
        firing.first_ms = firing.last_ms = ts
        firing.event_ids = _ids(doc)
        firing.ips = _strings(doc, "related.ip")
        firing.users = _strings(doc, "related.user")
        return firing

    def _count(
        self, compiled: _Compiled, slot: dict[str, Any], doc: EventDoc, ts: int, occurrence: str, stats: Stats
    ) -> Firing | None:
        """Count ``doc`` into every window holding ``ts`` (hopping windows: ``window / hop`` of them); the
        first to reach the count fires, unless the group fired in a window overlapping it."""
        threshold = compiled.rule.threshold
        assert threshold is not None
        group = key_of(doc, threshold.group_by)
        name = _text(group)
        fires = slot["fires"]
        latest = ts - ts % compiled.hop_ms
        if threshold.distinct is not None:
            values = field_values(doc, threshold.distinct)
            if not values:
                return None
            key, repeatable = _text(values[0]), True
        else:
            key, repeatable = occurrence, False
        extras = _Extras(doc)
        firing = None
        dirty = self._tracker.keys(compiled.at["buckets"])
        # Latest window first: of the windows reaching the count together, the one starting nearest the burst.
        for start in range(latest, latest - compiled.window_ms, -compiled.hop_ms):
            bucket_key = f"{start}|{name}"
            bucket = self._bucket(compiled, slot, bucket_key, start, ts, stats)
            if not _tally(bucket, key, repeatable, ts, extras, threshold.count):
                return firing  # an occurrence already counted: it is in every other window of ``ts`` too
            dirty[bucket_key] = None
            if compiled.then is not None or bucket["fired"] or len(bucket["keys"]) < threshold.count:
                continue  # not reached, or a sequence rule: its ``then`` event fires
            bucket["fired"] = True
            previous = fires.get(name)
            if previous is not None and abs(start - previous) < compiled.window_ms:
                continue  # once per group per window length: overlapping windows see the same burst
            fires[name] = start
            self._fired_group(compiled, name, previous, start)
            self._cap(compiled, "fires", fires, stats)
            firing = self._threshold_firing(compiled.rule, doc, group, bucket)
        return firing

    def _then(self, compiled: _Compiled, slot: dict[str, Any], doc: EventDoc, ts: int) -> Firing | None:
        """A sequence rule's ``then`` event: fires when a window holding ``ts`` already has the count of
        ``match`` events, the first of them before it (once per group per window length)."""
        threshold = compiled.rule.threshold
        assert threshold is not None
        group = key_of(doc, threshold.group_by)
        name, fires = _text(group), slot["fires"]
        latest = ts - ts % compiled.hop_ms
        for start in range(latest, latest - compiled.window_ms, -compiled.hop_ms):
            bucket_key = f"{start}|{name}"
            bucket = slot["buckets"].get(bucket_key)
            if (
                bucket is None
                or bucket["fired"]
                or len(bucket["keys"]) < threshold.count
                or bucket["first"] > ts
            ):
                continue
            bucket["fired"] = True
            self._tracker.touch(compiled.at["buckets"], bucket_key)
            previous = fires.get(name)
            if previous is not None and abs(start - previous) < compiled.window_ms:
                continue
            fires[name] = start
            self._fired_group(compiled, name, previous, start)
            firing = self._threshold_firing(compiled.rule, doc, group, bucket)
            firing.event_ids = [*firing.event_ids[: MAX_IDS - 1], *_ids(doc)]
            return firing
        return None

    def _fired_group(self, compiled: _Compiled, name: str, previous: int | None, start: int) -> None:
        """The group ``name`` fired in the window at ``start`` (``previous``: where it fired before, if)."""
        (self._tracker.add if previous is None else self._tracker.touch)(compiled.at["fires"], name)
        self._expires(compiled.at["fires"], start + compiled.window_ms)

    def _bucket(
        self, compiled: _Compiled, slot: dict[str, Any], name: str, start: int, ts: int, stats: Stats
    ) -> dict[str, Any]:
        bucket = slot["buckets"].get(name)
        if bucket is None:
            bucket = slot["buckets"][name] = _new_bucket(start, ts)
            self._tracker.add(compiled.at["buckets"], name)
            self._expires(compiled.at["buckets"], start + compiled.window_ms)
            self._cap(compiled, "buckets", slot["buckets"], stats)
        return bucket  # type: ignore[no-any-return]

    def _threshold_firing(
        self, rule: Rule, doc: EventDoc, group: list[Any], bucket: dict[str, Any]
    ) -> Firing:
        assert rule.threshold is not None
        start = bucket["start"]
        group_map = dict(zip(rule.threshold.group_by, group, strict=True))
        firing = Firing(rule, doc, digest(rule.id, _text(group), str(start)), "", group_map)
        firing.count, firing.first_ms, firing.last_ms = bucket["count"], bucket["first"], bucket["last"]
        firing.event_ids = list(bucket["ids"])
        firing.ips, firing.users = list(bucket["ips"]), list(bucket["users"])
        firing.window_start_ms = start
        firing.distinct_count = len(bucket["keys"]) if rule.threshold.distinct else None
        return firing

    def _unless_suppressed(
        self, compiled: _Compiled, slot: dict[str, Any], firing: Firing, doc: EventDoc, ts: int, stats: Stats
    ) -> Firing | None:
        rule = compiled.rule
        key = _suppression_key(rule, firing, doc)
        # PagerDuty folds events with one dedup_key into one incident: the suppression key's (docs/alerts.md).
        firing.dedup_key = f"{rule.id}:{digest(rule.id, key if key != '[]' else firing.alert_id)}"
        if not compiled.suppress_ms:
            stats.fired[rule.id] += 1
            return firing
        entry = slot["suppress"].get(key)
        # Symmetric in event time: a late repeat older than the alert it repeats is suppressed too.
        (self._tracker.touch if entry is not None else self._tracker.add)(compiled.at["suppress"], key)
        if entry is not None and abs(ts - entry["at"]) < compiled.suppress_ms:
            entry["count"] += 1
            stats.suppressed[rule.id] += 1
            return None
        firing.suppressed_before = entry["count"] if entry else 0
        slot["suppress"][key] = {"at": ts, "count": 0}
        self._expires(compiled.at["suppress"], ts + compiled.suppress_ms)
        self._cap(compiled, "suppress", slot["suppress"], stats)
        stats.fired[rule.id] += 1
        return firing

    # --- bounds --------------------------------------------------------------------------------------

    def _cap(
        self,
        compiled: _Compiled | None,
        section: str,
        table: dict[str, Any],
        stats: Stats,
        limit: int | None = None,
    ) -> None:
        """Evict the oldest entries of ``table`` (a rule's ``section``, or without a rule the raised ids)."""
        parent = _FIRED if compiled is None else compiled.at[section]
        while len(table) > (limit or self.max_groups):
            oldest = next(iter(table))  # dicts keep insertion order: the oldest goes first
            del table[oldest]
            self._tracker.remove(parent, oldest)
            if compiled is not None:  # the fired-ids memory is not a rule's state
                stats.evicted[compiled.rule.id] += 1

    def _prune(self, stats: Stats) -> None:
        """Forget windows, occurrences and suppressions every lane's watermark has left behind."""
        marks = self.state["watermarks"]
        if not marks:
            return
        floor = min(marks.values()) - self.lateness_ms
        self._sweep(_FIRED, self.state["fired"], floor, FIRED_HORIZON_MS)
        for compiled in self.rules:
            slot, at, window = self.state["rules"][compiled.rule.id], compiled.at, compiled.window_ms
            self._sweep(at["buckets"], slot["buckets"], floor, window, "start")
            self._sweep(at["seen"], slot["seen"], floor, 0)
            self._sweep(at["fires"], slot["fires"], floor, window)
            self._sweep(at["suppress"], slot["suppress"], floor, compiled.suppress_ms, "at")

    def _expires(self, parent: StatePath, at: int) -> None:
        """An entry of ``parent`` expires once the floor passes ``at``: the earliest such time is kept (when
        known), so a prune looks at an object only when something in it has expired."""
        known = self._expiry.get(parent)
        if known is not None and at < known:
            self._expiry[parent] = at

    def _sweep(
        self, parent: StatePath, table: dict[str, Any], floor: int, offset: int, field: str | None = None
    ) -> None:
        """Drop the entries of ``table`` expired at ``floor`` (each at its time, or its ``field``, plus
        ``offset``) and note when the next one expires."""
        known = self._expiry.get(parent)
        if known is not None and known >= floor:
            return
        gone, earliest = [], _NEVER
        for key, value in table.items():
            at = (value[field] if field else value) + offset
            if at < floor:
                gone.append(key)
            elif at < earliest:
                earliest = at
        self._drop(parent, table, gone)
        self._expiry[parent] = earliest

    def _drop(self, parent: StatePath, table: dict[str, Any], keys: list[str]) -> None:
        for key in keys:
            del table[key]
            self._tracker.remove(parent, key)


def _datasets(rule: Rule) -> frozenset[str] | None:
    """Datasets a rule can act on: its ``match``'s, plus its ``then``'s for a sequence rule."""
    found = datasets_of(rule.match)
    if rule.then is None or found is None:
        return found
    then = datasets_of(rule.then)
    return None if then is None else found | then


def _suppression_key(rule: Rule, firing: Firing, doc: EventDoc) -> str:
    """``suppress.by`` values; without them the group (threshold) or the whole rule (match): ``[]``."""
    if rule.suppress is not None and rule.suppress.by:
        return _text(key_of(doc, rule.suppress.by))
    return _text(list(firing.group.values()) if rule.threshold else [])


def _empty() -> dict[str, Any]:
    return {"version": STATE_VERSION, "watermarks": {}, "rules": {}, "fired": {}}


def _slot(saved: dict[str, Any] | None) -> dict[str, Any]:
    """A rule's state objects: its windows, seen occurrences, suppressions and groups' last firings."""
    return {name: dict((saved or {}).get(name, {})) for name in _SECTIONS}


def _new_bucket(start: int, ts: int) -> dict[str, Any]:
    return {
        "start": start,
        "count": 0,
        "keys": [],
        "fired": False,
        "first": ts,
        "last": ts,
        "ids": [],
        "ips": [],
        "users": [],
    }


def _strings(doc: EventDoc, path: str) -> list[str]:
    return [str(v) for v in field_values(doc, path)]


def _ids(doc: EventDoc) -> list[str]:
    return [str(v) for v in field_values(doc, "event.id")[:1]]


def _tally(bucket: dict[str, Any], key: str, repeatable: bool, ts: int, extras: _Extras, limit: int) -> bool:
    """Count one event (``key``: its occurrence, or its distinct value) into the window; False when it
    repeats an occurrence already counted (``repeatable``: distinct values may repeat, and still count).
    Keys are kept until ``limit`` (the rule's count) is reached: the state per window stays bounded."""
    if not bucket["fired"] and len(bucket["keys"]) < limit:
        keys = bucket["keys"]
        if key in keys:
            if not repeatable:
                return False
        else:
            keys.append(key)
    bucket["count"] += 1
    if ts < bucket["first"]:
        bucket["first"] = ts
    if ts > bucket["last"]:
        bucket["last"] = ts
    for name, values in zip(("ids", "ips", "users"), extras.lists(), strict=True):
        _add_bounded(bucket[name], values)
    return True


class _Extras:
    """Ids, addresses and users of one event, computed once for all the windows it is counted in."""

    __slots__ = ("_doc", "_lists")

    def __init__(self, doc: EventDoc) -> None:
        self._doc = doc
        self._lists: tuple[list[str], list[str], list[str]] | None = None

    def lists(self) -> tuple[list[str], list[str], list[str]]:
        if self._lists is None:
            doc = self._doc
            self._lists = (_ids(doc), _strings(doc, "related.ip"), _strings(doc, "related.user"))
        return self._lists


def _add_bounded(target: list[str], values: list[str], limit: int = 20) -> None:
    if len(target) >= limit:
        return
    for value in values:
        if len(target) >= limit:
            return
        if value not in target:
            target.append(value)
