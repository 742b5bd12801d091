"""A real SOQL subset: parse, then filter/sort/limit/project records the way the query resource does.

Supported: SELECT fields (relationship paths, ``COUNT()``), FROM, WHERE with = != <> < <= > >= IN / NOT IN
LIKE, AND/OR/NOT and parentheses, datetime/date literals; ORDER BY (ASC/DESC, NULLS FIRST/LAST); LIMIT,
OFFSET. Errors carry the real message shapes (SOQL and SOSL Reference; MALFORMED_QUERY, INVALID_FIELD,
INVALID_TYPE).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from forwarder.testing.simulator.formats import parse_datetime

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
_KEYWORDS = {
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
_TYPE_HINT = (
    "If you are attempting to use a custom object, be sure to append the '__c' after the entity name. "
    "Please reference your WSDL or the describe call for the appropriate names."
)
_FIELD_HINT = (
    "If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. "
    "Please reference your WSDL or the describe call for the appropriate names."
)
_UNSUPPORTED = {"group", "having", "includes", "excludes"}


class SoqlError(Exception):
    """A query Salesforce would refuse: ``error_code`` is the REST errorCode, ``message`` its text."""

    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message


@dataclass(frozen=True, slots=True)
class _Tok:
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


def _tokenize(text: str) -> list[_Tok]:
    tokens, pos = [], 0
    stripped = text.rstrip()
    while pos < len(stripped):
        match = _TOKEN.match(stripped, pos)
        if not match or match.end() == pos:
            bad = stripped[pos:].strip()[:1]
            raise _malformed(text, len(stripped) - len(stripped[pos:].lstrip()), f"unexpected token: {bad}")
        kind = match.lastgroup or ""
        start = match.start(kind)
        tokens.append(_Tok(kind, match.group(kind), start))
        pos = match.end()
    return tokens


def _located(text: str, pos: int, detail: str) -> str:
    """Salesforce's parser message: the query, a caret under the column, row/column, then the reason."""
    return f"\n{text}\n{' ' * pos}^\nERROR at Row:1:Column:{pos + 1}\n{detail}"


def _malformed(text: str, pos: int, detail: str) -> SoqlError:
    return SoqlError("MALFORMED_QUERY", _located(text, pos, detail))


class _Parser:
    def __init__(self, text: str, schema: Schema) -> None:
        self.text, self.schema = text, schema
        self.toks = _tokenize(text)
        self.i = 0
        self.sobject = ""

    # --- token helpers -------------------------------------------------------------------------------------
    def peek(self, offset: int = 0) -> _Tok | None:
        j = self.i + offset
        return self.toks[j] if j < len(self.toks) else None

    def fail(self, tok: _Tok | None = None) -> SoqlError:
        tok = tok or self.peek()
        if tok is None:
            return _malformed(self.text, len(self.text.rstrip()), "unexpected token: <EOF>")
        return _malformed(self.text, tok.pos, f"unexpected token: {tok.text}")

    def take(self, *lows: str) -> _Tok:
        tok = self.peek()
        if tok is None or (lows and tok.low not in lows):
            raise self.fail(tok)
        self.i += 1
        return tok

    def accept(self, *lows: str) -> bool:
        tok = self.peek()
        if tok is not None and tok.low in lows:
            self.i += 1
            return True
        return False

    # --- grammar -------------------------------------------------------------------------------------------
    def parse(self) -> Query:
        self.take("select")
        count_only, raw_fields = self.select_list()
        self.take("from")
        obj = self.take()
        if obj.kind != "word" or obj.low in _KEYWORDS:
            raise self.fail(obj)
        self.sobject = self.resolve_object(obj)
        fields = [self.resolve(path) for path in raw_fields]
        where = self.condition() if self.accept("where") else None
        order = self.order_by() if self.accept("order") else []
        limit = self.integer() if self.accept("limit") else None
        offset = self.integer() if self.accept("offset") else 0
        if (tok := self.peek()) is not None:
            raise self.fail(tok)
        return Query(self.sobject, fields, count_only, where, order, limit, offset)

    def select_list(self) -> tuple[bool, list[tuple[_Tok, ...]]]:
        tok = self.peek()
        if tok is not None and tok.low == "count" and (nxt := self.peek(1)) is not None and nxt.text == "(":
            self.i += 1
            self.take("(")
            self.take(")")
            return True, []
        paths = [self.path()]
        while self.accept(","):
            paths.append(self.path())
        return False, paths

    def path(self) -> tuple[_Tok, ...]:
        parts = [self.take()]
        if parts[0].kind != "word" or parts[0].low in _KEYWORDS - {"count"}:
            raise self.fail(parts[0])
        while self.accept("."):
            parts.append(self.take())
        return tuple(parts)

    def integer(self) -> int:
        tok = self.take()
        if tok.kind != "num" or not tok.text.isdigit():
            raise self.fail(tok)
        return int(tok.text)

    def condition(self) -> Callable[[Mapping[str, Any]], bool]:
        # SOQL refuses mixing AND and OR without parentheses (SOQL reference "Condition Expression Syntax")
        first = self.unary()
        tok = self.peek()
        if tok is None or tok.low not in ("and", "or"):
            return first
        joiner, parts = tok.low, [first]
        while self.accept(joiner):
            parts.append(self.unary())
        if (tok := self.peek()) is not None and tok.low in ("and", "or"):
            raise self.fail(tok)
        if joiner == "and":
            return lambda rec: all(p(rec) for p in parts)
        return lambda rec: any(p(rec) for p in parts)

    def unary(self) -> Callable[[Mapping[str, Any]], bool]:
        if self.accept("not"):
            inner = self.unary()
            return lambda rec: not inner(rec)
        if self.accept("("):
            inner = self.condition()
            self.take(")")
            return inner
        return self.comparison()

    def comparison(self) -> Callable[[Mapping[str, Any]], bool]:
        path = self.resolve(self.path())
        negate = self.accept("not")
        tok = self.take()
        if tok.low == "in":
            values = self.value_list()
            return lambda rec: (
                (
                    _get(rec, path) in values
                    if not isinstance(_get(rec, path), str)
                    else any(_equal(_get(rec, path), v) for v in values)
                )
                != negate
            )
        if negate:
            raise self.fail(tok)
        if tok.low == "like":
            pattern = _like(self.literal())
            return lambda rec: isinstance(v := _get(rec, path), str) and bool(pattern.fullmatch(v))
        if tok.kind != "op":
            raise self.fail(tok)
        literal = self.literal()
        return _comparator(tok.text, path, literal)

    def value_list(self) -> list[Any]:
        self.take("(")
        values = [self.literal()]
        while self.accept(","):
            values.append(self.literal())
        self.take(")")
        return values

    def literal(self) -> Any:
        tok = self.take()
        if tok.kind == "str":
            return re.sub(r"\\(.)", r"\1", tok.text[1:-1])
        if tok.kind == "num":
            return float(tok.text) if "." in tok.text else int(tok.text)
        if tok.kind == "dt":
            return parse_datetime(tok.text)
        if tok.kind == "date":
            return date.fromisoformat(tok.text)
        words: dict[str, Any] = {"null": None, "true": True, "false": False}
        if tok.low in words:
            return words[tok.low]
        if tok.low in ("today", "yesterday"):
            today = datetime.now(UTC).date()
            return today if tok.low == "today" else date.fromordinal(today.toordinal() - 1)
        raise self.fail(tok)

    def order_by(self) -> list[tuple[tuple[str, ...], bool, bool]]:
        self.take("by")
        out = []
        while True:
            path = self.resolve(self.path())
            desc = self.accept("desc") or (self.accept("asc") and False)
            nulls_first = not desc
            if self.accept("nulls"):
                nulls_first = self.take("first", "last").low == "first"
            out.append((path, desc, nulls_first))
            if not self.accept(","):
                return out

    # --- names ---------------------------------------------------------------------------------------------
    def resolve_object(self, tok: _Tok) -> str:
        for name in self.schema:
            if name.lower() == tok.low:
                return name
        raise SoqlError(
            "INVALID_TYPE",
            _located(
                self.text,
                tok.pos,
                f"sObject type '{tok.text}' is not supported. {_TYPE_HINT}",
            ),
        )

    def resolve(self, parts: tuple[_Tok, ...]) -> tuple[str, ...]:
        if parts[0].kind == "punct" or (len(parts) == 1 and parts[0].low in _UNSUPPORTED):
            raise self.fail(parts[0])
        fields = self.schema[self.sobject]
        names = [p.low for p in parts]
        if len(names) > 1 and names[0] == self.sobject.lower():
            names, parts = names[1:], parts[1:]
        key = ".".join(names)
        if key not in fields:
            raise SoqlError(
                "INVALID_FIELD",
                _located(
                    self.text,
                    parts[0].pos,
                    f"No such column '{_dotted(parts)}' on entity '{self.sobject}'. {_FIELD_HINT}",
                ),
            )
        return tuple(fields[key].split("."))


def _dotted(parts: tuple[_Tok, ...]) -> str:
    return ".".join(p.text for p in parts)


def parse(text: str, schema: Schema) -> Query:
    """Parse ``text`` against ``schema`` (object -> {lower-case dotted path: canonical dotted path})."""
    if not text.strip():
        raise _malformed(text, 0, "unexpected token: <EOF>")
    return _Parser(text, schema).parse()


def _get(rec: Mapping[str, Any], path: tuple[str, ...]) -> Any:
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


def _equal(value: Any, literal: Any) -> bool:
    lit = literal.lower() if isinstance(literal, str) else literal
    return bool(_coerce(value, literal) == lit)


def _comparator(op: str, path: tuple[str, ...], literal: Any) -> Callable[[Mapping[str, Any]], bool]:
    lit = literal.lower() if isinstance(literal, str) else literal

    def check(rec: Mapping[str, Any]) -> bool:
        value = _coerce(_get(rec, path), literal)
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


def _like(pattern: Any) -> re.Pattern[str]:
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
        present = [r for r in rows if _get(r, path) is not None]
        missing = [r for r in rows if _get(r, path) is None]
        present.sort(key=lambda r, p=path: _sort_key(_get(r, p)), reverse=desc)  # type: ignore[misc]
        rows = missing + present if nulls_first else present + missing
    end = None if query.limit is None else query.offset + query.limit
    return rows[query.offset : end]
