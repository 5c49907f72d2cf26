"""RBAC is exactly what the code calls: derived from the source, compared with the manifests.

The calls are found statically. Every kubernetes-asyncio API method named in a module that
constructs an API class (``client.CoreV1Api(api)``...) is looked up in the client itself: the
generated ``*_with_http_info`` method holds the HTTP verb and path, which give the group,
resource, subresource and RBAC verb. A list method that is referenced rather than called is an
informer's list function (``Informer(core.list_node, ...)``, ``partial(custom.list_..., ...)``)
and needs ``watch`` too. Custom-object calls name their group and plural in arguments, resolved
from constants (following a helper function's parameter to its callers when needed).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_asyncio import client

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests"
PACKAGES = ("extender", "launcher", "shared")

Grant = tuple[str, str, str]  # (apiGroup, resource[/subresource], verb)

# Granted before the code that uses it lands, with the reason. An entry the code now uses is
# reported by test_pending_grants_are_still_pending so it gets removed from this list.
PENDING: dict[str, dict[Grant, str]] = {
    "extender": {},
    "launcher": {},
}

_HTTP_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch"}


@dataclass(frozen=True)
class Endpoint:
    """What one kubernetes-asyncio method does over HTTP."""

    method: str
    path: str


@cache
def api_classes() -> dict[str, type[Any]]:
    return {
        name: cls
        for name, cls in vars(client).items()
        if isinstance(cls, type) and name.endswith("Api") and name != "ApiClient"
    }


@cache
def endpoint(cls_name: str, method: str) -> Endpoint | None:
    impl = getattr(api_classes()[cls_name], f"{method}_with_http_info", None)
    if impl is None:
        return None
    source = inspect.getsource(impl)
    paths = re.findall(r"'(/apis?/[^']*)'", source)
    verbs = re.findall(r"'(GET|POST|PUT|PATCH|DELETE)'", source)
    if len(set(paths)) != 1 or not verbs:
        return None
    return Endpoint(verbs[0], paths[0])


def grants_for(ep: Endpoint, args: dict[str, set[str]], referenced: bool) -> set[Grant]:
    """RBAC (group, resource, verb) triples one call needs; ``args`` resolves path placeholders."""
    segments = ep.path.strip("/").split("/")
    if segments[0] == "api":
        groups, rest = {""}, segments[2:]
    else:
        groups, rest = _values(segments[1], args), segments[3:]
    if rest[:2] == ["namespaces", "{namespace}"] and len(rest) > 2:
        rest = rest[2:]
    resources = _values(rest[0], args)
    named = len(rest) > 1 and rest[1] == "{name}"
    sub = rest[2] if named and len(rest) > 2 else ""
    if ep.method == "GET":
        verbs = {"get"} if named else ({"list", "watch"} if referenced else {"list"})
    elif ep.method == "DELETE":
        verbs = {"delete"} if named else {"deletecollection"}
    else:
        verbs = {_HTTP_VERBS[ep.method]}
    return {(g, f"{r}/{sub}" if sub else r, v) for g in groups for r in resources for v in verbs}


def _values(segment: str, args: dict[str, set[str]]) -> set[str]:
    if segment.startswith("{"):
        key = segment.strip("{}")
        assert args.get(key), f"cannot resolve {key} from the call's arguments"
        return args[key]
    return {segment}


# Source analysis ----------------------------------------------------------------------------


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")


def imports_of(tree: ast.AST) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def component_modules(package: str) -> dict[str, Path]:
    """The package's modules plus every project module they import, transitively."""
    all_modules = {module_name(p): p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py")}
    todo = [m for m in all_modules if m.split(".")[0] == package]
    seen: dict[str, Path] = {}
    while todo:
        name = todo.pop()
        if name in seen or name not in all_modules:
            continue
        seen[name] = all_modules[name]
        todo.extend(i for i in imports_of(ast.parse(all_modules[name].read_text())) if i in all_modules)
    return seen


def _parents(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    return {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}


def _constant(module: str, tree: ast.Module, expr: ast.expr, parents: dict[ast.AST, ast.AST]) -> set[str]:
    """The string values ``expr`` can take: literals, module constants, or a helper's parameter."""
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        return {expr.value}
    if isinstance(expr, ast.Attribute | ast.Name):
        name = expr.attr if isinstance(expr, ast.Attribute) else expr.id
        function = _enclosing_function(expr, parents)
        if isinstance(expr, ast.Name) and function is not None:
            params = [a.arg for a in function.args.args]
            if name in params:
                return _parameter_values(module, tree, function, params.index(name), parents)
        value = getattr(importlib.import_module(module), name, None)
        if isinstance(value, str):
            return {value}
    return set()


def _enclosing_function(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> ast.FunctionDef | None:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            return node  # type: ignore[return-value]
    return None


def _parameter_values(
    module: str, tree: ast.Module, function: ast.FunctionDef, index: int, parents: dict[ast.AST, ast.AST]
) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == function.name
            and len(node.args) > index
        ):
            out |= _constant(module, tree, node.args[index], parents)
    return out


@dataclass(frozen=True)
class Use:
    where: str
    method: str
    grants: frozenset[Grant]


def kube_calls(module: str, path: Path) -> Iterator[Use]:
    tree = ast.parse(path.read_text())
    used_classes = {
        node.attr if isinstance(node, ast.Attribute) else node.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute | ast.Name)
        and (node.attr if isinstance(node, ast.Attribute) else node.id) in api_classes()
    }
    parents = _parents(tree)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        candidates = {c for c in used_classes if endpoint(c, node.attr) is not None}
        if not candidates:
            continue
        assert len(candidates) == 1, f"{module}:{node.lineno}: {node.attr} is ambiguous: {candidates}"
        ep = endpoint(candidates.pop(), node.attr)
        assert ep is not None
        parent = parents.get(node)
        called = isinstance(parent, ast.Call) and parent.func is node
        if called:
            assert isinstance(parent, ast.Call)
            args = parent.args
        elif isinstance(parent, ast.Call) and node in parent.args:  # partial(api.list_x, group, ...)
            args = parent.args[parent.args.index(node) + 1 :]
        else:
            args = []
        keywords = parent.keywords if isinstance(parent, ast.Call) else []
        resolved: dict[str, set[str]] = {}
        for i, key in enumerate(("group", "version", "plural")):
            if len(args) > i:
                resolved[key] = _constant(module, tree, args[i], parents)
        for kw in keywords:
            if kw.arg in ("group", "version", "plural"):
                resolved[kw.arg] = _constant(module, tree, kw.value, parents)
        yield Use(
            f"{module}:{node.lineno}", node.attr, frozenset(grants_for(ep, resolved, referenced=not called))
        )


def required(package: str) -> dict[Grant, list[str]]:
    out: dict[Grant, list[str]] = {}
    for module, path in component_modules(package).items():
        for use in kube_calls(module, path):
            for grant in use.grants:
                out.setdefault(grant, []).append(f"{use.where} {use.method}")
    return out


# Manifests ------------------------------------------------------------------------------------


def granted(component: str) -> set[Grant]:
    """Every (group, resource, verb) the component's Roles and ClusterRoles allow."""
    docs = [d for d in yaml.safe_load_all((MANIFESTS / component / "rbac.yaml").read_text()) if d is not None]
    out: set[Grant] = set()
    for doc in docs:
        if doc["kind"] not in ("Role", "ClusterRole"):
            continue
        for rule in doc["rules"]:
            assert "*" not in rule["verbs"], f"{component}: wildcard verb"
            assert "*" not in rule["resources"], f"{component}: wildcard resource"
            out.update((g, r, v) for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"])
    return out


def bound_to_its_service_account(component: str) -> bool:
    docs = [d for d in yaml.safe_load_all((MANIFESTS / component / "rbac.yaml").read_text()) if d]
    roles = {(d["kind"], d["metadata"]["name"]) for d in docs if d["kind"] in ("Role", "ClusterRole")}
    bound = {
        (d["roleRef"]["kind"], d["roleRef"]["name"])
        for d in docs
        if d["kind"].endswith("Binding")
        and any(s["name"] == f"jitnode-{component}" and s["kind"] == "ServiceAccount" for s in d["subjects"])
    }
    return roles <= bound


# Tests ----------------------------------------------------------------------------------------


def test_analysis_finds_known_calls() -> None:
    """The analysis itself works: calls we know the launcher makes are found with their verbs."""
    needed = required("launcher")
    assert ("", "pods/eviction", "create") in needed
    assert ("jitnode.io", "nodeclaims/status", "patch") in needed
    assert ("jitnode.io", "nodepools", "watch") in needed  # through partial() into an Informer
    assert ("coordination.k8s.io", "leases", "update") in needed
    assert ("", "nodes", "watch") in required("extender")
    assert not any(g[1] in ("nodeclaims", "leases") for g in required("extender"))


@pytest.mark.parametrize("component", ["extender", "launcher"])
def test_rbac_covers_every_call(component: str) -> None:
    have = granted(component)
    missing = {g: where for g, where in required(component).items() if g not in have}
    assert not missing, f"{component} RBAC lacks: " + "; ".join(f"{g} for {w}" for g, w in missing.items())


@pytest.mark.parametrize("component", ["extender", "launcher"])
def test_rbac_grants_nothing_unused(component: str) -> None:
    unused = granted(component) - set(required(component)) - set(PENDING[component])
    assert not unused, f"{component} RBAC grants verbs no code uses: {sorted(unused)}"


@pytest.mark.parametrize("component", ["extender", "launcher"])
def test_pending_grants_are_still_pending(component: str) -> None:
    used = set(PENDING[component]) & set(required(component))
    assert not used, f"now used by the code, drop from PENDING: {sorted(used)}"
    assert set(PENDING[component]) <= granted(component)


@pytest.mark.parametrize("component", ["extender", "launcher"])
def test_roles_are_bound_to_the_component(component: str) -> None:
    assert bound_to_its_service_account(component)
