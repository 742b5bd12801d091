"""Compile a family's table and picks into one straight-line Python function (the pipeline's hot path).

The interpreter in ``engine`` is the reference: ``tests/unit/test_normalize_compiler.py`` checks that both
produce the same documents. Generated code names only our own table constants (keys go through ``repr``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from forwarder.normalize.engine import (
    _SKIP,
    Conv,
    FieldError,
    Op,
    Pick,
    Picks,
    Table,
    _snake_cache,
    snake,
)
from forwarder.normalize.values import _INT64, BadValue, as_int, as_str

#: apply(payload, doc, event, extra, envelope): fills ``doc`` from ``payload`` and the checked envelope
#: (``engine.envelope_fields``); raises FieldError.
Apply = Callable[
    [Mapping[str, Any], dict[str, Any], dict[str, Any], dict[str, Any], Mapping[str, Any] | None], None
]


#: Sections that exist before ``apply`` runs (``build`` creates them and keeps references).
_FIXED = {"salesforce": "extra", "event": "event"}


class _Source:
    """Builds the function text and the constants it refers to. Sections (``user``, ``http.request``...)
    are local dicts, attached to the document at the end only when something was put in them."""

    def __init__(self, keys: tuple[str, ...] | None = None) -> None:
        self.lines: list[str] = []
        self.names: dict[str, Any] = {}
        self.sections: dict[tuple[str, ...], str] = {}
        self.top: set[str] = set()  # document keys written directly (depth-1 targets)
        #: key -> the local holding its value (specialised: every value unpacked once, no lookups)
        self.locals = {} if keys is None else {key: f"a{i}" for i, key in enumerate(keys)}

    def value(self, key: str) -> str:
        """The expression reading ``key``: its unpacked local, or ``get(key)`` in the generic function."""
        return self.locals.get(key) or f"get({key!r})"

    def const(self, value: Any) -> str:
        name = f"c{len(self.names)}"
        self.names[name] = value
        return name

    def emit(self, indent: int, text: str) -> None:
        self.lines.append("    " * indent + text)

    def section(self, depth: int, first: str, second: str) -> str:
        """The local name of the dict that receives the value."""
        if depth == 1:
            return "doc"
        if depth == 2 and first in _FIXED:
            return _FIXED[first]
        parts = (first,) if depth == 2 else (first, second)
        if parts not in self.sections:
            self.sections[parts] = f"s{len(self.sections)}"
            if len(parts) == 2 and (first,) not in self.sections and first not in _FIXED:
                self.sections[(first,)] = f"s{len(self.sections)}"
        return self.sections[parts]

    def store(self, indent: int, op: Op, value: str) -> None:
        depth, first, second, third, _conv = op
        if depth == 1:
            self.top.add(first)
        leaf = (first, second, third)[depth - 1]
        self.emit(indent, f"{self.section(depth, first, second)}[{leaf!r}] = {value}")

    def convert(self, indent: int, key: str, conv: Conv, into: str) -> None:
        """``into = conv(v)``; a BadValue becomes FieldError naming ``key`` (try is free in 3.11). A memoised
        converter (``values._cached``) is looked up inline first; a miss or a cached None calls it."""
        cache_get = getattr(conv, "cache_get", None)
        if cache_get is not None:
            self.emit(indent, f"{into} = {self.const(cache_get)}(v) if v.__class__ is str else None")
            self.emit(indent, f"if {into} is None:")
            indent += 1
        self.emit(indent, "try:")
        self.emit(indent + 1, f"{into} = {self.const(conv)}(v)")
        self.emit(indent, "except BadValue as exc:")
        self.emit(indent + 1, f"raise FieldError({key!r}, str(exc)) from None")

    def assemble(self) -> None:
        """Attach non-empty sections, inner ones first (``user.target`` may exist without ``user``)."""
        for parts, name in sorted(self.sections.items(), key=lambda item: -len(item[0])):
            parent = "doc" if len(parts) == 1 else _FIXED.get(parts[0]) or self.sections[parts[:1]]
            if len(parts) == 1 and parts[0] in self.top:  # a depth-1 target may have set it already
                self.emit(1, f"if {name}:")
                self.emit(2, f"old = doc.get({parts[-1]!r})")
                self.emit(2, f"if old: old.update({name})")
                self.emit(2, f"else: doc[{parts[-1]!r}] = {name}")
            elif len(parts) == 1:  # ``build`` starts the document without it: attach, no lookup
                self.emit(1, f"if {name}: doc[{parts[-1]!r}] = {name}")
            else:
                self.emit(1, f"if {name}: {parent}[{parts[-1]!r}] = {name}")


def _emit_field(src: _Source, key: str, ops: tuple[Op, ...]) -> None:
    if not ops:  # consumed by a pick or a hook
        return
    if len(ops) == 1 and ops[0][4] is as_str:  # text kept as text: the most common field, tested first
        src.emit(1, f"v = {src.value(key)}")
        src.emit(1, "if v.__class__ is str:")
        src.emit(2, "if v:")
        src.store(3, ops[0], "v")
        src.emit(1, "elif v is not None:")
        src.convert(2, key, as_str, "w")
        src.store(2, ops[0], "w")
        return
    src.emit(1, f"v = {src.value(key)}")
    src.emit(1, 'if v is not None and v != "":')
    for op in ops:
        conv = op[4]
        if conv is None:
            src.store(2, op, "v")
        elif conv is as_str or conv is as_int:  # already the right type: the common case, no call
            kind, check = ("str", "") if conv is as_str else ("int", f" or not {-_INT64} <= w < {_INT64}")
            src.emit(2, "w = v")
            src.emit(2, f"if w.__class__ is not {kind}{check}:")
            src.convert(3, key, conv, "w")
            src.store(2, op, "w")
        else:
            src.convert(2, key, conv, "w")
            src.emit(2, 'if w is not None and w != "":')
            src.store(3, op, "w")


def _emit_pick(src: _Source, pick: Pick, present: frozenset[str] | None) -> None:
    (depth, first, second, third), choices = pick
    if present is not None:
        choices = tuple(choice for choice in choices if choice[0] in present)
        if not choices:
            return
    src.emit(1, "w = None")
    for index, (key, conv) in enumerate(choices):
        indent = 1 if index == 0 else 2
        if index:
            src.emit(1, "if w is None:")
        src.emit(indent, f"v = {src.value(key)}")
        src.emit(indent, 'if v is not None and v != "":')
        src.convert(indent + 1, key, conv, "w")
    src.emit(1, "if w is not None:")
    src.store(2, (depth, first, second, third, None), "w")


def _emit_unmapped(src: _Source, known: frozenset[str], keys: tuple[str, ...] | None) -> None:
    """Fields without a table entry go to ``salesforce.<snake_case>``, then the envelope's fields."""
    if keys is None:
        src.emit(1, f"for key in [k for k in payload if k not in {src.const(known)}]:")
        src.emit(2, "value = payload[key]")
        src.emit(2, 'if value is None or value == "": continue')
        src.emit(2, "name = snake_cache.get(key)")
        src.emit(2, "extra[name if name is not None else snake(key)] = value")
    else:
        for key in (key for key in keys if key not in known):
            v = src.value(key)
            src.emit(1, f'if {v} is not None and {v} != "": extra[{snake(key)!r}] = {v}')
    src.emit(1, "if envelope: extra.update(envelope)")


def field_source(
    table: Table, picks: Picks, keys: tuple[str, ...] | None = None
) -> tuple[list[str], dict[str, Any]]:
    """The body of ``apply`` (statements at one indent level, names ``payload doc event extra envelope``)
    and the names it refers to: ``program`` inlines it into a whole-document function."""
    src = _Source(keys)
    present = None if keys is None else frozenset(keys)
    if not keys:
        src.emit(1, "get = payload.get")
    else:
        # One C-level unpack instead of a dict lookup per field: the caller guarantees the key sequence.
        src.emit(1, f"{', '.join(src.locals.values())}, = payload.values()")
    body_start = len(src.lines)
    _emit_unmapped(src, frozenset(table) | _SKIP, keys)
    for key, ops in table.items():
        if present is None or key in present:
            _emit_field(src, key, ops)
    for pick in picks:
        _emit_pick(src, pick, present)
    src.assemble()
    src.lines[body_start:body_start] = [f"    {name} = {{}}" for name in src.sections.values()]
    namespace: dict[str, Any] = {"snake_cache": _snake_cache, "snake": snake, "FieldError": FieldError}
    namespace.update(src.names, BadValue=BadValue)
    return src.lines, namespace


def compile_fields(table: Table, picks: Picks, keys: tuple[str, ...] | None = None) -> Apply:
    """One function doing what ``engine._apply_table`` + ``engine._apply_picks`` do, without the loops.

    With ``keys`` (a payload's exact key sequence) the function is specialised to payloads with exactly
    those keys: absent fields cost nothing and unmapped names are resolved now, not per record.
    """
    lines, namespace = field_source(table, picks, keys)
    lines.insert(0, "def apply(payload, doc, event, extra, envelope):")
    code = compile("\n".join(lines), f"<normalize:{len(table)} fields>", "exec")
    exec(code, namespace)  # noqa: S102 - the text is built above from our own constant tables
    apply: Apply = namespace["apply"]
    return apply
