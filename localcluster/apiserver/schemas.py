"""The schema of every served kind, one shape for built-ins and custom resources.

Built-in kinds use the definitions from :mod:`builtin_schemas`; a custom resource's schema is
its CRD's ``openAPIV3Schema`` with ``metadata`` pointing at ObjectMeta, as the real server
publishes it. OpenAPI documents, field validation and server-side apply all read schemas
through a :class:`Resolver` so that list types and merge keys mean the same everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from localcluster.apiserver import builtin_schemas
from localcluster.apiserver.builtin_schemas import REF_V2
from localcluster.apiserver.registry import Registry, ResourceType

Obj = dict[str, Any]
OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
LIST_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta"
EMPTY: Obj = {}


def reversed_group(group: str) -> str:
    """``jitnode.io`` -> ``io.jitnode``: the prefix of a custom resource's definition name."""
    return ".".join(reversed(group.split(".")))


def definition_name(group: str, version: str, kind: str) -> str:
    return f"{reversed_group(group)}.{version}.{kind}"


def _type_meta(what: str) -> Obj:
    return {"type": "string", "description": f"{what} of this representation of an object."}


def crd_definitions(crd: Obj) -> dict[str, Obj]:
    """The kind and list definitions of each served version of ``crd`` (``#/definitions/`` refs)."""
    spec = crd.get("spec") or {}
    group, names = spec.get("group", ""), spec.get("names") or {}
    kind = names.get("kind", "")
    out: dict[str, Obj] = {}
    for version in spec.get("versions") or []:
        if not version.get("served", True):
            continue
        v = version.get("name", "")
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        body: Obj = dict(schema) if isinstance(schema, dict) else {"type": "object"}
        props = dict(body.get("properties") or {})
        props["apiVersion"] = _type_meta("APIVersion defines the versioned schema")
        props["kind"] = _type_meta("Kind is a string value representing the REST resource")
        props["metadata"] = {"$ref": REF_V2 + OBJECT_META, "description": "Standard object's metadata."}
        body["properties"] = props
        body.setdefault("type", "object")
        gvk = {"group": group, "kind": kind, "version": v}
        body["x-kubernetes-group-version-kind"] = [gvk]
        name = definition_name(group, v, kind)
        out[name] = body
        out[name + "List"] = {
            "description": f"{kind}List is a list of {kind}",
            "type": "object",
            "required": ["items"],
            "properties": {
                "apiVersion": _type_meta("APIVersion defines the versioned schema"),
                "items": {"type": "array", "items": {"$ref": REF_V2 + name}},
                "kind": _type_meta("Kind is a string value representing the REST resource"),
                "metadata": {"$ref": REF_V2 + LIST_META},
            },
            "x-kubernetes-group-version-kind": [{**gvk, "kind": kind + "List"}],
        }
    return out


@dataclass(frozen=True)
class Resolver:
    """One kind's root schema and the definitions its ``$ref``s name."""

    name: str
    defs: dict[str, Obj]
    structural: bool  # custom resource: objects without properties hold no unknown fields

    @property
    def root(self) -> Obj:
        return self.defs[self.name]

    def resolve(self, node: Any) -> Obj:
        """Follow ``$ref`` (and a lone ``allOf`` wrapper) to the schema it names."""
        for _ in range(8):
            if not isinstance(node, dict):
                return EMPTY
            ref = node.get("$ref")
            if isinstance(ref, str):
                node = self.defs.get(ref.rsplit("/", 1)[-1], EMPTY)
                continue
            all_of = node.get("allOf")
            if isinstance(all_of, list) and len(all_of) == 1 and "properties" not in node:
                node = all_of[0]
                continue
            return node
        return EMPTY

    def field(self, node: Obj, name: str) -> tuple[Obj, bool] | None:
        """Field ``name`` of object schema ``node`` and whether it is a built-in (``$ref``) type;
        None when the schema has no such field."""
        props = node.get("properties")
        raw: Any = None
        if isinstance(props, dict) and name in props:
            raw = props[name]
        elif isinstance(node.get("additionalProperties"), dict):
            raw = node["additionalProperties"]
        elif name in ("apiVersion", "kind") and node.get("x-kubernetes-embedded-resource"):
            raw = {"type": "string"}
        elif name == "metadata" and node.get("x-kubernetes-embedded-resource"):
            raw = {"$ref": REF_V2 + OBJECT_META}
        if raw is None:
            return None
        return self.resolve(raw), isinstance(raw, dict) and "$ref" in raw

    def items(self, node: Obj) -> Obj:
        return self.resolve(node.get("items"))


def list_type(node: Obj) -> tuple[str, tuple[str, ...]]:
    """``(atomic|set|map, keys)`` of a list schema; patch merge keys imply ``map`` as in SMD."""
    kind = node.get("x-kubernetes-list-type")
    if kind == "map":
        return "map", tuple(node.get("x-kubernetes-list-map-keys") or ())
    if kind in ("set", "atomic"):
        return str(kind), ()
    if node.get("x-kubernetes-patch-strategy", "").startswith("merge"):
        key = node.get("x-kubernetes-patch-merge-key")
        return ("map", (str(key),)) if key else ("set", ())
    return "atomic", ()


def is_atomic_map(node: Obj) -> bool:
    return node.get("x-kubernetes-map-type") == "atomic"


class Schemas:
    """Schemas of the served kinds, rebuilt for custom kinds when the registry's CRDs change."""

    def __init__(self, registry: Registry, crd: Callable[[str], Obj | None]) -> None:
        self._registry = registry
        self._crd = crd
        self._revision = -1
        self._custom: dict[tuple[str, str], Resolver | None] = {}

    def _fresh(self) -> None:
        if self._revision != self._registry.revision:
            self._custom.clear()
            self._revision = self._registry.revision

    def for_type(self, rt: ResourceType) -> Resolver | None:
        """The resolver for ``rt``, or None when no schema is known (or kubernetes-validate is absent)."""
        if rt.builtin:
            if not builtin_schemas.available():
                return None
            defs = builtin_schemas.definitions()
            name = builtin_schemas.by_gvk().get((rt.group, rt.version, rt.kind))
            return Resolver(name, defs, structural=False) if name else None
        self._fresh()
        key = (f"{rt.plural}.{rt.group}", rt.version)
        if key not in self._custom:
            self._custom[key] = self._build_custom(rt, key[0])
        return self._custom[key]

    def _build_custom(self, rt: ResourceType, crd_name: str) -> Resolver | None:
        crd = self._crd(crd_name)
        if crd is None:
            return None
        own = crd_definitions(crd)
        name = definition_name(rt.group, rt.version, rt.kind)
        if name not in own:
            return None
        base = builtin_schemas.definitions() if builtin_schemas.available() else {}
        return Resolver(name, {**base, **own}, structural=True)

    def custom_definitions(self) -> dict[str, Obj]:
        """Definitions of every served custom kind (OpenAPI documents)."""
        out: dict[str, Obj] = {}
        seen: set[str] = set()
        for rt in self._registry:
            crd_name = f"{rt.plural}.{rt.group}"
            if rt.builtin or crd_name in seen:
                continue
            seen.add(crd_name)
            crd = self._crd(crd_name)
            if crd is not None:
                out.update(crd_definitions(crd))
        return out
