"""A webhook sink without a route pages once per incident: with rules running it takes the rules' alerts only
(Salesforce's Threat Detection events become rule alerts too), without rules every ``kind: alert`` event."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from forwarder import config as config_module
from forwarder.testing.receivers import sample_alert
from sinks.webhook import WebhookConfig

RULES = Path(__file__).parents[2] / "config" / "rules"
THREAT = {"event": {"kind": "alert", "dataset": "salesforce.session_hijacking", "severity": 73}}


def _webhook(rules: bool, route: dict[str, Any] | None = None) -> WebhookConfig:
    sink: dict[str, Any] = {"name": "hooks", "type": "webhook", "format": "generic",
                            "url": "https://hooks.example/in", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}  # fmt: skip
    if route is not None:
        sink["route"] = route
    document = {
        "salesforce": {"auth": {"type": "client_credentials", "client_id": "a", "client_secret": "b"}},
        "rules": {"paths": [str(RULES)] if rules else []},
        "sinks": [{"name": "archive", "type": "file", "path": "/tmp/x.jsonl"}, sink],
    }
    webhook = config_module.parse(document, "test.yaml").sinks[1]
    assert isinstance(webhook, WebhookConfig)
    return webhook


def test_with_rules_a_webhook_takes_the_rules_alerts_not_the_threat_events_they_pass_through() -> None:
    route = _webhook(rules=True).route
    assert route.matches(sample_alert(1))
    assert not route.matches(THREAT)


def test_without_rules_a_webhook_takes_salesforces_threat_detection_events() -> None:
    route = _webhook(rules=False).route
    assert route.matches(THREAT)
    assert route.matches(sample_alert(1))


def test_a_route_the_user_wrote_is_kept() -> None:
    route = _webhook(rules=True, route={"kinds": ["alert"]}).route
    assert route.matches(THREAT)
