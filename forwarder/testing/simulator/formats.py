"""Salesforce value formats the simulator must reproduce: record ids, datetimes in their three spellings.

Sources: salesforce-facts.md A4 (ELF TIMESTAMP / TIMESTAMP_DERIVED), B3 (stream payloads use ``Z``),
D1 (REST/SOQL datetimes use ``.SSS+0000``); the 15 -> 18 character id suffix is Salesforce's documented
case-safe id algorithm (Apex ``Id.to18``; "What are Salesforce IDs composed of?", help article 000385585).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_URLSAFE = _BASE62 + "-_"
BASE64 = (
    _BASE62 + "+/"
)  # LOGIN_KEY / SESSION_KEY alphabet: real values "NK2oPJrJze8tH+vC", "/b1/CZnHg6WXplkT"


def id18(id15: str) -> str:
    """Case-insensitive 18-character form: one suffix char per 5-char chunk, bit j set if char j is upper."""
    suffix = []
    for chunk in range(3):
        flags = 0
        for j, char in enumerate(id15[chunk * 5 : chunk * 5 + 5]):
            if "A" <= char <= "Z":
                flags |= 1 << j
        suffix.append(_SUFFIX[flags])
    return id15 + "".join(suffix)


def new_id15(rng: random.Random, prefix: str, pod: str = "5j0") -> str:
    """A 15-char id: 3-char key prefix (``005`` user, ``0AT`` EventLogFile...), pod, base62 counter."""
    body = "".join(rng.choice(_BASE62) for _ in range(5))
    return (prefix + pod).ljust(10, "0") + body  # real ids are mostly zeros: 0055j000000utlP


def new_id18(rng: random.Random, prefix: str, pod: str = "5j0") -> str:
    return id18(new_id15(rng, prefix, pod))


def token(rng: random.Random, length: int, alphabet: str = _URLSAFE) -> str:
    """Opaque ids; REQUEST_ID is 22 base64url chars ("4fDkD4xoOfMXKFl1cJOo_V", real Beats row)."""
    return "".join(rng.choice(alphabet) for _ in range(length))


def uuid4(rng: random.Random) -> str:
    """EventIdentifier / EventUuid: a version-4 UUID drawn from the seeded generator."""
    hexes = f"{rng.getrandbits(128):032x}"
    return f"{hexes[:8]}-{hexes[8:12]}-4{hexes[13:16]}-{'89ab'[rng.randrange(4)]}{hexes[17:20]}-{hexes[20:]}"


def stream_datetime(at: datetime) -> str:
    """CometD payload datetimes: ISO with ``Z`` and milliseconds (real 2023 capture, facts B3)."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def rest_datetime(at: datetime) -> str:
    """REST/SOQL datetimes: ``2024-06-05T05:41:20.358+0000`` (facts B3, C, D1)."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}+0000"


def elf_timestamp(at: datetime) -> str:
    """ELF ``TIMESTAMP``: ``yyyyMMddHHmmss.SSS`` GMT (every event-type page, facts A4)."""
    return at.astimezone(UTC).strftime("%Y%m%d%H%M%S.") + f"{at.microsecond // 1000:03d}"


def elf_timestamp_derived(at: datetime) -> str:
    """ELF ``TIMESTAMP_DERIVED``: ISO-8601 with ``Z`` (facts A4)."""
    return stream_datetime(at)


def parse_datetime(text: str) -> datetime:
    """Read any of the spellings above (and SOQL literals) back into an aware datetime."""
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    elif len(value) > 5 and value[-5] in "+-" and value[-3] != ":":
        value = value[:-2] + ":" + value[-2:]
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
