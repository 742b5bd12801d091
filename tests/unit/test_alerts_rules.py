"""Rule files: bad ones give errors naming the file and the field path; the CLI runs embedded examples."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from forwarder.alerts.rules import load_rules
from forwarder.errors import ConfigError

RULES = Path(__file__).parents[2] / "config" / "rules"

GOOD = """
rules:
  - id: t-one
    name: One
    description: d
    severity: low
    type: match
    match: {{field: event.dataset, equals: salesforce.login}}
    tests:
      - name: a login fires
        alerts: {alerts}
        events:
          - {{"@timestamp": "2026-11-26T08:00:00.000Z", event: {{id: a, dataset: salesforce.login}}}}
"""


def write(tmp_path: Path, text: str, name: str = "r.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("match: {field: a, regex: '('}", "rules[0].match.regex: invalid regular expression"),
        (
            "match: {all: [{field: a, equals: 1}, {field: b}]}",
            "rules[0].match.all[1]: give exactly one operator",
        ),
        ("match: {any: [{not: {field: a, cidr: nope}}]}", "rules[0].match.any[0].not.cidr: not a network"),
        ("match: {field: a, equals: 1, colour: red}", "rules[0].match.colour: unknown key"),
        ("match: {field: a, equals: 1}\n    threshold: {count: 0, window: 5m}", "rules[0].threshold.count"),
        ("match: {field: a, equals: 1}\n    suppress: {for: soon}", "rules[0].suppress.for"),
    ],
)
def test_bad_rule_names_file_and_field(tmp_path: Path, body: str, expected: str) -> None:
    text = f"rules:\n  - id: t\n    name: T\n    description: d\n    severity: low\n    type: match\n    {body}\n"
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_rules([path])
    assert f"{path}: {expected}" in str(caught.value)


def test_missing_fields_and_bad_severity_are_listed_together(tmp_path: Path) -> None:
    path = write(tmp_path, "rules:\n  - id: Bad Id\n    severity: urgent\n    type: match\n")
    with pytest.raises(ConfigError) as caught:
        load_rules([path])
    text = str(caught.value)
    for part in (
        "rules[0].id: use 1-64",
        "rules[0].name: field required",
        "rules[0].severity",
        "rules[0].match: field required",
    ):
        assert part in text


def test_threshold_type_needs_a_threshold(tmp_path: Path) -> None:
    text = "rules:\n  - {id: t, name: T, description: d, severity: low, type: threshold, match: {field: a, exists: true}}\n"
    with pytest.raises(ConfigError, match="type threshold needs a threshold"):
        load_rules([write(tmp_path, text)])


def test_duplicate_rule_ids_across_files(tmp_path: Path) -> None:
    write(tmp_path, GOOD.format(alerts=1), "a.yaml")
    write(tmp_path, GOOD.format(alerts=1), "b.yaml")
    with pytest.raises(ConfigError, match="duplicate rule id 't-one'"):
        load_rules([tmp_path])


def test_invalid_yaml_names_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"r.yaml: line \d+, column \d+: invalid YAML"):
        load_rules([write(tmp_path, "rules:\n  - [unclosed\n")])


def rules_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "forwarder", "rules", "test", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_cli_runs_examples_exit_0_then_1_on_a_failing_example(tmp_path: Path) -> None:
    ok = rules_cli("--rules", str(write(tmp_path, GOOD.format(alerts=1))))
    assert ok.returncode == 0, ok.stderr
    assert "ok   t-one: a login fires" in ok.stdout
    bad = rules_cli("--rules", str(write(tmp_path, GOOD.format(alerts=2), "bad.yaml")))
    assert bad.returncode == 1
    assert "FAIL t-one: a login fires (expected 2 alerts, got 1)" in bad.stdout


def test_cli_shows_which_rules_fire_on_events(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    docs = [
        {"@timestamp": "2026-11-26T09:30:00.000Z", "message": "Added Trusted IP Range from 0.0.0.0 to 255.255.255.255",
         "event": {"id": "0Ym", "dataset": "salesforce.setup_audit_trail", "action": "createipwhitelist"}},
    ]  # fmt: skip
    events.write_bytes(b"\n".join(orjson.dumps(d) for d in docs))
    result = rules_cli("--rules", str(RULES), "--events", str(events))
    assert result.returncode == 0, result.stderr
    assert "sf-network-access-change: Trusted IP ranges changed" in result.stdout
    assert "1 documents, 1 alerts" in result.stdout


def test_cli_bad_rule_file_exits_2_naming_it(tmp_path: Path) -> None:
    path = write(tmp_path, "rules:\n  - {id: t}\n")
    result = rules_cli("--rules", str(path))
    assert result.returncode == 2
    assert f"{path}: rules[0].name: field required" in result.stderr


CONFIG = """
salesforce:
  login_url: https://login.salesforce.com
  auth: {{type: client_credentials, client_id: abc, client_secret: s}}
rules: {{paths: [{rules}]}}
sinks:
  - {{name: {sink}, type: file, path: /tmp/events.jsonl}}
"""


def test_check_config_validates_the_rule_files(tmp_path: Path) -> None:
    bad = write(tmp_path, "rules:\n  - {id: t, name: T}\n", "bad.yaml")
    config = write(tmp_path, CONFIG.format(rules=bad, sink="archive"), "config.yaml")
    result = subprocess.run(
        [sys.executable, "-m", "forwarder", "check-config", "-c", str(config)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert f"{bad}: rules[0].description: field required" in result.stderr
    good = write(tmp_path, CONFIG.format(rules=RULES, sink="archive"), "good.yaml")
    ok = subprocess.run(
        [sys.executable, "-m", "forwarder", "check-config", "-c", str(good)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert "alert rules" in ok.stdout


def test_a_sink_may_not_take_the_rule_engine_consumer_name(tmp_path: Path) -> None:
    from forwarder import config

    path = write(tmp_path, CONFIG.format(rules=RULES, sink="alert-rules"), "config.yaml")
    with pytest.raises(ConfigError, match="'alert-rules' is the alert rule engine's"):
        config.load(path)
