"""The OpenAPI definitions of Kubernetes' built-in types, read from the kubernetes-validate wheel.

kubernetes-validate ships the definitions of every Kubernetes minor (descriptions, required
fields, ``x-kubernetes-group-version-kind``, patch strategies and list types intact) as JSON
Schema. This module turns them back into OpenAPI form (``type: X`` rather than ``[X, "null"]``,
IntOrString as ``format: int-or-string``, ``#/definitions/`` references) once, on first use:
loading costs about 0.1 s, which API server startup must not pay. The package is located
without importing it (its ``__init__`` pulls in jsonschema).
"""

from __future__ import annotations

import importlib.util
import re
from functools import cache
from pathlib import Path
from typing import Any

import orjson

from shared.compat import MIN_KUBERNETES_MINOR

Obj = dict[str, Any]

# The emulated server is the oldest supported Kubernetes: what works here works everywhere.
KUBERNETES_MINOR: int = MIN_KUBERNETES_MINOR
REF_V2 = "#/definitions/"
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf")


class SchemasUnavailable(RuntimeError):
    """kubernetes-validate is not installed (``pip install 'jitnode[localcluster]'``)."""


def _schema_dir() -> Path:
    spec = importlib.util.find_spec("kubernetes_validate")
    if spec is None or not spec.submodule_search_locations:
        raise SchemasUnavailable("kubernetes-validate is not installed; OpenAPI documents are unavailable")
    root = Path(next(iter(spec.submodule_search_locations))) / "kubernetes-json-schema"
    minors = {}
    for entry in root.iterdir():
        m = re.fullmatch(r"v1\.(\d+)\.\d+-local", entry.name)
        if m:
            minors[int(m.group(1))] = entry
    if not minors:
        raise SchemasUnavailable(f"no schemas under {root}")
    # The emulated minor if shipped, else the nearest newer one, else the newest.
    newer = [n for n in minors if n >= KUBERNETES_MINOR]
    return minors[min(newer) if newer else max(minors)]


def _type_of(value: Any) -> Any:
    if isinstance(value, list):
        kinds = [t for t in value if t != "null"]
        return kinds[0] if len(kinds) == 1 else kinds
    return value


def _schema(node: Any) -> Any:
    """One JSON Schema node in OpenAPI form."""
    if not isinstance(node, dict):
        return node
    one_of = node.get("oneOf")
    if isinstance(one_of, list) and "properties" not in node:
        kinds = {_type_of(o.get("type")) for o in one_of if isinstance(o, dict)}
        if kinds == {"string", "integer"}:
            return {**_extras(node), "type": "string", "format": "int-or-string"}
        if kinds == {"string", "number"}:  # resource.Quantity
            return {**_extras(node), "type": "string"}
    out: Obj = {}
    for key, value in node.items():
        if key == "type":
            out[key] = _type_of(value)
        elif key == "$ref" and isinstance(value, str):
            out[key] = REF_V2 + value.rsplit("/", 1)[-1]
        elif key == "properties" and isinstance(value, dict):
            out[key] = {name: _schema(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not"):
            out[key] = _schema(value)
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            out[key] = [_schema(v) for v in value]
        else:
            out[key] = value
    return out


def _extras(node: Obj) -> Obj:
    return {k: v for k, v in node.items() if k.startswith("x-") or k == "description"}


def _definition(name: str, node: Obj) -> Obj:
    out: Obj = _schema(node)
    if "x-kubernetes-group-version-kind" in out:
        # kubernetes-validate pins apiVersion/kind with enums; the served documents do not.
        for field in ("apiVersion", "kind"):
            prop = (out.get("properties") or {}).get(field)
            if isinstance(prop, dict):
                prop.pop("enum", None)
    if name == INT_OR_STRING:
        out = {"type": "string", "format": "int-or-string"}
    return out


@cache
def definitions() -> dict[str, Obj]:
    """Every built-in definition, by its Go-derived name, in OpenAPI v2 form. Cached: never mutate."""
    raw = orjson.loads((_schema_dir() / "_definitions.json").read_bytes())
    return {name: _definition(name, node) for name, node in raw["$defs"].items()}


@cache
def by_gvk() -> dict[tuple[str, str, str], str]:
    """Definition name per (group, version, kind) of the types that declare one."""
    out: dict[tuple[str, str, str], str] = {}
    for name, schema in definitions().items():
        for gvk in schema.get("x-kubernetes-group-version-kind") or []:
            out.setdefault((gvk.get("group", ""), gvk["version"], gvk["kind"]), name)
    return out


def available() -> bool:
    try:
        _schema_dir()
    except SchemasUnavailable:
        return False
    return True


def refs_closure(names: set[str] | list[str], defs: dict[str, Obj]) -> set[str]:
    """``names`` plus every definition they reference, transitively."""
    seen: set[str] = set()
    todo = [n for n in names if n in defs]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(r for r in _refs(defs[name]) if r in defs and r not in seen)
    return seen


def _refs(node: Any) -> list[str]:
    found: list[str] = []
    stack = [node]
    while stack:
        cur = stack.pop()
        if isinstance(cur, dict):
            ref = cur.get("$ref")
            if isinstance(ref, str):
                found.append(ref.rsplit("/", 1)[-1])
            stack.extend(cur.values())
        elif isinstance(cur, list):
            stack.extend(cur)
    return found
