"""SOQL tokens, the parsed query, and Salesforce's located error messages."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<dt>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:?\d{2}))
    | (?P<date>\d{4}-\d{2}-\d{2})
    | (?P<num>-?\d+(?:\.\d+)?)
    | (?P<str>'(?:[^'\\]|\\.)*')
    | (?P<op><=|>=|!=|<>|=|<|>)
    | (?P<punct>[(),.])
    | (?P<word>[A-Za-z_][A-Za-z0-9_]*(?::\d+)?)
    )""",
    re.VERBOSE,
)
KEYWORDS = {
    "select",
    "from",
    "where",
    "and",
    "or",
    "not",
    "in",
    "like",
    "order",
    "by",
    "asc",
    "desc",
    "nulls",
    "first",
    "last",
    "limit",
    "offset",
    "null",
    "true",
    "false",
    "count",
    "includes",
    "excludes",
    "group",
    "having",
}
TYPE_HINT = (
    "If you are attempting to use a custom object, be sure to append the '__c' after the entity name. "
    "Please reference your WSDL or the describe call for the appropriate names."
)
FIELD_HINT = (
    "If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. "
    "Please reference your WSDL or the describe call for the appropriate names."
)
UNSUPPORTED = {"group", "having", "includes", "excludes"}


class SoqlError(Exception):
    """A query Salesforce would refuse: ``error_code`` is the REST errorCode, ``message`` its text."""

    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message


@dataclass(frozen=True, slots=True)
class Tok:
    kind: str
    text: str
    pos: int

    @property
    def low(self) -> str:
        return self.text.lower()


@dataclass(frozen=True)
class Query:
    """A parsed query; ``fields`` are paths such as ``("CreatedBy", "Username")``."""

    sobject: str
    fields: list[tuple[str, ...]]
    count_only: bool = False
    where: Callable[[Mapping[str, Any]], bool] | None = None
    order: list[tuple[tuple[str, ...], bool, bool]] = field(default_factory=list)  # path, desc, nulls_first
    limit: int | None = None
    offset: int = 0


#: object name -> {lower-case field: canonical field}, and relationship name -> target object.
Schema = Mapping[str, Mapping[str, str]]


def tokenize(text: str) -> list[Tok]:
    tokens, pos = [], 0
    stripped = text.rstrip()
    while pos < len(stripped):
        match = _TOKEN.match(stripped, pos)
        if not match or match.end() == pos:
            bad = stripped[pos:].strip()[:1]
            raise malformed(text, len(stripped) - len(stripped[pos:].lstrip()), f"unexpected token: {bad}")
        kind = match.lastgroup or ""
        start = match.start(kind)
        tokens.append(Tok(kind, match.group(kind), start))
        pos = match.end()
    return tokens


def located(text: str, pos: int, detail: str) -> str:
    """Salesforce's parser message: the query, a caret under the column, row/column, then the reason."""
    return f"\n{text}\n{' ' * pos}^\nERROR at Row:1:Column:{pos + 1}\n{detail}"


def malformed(text: str, pos: int, detail: str) -> SoqlError:
    return SoqlError("MALFORMED_QUERY", located(text, pos, detail))
