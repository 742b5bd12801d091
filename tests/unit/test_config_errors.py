"""check-config on broken files: each gives its own precise message, exit 2, and never a secret value."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SECRET = "s3cr3t-VALUE-do-not-print"

VALID = f"""
salesforce:
  login_url: https://login.salesforce.com
  auth:
    type: client_credentials
    client_id: abc
    client_secret: {SECRET}
sinks:
  - {{name: archive, type: file, path: /tmp/events.jsonl}}
"""


def run_check(path: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "forwarder", "check-config", "-c", str(path)],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
        check=False,
    )


def test_valid_file_exits_0(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text(VALID)
    result = run_check(path)
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stdout + result.stderr


BROKEN = {
    "missing_field": (
        VALID.replace("\n    client_secret: " + SECRET, ""),
        "salesforce.auth.client_secret: field required",
    ),
    "wrong_type": (VALID + "state: {max_bytes: lots}\n", "state.max_bytes: not a size: 'lots'"),
    "unknown_key": (
        VALID.replace("path: /tmp/events.jsonl", "path: /tmp/e.jsonl, colour: red"),
        "sinks[0].colour: unknown key",
    ),
    "unknown_sink_type": (
        VALID + "  - {name: x, type: kafka}\n",
        "sinks[1]: unknown type 'kafka'",
    ),
    "bad_env": (
        VALID.replace("client_id: abc", "client_id: ${SF_CLIENT_ID_MISSING}"),
        "salesforce.auth.client_id: environment variable SF_CLIENT_ID_MISSING is not set",
    ),
    "unreadable_secret_file": (
        VALID.replace(f"client_secret: {SECRET}", "client_secret_file: /nonexistent/secret"),
        "salesforce.auth: client_secret_file: cannot read /nonexistent/secret: No such file or directory",
    ),
    "both_secret_and_file": (
        VALID.replace(f"client_secret: {SECRET}", f"client_secret: {SECRET}\n    client_secret_file: /x"),
        "salesforce.auth: give either client_secret or client_secret_file, not both",
    ),
    "duplicate_sink_names": (
        VALID + "  - {name: archive, type: file, path: /tmp/other.jsonl}\n",
        "sinks[1].name: duplicate sink name 'archive' (also sinks[0])",
    ),
    "no_sinks": (VALID.split("sinks:")[0] + "sinks: []\n", "sinks: List should have at least 1 item"),
    "bad_enum": (
        VALID + "state: {when_full: explode}\n",
        "state.when_full: Input should be 'block' or 'drop_oldest'",
    ),
    "bad_listen": (VALID + "server: {listen: nowhere}\n", "server.listen: expected host:port, got 'nowhere'"),
    "bad_api_version": (
        VALID.replace("  auth:", "  api_version: '62'\n  auth:"),
        "salesforce.api_version: String should match pattern",
    ),
    "invalid_yaml": ("salesforce: [unclosed\n", "invalid YAML"),
    "not_a_mapping": ("- just\n- a list\n", "(top level): expected a mapping of sections"),
    "missing_section": ("sinks:\n  - {name: a, type: file, path: x}\n", "salesforce: field required"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_file_names_the_problem(tmp_path: Path, case: str) -> None:
    text, expected = BROKEN[case]
    path = tmp_path / f"{case}.yaml"
    path.write_text(text)
    result = run_check(path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert f"{path}: {expected}" in result.stderr or (
        expected in result.stderr and str(path) in result.stderr
    )
    assert "Traceback" not in result.stderr
    assert SECRET not in result.stderr


def test_all_errors_reported_at_once(tmp_path: Path) -> None:
    text = VALID.replace("client_id: abc", "client_id: ${NOPE_1}") + "state: {when_full: maybe}\n"
    path = tmp_path / "many.yaml"
    path.write_text(text)
    lines = run_check(path).stderr.strip().splitlines()
    assert len(lines) == 2
    assert all(line.startswith(f"{path}: ") for line in lines)


def test_secret_file_value_is_read_and_kept_secret(tmp_path: Path) -> None:
    from forwarder import config

    secret = tmp_path / "secret"
    secret.write_text(SECRET + "\n")
    path = tmp_path / "c.yaml"
    path.write_text(VALID.replace(f"client_secret: {SECRET}", f"client_secret_file: {secret}"))
    loaded = config.load(path)
    auth = loaded.salesforce.auth
    assert auth.type == "client_credentials"
    assert auth.client_secret.get_secret_value() == SECRET
    assert SECRET not in repr(loaded)


def test_env_interpolation_with_default_and_escape(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from forwarder import config

    monkeypatch.setenv("SF_TEST_CLIENT", "from-env")
    path = tmp_path / "c.yaml"
    path.write_text(
        VALID.replace("client_id: abc", "client_id: ${SF_TEST_CLIENT}").replace(
            "path: /tmp/events.jsonl", "path: '${SF_UNSET_DIR:-/var/tmp}/cost$$.jsonl'"
        )
    )
    loaded = config.load(path)
    assert loaded.salesforce.auth.client_id == "from-env"
    assert loaded.sinks[0].path == "/var/tmp/cost$.jsonl"  # type: ignore[union-attr]


def test_missing_file_is_one_line_exit_2(tmp_path: Path) -> None:
    result = run_check(tmp_path / "absent.yaml")
    assert result.returncode == 2
    assert result.stderr.strip() == f"{tmp_path / 'absent.yaml'}: cannot read file: No such file or directory"


def test_unknown_command_is_one_line_exit_2() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "forwarder", "frobnicate"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "invalid choice: 'frobnicate'" in result.stderr


def test_config_schema_is_json_schema() -> None:
    import json

    result = subprocess.run(
        [sys.executable, "-m", "forwarder", "config-schema"], capture_output=True, text=True, check=True
    )
    schema = json.loads(result.stdout)
    assert schema["title"] == "Config"
    assert "sinks" in schema["required"]
    assert "salesforce" in schema["required"]
