"""The webhook formats against the alert documents the rule engine really writes (docs/alerts.md): every
default rule's embedded example that fires is encoded in each format and must pass what the receivers
check (Standard Webhooks signature, Slack Block Kit limits, PagerDuty's schema), with the alert's dedup key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from forwarder.alerts.engine import Engine
from forwarder.alerts.rules import load_rules
from forwarder.testing.receivers.pagerduty import DEFAULT_ROUTING_KEY, event_errors
from forwarder.testing.receivers.slack import SlackReceiver
from forwarder.testing.receivers.webhook import DEFAULT_SECRET, WebhookReceiver
from sinks.webhook import generic, pagerduty, slack

RULES = Path(__file__).parents[2] / "config" / "rules"


def _alerts() -> list[dict[str, Any]]:
    alerts = []
    for rule in load_rules([RULES]):
        for test in rule.tests:
            engine = Engine([rule.model_copy(update={"enabled": True})])
            alerts += engine.evaluate(test.events, "realtime")
    return alerts


ALERTS = _alerts()


def test_the_default_rules_give_alerts_to_format() -> None:
    assert len({a["rule"]["id"] for a in ALERTS}) >= 5


@pytest.mark.parametrize("alert", ALERTS, ids=lambda a: f"{a['rule']['id']}-{a['event']['id'][:8]}")
def test_every_format_encodes_a_real_alert_the_receivers_accept(alert: dict[str, Any]) -> None:
    headers, body = generic.headers(
        generic.decode_secret(DEFAULT_SECRET), generic.encode(alert), 1_800_000_000
    )
    assert headers["webhook-id"] == alert["event"]["id"]
    assert WebhookReceiver(clock=lambda: 1_800_000_000).verify(headers, body) is None

    message = slack.message(alert)
    assert SlackReceiver().payload_problem(orjson.dumps(message)) is None
    assert alert["rule"]["name"][:100] in message["text"]

    event = orjson.loads(pagerduty.with_routing_key(pagerduty.encode(alert, None), DEFAULT_ROUTING_KEY))
    assert event_errors(event, {DEFAULT_ROUTING_KEY}) == []
    assert event["dedup_key"] == alert["salesforce"]["alert"]["dedup_key"]
    assert event["payload"]["custom_details"]["alert_id"] == alert["event"]["id"]
    name = alert["rule"]["name"]
    assert not event["payload"]["summary"].startswith(f"{name}: {name}")  # the message already names it
