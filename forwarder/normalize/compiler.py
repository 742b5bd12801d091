"""Compile a family's table and picks into one straight-line Python function (the pipeline's hot path).

The interpreter in ``engine`` is the reference: ``tests/unit/test_normalize_compiler.py`` checks that both
produce the same documents. Generated code names only our own table constants (keys go through ``repr``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from forwarder.normalize.engine import (
    _ENVELOPE,
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
from forwarder.normalize.values import BadValue, as_str

#: apply(payload, doc, event, extra, envelope): fills ``doc`` from ``payload``; raises FieldError.
Apply = Callable[[Mapping[str, Any], dict[str, Any], dict[str, Any], dict[str, Any], list[str]], None]


_UNKNOWN = ("", None)


class _Source:
    """Builds the function text and the constants it refers to."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.names: dict[str, Any] = {}

    def const(self, value: Any) -> str:
        name = f"c{len(self.names)}"
        self.names[name] = value
        return name

    def emit(self, indent: int, text: str) -> None:
        self.lines.append("    " * indent + text)

    def section(self, indent: int, depth: int, first: str, second: str) -> str:
        """The expression of the dict that receives the value (creating sections on the way)."""
        if depth == 1:
            return "doc"
        if first == "salesforce" and depth == 2:
            return "extra"
        if first == "event" and depth == 2:
            return "event"
        self.emit(indent, f"s = doc.get({first!r})")
        self.emit(indent, f"if s is None: s = doc[{first!r}] = {{}}")
        if depth == 2:
            return "s"
        self.emit(indent, f"t = s.get({second!r})")
        self.emit(indent, f"if t is None: t = s[{second!r}] = {{}}")
        return "t"

    def store(self, indent: int, op: Op, value: str) -> None:
        depth, first, second, third, _conv = op
        where = self.section(indent, depth, first, second)
        leaf = (first, second, third)[depth - 1]
        self.emit(indent, f"{where}[{leaf!r}] = {value}")


def _emit_field(src: _Source, key: str, ops: tuple[Op, ...]) -> None:
    if not ops:  # consumed by a pick or a hook
        return
    src.emit(1, f"v = get({key!r})")
    src.emit(1, 'if v is not None and v != "":')
    for op in ops:
        conv = op[4]
        if conv is None:
            src.store(2, op, "v")
            continue
        fn = src.const(conv)
        src.emit(2, f"k = {key!r}")
        if conv is as_str:
            src.emit(2, f"w = v if v.__class__ is str else {fn}(v)")
        else:
            src.emit(2, f"w = {fn}(v)")
        src.emit(2, 'if w is not None and w != "":')
        src.store(3, op, "w")


def _emit_pick(src: _Source, pick: Pick) -> None:
    (depth, first, second, third), choices = pick
    src.emit(1, "w = None")
    for index, (key, conv) in enumerate(choices):
        indent = 1 if index == 0 else 2
        if index:
            src.emit(1, "if w is None:")
        src.emit(indent, f"v = get({key!r})")
        src.emit(indent, 'if v is not None and v != "":')
        src.emit(indent + 1, f"k = {key!r}")
        src.emit(indent + 1, f"w = {src.const(conv)}(v)")
    src.emit(1, "if w is not None:")
    src.store(2, (depth, first, second, third, None), "w")


def _own_extra(key: str, ops: tuple[Op, ...]) -> bool:
    if len(ops) != 1:
        return False
    depth, first, second, _third, conv = ops[0]
    return depth == 2 and first == "salesforce" and second == snake(key) and conv is not None


def compile_fields(table: Table, picks: Picks) -> Apply:
    """One function doing what ``engine._apply_table`` + ``engine._apply_picks`` do, without the loops."""
    src = _Source()
    # Fields that only land in salesforce.* under their own snake_case name are converted in the loop
    # over present keys; the rest get straight-line code (absent columns then cost one dict lookup).
    in_loop = {key: ops[0][4] for key, ops in table.items() if _own_extra(key, ops)}
    # key -> None (handled below or skipped) | (extra name, converter) for the loop over present keys
    loop: dict[str, tuple[str, Conv | None] | None] = dict.fromkeys([*table, *_SKIP])
    loop.update({key: (snake(key), conv) for key, conv in in_loop.items()})
    entries = src.const(loop)
    src.emit(0, "def apply(payload, doc, event, extra, envelope):")
    src.emit(1, "get = payload.get")
    src.emit(1, "k = ''")
    src.emit(1, "try:")
    src.emit(2, "for key, value in payload.items():")
    src.emit(3, 'if value is None or value == "": continue')
    src.emit(3, f"entry = {entries}.get(key, UNKNOWN)")
    src.emit(3, "if entry is None: continue")
    src.emit(3, "if entry is UNKNOWN:")
    src.emit(4, f"if key[:1] == {_ENVELOPE!r}: envelope.append(key)")
    src.emit(4, "name = snake_cache.get(key)")
    src.emit(4, "extra[name if name is not None else snake(key)] = value")
    src.emit(4, "continue")
    src.emit(3, "k = key")
    src.emit(3, "name, conv = entry")
    src.emit(3, "w = value if conv is as_str and value.__class__ is str else conv(value)")
    src.emit(3, 'if w is not None and w != "": extra[name] = w')
    body_start = len(src.lines)
    for key, ops in table.items():
        if key not in in_loop:
            _emit_field(src, key, ops)
    for pick in picks:
        _emit_pick(src, pick)
    src.lines[body_start:] = ["    " + line for line in src.lines[body_start:]]
    src.names.update(as_str=as_str, UNKNOWN=_UNKNOWN)
    src.emit(1, "except BadValue as exc:")
    src.emit(2, "raise FieldError(k, str(exc)) from None")
    namespace: dict[str, Any] = {"snake_cache": _snake_cache, "snake": snake, "FieldError": FieldError}
    namespace.update(src.names, BadValue=BadValue)
    code = compile("\n".join(src.lines), f"<normalize:{len(table)} fields>", "exec")
    exec(code, namespace)  # noqa: S102 - the text is built above from our own constant tables
    apply: Apply = namespace["apply"]
    return apply
