"""Generic webhooks signed the Standard Webhooks 1.0 way (standard-webhooks/standard-webhooks
``spec/standard-webhooks.md``; reference §6.3): one alert per request, ``webhook-id`` = the alert's event id
(the receiver's idempotency key), ``webhook-timestamp`` = the attempt, ``webhook-signature: v1,<base64>``."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Any

import orjson

from forwarder.events import EventDoc, get_path
from sinks.webhook._alert import AlertView

#: Secrets are shown as ``whsec_<base64>`` (spec table "Secret serialization"); the prefix is optional.
SECRET_PREFIX = "whsec_"  # noqa: S105 - a format prefix, not a secret
#: The spec's symmetric secret: random, at least 24 bytes, at most 512 bits.
MIN_SECRET_BYTES, MAX_SECRET_BYTES = 24, 64


def decode_secret(text: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` (or bare base64) secret, as the reference libraries decode it
    (``standardwebhooks`` Python: prefix stripped, base64 decoded). ValueError without echoing the value."""
    raw = text.strip().removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("secret: expected whsec_<base64> (Standard Webhooks secret format)") from None
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise ValueError(
            f"secret: decodes to {len(key)} bytes; Standard Webhooks wants {MIN_SECRET_BYTES}-"
            f"{MAX_SECRET_BYTES} random bytes"
        )
    return key


def signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`` over the exact bytes sent."""
    signed = b"%s.%d.%s" % (msg_id.encode(), timestamp, body)
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def payload(doc: EventDoc) -> dict[str, Any]:
    """The body: the spec's recommended ``{type, timestamp, data}`` with the whole ECS document as data."""
    kind = get_path(doc, "event.kind", "event")
    return {
        "type": "salesforce.alert" if kind == "alert" else "salesforce.event",
        "timestamp": doc.get("@timestamp"),
        "data": doc,
    }


def encode(doc: EventDoc) -> bytes:
    """``<webhook-id>\\n<json body>``: the id travels with the body to ``send``, which signs at attempt time
    (the timestamp is the attempt's, so a retried alert is signed again with the same id)."""
    body = orjson.dumps(payload(doc))
    return AlertView.of(doc).message_id(body).encode() + b"\n" + body


def split(encoded: bytes) -> tuple[str, bytes]:
    """The id and the body of an ``encode`` result."""
    msg_id, _, body = encoded.partition(b"\n")
    return msg_id.decode(), body


def headers(key: bytes, encoded: bytes, now: float) -> tuple[dict[str, str], bytes]:
    """The request headers (signed at ``now``, epoch seconds) and the body to send."""
    msg_id, body = split(encoded)
    stamp = int(now)
    return {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": signature(key, msg_id, stamp, body),
    }, body
