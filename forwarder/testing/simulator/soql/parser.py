"""Recursive-descent parser for the SOQL subset; names resolve against the org's schema."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from typing import Any

from forwarder.testing.simulator.formats import parse_datetime
from forwarder.testing.simulator.soql.evaluate import comparator, date_literal, equal, field_value, like
from forwarder.testing.simulator.soql.lexer import (
    FIELD_HINT,
    KEYWORDS,
    TYPE_HINT,
    UNSUPPORTED,
    Query,
    Schema,
    SoqlError,
    Tok,
    located,
    malformed,
    tokenize,
)


class _Parser:
    def __init__(self, text: str, schema: Schema) -> None:
        self.text, self.schema = text, schema
        self.toks = tokenize(text)
        self.i = 0
        self.sobject = ""

    # --- token helpers -------------------------------------------------------------------------------------
    def peek(self, offset: int = 0) -> Tok | None:
        j = self.i + offset
        return self.toks[j] if j < len(self.toks) else None

    def fail(self, tok: Tok | None = None) -> SoqlError:
        tok = tok or self.peek()
        if tok is None:
            return malformed(self.text, len(self.text.rstrip()), "unexpected token: <EOF>")
        return malformed(self.text, tok.pos, f"unexpected token: {tok.text}")

    def take(self, *lows: str) -> Tok:
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
        if obj.kind != "word" or obj.low in KEYWORDS:
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

    def select_list(self) -> tuple[bool, list[tuple[Tok, ...]]]:
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

    def path(self) -> tuple[Tok, ...]:
        parts = [self.take()]
        if parts[0].kind != "word" or parts[0].low in KEYWORDS - {"count"}:
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
                    field_value(rec, path) in values
                    if not isinstance(field_value(rec, path), str)
                    else any(equal(field_value(rec, path), v) for v in values)
                )
                != negate
            )
        if negate:
            raise self.fail(tok)
        if tok.low == "like":
            pattern = like(self.literal())
            return lambda rec: isinstance(v := field_value(rec, path), str) and bool(pattern.fullmatch(v))
        if tok.kind != "op":
            raise self.fail(tok)
        literal = self.literal()
        return comparator(tok.text, path, literal)

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
        if (span := date_literal(tok.low, datetime.now(UTC))) is not None:
            return span
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
    def resolve_object(self, tok: Tok) -> str:
        for name in self.schema:
            if name.lower() == tok.low:
                return name
        raise SoqlError(
            "INVALID_TYPE",
            located(
                self.text,
                tok.pos,
                f"sObject type '{tok.text}' is not supported. {TYPE_HINT}",
            ),
        )

    def resolve(self, parts: tuple[Tok, ...]) -> tuple[str, ...]:
        if parts[0].kind == "punct" or (len(parts) == 1 and parts[0].low in UNSUPPORTED):
            raise self.fail(parts[0])
        fields = self.schema[self.sobject]
        names = [p.low for p in parts]
        if len(names) > 1 and names[0] == self.sobject.lower():
            names, parts = names[1:], parts[1:]
        key = ".".join(names)
        if key not in fields:
            raise SoqlError(
                "INVALID_FIELD",
                located(
                    self.text,
                    parts[0].pos,
                    f"No such column '{_dotted(parts)}' on entity '{self.sobject}'. {FIELD_HINT}",
                ),
            )
        return tuple(fields[key].split("."))


def _dotted(parts: tuple[Tok, ...]) -> str:
    return ".".join(p.text for p in parts)


def parse(text: str, schema: Schema) -> Query:
    """Parse ``text`` against ``schema`` (object -> {lower-case dotted path: canonical dotted path})."""
    if not text.strip():
        raise malformed(text, 0, "unexpected token: <EOF>")
    return _Parser(text, schema).parse()
