"""Doctor's pure parts: the clock-skew verdict from a Date header, the state check, the report and its
secret scrubbing."""

from __future__ import annotations

import json
import re
from email.utils import formatdate
from pathlib import Path

import pytest
from pydantic import SecretStr

from forwarder import config as config_module
from forwarder.doctor import Check, check_config, check_state, clock_skew, render, secrets_of, to_json

NOW = 1_800_000_000.0


def _config(tmp_path: Path, **state: object) -> config_module.Config:
    doc = {
        "salesforce": {
            "auth": {"type": "client_credentials", "client_id": "cid", "client_secret": "s3cret-value-1"}
        },
        "sinks": [
            {"name": "splunk", "type": "splunk_hec", "url": "http://127.0.0.1:1", "token": "hec-token-value"}
        ],
        "state": {"path": str(tmp_path / "state.db"), **state},
    }
    return config_module.parse(doc, "t.yaml")


@pytest.mark.parametrize(
    ("server_offset", "status"),
    [(0, "pass"), (3, "pass"), (-4, "pass"), (10, "warn"), (-10, "warn"), (45, "fail"), (-300, "fail")],
)
def test_clock_skew_verdict_by_size(server_offset: float, status: str) -> None:
    date = formatdate(NOW + server_offset, usegmt=True)
    assert clock_skew(date, NOW - 0.1, NOW + 0.1).status == status


def test_clock_skew_tolerates_a_slow_round_trip() -> None:
    # a 20 s round trip makes the midpoint uncertain by 10 s: a 10 s difference is not a finding
    assert clock_skew(formatdate(NOW + 10, usegmt=True), NOW - 10, NOW + 10).status == "pass"


@pytest.mark.parametrize("header", [None, "", "yesterday-ish"])
def test_missing_or_unreadable_date_header_warns(header: str | None) -> None:
    assert clock_skew(header, NOW, NOW).status == "warn"


def test_state_in_a_writable_folder_passes(tmp_path: Path) -> None:
    check = check_state(_config(tmp_path))
    assert check.status == "pass"
    assert "(will be created)" not in check.detail


def test_state_folder_that_is_a_file_fails(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    config = config_module.parse(
        {**_config(tmp_path).model_dump(mode="json", exclude={"salesforce", "sinks"}),
         "salesforce": {"auth": {"type": "client_credentials", "client_id": "c", "client_secret": "x"}},
         "sinks": [{"name": "f", "type": "file", "path": str(tmp_path / "out.jsonl")}],
         "state": {"path": str(tmp_path / "file" / "sub" / "state.db")}},
        "t.yaml",
    )  # fmt: skip
    assert check_state(config).status == "fail"


def test_invalid_config_fails_with_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("salesforce: {}\nsinks: []\nbogus: 1\n")
    check, config = check_config(str(path))
    assert config is None
    assert check.status == "fail"
    assert "bogus: unknown key" in check.detail
    assert "salesforce.auth: field required" in check.detail


def test_secrets_of_finds_every_secret_in_the_tree(tmp_path: Path) -> None:
    assert set(secrets_of(_config(tmp_path))) == {"s3cret-value-1", "hec-token-value"}


def test_report_scrubs_secrets_and_says_failed() -> None:
    checks = [
        Check("salesforce.login", "fail", "refused for client_secret=s3cret-value-1", "check s3cret-value-1"),
        Check("sink splunk", "pass", "ok Bearer abcdefghijklmnop"),
        Check("salesforce.LoginHistory", "skip", "source disabled", "never shown for skip"),
    ]
    text = render("c.yaml", checks, ["s3cret-value-1"])
    assert "s3cret-value-1" not in text
    assert "abcdefghijklmnop" not in text
    assert "never shown" not in text
    assert text.splitlines()[-1] == "1 pass, 1 fail, 1 skip - FAILED"
    report = json.loads(to_json(checks, ["s3cret-value-1"]))
    assert report["ok"] is False
    assert "s3cret-value-1" not in json.dumps(report)


def test_report_with_only_warnings_is_ok() -> None:
    text = render("c.yaml", [Check("clock", "warn", "behind by 9 s", "sync")], [])
    assert text.splitlines()[-1] == "1 warn - OK"
    assert "fix: sync" in text


def test_short_secret_values_are_not_scrubbed_everywhere() -> None:
    # a one-letter secret would blank every such letter of the report: too short to be a real secret
    assert list(secrets_of(_Tiny())) == []


class _Tiny(config_module.Settings):
    token: SecretStr = SecretStr("x")


def test_journal_of_a_newer_forwarder_fails_the_state_check(tmp_path: Path) -> None:
    import sqlite3

    from forwarder.journal._store import SCHEMA_VERSION

    config = _config(tmp_path)
    with sqlite3.connect(config.state.path) as conn:
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    assert check_state(config).status == "pass"
    with sqlite3.connect(config.state.path) as conn:
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    check = check_state(config)
    assert check.status == "fail"
    assert "newer sf-forwarder" in check.hint


def test_rules_shipped_with_the_project_load(tmp_path: Path) -> None:
    from forwarder.doctor import check_rules

    rules_dir = Path(__file__).resolve().parents[2] / "config" / "rules"
    config = config_module.parse(
        {**_document(tmp_path), "rules": {"paths": [str(rules_dir)]}}, "t.yaml"
    )
    check = check_rules(config)
    assert check.status == "pass"
    assert re.fullmatch(r"\d+ rules from \d+ files", check.detail)


def test_broken_rule_file_fails_naming_the_file(tmp_path: Path) -> None:
    from forwarder.doctor import check_rules

    bad = tmp_path / "bad.yaml"
    bad.write_text("rules: [ {id: x\n")
    config = config_module.parse({**_document(tmp_path), "rules": {"paths": [str(bad)]}}, "t.yaml")
    check = check_rules(config)
    assert check.status == "fail"
    assert "bad.yaml" in check.detail
    assert check_rules(_config(tmp_path)).status == "skip"


def _document(tmp_path: Path) -> dict[str, object]:
    return {
        "salesforce": {"auth": {"type": "client_credentials", "client_id": "c", "client_secret": "x"}},
        "sinks": [{"name": "f", "type": "file", "path": str(tmp_path / "out.jsonl")}],
        "state": {"path": str(tmp_path / "state.db")},
    }
