"""Secrets never reach the log output: by key, by shape, and inside exception text."""

from __future__ import annotations

import json

import pytest
import structlog

from forwarder.logging import configure

SESSION_ID = "00D5g000004ABCD!AQ8AQPx7yXlyAbCdEfGhIjKlMnOpQrStUvWxYz0123456789"


@pytest.fixture
def logged(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    configure("debug", "json")
    log = structlog.get_logger()
    log.info("token_fetched", access_token="plain-token-value", token_file="/run/secrets/token")
    log.info("request", url="https://x.my.salesforce.com/q?access_token=abc123xyz&n=1")
    log.info("header", value=f"Authorization: Bearer {SESSION_ID}")
    log.info("nested", sink={"name": "splunk", "token": "HEC-TOKEN-123", "headers": {"DD-API-KEY": "k1"}})
    try:
        raise RuntimeError(f"server said invalid session {SESSION_ID} for client_secret=hunter2")
    except RuntimeError:
        log.exception("request_failed")
    return [json.loads(line) for line in capsys.readouterr().err.splitlines()]


def test_secret_values_never_printed(logged: list[dict[str, object]]) -> None:
    text = json.dumps(logged)
    for secret in ("plain-token-value", "abc123xyz", SESSION_ID, "HEC-TOKEN-123", 'k1"', "hunter2"):
        assert secret not in text


def test_non_secrets_kept(logged: list[dict[str, object]]) -> None:
    assert logged[0]["token_file"] == "/run/secrets/token"  # a path, not a secret
    assert logged[1]["url"] == "https://x.my.salesforce.com/q?access_token=[REDACTED]&n=1"
    assert logged[3]["sink"] == {
        "name": "splunk",
        "token": "[REDACTED]",
        "headers": {"DD-API-KEY": "[REDACTED]"},
    }
    assert "RuntimeError: server said invalid session [REDACTED]" in str(logged[4]["exception"])
