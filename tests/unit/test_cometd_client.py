"""The Bayeux client classifies every documented Salesforce reply once, and parses events strictly."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forwarder.salesforce.bayeux import (
    AuthExpired,
    ProtocolError,
    ReplyKind,
    _decode,
    classify,
    parse_event,
)
from forwarder.testing.fixtures import SHARED_FIXTURES

FIXTURE = SHARED_FIXTURES / "streaming/compiled-bayeux-examples.json"
EXAMPLES = {e["id"]: e["message"] for e in json.loads(FIXTURE.read_text())["examples"]}


@pytest.mark.parametrize(
    ("example", "kind"),
    [
        ("handshake_success", ReplyKind.OK),
        ("connect_success", ReplyKind.OK),
        ("subscribe_success", ReplyKind.OK),
        ("connect_401_authentication_invalid", ReplyKind.AUTH),
        ("handshake_denied_auth_invalid", ReplyKind.AUTH),
        ("connect_403_unknown_client", ReplyKind.REHANDSHAKE),
        ("handshake_denied_connection_limit", ReplyKind.REHANDSHAKE),
        ("connect_503_server_too_busy", ReplyKind.REHANDSHAKE),
        ("subscribe_400_invalid_replay_id", ReplyKind.STALE_REPLAY),
    ],
)
def test_classifies_each_documented_reply(example: str, kind: ReplyKind) -> None:
    assert classify(EXAMPLES[example]) is kind


def test_stale_replay_text_with_the_documented_single_space_also_matches() -> None:
    error = EXAMPLES["subscribe_400_invalid_replay_id"]["error"].replace(
        "invalid.  Please", "invalid. Please"
    )
    assert classify({"successful": False, "error": error}) is ReplyKind.STALE_REPLAY


@pytest.mark.parametrize(
    "error",
    [
        "400::The channel you requested to subscribe to doesn't exist /event/X",
        "403::Restricted channel",
        "403::Subscription limit exceeded for this topic",
        "400::The replayId {5} you provided was invalid.  Something else entirely.",
    ],
)
def test_other_subscribe_errors_are_not_taken_for_a_stale_replay_id(error: str) -> None:
    assert classify({"channel": "/meta/subscribe", "successful": False, "error": error}) is ReplyKind.RETRY


def test_delivered_event_keeps_payload_replay_id_and_uuid() -> None:
    event = parse_event(EXAMPLES["platform_event_delivery"])
    assert event is not None
    assert (event.channel, event.replay_id) == ("/event/Low_Ink__e", 2112)
    assert event.event_uuid == "2ec0e371-1395-457f-9275-be1b527a72f7"
    assert event.payload["Serial_Number__c"] == "12345"


def test_meta_replies_are_not_events() -> None:
    assert parse_event(EXAMPLES["connect_success"]) is None


@pytest.mark.parametrize(
    "message",
    [
        {"channel": "/event/X", "data": {"payload": {}}},
        {"channel": "/event/X", "data": {"payload": {}, "event": {"replayId": "12"}}},
        {"channel": "/event/X", "data": "<html>"},
    ],
)
def test_broken_event_messages_raise_protocol_errors(message: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError):
        parse_event(message)


@pytest.mark.parametrize(
    "body", [b"", b"[]", b"<html></html>", b'{"a": 1}', b"[1, 2]", b'[{"channel": "/meta/co']
)
def test_non_bayeux_2xx_bodies_are_protocol_errors(body: bytes) -> None:
    with pytest.raises(ProtocolError):
        _decode(200, body)


@pytest.mark.parametrize("status", [401, 403])
def test_http_auth_statuses_mean_a_new_token_whatever_the_body(status: int) -> None:
    with pytest.raises(AuthExpired):
        _decode(status, b'[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]')


@given(st.binary(max_size=200))
def test_decode_never_fails_with_anything_but_a_protocol_error(body: bytes) -> None:
    try:
        messages = _decode(200, body)
    except ProtocolError:
        return
    assert messages
    assert all(isinstance(m, dict) for m in messages)
