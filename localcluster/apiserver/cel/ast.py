"""A small CEL syntax tree built from cel-python's parse, with macros expanded as cel-go does.

cel-python evaluates rules but has no checker or cost estimator; both need the expression in the
shape cel-go checks it in (``has`` as a presence test, ``all``/``exists``/``filter``/... as
comprehensions), so the estimator's figures follow the real server's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import celpy
import lark
from celpy.celparser import CELParseError

ACCU = "@result"
"""The accumulator name cel-go's macros use."""

MACROS = frozenset({"has", "all", "exists", "exists_one", "map", "filter"})


@dataclass(eq=False)
class Expr:
    """One node; ``offset`` is where cel-go would report an error about it."""

    offset: int


@dataclass(eq=False)
class Lit(Expr):
    kind: str  # bool, int, uint, double, string, bytes, null
    value: Any


@dataclass(eq=False)
class Ident(Expr):
    name: str


@dataclass(eq=False)
class Select(Expr):
    operand: Expr
    field: str
    test_only: bool = False


@dataclass(eq=False)
class Call(Expr):
    function: str
    args: list[Expr]
    target: Expr | None = None


@dataclass(eq=False)
class ListLit(Expr):
    elements: list[Expr]


@dataclass(eq=False)
class MapLit(Expr):
    entries: list[tuple[Expr, Expr]]


@dataclass(eq=False)
class Comprehension(Expr):
    iter_range: Expr
    iter_var: str
    accu_var: str
    accu_init: Expr
    condition: Expr
    step: Expr
    result: Expr


@dataclass
class SyntaxIssue(Exception):
    """A parse failure, with the offset cel-go would point at."""

    offset: int
    message: str


@dataclass
class Parsed:
    """A rule parsed twice over: cel-python's tree to evaluate, ours to check and cost."""

    source: str
    tree: lark.Tree[Any]
    expr: Expr
    macros_used: set[str] = field(default_factory=set)


_ENV = celpy.Environment()
_BINARY = {
    "conditionalor": "_||_",
    "conditionaland": "_&&_",
    "relation_lt": "_<_",
    "relation_le": "_<=_",
    "relation_gt": "_>_",
    "relation_ge": "_>=_",
    "relation_eq": "_==_",
    "relation_ne": "_!=_",
    "relation_in": "@in",
    "addition_add": "_+_",
    "addition_sub": "_-_",
    "multiplication_mul": "_*_",
    "multiplication_div": "_/_",
    "multiplication_mod": "_%_",
}


def parse(source: str) -> Parsed:
    """Parse ``source``; raises :class:`SyntaxIssue` on a syntax error or a misused macro."""
    try:
        tree = _ENV.compile(source)
    except CELParseError as exc:
        line, column = getattr(exc, "line", None), getattr(exc, "column", None)
        offset = _offset(source, line, column)
        raise SyntaxIssue(offset, f"Syntax error: {str(exc.args[0]).splitlines()[0]}") from exc
    builder = _Builder(source)
    return Parsed(source, tree, builder.build(tree), builder.macros)


def _offset(source: str, line: int | None, column: int | None) -> int:
    if not line or not column:
        return 0
    lines = source.split("\n")
    return sum(len(x) + 1 for x in lines[: line - 1]) + column - 1


class _Builder:
    def __init__(self, source: str) -> None:
        self.source = source
        self.macros: set[str] = set()

    def build(self, t: Any) -> Expr:
        if isinstance(t, lark.Token):
            raise SyntaxIssue(t.start_pos or 0, f"Syntax error: unexpected {t.type}")
        kind = t.data
        kids = t.children
        pos = t.meta.start_pos if not t.meta.empty else 0
        if kind in ("expr",):
            if len(kids) == 1:
                return self.build(kids[0])
            at = self._token_after(kids[0].meta.end_pos, "?")
            return Call(at, "_?_:_", [self.build(k) for k in kids])
        if kind in ("conditionalor", "conditionaland"):
            if len(kids) == 1:
                return self.build(kids[0])
            at = self._token_after(kids[0].meta.end_pos, "||" if kind == "conditionalor" else "&&")
            return Call(at, _BINARY[kind], [self.build(kids[0]), self.build(kids[1])])
        if kind in ("relation", "addition", "multiplication"):
            if len(kids) == 1:
                return self.build(kids[0])
            op_tree, right = kids
            left_tree = op_tree.children[0]
            function = _BINARY[op_tree.data]
            text = "in" if function == "@in" else function.strip("_")
            at = self._token_after(left_tree.meta.end_pos, text)
            return Call(at, function, [self.build(left_tree), self.build(right)])
        if kind == "unary":
            if len(kids) == 1:
                return self.build(kids[0])
            op = "!_" if kids[0].data == "unary_not" else "-_"
            return Call(pos, op, [self.build(kids[1])])
        if kind in ("member", "primary"):
            return self.build(kids[0])
        if kind == "member_dot":
            operand, name = kids
            return Select(name.start_pos - 1, self.build(operand), str(name))
        if kind == "member_dot_arg":
            operand, name = kids[0], kids[1]
            args = self._args(kids[2] if len(kids) > 2 else None)
            open_at = self._token_after(name.end_pos, "(")
            return self._receiver_call(open_at, str(name), self.build(operand), args)
        if kind == "member_index":
            return Call(self._token_after(kids[0].meta.end_pos, "["), "_[_]", [self.build(k) for k in kids])
        if kind == "ident_arg":
            name = kids[0]
            args = self._args(kids[1] if len(kids) > 1 else None)
            return self._global_call(self._token_after(name.end_pos, "("), str(name), args)
        if kind == "ident":
            return Ident(kids[0].start_pos, str(kids[0]))
        if kind == "paren_expr":
            return self.build(kids[0])
        if kind == "list_lit":
            return ListLit(pos, self._args(kids[0] if kids else None))
        if kind == "map_lit":
            entries: list[tuple[Expr, Expr]] = []
            if kids:
                items = [self.build(k) for k in kids[0].children]
                entries = list(zip(items[::2], items[1::2], strict=True))
            return MapLit(pos, entries)
        if kind == "literal":
            return _literal(kids[0])
        if kind in ("dot_ident", "dot_ident_arg"):
            raise SyntaxIssue(pos, "Syntax error: leading-dot names are not supported")
        raise SyntaxIssue(pos, f"Syntax error: unsupported construct {kind}")

    def _args(self, exprlist: Any) -> list[Expr]:
        if exprlist is None:
            return []
        return [self.build(k) for k in exprlist.children]

    def _token_after(self, start: int, token: str) -> int:
        found = self.source.find(token, start)
        return found if found >= 0 else start

    def _global_call(self, at: int, name: str, args: list[Expr]) -> Expr:
        if name == "has" and len(args) == 1:
            arg = args[0]
            if not isinstance(arg, Select):
                raise SyntaxIssue(arg.offset, "invalid argument to has() macro")
            self.macros.add("has")
            return Select(arg.offset, arg.operand, arg.field, test_only=True)
        return Call(at, name, args)

    def _receiver_call(self, at: int, name: str, target: Expr, args: list[Expr]) -> Expr:
        if name in ("all", "exists", "exists_one", "map", "filter") and len(args) in (2, 3):
            var = args[0]
            if not isinstance(var, Ident):
                raise SyntaxIssue(var.offset, "argument must be a simple name")
            if len(args) == 2 or name == "map":
                self.macros.add(name)
                return _comprehension(at, name, target, var.name, args[1:])
        return Call(at, name, args, target)


def _comprehension(at: int, name: str, target: Expr, var: str, args: list[Expr]) -> Comprehension:
    def accu() -> Ident:
        return Ident(at, ACCU)

    true = Lit(at, "bool", True)
    if name == "all":
        init: Expr = Lit(at, "bool", True)
        cond: Expr = Call(at, "@not_strictly_false", [accu()])
        step: Expr = Call(at, "_&&_", [accu(), args[0]])
        result: Expr = accu()
    elif name == "exists":
        init = Lit(at, "bool", False)
        cond = Call(at, "@not_strictly_false", [Call(at, "!_", [accu()])])
        step = Call(at, "_||_", [accu(), args[0]])
        result = accu()
    elif name == "exists_one":
        init, cond = Lit(at, "int", 0), true
        step = Call(at, "_?_:_", [args[0], Call(at, "_+_", [accu(), Lit(at, "int", 1)]), accu()])
        result = Call(at, "_==_", [accu(), Lit(at, "int", 1)])
    elif name == "map":
        init, cond = ListLit(at, []), true
        step = Call(at, "_+_", [accu(), ListLit(at, [args[-1]])])
        if len(args) == 2:
            step = Call(at, "_?_:_", [args[0], step, accu()])
        result = accu()
    else:  # filter
        init, cond = ListLit(at, []), true
        added = Call(at, "_+_", [accu(), ListLit(at, [Ident(at, var)])])
        step = Call(at, "_?_:_", [args[0], added, accu()])
        result = accu()
    return Comprehension(at, target, var, ACCU, init, cond, step, result)


_ESCAPES = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{3}|.)", re.DOTALL)
_SIMPLE = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


def _unescape(body: str) -> str:
    def one(m: re.Match[str]) -> str:
        s = m.group(1)
        if s[0] in "xuU":
            return chr(int(s[1:], 16))
        if len(s) == 3:
            return chr(int(s, 8))
        return _SIMPLE.get(s, s)

    return _ESCAPES.sub(one, body)


def _literal(token: lark.Token) -> Lit:
    text, at = str(token), token.start_pos or 0
    kind = token.type
    if kind == "BOOL_LIT":
        return Lit(at, "bool", text == "true")
    if kind == "NULL_LIT":
        return Lit(at, "null", None)
    if kind == "INT_LIT":
        return Lit(at, "int", int(text, 0) if "x" not in text else int(text.replace("-", ""), 16))
    if kind == "UINT_LIT":
        return Lit(at, "uint", int(text[:-1], 0))
    if kind == "FLOAT_LIT":
        return Lit(at, "double", float(text))
    is_bytes = kind == "BYTES_LIT"
    if is_bytes:
        text = text[1:]
    raw = text[0] in "rR"
    if raw:
        text = text[1:]
    quote = 3 if text[:3] in ('"""', "'''") else 1
    body = text[quote:-quote]
    value = body if raw else _unescape(body)
    return Lit(at, "bytes" if is_bytes else "string", value.encode() if is_bytes else value)
