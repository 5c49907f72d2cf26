"""Static worst-case cost of a CEL rule, computed the way the API server does before accepting a CRD.

Follows cel-go's checker cost model (each identifier and select costs 1, a comprehension costs
its range's largest size times its step and condition, string work costs 0.1 a byte, regexes 0.25
a pattern byte) with Kubernetes' function costs (``quantity()`` traverses its string, presence
tests are free) and its size estimates from the schema (``decltype``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from localcluster.apiserver.cel.ast import (
    ACCU,
    Call,
    Comprehension,
    Expr,
    Ident,
    ListLit,
    Lit,
    MapLit,
    Select,
)
from localcluster.apiserver.cel.check import Checked
from localcluster.apiserver.cel.decltype import DeclType

MAX: Final = 2**64 - 1
STRING_TRAVERSAL_COST_FACTOR: Final = 0.1
REGEX_STRING_LENGTH_COST_FACTOR: Final = 0.25
LIST_CREATE_BASE_COST: Final = 10
MAP_CREATE_BASE_COST: Final = 30

Range = tuple[int, int]
"""A (min, max) size or cost."""

UNKNOWN: Final[Range] = (0, MAX)
_SCALARS = frozenset({"bool", "double", "duration", "int", "timestamp", "uint"})
_ONE_COST_K8S = frozenset(
    [
        "sign",
        "asInteger",
        "isInteger",
        "asApproximateFloat",
        "isGreaterThan",
        "isLessThan",
        "compareTo",
        "add",
        "sub",
        "major",
        "minor",
        "patch",
        "getScheme",
        "getHostname",
        "getHost",
        "getPort",
        "getEscapedPath",
        "getQuery",
    ]
)
_ORDERING = frozenset({"_<_", "_<=_", "_>_", "_>=_"})


def _add(a: Range, b: Range) -> Range:
    return (min(a[0] + b[0], MAX), min(a[1] + b[1], MAX))


def _mul(a: Range, b: Range) -> Range:
    return (min(a[0] * b[0], MAX), min(a[1] * b[1], MAX))


def _factor(a: Range, f: float) -> Range:
    def one(x: int) -> int:
        if x == MAX:
            return MAX
        return min(math.ceil(x * f), MAX)

    return (one(a[0]), one(a[1]))


def _union(a: Range, b: Range) -> Range:
    return (min(a[0], b[0]), max(a[1], b[1]))


@dataclass
class _Entry:
    container: str
    key: Range
    val: Range


@dataclass
class _Local:
    path: list[str]
    size: Range | None
    entry: _Entry | None


@dataclass
class _Node:
    """What cel-go's ``AstNode`` gives a function's cost estimate."""

    path: list[str]
    kind: str
    size: Range | None


def estimate(expr: Expr, checked: Checked, scope: DeclType | None) -> Range:
    """The (min, max) cost of one evaluation of ``expr`` with ``self`` declared by ``scope``."""
    return _Coster(checked, scope).cost(expr)


class _Coster:
    def __init__(self, checked: Checked, scope: DeclType | None) -> None:
        self.checked = checked
        self.scope = scope
        self.paths: dict[Expr, list[str]] = {}
        self.sizes: dict[Expr, Range] = {}
        self.entries: dict[Expr, _Entry] = {}
        self.locals: dict[str, list[_Local]] = {}

    # ------------------------------------------------------------------ sizes and paths
    def kind(self, e: Expr) -> str:
        return self.checked.type_of(e).kind

    def local(self, name: str) -> _Local | None:
        stack = self.locals.get(name)
        return stack[-1] if stack else None

    def path(self, e: Expr) -> list[str]:
        if isinstance(e, Ident):
            var = self.local(e.name)
            if var is not None:
                return list(var.path)
        return list(self.paths.get(e, []))

    def schema_size(self, path: list[str]) -> Range | None:
        if not path or self.scope is None:
            return None
        node: DeclType | None = self.scope
        for name in path[1:]:
            if node is None:
                return None
            if name in ("@items", "@values"):
                node = node.elem
            elif name == "@keys":
                node = node.key
            else:
                node = node.fields.get(name)
        return None if node is None else (0, node.max_elements)

    def size(self, e: Expr) -> Range | None:
        if e in self.sizes:
            return self.sizes[e]
        if isinstance(e, Lit):
            if e.kind in ("string", "bytes"):
                return (len(e.value), len(e.value))
            return (1, 1)
        if isinstance(e, ListLit):
            return (len(e.elements), len(e.elements))
        if isinstance(e, MapLit):
            return (len(e.entries), len(e.entries))
        found = self.schema_size(self.path(e))
        if found is not None:
            self.sizes[e] = found
            return found
        if self.kind(e) in _SCALARS:
            return (1, 1)
        if isinstance(e, Ident):
            var = self.local(e.name)
            if var is not None and var.size is not None:
                return var.size
        return None

    def size_or_unknown(self, e: Expr | _Node) -> Range:
        found = e.size if isinstance(e, _Node) else self.size(e)
        return UNKNOWN if found is None else found

    def entry(self, e: Expr) -> _Entry | None:
        if e in self.entries:
            return self.entries[e]
        if isinstance(e, Ident):
            var = self.local(e.name)
            if var is not None:
                return var.entry
        return None

    def node(self, e: Expr) -> _Node:
        path = self.path(e)
        if path and path[0] == ACCU:
            path = []
        return _Node(path, self.kind(e), self.size(e))

    def k8s_size(self, n: _Node) -> Range:
        if n.size is not None:
            return n.size
        return self.schema_size(n.path) or UNKNOWN

    # ------------------------------------------------------------------ costs
    def cost(self, e: Expr) -> Range:
        if isinstance(e, Lit):
            return (0, 0)
        if isinstance(e, Ident):
            var = self.local(e.name)
            self.paths[e] = list(var.path) if var is not None else [e.name]
            return (1, 1)
        if isinstance(e, Select):
            if e.test_only:
                return self.cost(e.operand)  # presence tests are free in Kubernetes
            total = self.cost(e.operand)
            if self.kind(e.operand) in ("object", "map"):
                total = _add(total, (1, 1))
            self.paths[e] = [*self.path(e.operand), e.field]
            return total
        if isinstance(e, ListLit):
            return self._list(e)
        if isinstance(e, MapLit):
            return self._map(e)
        if isinstance(e, Comprehension):
            return self._comprehension(e)
        assert isinstance(e, Call)
        return self._call(e)

    def _list(self, e: ListLit) -> Range:
        total: Range = (0, 0)
        item: Range = (MAX, 0) if e.elements else (0, 0)
        for x in e.elements:
            total = _add(total, self.cost(x))
            item = _union(item, self.size_or_unknown(x))
        self.entries[e] = _Entry("list", (1, 1), item)
        return _add(total, (LIST_CREATE_BASE_COST, LIST_CREATE_BASE_COST))

    def _map(self, e: MapLit) -> Range:
        total: Range = (0, 0)
        key: Range = (MAX, 0) if e.entries else (0, 0)
        val: Range = (MAX, 0) if e.entries else (0, 0)
        for k, v in e.entries:
            total = _add(_add(total, self.cost(k)), self.cost(v))
            key = _union(key, self.size_or_unknown(k))
            val = _union(val, self.size_or_unknown(v))
        self.entries[e] = _Entry("map", key, val)
        return _add(total, (MAP_CREATE_BASE_COST, MAP_CREATE_BASE_COST))

    def _push(self, name: str, var: _Local) -> None:
        self.locals.setdefault(name, []).append(var)

    def _pop(self, name: str) -> None:
        self.locals[name].pop()

    def _comprehension(self, e: Comprehension) -> Range:
        total = _add(self.cost(e.iter_range), self.cost(e.accu_init))
        self._push(
            e.accu_var, _Local(self.path(e.accu_init), self.size(e.accu_init), self.entry(e.accu_init))
        )
        rng_entry = self.entry(e.iter_range)
        container = rng_entry.container if rng_entry is not None else self.kind(e.iter_range)
        if container == "list":
            item_size, sub = (rng_entry.val if rng_entry else None), "@items"
        else:
            item_size, sub = (rng_entry.key if rng_entry else None), "@keys"
        self._push(e.iter_var, _Local([*self.path(e.iter_range), sub], item_size, None))
        loop = self.cost(e.condition)
        step = self.cost(e.step)
        self._pop(e.iter_var)
        total = _add(total, self.cost(e.result))
        self._pop(e.accu_var)
        count = self.size_or_unknown(e.iter_range)
        total = _add(total, _mul(count, _add(step, loop)))
        if isinstance(e.accu_init, Lit):
            init_size = self.size(e.accu_init)
            if init_size is not None:
                self.sizes[e] = init_size
        elif isinstance(e.accu_init, ListLit | MapLit):
            self.sizes[e] = count
            step_entry = self.entry(e.step)
            if step_entry is not None:
                self.entries[e] = step_entry
        return total

    def _call(self, e: Call) -> Range:
        arg_costs = [self.cost(a) for a in e.args]
        arg_nodes = [self.node(a) for a in e.args]
        total: Range = (0, 0)
        target: _Node | None = None
        if e.target is not None:
            total = self.cost(e.target)
            target = self.node(e.target)
        fn_cost, result = self._function(e, target, arg_nodes, arg_costs)
        if e.function == "_[_]" and e.args:
            container = self.kind(e.args[0])
            got = self.entry(e.args[0])
            result = got.val if got is not None else None
            self.paths[e] = [*self.path(e.args[0]), "@items" if container == "list" else "@values"]
        if result is None:
            result = self.size(e)
        if result is not None:
            self.sizes[e] = result
        return _add(total, fn_cost)

    def _function(
        self, e: Call, target: _Node | None, args: list[_Node], costs: list[Range]
    ) -> tuple[Range, Range | None]:
        arg_sum: Range = (0, 0)
        for c in costs:
            arg_sum = _add(arg_sum, c)
        fn = e.function
        # Kubernetes' library costs come first, as its estimator is consulted before cel-go's.
        if fn in ("quantity", "isQuantity", "semver", "isSemver") and args:
            return _add(_factor(self.k8s_size(args[0]), STRING_TRAVERSAL_COST_FACTOR), arg_sum), None
        if fn in _ONE_COST_K8S:
            return _add((1, 1), arg_sum), None
        if fn == "_==_" and len(args) == 2 and args[0].kind == args[1].kind == "quantity":
            return _add((1, 1), arg_sum), None
        if fn in ("startsWith", "endsWith") and len(args) == 1:
            return _add(_factor(self.size_or_unknown(args[0]), STRING_TRAVERSAL_COST_FACTOR), arg_sum), None
        if fn == "@in" and len(args) == 2 and args[1].kind == "list":
            return _add(self.size_or_unknown(args[1]), arg_sum), None
        if fn == "matches" and target is not None and len(args) == 1:
            text = _factor(_add(self.size_or_unknown(target), (1, 1)), STRING_TRAVERSAL_COST_FACTOR)
            regex = _factor(self.size_or_unknown(args[0]), REGEX_STRING_LENGTH_COST_FACTOR)
            return _add(_mul(text, regex), arg_sum), None
        if fn == "contains" and target is not None and len(args) == 1 and target.kind == "string":
            text = _factor(self.size_or_unknown(target), STRING_TRAVERSAL_COST_FACTOR)
            sub = _factor(self.size_or_unknown(args[0]), STRING_TRAVERSAL_COST_FACTOR)
            return _add(_mul(text, sub), arg_sum), None
        if fn in ("_&&_", "_||_"):
            return (costs[0][0], _add(costs[0], costs[1])[1]), None
        if fn == "_?_:_":
            size = _union(self.size_or_unknown(args[1]), self.size_or_unknown(args[2]))
            a, b = self.entry(e.args[1]), self.entry(e.args[2])
            if a is not None and b is not None:
                self.entries[e] = _Entry(a.container, _union(a.key, b.key), _union(a.val, b.val))
            return _add(costs[0], _union(costs[1], costs[2])), size
        if fn == "_+_" and len(args) == 2 and args[0].kind in ("string", "bytes", "list"):
            size = _add(self.size_or_unknown(args[0]), self.size_or_unknown(args[1]))
            a, b = self.entry(e.args[0]), self.entry(e.args[1])
            if a is not None and b is not None:
                self.entries[e] = _Entry(a.container, _union(a.key, b.key), _union(a.val, b.val))
            if args[0].kind == "list":
                return _add((1, 1), arg_sum), size
            return _add(_factor(size, STRING_TRAVERSAL_COST_FACTOR), arg_sum), size
        if (fn in ("_==_", "_!=_") or (fn in _ORDERING and args[0].kind in ("string", "bytes"))) and len(
            args
        ) == 2:
            smallest = min(self.size_or_unknown(args[0])[1], self.size_or_unknown(args[1])[1])
            low = 1 if smallest > 0 else 0
            return _add(_factor((low, smallest), STRING_TRAVERSAL_COST_FACTOR), arg_sum), None
        return _add((1, 1), arg_sum), None
