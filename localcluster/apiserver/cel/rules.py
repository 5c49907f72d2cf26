"""Compiling a CRD schema's ``x-kubernetes-validations`` as the API server does when it stores the CRD.

Every rule is parsed, checked against the environment of the given server version and costed:
its worst case per call times how many times it can run in one object (the product of the
``maxItems``/``maxProperties`` above it, or, when unbounded, what fits in a 3 MiB request). The
causes carry the real server's field paths and wording so that a CRD refused here is refused on
a real cluster for the same reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from localcluster.apiserver.cel import library
from localcluster.apiserver.cel.ast import Parsed, SyntaxIssue, parse
from localcluster.apiserver.cel.check import check
from localcluster.apiserver.cel.cost import MAX, estimate
from localcluster.apiserver.cel.decltype import MAX_REQUEST_SIZE_BYTES, DeclType, decl_type
from localcluster.apiserver.cel.runtime import Program

STATIC_ESTIMATED_COST_LIMIT: Final = 10_000_000
"""Largest estimated cost of one rule (apiextensions' StaticEstimatedCostLimit)."""
STATIC_ESTIMATED_CRD_COST_LIMIT: Final = 100_000_000
"""Largest estimated total of a CRD schema's rules (StaticEstimatedCRDCostLimit)."""
PER_CALL_LIMIT: Final = 1_000_000
"""Runtime cost limit of one evaluation (celconfig.PerCallLimit)."""

Cause = tuple[str, str]


@dataclass
class CompiledRule:
    """A rule ready to evaluate, with its estimated costs."""

    rule: dict[str, Any]
    program: Program
    uses_old_self: bool
    cost: int
    """Worst case of one evaluation."""
    total_cost: int
    """``cost`` times the rule's cardinality: what the budgets are checked against."""

    @property
    def message(self) -> str:
        message = str(self.rule.get("message") or "").strip()
        return message or f"failed rule: {str(self.rule.get('rule', '')).strip()}"


@dataclass
class Compiled:
    """Every rule of one schema, keyed by the schema path (below the root) of the node declaring it."""

    rules: dict[str, list[CompiledRule]] = field(default_factory=dict)
    causes: list[Cause] = field(default_factory=list)
    total_cost: int = 0


def cost_factor(cost: int, limit: int) -> str:
    """The factor as apiextensions prints it: ``3.1x``, ``1.234567x`` or ``more than 100x``."""
    factor = cost / limit
    if factor > 100.0:
        return "more than 100x"
    if factor < 1.5:
        return f"{factor:f}x"
    return f"{factor:.1f}x"


def _budget_message(what: str, cost: int, limit: int) -> str:
    return (
        f"{what} exceeds budget by factor of {cost_factor(cost, limit)} (try simplifying the rule, "
        "or adding maxItems, maxProperties, and maxLength where arrays, maps, and strings are declared)"
    )


def _go_rule(rule: dict[str, Any]) -> str:
    """A rule as Go's ``%#v`` prints an ``apiextensions.ValidationRule``."""

    def q(value: Any) -> str:
        return '"' + str(value or "").replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'

    reason = "(*apiextensions.FieldValueErrorReason)(nil)"
    if rule.get("reason"):
        reason = f"(*apiextensions.FieldValueErrorReason)({q(rule['reason'])})"
    old = (
        "(*bool)(nil)"
        if rule.get("optionalOldSelf") is None
        else f"(*bool)({str(rule['optionalOldSelf']).lower()})"
    )
    return (
        f"apiextensions.ValidationRule{{Rule:{q(rule.get('rule'))}, Message:{q(rule.get('message'))}, "
        f"MessageExpression:{q(rule.get('messageExpression'))}, Reason:{reason}, "
        f"FieldPath:{q(rule.get('fieldPath'))}, OptionalOldSelf:{old}}}"
    )


def _display(source: str, offset: int, message: str) -> str:
    """One issue the way cel-go's ``Errors.ToDisplayString`` renders it."""
    before = source[:offset]
    line = before.count("\n") + 1
    column = offset - (before.rfind("\n") + 1)
    snippet = source.split("\n")[line - 1].replace("\t", " ")
    return f"ERROR: <input>:{line}:{column + 1}: {message}\n | {snippet}\n | {'.' * column}^"


def _max_elements(schema: dict[str, Any]) -> int | None:
    """How many children a node has at most (None: unbounded), as apiextensions counts."""
    kind = schema.get("type")
    if kind == "object":
        if isinstance(schema.get("additionalProperties"), dict):
            limit = schema.get("maxProperties")
            return None if limit is None else max(0, int(limit))
        return 1
    if kind == "array":
        limit = schema.get("maxItems")
        return None if limit is None else max(0, int(limit))
    return 1


def compile_schema(root: dict[str, Any], path: str, server_minor: int) -> Compiled:
    """Compile every rule under ``root`` (found at field path ``path``) for a 1.``server_minor`` server."""
    out = Compiled()
    functions = library.functions_at(library.environment_minor(server_minor))
    root_decl = decl_type(root, root=True)
    expensive: list[tuple[int, str]] = []

    def visit(
        schema: dict[str, Any],
        decl: DeclType | None,
        where: str,
        cardinality: int | None,
        uncorrelatable: str | None,
    ) -> None:
        child_card = None
        if cardinality is not None:
            count = _max_elements(schema)
            child_card = None if count is None else min(cardinality * count, MAX)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            sub = decl.elem if decl is not None and decl.kind == "map" else None
            visit(extra, sub, f"{where}.additionalProperties", child_card, uncorrelatable)
        for name, prop in (schema.get("properties") or {}).items():
            if isinstance(prop, dict):
                sub = decl.fields.get(name) if decl is not None and decl.kind == "object" else None
                visit(prop, sub, f"{where}.properties[{name}]", child_card, uncorrelatable)
        items = schema.get("items")
        if isinstance(items, dict):
            sub = decl.elem if decl is not None and decl.kind == "list" else None
            keyed = schema.get("x-kubernetes-list-type") == "map"
            inner = uncorrelatable or (None if keyed else f"{where}.items")
            visit(items, sub, f"{where}.items", child_card, inner)
        rules = schema.get("x-kubernetes-validations") or []
        if rules:
            compiled = [
                _compile_rule(rule, decl, f"{where}.x-kubernetes-validations[{i}]", functions, uncorrelatable)
                for i, rule in enumerate(rules)
            ]
            bound = cardinality
            if bound is None:
                bound = MAX_REQUEST_SIZE_BYTES // ((decl.min_size if decl is not None else 1) + 1)
            kept: list[CompiledRule] = []
            for i, (result, causes) in enumerate(compiled):
                rule_path = f"{where}.x-kubernetes-validations[{i}].rule"
                out.causes.extend(causes)
                if result is None:
                    continue
                result.total_cost = min(result.cost * bound, MAX) if result.cost else 0
                if result.total_cost > STATIC_ESTIMATED_COST_LIMIT:
                    message = _budget_message(
                        "estimated rule cost", result.total_cost, STATIC_ESTIMATED_COST_LIMIT
                    )
                    out.causes.append((rule_path, f"Forbidden: {message}"))
                out.total_cost = min(out.total_cost + result.total_cost, MAX)
                if result.total_cost >= STATIC_ESTIMATED_CRD_COST_LIMIT // 100:
                    expensive.append((result.total_cost, rule_path))
                kept.append(result)
            out.rules[where.removeprefix(path)] = kept

    visit(root, root_decl, path, 1, None)
    if out.total_cost > STATIC_ESTIMATED_CRD_COST_LIMIT:
        for _, rule_path in sorted(expensive, key=lambda x: -x[0])[:4]:
            out.causes.append(
                (
                    rule_path,
                    "Forbidden: contributed to estimated rule cost total exceeding cost limit "
                    "for entire OpenAPIv3 schema",
                )
            )
        message = _budget_message(
            "x-kubernetes-validations estimated rule cost total for entire OpenAPIv3 schema",
            out.total_cost,
            STATIC_ESTIMATED_CRD_COST_LIMIT,
        )
        out.causes.append((path, f"Forbidden: {message}"))
    return out


def _compile_rule(
    rule: Any, decl: DeclType | None, where: str, functions: frozenset[str], uncorrelatable: str | None
) -> tuple[CompiledRule | None, list[Cause]]:
    if not isinstance(rule, dict) or not str(rule.get("rule") or "").strip():
        return None, [(f"{where}.rule", "Required value: rule is not specified")]
    source = str(rule["rule"])
    invalid = f"Invalid value: {_go_rule(rule)}"
    try:
        parsed: Parsed = parse(source)
    except SyntaxIssue as exc:
        detail = _display(source, exc.offset, exc.message)
        return None, [(f"{where}.rule", f"{invalid}: compilation failed: {detail}")]
    checked = check(parsed.expr, decl, functions)
    if checked.issues:
        issues = sorted(checked.issues, key=lambda x: x[0])
        detail = "\n".join(_display(source, offset, message) for offset, message in issues)
        return None, [(f"{where}.rule", f"{invalid}: compilation failed: {detail}")]
    if checked.type_of(parsed.expr).kind not in ("bool", "dyn"):
        return None, [(f"{where}.rule", f"{invalid}: cel expression must evaluate to a bool")]
    causes: list[Cause] = []
    if checked.uses_old_self and uncorrelatable is not None:
        causes.append(
            (
                f"{where}.rule",
                f'Invalid value: "{source}": oldSelf cannot be used on the uncorrelatable portion '
                f"of the schema within {uncorrelatable}",
            )
        )
    cost = estimate(parsed.expr, checked, decl)[1]
    return CompiledRule(rule, Program(parsed.tree), checked.uses_old_self, cost, cost), causes
