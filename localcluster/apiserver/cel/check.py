"""An approximate CEL type checker: declared references, schema fields and result types.

Catches what decides whether a CRD is accepted across versions: a function or variable that the
target environment does not declare, a field the schema does not have, a rule that is not a
bool. Types are coarse (kinds plus the schema node they come from), enough for the cost model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
from localcluster.apiserver.cel.decltype import DeclType
from localcluster.apiserver.cel.library import LOGICAL_OPERATORS, TIMESTAMP_ACCESSORS


@dataclass(frozen=True, eq=False)
class T:
    """A coarse CEL type: a kind, the schema declaration behind it, and a list's element."""

    kind: str
    decl: DeclType | None = None
    elem: T | None = None


DYN = T("dyn")
BOOL = T("bool")
INT = T("int")
STRING = T("string")

_BOOL_FUNCS = frozenset(
    [
        *LOGICAL_OPERATORS,
        "@in",
        "@not_strictly_false",
        "matches",
        "contains",
        "startsWith",
        "endsWith",
        "isQuantity",
        "isInteger",
        "isLessThan",
        "isGreaterThan",
        "isSorted",
        "isURL",
        "isIP",
        "isCIDR",
        "hasValue",
        "sets.contains",
        "sets.equivalent",
        "sets.intersects",
        "includes",
        "isSemver",
        "containsIP",
        "containsCIDR",
    ]
)
_INT_FUNCS = frozenset(
    [
        "size",
        "int",
        "compareTo",
        "sign",
        "asInteger",
        "indexOf",
        "lastIndexOf",
        *TIMESTAMP_ACCESSORS,
    ]
)
_STRING_FUNCS = frozenset(
    [
        "string",
        "lowerAscii",
        "upperAscii",
        "replace",
        "substring",
        "trim",
        "charAt",
        "join",
        "format",
    ]
)
_SAME_AS_FIRST = frozenset(
    [
        "_+_",
        "_-_",
        "_*_",
        "_/_",
        "_%_",
        "-_",
    ]
)


def of_decl(decl: DeclType | None) -> T:
    """The coarse type of a schema declaration."""
    if decl is None:
        return DYN
    if decl.kind == "list":
        return T("list", decl, of_decl(decl.elem))
    return T(decl.kind, decl)


@dataclass
class Checked:
    """Types of every node, the cel-go style issues, and whether the rule reads ``oldSelf``."""

    types: dict[Expr, T] = field(default_factory=dict)
    issues: list[tuple[int, str]] = field(default_factory=list)
    uses_old_self: bool = False

    def type_of(self, e: Expr) -> T:
        return self.types.get(e, DYN)


def check(expr: Expr, scope: DeclType | None, functions: frozenset[str]) -> Checked:
    """Type ``expr`` with ``self``/``oldSelf`` of type ``scope`` and the declared ``functions``."""
    out = Checked()
    _Checker(out, of_decl(scope), functions).visit(expr, {})
    return out


class _Checker:
    def __init__(self, out: Checked, scope: T, functions: frozenset[str]) -> None:
        self.out = out
        self.scope = scope
        self.functions = functions

    def undeclared(self, e: Expr, name: str) -> T:
        self.out.issues.append((e.offset, f"undeclared reference to '{name}' (in container '')"))
        return DYN

    def visit(self, e: Expr, local: dict[str, T]) -> T:
        t = self._visit(e, local)
        self.out.types[e] = t
        return t

    def _visit(self, e: Expr, local: dict[str, T]) -> T:
        if isinstance(e, Lit):
            return T(e.kind)
        if isinstance(e, Ident):
            if e.name in local:
                return local[e.name]
            if e.name in ("self", "oldSelf"):
                self.out.uses_old_self |= e.name == "oldSelf"
                return self.scope
            return self.undeclared(e, e.name)
        if isinstance(e, Select):
            operand = self.visit(e.operand, local)
            if e.test_only:
                self._field(e, operand)
                return BOOL
            return self._field(e, operand)
        if isinstance(e, ListLit):
            elems = [self.visit(x, local) for x in e.elements]
            return T("list", None, elems[0] if elems else DYN)
        if isinstance(e, MapLit):
            for k, v in e.entries:
                self.visit(k, local)
                self.visit(v, local)
            return T("map")
        if isinstance(e, Comprehension):
            return self._comprehension(e, local)
        assert isinstance(e, Call)
        return self._call(e, local)

    def _field(self, e: Select, operand: T) -> T:
        if operand.kind == "object" and operand.decl is not None:
            sub = operand.decl.fields.get(e.field)
            if sub is None:
                self.out.issues.append((e.offset, f"undefined field '{e.field}'"))
                return DYN
            return of_decl(sub)
        if operand.kind == "map":
            return of_decl(operand.decl.elem) if operand.decl is not None else DYN
        return DYN

    def _comprehension(self, e: Comprehension, local: dict[str, T]) -> T:
        rng = self.visit(e.iter_range, local)
        if rng.kind == "list":
            item = rng.elem or DYN
        elif rng.kind == "map":
            item = STRING
        else:
            item = DYN
        accu = self.visit(e.accu_init, local)
        if accu.kind == "list":
            accu = T("list", None, item)
        inner = {**local, e.iter_var: item, e.accu_var: accu}
        self.visit(e.condition, inner)
        self.visit(e.step, inner)
        return self.visit(e.result, {**local, e.accu_var: accu})

    def _call(self, e: Call, local: dict[str, T]) -> T:
        target = self.visit(e.target, local) if e.target is not None else None
        args = [self.visit(a, local) for a in e.args]
        name = e.function
        if name not in self.functions and name != ACCU:
            return self.undeclared(e, name)
        if name in _BOOL_FUNCS:
            return BOOL
        if name in _INT_FUNCS:
            return INT
        if name in _STRING_FUNCS:
            return STRING
        if name in ("quantity", "add", "sub") and (
            name == "quantity" or (target and target.kind == "quantity")
        ):
            return T("quantity")
        if name in ("double", "asApproximateFloat"):
            return T("double")
        if name == "_?_:_":
            return args[1]
        if name in _SAME_AS_FIRST and args:
            return args[0]
        if name == "_[_]":
            container = args[0]
            if container.kind == "list":
                return container.elem or DYN
            if container.kind == "map" and container.decl is not None:
                return of_decl(container.decl.elem)
        return DYN
