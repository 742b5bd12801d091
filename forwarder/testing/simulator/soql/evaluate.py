"""Evaluating a parsed query: SOQL comparison semantics, sorting with NULLS FIRST/LAST, LIMIT/OFFSET."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from forwarder.testing.simulator.formats import parse_datetime
from forwarder.testing.simulator.soql.lexer import Query


@dataclass(frozen=True, slots=True)
class Span:
    """A relative date literal: instants [start, end) (SOQL "Date Formats and Date Literals")."""

    start: datetime
    end: datetime


_LAST_N = re.compile(r"(last|next)_n_(days|hours):(\d+)")


def date_literal(word: str, now: datetime) -> Span | None:
    """TODAY, YESTERDAY, LAST_N_DAYS:n (today and the n days before), LAST_N_HOURS:n, NEXT_N_*."""
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    day = timedelta(days=1)
    if word == "today":
        return Span(midnight, midnight + day)
    if word == "yesterday":
        return Span(midnight - day, midnight)
    match = _LAST_N.fullmatch(word)
    if match is None:
        return None
    count = int(match.group(3))
    if match.group(2) == "days":
        if match.group(1) == "last":
            return Span(midnight - count * day, midnight + day)
        return Span(midnight + day, midnight + (count + 1) * day)
    hour = now.replace(minute=0, second=0, microsecond=0)
    if match.group(1) == "last":
        return Span(hour - timedelta(hours=count), now)
    return Span(now, hour + timedelta(hours=count + 1))


def _in_span(op: str, value: Any, span: Span) -> bool:
    if not isinstance(value, str):
        return op in ("!=", "<>") and value is None
    at = parse_datetime(value if "T" in value else value + "T00:00:00Z")
    inside = span.start <= at < span.end
    return {
        "=": inside, "!=": not inside, "<>": not inside, "<": at < span.start, "<=": at < span.end,
        ">": at >= span.end, ">=": at >= span.start,
    }[op]  # fmt: skip


def field_value(rec: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = rec
    for part in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _coerce(value: Any, literal: Any) -> Any:
    """Bring a record value to the literal's type: datetimes/dates parse, strings compare case-blind."""
    if value is None:
        return None
    if isinstance(literal, datetime) and isinstance(value, str):
        return parse_datetime(value)
    if isinstance(literal, date) and not isinstance(literal, datetime) and isinstance(value, str):
        return parse_datetime(value).date() if "T" in value else date.fromisoformat(value)
    if isinstance(literal, str) and isinstance(value, str):
        return value.lower()
    return value


def equal(value: Any, literal: Any) -> bool:
    lit = literal.lower() if isinstance(literal, str) else literal
    return bool(_coerce(value, literal) == lit)


def comparator(op: str, path: tuple[str, ...], literal: Any) -> Callable[[Mapping[str, Any]], bool]:
    lit = literal.lower() if isinstance(literal, str) else literal
    if isinstance(literal, Span):
        return lambda rec: _in_span(op, field_value(rec, path), literal)

    def check(rec: Mapping[str, Any]) -> bool:
        value = _coerce(field_value(rec, path), literal)
        if op == "=":
            return bool(value == lit)
        if op in ("!=", "<>"):
            return bool(value != lit)
        if value is None or lit is None:
            return False
        try:
            return bool({"<": value < lit, "<=": value <= lit, ">": value > lit, ">=": value >= lit}[op])
        except TypeError:
            return False

    return check


def like(pattern: Any) -> re.Pattern[str]:
    text = str(pattern)
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in text)
    return re.compile(regex, re.IGNORECASE | re.DOTALL)


def _sort_key(value: Any) -> Any:
    if isinstance(value, str) and re.match(r"\d{4}-\d{2}-\d{2}T", value):
        return parse_datetime(value).timestamp()
    return value.lower() if isinstance(value, str) else value


def execute(query: Query, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Filter, sort and window ``records``; projection is the caller's (it knows attribute URLs)."""
    rows = [r for r in records if query.where is None or query.where(r)]
    for path, desc, nulls_first in reversed(query.order):
        present = [r for r in rows if field_value(r, path) is not None]
        missing = [r for r in rows if field_value(r, path) is None]
        present.sort(key=lambda r, p=path: _sort_key(field_value(r, p)), reverse=desc)  # type: ignore[misc]
        rows = missing + present if nulls_first else present + missing
    end = None if query.limit is None else query.offset + query.limit
    return rows[query.offset : end]
