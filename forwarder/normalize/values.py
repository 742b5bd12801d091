"""Value converters for Salesforce field quirks; each raises ``BadValue`` and never anything else.

Sources: shared/reference/salesforce-facts.md sections A4 (ELF CSV), B3 (stream payloads), C (audit trail).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from forwarder.events import format_timestamp


class BadValue(Exception):
    """A field value that cannot be read as its documented type."""


R = TypeVar("R")
_INT64 = 2**63
_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


_CACHE_LIMIT = 65_536


def _cached(fn: Callable[[Any], R]) -> Callable[[Any], R]:
    """Memoise a pure converter on text input: ids and IPs repeat across millions of rows. Bounded:
    the cache is emptied when full, never grows past ``_CACHE_LIMIT``."""
    cache: dict[str, R] = {}

    def wrapper(value: Any) -> R:
        if value.__class__ is not str:
            return fn(value)
        try:
            return cache[value]
        except KeyError:
            pass
        result = fn(value)
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache[value] = result
        return result

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    wrapper.cache_get = cache.get  # type: ignore[attr-defined]  # generated code reads the cache inline
    return wrapper


@_cached
def id18(value: Any) -> str:
    """The 18-character, case-insensitive form of a Salesforce id.

    The 3-character suffix encodes, per 5-character chunk, which characters are upper case (bit i set
    when char i is A-Z), read as an index into A-Z0-5 (Salesforce "What are Salesforce IDs", knowledge
    article 000385585; same algorithm in simple-salesforce and the Salesforce CLI). Values that are not
    15 alphanumerics (already 18, masked, or from a newer format) pass through unchanged.
    """
    text = as_str(value)
    if len(text) != 15 or not text.isascii() or not text.isalnum():
        return text
    suffix = []
    for start in (0, 5, 10):
        bits = 0
        for i, char in enumerate(text[start : start + 5]):
            if "A" <= char <= "Z":
                bits |= 1 << i
        suffix.append(_ID_ALPHABET[bits])
    return text + "".join(suffix)


def as_str(value: Any) -> str:
    """Text fields: strings as they are; numbers and booleans as their text (JSON-ified CSV sources)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    raise BadValue(f"expected text, got {type(value).__name__}")


def as_int(value: Any) -> int:
    """Number fields (ELF ``Number``): ints, integral floats, or their text ("63", "9998.0")."""
    if isinstance(value, bool):
        raise BadValue("expected a number, got a boolean")
    if isinstance(value, int):
        number: int | float = value
    elif isinstance(value, float | str):
        try:
            number = float(value)
        except ValueError:
            raise BadValue("expected a number") from None
    else:
        raise BadValue(f"expected a number, got {type(value).__name__}")
    if number != number or not -_INT64 <= number < _INT64:  # JSON/SIEM long range; NaN fails too
        raise BadValue("number out of range")
    return int(number)


def as_float(value: Any) -> float:
    """Double fields (Threat Detection ``Score``, latitude): finite floats or their text."""
    if isinstance(value, bool):
        raise BadValue("expected a number, got a boolean")
    if isinstance(value, int | float | str):
        try:
            number = float(value)
        except ValueError:
            raise BadValue("expected a number") from None
        if number != number or number in (float("inf"), float("-inf")):
            raise BadValue("expected a finite number")
        return number
    raise BadValue(f"expected a number, got {type(value).__name__}")


def as_bool(value: Any) -> bool:
    """ELF ``Boolean`` columns are "1"/"0" (USER_INITIATED_LOGOUT, SUCCESS); objects use true/false."""
    if isinstance(value, bool):
        return value
    text = as_str(value).strip().lower()
    if text in ("1", "true", "t", "y", "yes"):
        return True
    if text in ("0", "false", "f", "n", "no"):
        return False
    raise BadValue("expected a boolean")


@_cached
def ip_or_none(value: Any) -> str | None:
    """An IP address in canonical text, or None for the documented non-IP values.

    ELF ``CLIENT_IP`` may be the literal "Salesforce.com IP" for internal requests (Login Event Type
    doc); masked fixtures hold strings like "2001db8ff...". Those are kept under ``salesforce.*`` only.
    """
    text = as_str(value)
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def parse_iso(value: Any) -> datetime:
    """Stream/object datetimes: ``2021-11-01T04:52:10Z``, ``...10.000Z``, SOQL ``...+0000``."""
    text = as_str(value)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise BadValue("expected an ISO-8601 datetime") from None
    if parsed.tzinfo is None:  # Salesforce API datetimes are UTC (REST API Dev Guide, "Valid Date Formats")
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def parse_elf_timestamp(value: Any) -> datetime:
    """ELF ``TIMESTAMP``: ``yyyyMMddHHmmss.SSS`` in GMT, e.g. ``20130715233322.670`` (any fraction length).

    JSON-ified rows carry it as a float (20211019044204.258), so floats are read through ``repr``.
    """
    text = as_str(value)
    whole, _, fraction = text.partition(".")
    if len(whole) != 14 or not whole.isdigit() or (fraction and not fraction.isdigit()):
        raise BadValue("expected yyyyMMddHHmmss.SSS")
    millis = int((fraction + "000")[:3]) if fraction else 0
    try:
        return datetime(
            int(whole[0:4]), int(whole[4:6]), int(whole[6:8]),
            int(whole[8:10]), int(whole[10:12]), int(whole[12:14]), millis * 1000, tzinfo=UTC,
        )  # fmt: skip
    except ValueError:
        raise BadValue("expected a valid date") from None


def iso_text(value: Any) -> str:
    """A stream/object datetime as ECS date text. The three forms Salesforce sends (ELF TIMESTAMP_DERIVED
    and stream ``2022-09-13T05:22:43.429Z``, object ``...43Z``, SOQL ``...43.429+0000``) are checked by
    ``fromisoformat`` and rewritten by slicing: the ``strftime`` of ``format_timestamp`` cost ~1.5 us."""
    if value.__class__ is not str:
        return format_timestamp(parse_iso(value))
    size = len(value)
    if size == 24 and value[23] == "Z" and value[19] == "." and value[10] == "T":  # the common form first
        _check_iso(value)
        return value
    # YYYY-MM-DDTHH:MM:SS only (not an ISO week date such as 2026-W48-4, which fromisoformat also reads)
    if value[4:5] == value[7:8] == "-" and value[10:11] == "T" and value[13:14] == value[16:17] == ":":
        if size == 20 and value[19] == "Z":
            _check_iso(value)
            return value[:19] + ".000Z"
        if size == 28 and value[19] == "." and value[23:] == "+0000":
            _check_iso(value)
            return value[:23] + "Z"
    return format_timestamp(parse_iso(value))


def _check_iso(text: str) -> None:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        raise BadValue("expected an ISO-8601 datetime") from None


def elf_text(value: Any) -> str:
    """An ELF TIMESTAMP as ECS date text."""
    return format_timestamp(parse_elf_timestamp(value))
