"""config/example.yaml parses, and documents every option the config models accept."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from forwarder import config
from forwarder.config import Config
from sinks.datadog import DatadogConfig
from sinks.file import FileSinkConfig
from sinks.splunk_hec import SplunkHecConfig
from sinks.syslog import SyslogConfig
from sinks.webhook import WebhookConfig

EXAMPLE = Path(__file__).parents[2] / "config" / "example.yaml"


def option_names(model: type[BaseModel]) -> set[str]:
    names = set()
    for name, field in model.model_fields.items():
        secret_files = getattr(model, "secret_file_keys", lambda: set())()
        names.add(f"{name}_file" if f"{name}_file" in secret_files else name)
        for arg in typing.get_args(field.annotation) or (field.annotation,):
            for inner in typing.get_args(arg) or (arg,):
                if isinstance(inner, type) and issubclass(inner, BaseModel):
                    names |= option_names(inner)
    return names


def test_example_parses(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SF_CLIENT_ID", "3MVG9example")
    for name in ("hec-token", "dd-api-key"):
        (tmp_path / name).write_text("secret\n")
    (tmp_path / "webhook-secret").write_text("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n")
    (tmp_path / "slack-webhook-url").write_text("https://hooks.slack.com/services/T0/B0/x\n")
    (tmp_path / "pagerduty-routing-key").write_text("0123456789abcdef0123456789abcdef\n")
    text = EXAMPLE.read_text().replace("/run/secrets/", f"{tmp_path}/")
    path = tmp_path / "example.yaml"
    path.write_text(text)
    loaded = config.load(path)
    assert [s.name for s in loaded.sinks] == ["splunk", "datadog", "siem", "archive", "hooks", "slack", "oncall"]
    assert loaded.sources.streaming.channels[0] == "/event/LoginEventStream"


@pytest.mark.parametrize(
    "model", [Config, SplunkHecConfig, DatadogConfig, SyslogConfig, FileSinkConfig, WebhookConfig]
)
def test_example_mentions_every_option(model: type[BaseModel]) -> None:
    text = EXAMPLE.read_text()
    keys = set(re.findall(r"([A-Za-z_]+):", text))
    missing = option_names(model) - keys
    assert not missing, f"config/example.yaml does not document: {sorted(missing)}"
