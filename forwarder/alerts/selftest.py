"""``sf-forwarder rules test``: run the rules' embedded examples, or show which rules fire on documents."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import orjson

from forwarder.alerts.engine import Engine
from forwarder.alerts.rules import Rule, load_rules
from forwarder.events import EventDoc, get_path


@dataclass(frozen=True)
class Outcome:
    rule: str
    test: str
    expected: int
    got: int

    @property
    def passed(self) -> bool:
        return self.expected == self.got


def run_examples(rules: list[Rule]) -> list[Outcome]:
    """Each example on a fresh engine holding only its rule (disabled rules are tested too)."""
    outcomes = []
    for rule in rules:
        for test in rule.tests:
            engine = Engine([rule.model_copy(update={"enabled": True})])
            alerts = engine.evaluate(test.events, "realtime")
            outcomes.append(Outcome(rule.id, test.name, test.alerts, len(alerts)))
    return outcomes


def fire_on(rules: list[Rule], docs: list[EventDoc]) -> list[EventDoc]:
    """The alerts the enabled rules raise on ``docs``, in order, from an empty state."""
    return Engine(rules).evaluate(docs, "realtime")


def _print_examples(rules: list[Rule], out: TextIO) -> int:
    outcomes = run_examples(rules)
    for o in outcomes:
        mark = "ok  " if o.passed else "FAIL"
        detail = "" if o.passed else f" (expected {o.expected} alerts, got {o.got})"
        print(f"{mark} {o.rule}: {o.test}{detail}", file=out)
    failed = sum(not o.passed for o in outcomes)
    untested = [r.id for r in rules if not r.tests]
    print(f"{len(rules)} rules, {len(outcomes)} examples, {failed} failed", file=out)
    if untested:
        print(f"rules without examples: {', '.join(untested)}", file=out)
    return 1 if failed else 0


def _print_firing(rules: list[Rule], events: Path, out: TextIO) -> int:
    docs = [orjson.loads(line) for line in events.read_bytes().splitlines() if line.strip()]
    alerts = fire_on(rules, docs)
    for alert in alerts:
        print(f"{get_path(alert, '@timestamp')} {get_path(alert, 'rule.id')}: {alert['message']}", file=out)
    per_rule = Counter(str(get_path(a, "rule.id")) for a in alerts)
    print(
        f"{len(docs)} documents, {len(alerts)} alerts"
        + "".join(f", {k}: {v}" for k, v in sorted(per_rule.items())),
        file=out,
    )
    return 0


def rule_paths(args: argparse.Namespace) -> list[Path]:
    """``--rules`` paths, else the config's ``rules.paths``."""
    if args.rules:
        return [Path(p) for p in args.rules]
    from forwarder import config

    return list(config.load(args.config).rules.paths)


def run(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """Exit 0 when every example passes (or the events were evaluated), 1 when one fails."""
    rules = load_rules(rule_paths(args))
    if args.events:
        return _print_firing(rules, Path(args.events), out)
    return _print_examples(rules, out)
