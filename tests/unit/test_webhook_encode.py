"""Webhook encoders: Standard Webhooks signing (known-answer test), Slack Block Kit limits and escaping,
PagerDuty Events v2 fields and severity mapping, the config rules and the response table."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forwarder import config as config_file
from forwarder.errors import AuthenticationError, ConfigError, PermanentError, RetryableError
from forwarder.testing.receivers import sample_alert, sample_event
from forwarder.testing.receivers.pagerduty import DEFAULT_ROUTING_KEY, event_errors
from forwarder.testing.receivers.slack import SlackReceiver
from forwarder.testing.receivers.webhook import DEFAULT_SECRET, WebhookReceiver
from sinks._http import Response
from sinks.webhook import WebhookConfig, generic, pagerduty, slack
from sinks.webhook._outcome import EndpointRefusedError, raise_for_response, scrub

SLACK_URL = "https://hooks.slack.com/services/T000/B000/verysecretpath"


def _config(**kw: Any) -> WebhookConfig:
    return WebhookConfig.model_validate({"type": "webhook", "name": "hook", **kw})


def _config_error(**kw: Any) -> str:
    """The error ``check-config`` prints for a webhook sink section."""
    document = {
        "salesforce": {"auth": {"type": "client_credentials", "client_id": "a", "client_secret": "b"}},
        "sinks": [{"type": "webhook", "name": "hook", **kw}],
    }
    with pytest.raises(ConfigError) as caught:
        config_file.parse(document, "sf.yaml")
    return str(caught.value)


# --- generic: Standard Webhooks ------------------------------------------------------------------------


def test_signature_matches_the_standard_webhooks_reference_vector() -> None:
    # standard-webhooks/standard-webhooks libraries/python/tests/test_webhooks.py::test_sign_function
    key = generic.decode_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    got = generic.signature(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}')
    assert got == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_secret_without_prefix_decodes_the_same() -> None:
    assert generic.decode_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") == generic.decode_secret(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    )


@pytest.mark.parametrize("secret", ["whsec_not base64!", "whsec_" + base64.b64encode(b"short").decode()])
def test_weak_or_malformed_secrets_are_refused_without_echo(secret: str) -> None:
    error = _config_error(format="generic", url="https://h.example/x", secret=secret)
    assert "sinks[0].secret: secret:" in error
    assert secret not in error


def test_generic_body_carries_the_whole_alert_and_its_id_as_webhook_id() -> None:
    alert = sample_alert(7)
    headers, body = generic.headers(
        generic.decode_secret(DEFAULT_SECRET), generic.encode(alert), 1_700_000_000.9
    )
    assert headers["webhook-id"] == "evt-00000007"
    assert headers["webhook-timestamp"] == "1700000000"
    assert orjson.loads(body) == {"type": "salesforce.alert", "timestamp": alert["@timestamp"], "data": alert}
    receiver = WebhookReceiver(clock=lambda: 1_700_000_010)
    assert receiver.verify(headers, body) is None
    assert receiver.verify(headers, body + b" ") == "no matching signature"


def test_ids_with_a_full_stop_are_replaced_by_a_stable_hash() -> None:
    alert = sample_alert(1)
    alert["event"]["id"] = "a.b"
    first, _ = generic.split(generic.encode(alert))
    second, _ = generic.split(generic.encode(alert))
    assert first == second
    assert "." not in first
    assert first.startswith("sha256_")


def test_a_stale_timestamp_is_refused_by_the_receiver() -> None:
    headers, body = generic.headers(
        generic.decode_secret(DEFAULT_SECRET), generic.encode(sample_alert(1)), 1000.0
    )
    assert WebhookReceiver(clock=lambda: 1000.0 + 301).verify(headers, body) == "timestamp outside tolerance"


# --- slack ---------------------------------------------------------------------------------------------


def test_slack_message_has_text_and_the_alert_fields() -> None:
    message = slack.message(sample_alert(3))
    assert message["text"].startswith("[ERROR] Repeated failed logins: 5 failed logins")
    header, summary, fields, context = message["blocks"]
    assert header["text"]["text"] == "Repeated failed logins"
    assert "5 failed logins" in summary["text"]["text"]
    labels = [f["text"].split("\n")[0] for f in fields["fields"]]
    assert labels == [
        "*Rule*",
        "*Severity*",
        "*User*",
        "*Source IP*",
        "*Count*",
        "*Time*",
        "*First seen*",
        "*Last seen*",
    ]
    assert "*Severity*\nerror (73)" in [f["text"] for f in fields["fields"]]
    assert context["block_id"] == "alert:evt-00000003"
    assert SlackReceiver().payload_problem(slack.encode(sample_alert(3))) is None


def test_slack_escapes_control_characters_so_data_cannot_mention_or_link() -> None:
    alert = sample_alert(1, message="<!channel> see <https://evil.example|here> & more")
    alert["user"]["name"] = "<@U123>"
    encoded = slack.encode(alert).decode()
    assert "<!channel>" not in encoded
    assert "<@U123>" not in encoded
    assert "&lt;!channel&gt; see &lt;https://evil.example|here&gt; &amp; more" in encoded


def test_slack_long_texts_are_cut_to_the_block_kit_limits_never_refused() -> None:
    alert = sample_alert(1, message="x&" * 30_000)
    alert["rule"]["name"] = "R" * 500
    alert["user"]["name"] = "u" * 5000
    message = slack.message(alert)
    header, summary, fields, _ = message["blocks"]
    assert len(header["text"]["text"]) == slack.HEADER_CHARS
    assert len(summary["text"]["text"]) <= slack.SECTION_CHARS
    assert all(len(f["text"]) <= slack.FIELD_CHARS for f in fields["fields"])
    assert len(message["text"]) <= slack.TEXT_CHARS
    assert summary["text"]["text"].endswith("…")
    assert "&…" not in summary["text"]["text"]  # no entity cut in half
    assert SlackReceiver().payload_problem(slack.encode(alert)) is None


def test_slack_formats_a_plain_event_too() -> None:
    assert SlackReceiver().payload_problem(slack.encode(sample_event(1))) is None


# --- pagerduty -----------------------------------------------------------------------------------------


def test_pagerduty_trigger_carries_the_required_fields_and_the_dedup_key() -> None:
    alert = sample_alert(4)
    body = orjson.loads(pagerduty.with_routing_key(pagerduty.encode(alert, None), DEFAULT_ROUTING_KEY))
    assert next(iter(body)) == "routing_key"
    assert body["event_action"] == "trigger"
    assert body["dedup_key"] == "sf-brute-force-login:alice@example.com|203.0.113.7:4"
    payload = body["payload"]
    assert payload["summary"].startswith("Repeated failed logins: 5 failed logins")
    assert payload["severity"] == "error"
    assert payload["source"] == "salesforce org 00D5j000000XXXXEAA"
    assert payload["timestamp"] == alert["@timestamp"]
    assert payload["class"] == "sf-brute-force-login"
    assert payload["group"] == "alice@example.com|203.0.113.7"
    assert payload["custom_details"]["alert_id"] == "evt-00000004"
    assert payload["custom_details"]["count"] == 5
    assert event_errors(body, {DEFAULT_ROUTING_KEY}) == []


def test_pagerduty_summary_is_cut_to_1024_and_long_dedup_keys_hashed() -> None:
    alert = sample_alert(1, message="m" * 5000)
    alert["salesforce"]["alert"]["dedup_key"] = "k" * 300
    body = orjson.loads(pagerduty.encode(alert, "my-source"))
    assert len(body["payload"]["summary"]) == 1024
    assert len(body["dedup_key"]) <= 255
    assert body["payload"]["source"] == "my-source"


def test_pagerduty_without_a_dedup_key_uses_the_alert_id() -> None:
    alert = sample_alert(9)
    del alert["salesforce"]["alert"]["dedup_key"]
    assert orjson.loads(pagerduty.encode(alert, None))["dedup_key"] == "evt-00000009"


def test_encoded_pagerduty_bytes_hold_no_routing_key() -> None:
    assert DEFAULT_ROUTING_KEY.encode() not in pagerduty.encode(sample_alert(1), None)


# --- config --------------------------------------------------------------------------------------------


def test_default_route_is_alerts_only() -> None:
    config = _config(format="slack", url=SLACK_URL)
    assert config.route.matches(sample_alert(1))
    assert not config.route.matches(sample_event(1))
    assert config.min_interval() == 1.0


@pytest.mark.parametrize(("fmt", "pace"), [("slack", 1.0), ("pagerduty", 0.5), ("generic", 0.0)])
def test_default_pace_follows_each_services_rate_limit(fmt: str, pace: float) -> None:
    credentials = {"slack": {"url": SLACK_URL}, "pagerduty": {"routing_key": DEFAULT_ROUTING_KEY}}
    fields = credentials.get(fmt, {"url": "https://h.example/x", "secret": DEFAULT_SECRET})
    assert _config(format=fmt, **fields).min_interval() == pace
    assert _config(format=fmt, pace=0.25, **fields).min_interval() == 0.25


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"format": "generic", "url": "https://h.example/x"}, "needs secret"),
        ({"format": "slack"}, "needs url"),
        ({"format": "pagerduty"}, "needs routing_key"),
        ({"format": "pagerduty", "routing_key": "short-secret-key"}, "32-character"),
        ({"format": "slack", "url": SLACK_URL, "routing_key": DEFAULT_ROUTING_KEY}, "pagerduty only"),
        ({"format": "slack", "url": SLACK_URL, "batch": {"max_events": 5}}, "one alert per request"),
        (
            {"format": "slack", "url": "hooks.slack.com/services/T000/B000/verysecretpath"},
            "http:// or https://",
        ),
    ],
)
def test_config_errors_name_the_problem_not_the_secret(fields: dict[str, Any], expected: str) -> None:
    error = _config_error(**fields)
    assert expected in error
    assert error.startswith("sf.yaml: sinks[0]")
    assert "verysecretpath" not in error
    assert "short-secret-key" not in error


def test_peer_names_host_and_port_only() -> None:
    assert _config(format="slack", url=SLACK_URL).peer() == "slack webhook https://hooks.slack.com:443"
    assert _config(format="pagerduty", routing_key=DEFAULT_ROUTING_KEY).endpoint() == pagerduty.DEFAULT_URL


# --- response table ------------------------------------------------------------------------------------


def _answer(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> Response:
    return Response(status, headers or {}, body)


@pytest.mark.parametrize(
    ("fmt", "status", "body", "error"),
    [
        ("slack", 400, b"invalid_payload", PermanentError),
        ("slack", 400, b"no_text", PermanentError),
        ("slack", 400, b"invalid_blocks", PermanentError),
        ("slack", 404, b"no_service", EndpointRefusedError),
        ("slack", 410, b"channel_is_archived", EndpointRefusedError),
        ("slack", 403, b"action_prohibited", EndpointRefusedError),
        ("slack", 429, b"rate_limited", RetryableError),
        ("slack", 500, b"rollup_error", RetryableError),
        (
            "pagerduty",
            400,
            b'{"status":"invalid event","errors":["\'payload.summary\' is missing"]}',
            PermanentError,
        ),
        (
            "pagerduty",
            400,
            b'{"status":"invalid event","errors":["Invalid routing key"]}',
            EndpointRefusedError,
        ),
        ("pagerduty", 429, b"{}", RetryableError),
        ("pagerduty", 503, b"", RetryableError),
        ("generic", 410, b"", EndpointRefusedError),
        ("generic", 301, b"", EndpointRefusedError),
        ("generic", 422, b"", PermanentError),
        ("generic", 401, b"", AuthenticationError),
        ("generic", 502, b"", RetryableError),
    ],
)
def test_answers_are_classified_per_format(
    fmt: str, status: int, body: bytes, error: type[Exception]
) -> None:
    with pytest.raises(error) as caught:
        raise_for_response(fmt, _answer(status, body), "hook")
    if error is PermanentError:
        assert not isinstance(caught.value, RetryableError | AuthenticationError)


def test_pagerduty_400_reason_carries_its_errors_text() -> None:
    body = b'{"status":"invalid event","message":"Event object is invalid","errors":["\'payload.summary\' is missing"]}'
    with pytest.raises(PermanentError, match=r"payload\.summary' is missing"):
        raise_for_response("pagerduty", _answer(400, body), "pagerduty")


def test_redirect_reason_names_the_host_only() -> None:
    answer = _answer(302, headers={"Location": "https://other.example/services/secret-path"})
    with pytest.raises(EndpointRefusedError) as caught:
        raise_for_response("generic", answer, "hook")
    assert "other.example" in str(caught.value)
    assert "secret-path" not in str(caught.value)


@pytest.mark.parametrize(("fmt", "status"), [("slack", 200), ("pagerduty", 202), ("generic", 204)])
def test_success_answers_return(fmt: str, status: int) -> None:
    raise_for_response(fmt, _answer(status, b"ok"), "hook")


# --- properties: any text fits and is accepted ---------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=6000), name=st.text(max_size=400), user=st.text(max_size=3000))
def test_any_alert_text_fits_slack_and_pagerduty_and_signs(text: str, name: str, user: str) -> None:
    alert = sample_alert(1, message=text)
    alert["rule"]["name"] = name
    alert["user"]["name"] = user
    assert SlackReceiver().payload_problem(slack.encode(alert)) is None
    event = orjson.loads(pagerduty.with_routing_key(pagerduty.encode(alert, None), DEFAULT_ROUTING_KEY))
    assert event_errors(event, {DEFAULT_ROUTING_KEY}) == []
    headers, body = generic.headers(
        generic.decode_secret(DEFAULT_SECRET), generic.encode(alert), 1_700_000_000
    )
    assert WebhookReceiver(clock=lambda: 1_700_000_000).verify(headers, body) is None
    assert orjson.loads(body)["data"]["message"] == text


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=500), limit=st.integers(min_value=2, max_value=300))
def test_slack_cut_never_exceeds_the_limit_nor_leaves_a_broken_entity(text: str, limit: int) -> None:
    out = slack.mrkdwn(text, limit)
    assert len(out) <= limit
    unescaped = out.removesuffix("…")
    assert "<" not in unescaped
    assert ">" not in unescaped
    tail = unescaped[unescaped.rfind("&") :] if "&" in unescaped else ""
    assert not tail or tail.startswith(("&amp;", "&lt;", "&gt;"))


def test_transport_error_texts_lose_the_urls_path() -> None:
    text = f"Cannot connect to {SLACK_URL}?x=1 (path /services/T000/B000/verysecretpath)"
    scrubbed = scrub(text, SLACK_URL)
    assert "verysecretpath" not in scrubbed
    assert "/[path]" in scrubbed
