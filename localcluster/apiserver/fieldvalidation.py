"""``fieldValidation``: unknown and duplicate fields in write bodies, as the real server treats them.

Unknown fields are always dropped, as decoding into a Go type (built-ins) or pruning against
the structural schema (custom resources) does; ``Strict`` refuses them with a
``strict decoding error``, ``Warn`` (the default) reports each in a ``Warning`` header and
``Ignore`` says nothing. Duplicate fields need the raw body, so they are only looked for when a
client asked for validation explicitly (kubectl always does); other clients keep orjson's speed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import yaml

from localcluster.apiserver.schemas import Obj, Resolver

STRICT, WARN, IGNORE = "Strict", "Warn", "Ignore"
MODES = (STRICT, WARN, IGNORE)


@dataclass
class FieldValidation:
    """One request's validation mode; ``warnings`` collects what ``Warn`` reports."""

    mode: str = WARN
    duplicates: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def unknown_fields(obj: Obj, resolver: Resolver) -> tuple[Obj, list[str]]:
    """``obj`` without the fields its schema does not declare, and their paths (``spec.a[0].b``)."""
    found: list[str] = []
    cleaned = _walk(obj, resolver.root, resolver, resolver.structural, "", found)
    return cleaned, found


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _walk(value: Any, node: Obj, r: Resolver, structural: bool, path: str, found: list[str]) -> Any:
    if isinstance(value, dict):
        preserve = bool(node.get("x-kubernetes-preserve-unknown-fields"))
        extra = node.get("additionalProperties")
        free = "properties" not in node and not isinstance(extra, dict)
        if free and (
            not structural or preserve or extra is True or node.get("x-kubernetes-embedded-resource")
        ):
            return value
        out: Obj = {}
        dropped = False
        for key, sub in value.items():
            child = r.field(node, key)
            if child is None:
                if preserve:
                    out[key] = sub
                else:
                    found.append(_join(path, key))
                    dropped = True
                continue
            schema, builtin = child
            kept = _walk(sub, schema, r, structural and not builtin, _join(path, key), found)
            dropped = dropped or kept is not sub
            out[key] = kept
        return out if dropped else value
    if isinstance(value, list) and "items" in node:
        items = r.items(node)
        builtin = isinstance(node["items"], dict) and "$ref" in node["items"]
        new = [
            _walk(v, items, r, structural and not builtin, f"{path}[{n}]", found) for n, v in enumerate(value)
        ]
        return value if all(a is b for a, b in zip(new, value, strict=True)) else new
    return value


def strict_message(kind: str, version: str, problems: list[str]) -> str:
    return (
        f'{kind} in version "{version}" cannot be handled as a {kind}: strict decoding error: '
        + ", ".join(problems)
    )


def check(obj: Obj, resolver: Resolver | None, fv: FieldValidation) -> tuple[Obj, list[str]]:
    """Drop unknown fields; return the cleaned object and the problems ``Strict`` refuses."""
    problems = [f'duplicate field "{d}"' for d in fv.duplicates]
    if resolver is not None:
        obj, unknown = unknown_fields(obj, resolver)
        problems += [f'unknown field "{p}"' for p in unknown]
    if fv.mode == WARN:
        fv.warnings.extend(problems)
    return obj, problems if fv.mode == STRICT else []


# ---------------------------------------------------------------- duplicates in raw bodies
def duplicate_fields(raw: bytes, yaml_body: bool) -> list[str]:
    """Keys given twice in one object of ``raw`` (names only, as the real decoder reports them)."""
    found: list[str] = []
    if yaml_body:
        try:
            yaml.load(raw, Loader=_duplicate_loader(found))  # a SafeLoader subclass
        except yaml.YAMLError:
            return []
        return found

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: set[str] = set()
        for key, _ in items:
            if key in seen:
                found.append(key)
            seen.add(key)
        return dict(items)

    try:
        json.loads(raw, object_pairs_hook=pairs)
    except ValueError:
        return []
    return found


def _duplicate_loader(found: list[str]) -> type[yaml.SafeLoader]:
    class Loader(yaml.SafeLoader):
        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                if key in seen:
                    found.append(str(key))
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    return Loader
