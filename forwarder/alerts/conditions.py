"""Rule conditions over ECS fields of a normalised document: the YAML form (pydantic) and compiled predicates.

A field test on a list-valued field (``event.category``, ``related.ip``) is true when any element passes,
as ECS array fields are queried in Elasticsearch and Sigma (https://www.elastic.co/guide/en/ecs/8.11/ecs-arrays.html).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from forwarder.events import EventDoc
from forwarder.settings import Settings

Predicate = Callable[[EventDoc], bool]
_MISSING = object()
_BOUNDS = ("gt", "gte", "lt", "lte")  # several bounds in one test make a range
OPERATORS = ("equals", "in", "prefix", "contains", "regex", "exists", "cidr", "gt", "gte", "lt", "lte")


class FieldTest(Settings):
    """One test of one field: ``{field: user.name, equals: x}``; one operator (or numeric bounds: a range)."""

    field: str = Field(description="ECS dotted path, e.g. event.dataset or source.ip.")
    equals: str | int | float | bool | None = Field(None, description="Exactly this value.")
    in_: list[str | int | float | bool] | None = Field(None, alias="in", description="Any of these values.")
    prefix: str | None = Field(None, description="String starts with this.")
    contains: str | None = Field(None, description="String contains this.")
    regex: str | None = Field(None, description="Python regular expression searched in the string.")
    exists: bool | None = Field(None, description="true: the field is present; false: absent.")
    cidr: list[str] | str | None = Field(None, description="IP address inside any of these networks.")
    gt: float | None = Field(None, description="Number greater than this.")
    gte: float | None = Field(None, description="Number at least this.")
    lt: float | None = Field(None, description="Number less than this.")
    lte: float | None = Field(None, description="Number at most this.")
    ignore_case: bool = Field(False, description="equals/in/prefix/contains/regex ignore letter case.")

    @model_validator(mode="before")
    @classmethod
    def _one_operator(cls, data: Any) -> Any:
        if isinstance(data, dict):
            given = [op for op in OPERATORS if op in data]
            if len(given) != 1 and not (given and set(given) <= set(_BOUNDS)):
                found = ", ".join(given) or "none"
                raise ValueError(f"give exactly one operator of {', '.join(OPERATORS)} (found: {found})")
        return data

    @field_validator("regex")
    @classmethod
    def _valid_regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression: {exc}") from None
        return value

    @field_validator("cidr")
    @classmethod
    def _valid_networks(cls, value: list[str] | str | None) -> list[str] | None:
        if value is None:
            return None
        networks = [value] if isinstance(value, str) else value
        for network in networks:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError as exc:
                raise ValueError(f"not a network: {exc}") from None
        return networks


class AllOf(Settings):
    all: list[Condition] = Field(min_length=1, description="Every condition holds.")


class AnyOf(Settings):
    any: list[Condition] = Field(min_length=1, description="At least one condition holds.")


class NotOf(Settings):
    not_: Condition = Field(alias="not", description="The condition does not hold.")


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        for key in ("all", "any", "not"):
            if key in value:
                return key
    return "field"


Condition = Annotated[
    Annotated[AllOf, Tag("all")]
    | Annotated[AnyOf, Tag("any")]
    | Annotated[NotOf, Tag("not")]
    | Annotated[FieldTest, Tag("field")],
    Discriminator(_kind),
]
#: Union tags pydantic puts into error locations; rule errors leave them out (users never wrote them).
CONDITION_TAGS = frozenset({"all", "any", "not", "field"})

AllOf.model_rebuild()
AnyOf.model_rebuild()
NotOf.model_rebuild()


def field_values(doc: EventDoc, path: str) -> list[Any]:
    """The values at ``path``: [] when absent, the elements when it is a list, else [value].

    ``@timestamp`` and other top-level keys with dots are looked up whole first."""
    node: Any = doc.get(path, _MISSING)
    if node is _MISSING:
        node = doc
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                return []
            node = node[part]
    if node is None:
        return []
    return list(node) if isinstance(node, list) else [node]


def datasets_of(condition: Any) -> frozenset[str] | None:
    """The ``event.dataset`` values a condition can match, when it says (None: any). The engine indexes
    rules by them, so a document is tested only against rules that can match its dataset."""
    if isinstance(condition, FieldTest):
        if condition.field != "event.dataset" or condition.ignore_case:
            return None
        if condition.equals is not None:
            return frozenset({str(condition.equals)})
        return None if condition.in_ is None else frozenset(str(v) for v in condition.in_)
    if isinstance(condition, AllOf):
        known = [d for d in map(datasets_of, condition.all) if d is not None]
        return frozenset.intersection(*known) if known else None
    if isinstance(condition, AnyOf):
        options = [datasets_of(c) for c in condition.any]
        return None if any(o is None for o in options) else frozenset().union(*options)  # type: ignore[arg-type]
    return None


def compile_condition(condition: Any) -> Predicate:
    """A predicate for a validated condition model."""
    if isinstance(condition, AllOf):
        parts = [compile_condition(c) for c in condition.all]
        return lambda doc: all(p(doc) for p in parts)
    if isinstance(condition, AnyOf):
        options = [compile_condition(c) for c in condition.any]
        return lambda doc: any(p(doc) for p in options)
    if isinstance(condition, NotOf):
        inner = compile_condition(condition.not_)
        return lambda doc: not inner(doc)
    return _compile_test(condition)


def _compile_test(test: FieldTest) -> Predicate:
    values = _getter(test.field)
    if test.exists is not None:
        want = test.exists
        return lambda doc: bool(values(doc)) == want
    check = _value_check(test)

    return lambda doc: any(map(check, values(doc)))


def _getter(path: str) -> Callable[[EventDoc], list[Any]]:
    """``field_values`` for one path, with the path split once (the hot path of every rule)."""
    parts = tuple(path.split("."))
    if len(parts) != 2 or "@" in path:
        return lambda doc: field_values(doc, path)
    outer, inner = parts

    def get(doc: EventDoc) -> list[Any]:
        node = doc.get(outer)
        value = node.get(inner) if isinstance(node, dict) else None
        if value is None:
            return field_values(doc, path) if path in doc else []
        return value if isinstance(value, list) else [value]

    return get


def _value_check(test: FieldTest) -> Callable[[Any], bool]:
    fold = (lambda s: str(s).casefold()) if test.ignore_case else (lambda s: s)
    if test.equals is not None:
        want = fold(test.equals)
        return lambda v: fold(v) == want
    if test.in_ is not None:
        wanted = {fold(w) for w in test.in_}
        return lambda v: _hashable(fold(v)) in wanted
    if test.prefix is not None:
        start = fold(test.prefix)
        return lambda v: isinstance(v, str) and fold(v).startswith(start)
    if test.contains is not None:
        part = fold(test.contains)
        return lambda v: isinstance(v, str) and part in fold(v)
    if test.regex is not None:
        pattern = re.compile(test.regex, re.IGNORECASE if test.ignore_case else 0)
        return lambda v: isinstance(v, str) and pattern.search(v) is not None
    if test.cidr is not None:
        networks = [ipaddress.ip_network(n, strict=False) for n in test.cidr]
        return lambda v: _in_networks(v, networks)
    return _numeric_check(test)


def _numeric_check(test: FieldTest) -> Callable[[Any], bool]:
    low, low_open = (test.gt, True) if test.gt is not None else (test.gte, False)
    high, high_open = (test.lt, True) if test.lt is not None else (test.lte, False)

    def check(value: Any) -> bool:
        x = _number(value)
        if x is None:
            return False
        if low is not None and (x <= low if low_open else x < low):
            return False
        return high is None or (x < high if high_open else x <= high)

    return check


def _hashable(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool) else repr(value)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _in_networks(value: Any, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    if not isinstance(value, str):
        return False
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return False
    return any(address.version == n.version and address in n for n in networks)
