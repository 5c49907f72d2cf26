"""``/openapi/v2`` and ``/openapi/v3`` documents for the served kinds, as kubectl reads them.

kubectl explain, apply and diff read the v3 documents: the root lists one document per
group-version with a content hash in its URL, and each document holds that group-version's paths
(whose PATCH operations list ``fieldValidation``, which makes kubectl leave validation to the
server) and schemas. Documents are built on first request and rebuilt only when CRDs change.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from localcluster.apiserver import builtin_schemas
from localcluster.apiserver.builtin_schemas import REF_V2, refs_closure
from localcluster.apiserver.registry import Registry, ResourceType
from localcluster.apiserver.schemas import LIST_META, OBJECT_META, Schemas, definition_name

Obj = dict[str, Any]
REF_V3 = "#/components/schemas/"
STATUS = "io.k8s.apimachinery.pkg.apis.meta.v1.Status"
DELETE_OPTIONS = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"
PATCH = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch"
COMMON = (OBJECT_META, LIST_META, STATUS, DELETE_OPTIONS, PATCH)
PATCH_TYPES = (
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)

# (name, description, type) of the query parameters of writes.
WRITE_PARAMS = (
    ("dryRun", "When present, indicates that modifications should not be persisted.", "string"),
    (
        "fieldManager",
        "fieldManager is a name associated with the actor or entity making these changes.",
        "string",
    ),
    (
        "fieldValidation",
        "fieldValidation instructs the server on how to handle objects in the request containing "
        "unknown or duplicate fields. Valid values are: Ignore, Warn (the default) and Strict.",
        "string",
    ),
)
FORCE = ("force", 'Force is going to "force" Apply requests; must be unset for non-apply patches.', "boolean")


def content_hash(body: bytes) -> str:
    """The hash the real server puts in v3 URLs and ETags (upper-case hex SHA-512)."""
    return hashlib.sha512(body).hexdigest().upper()


@dataclass(frozen=True)
class Document:
    body: bytes
    etag: str


def _document(doc: Obj) -> Document:
    body = orjson.dumps(doc)
    return Document(body, content_hash(body))


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _operation_id(verb: str, rt: ResourceType, suffix: str = "") -> str:
    group = "".join(p.capitalize() for p in (rt.group.split(".")[0] if rt.group else "core").split("-"))
    scope = "Namespaced" if rt.namespaced and verb != "list_all" else ""
    return f"{verb.split('_')[0]}{group}{rt.version.capitalize()}{scope}{rt.kind}{suffix}"


class OpenAPI:
    """Builds and caches the documents of one server."""

    def __init__(self, registry: Registry, schemas: Schemas) -> None:
        self._registry = registry
        self._schemas = schemas
        self._revision = -1
        self._cache: dict[str, Document] = {}

    def _fresh(self) -> None:
        if self._revision != self._registry.revision:
            self._cache.clear()
            self._revision = self._registry.revision

    # ------------------------------------------------------------ definitions
    def _definitions(self) -> tuple[dict[str, Obj], dict[tuple[str, str, str], str]]:
        """All definitions in v2 form and the definition name of each served (group, version, kind)."""
        builtin = builtin_schemas.definitions()
        custom = self._schemas.custom_definitions()
        names: dict[tuple[str, str, str], str] = {}
        gvks = builtin_schemas.by_gvk()
        for rt in self._registry:
            if rt.builtin:
                name = gvks.get((rt.group, rt.version, rt.kind))
            else:
                name = definition_name(rt.group, rt.version, rt.kind)
                name = name if name in custom else None
            if name is not None:
                names[(rt.group, rt.version, rt.kind)] = name
        return {**builtin, **custom}, names

    # ------------------------------------------------------------ paths
    def _operations(self, rt: ResourceType, name: str) -> dict[str, dict[str, Obj]]:
        """Path -> verb -> operation (flavour-neutral: bodies and responses name definitions)."""
        gvk = {"group": rt.group, "kind": rt.kind, "version": rt.version}
        base = "/" + _gv_path(rt.group, rt.version)
        coll = f"{base}/namespaces/{{namespace}}/{rt.plural}" if rt.namespaced else f"{base}/{rt.plural}"
        item = coll + "/{name}"
        list_name = name + "List"

        def op(
            verb: str,
            action: str,
            params: tuple[tuple[str, str, str], ...],
            body: str | None,
            result: str,
            suffix: str = "",
        ) -> Obj:
            out: Obj = {
                "description": f"{action} {rt.kind}",
                "operationId": _operation_id(verb, rt, suffix),
                "tags": [f"{rt.group.split('.')[0] if rt.group else 'core'}_{rt.version}"],
                "params": params,
                "result": result,
                "x-kubernetes-action": action,
                "x-kubernetes-group-version-kind": gvk,
            }
            if body is not None:
                out["body"] = body
            return out

        paths: dict[str, dict[str, Obj]] = {}
        verbs = set(rt.verbs)
        coll_ops: dict[str, Obj] = {}
        if "list" in verbs:
            coll_ops["get"] = op("list", "list", (), None, list_name)
        if "create" in verbs:
            coll_ops["post"] = op("create", "post", WRITE_PARAMS, name, name)
        if "deletecollection" in verbs:
            coll_ops["delete"] = op("deletecollection", "deletecollection", (), DELETE_OPTIONS, STATUS)
        if coll_ops:
            paths[coll] = coll_ops
        item_ops: dict[str, Obj] = {}
        if "get" in verbs:
            item_ops["get"] = op("read", "get", (), None, name)
        if "update" in verbs:
            item_ops["put"] = op("replace", "put", WRITE_PARAMS, name, name)
        if "patch" in verbs:
            item_ops["patch"] = op("patch", "patch", (*WRITE_PARAMS, FORCE), PATCH, name)
        if "delete" in verbs:
            item_ops["delete"] = op(
                "delete", "delete", (("dryRun", "dry run", "string"),), DELETE_OPTIONS, STATUS
            )
        if item_ops:
            paths[item] = item_ops
        if "status" in rt.subresources:
            paths[item + "/status"] = {
                "get": op("read", "get", (), None, name, "Status"),
                "put": op("replace", "put", WRITE_PARAMS, name, name, "Status"),
                "patch": op("patch", "patch", (*WRITE_PARAMS, FORCE), PATCH, name, "Status"),
            }
        return paths

    # ------------------------------------------------------------ v2
    def v2(self) -> Document:
        self._fresh()
        if "v2" not in self._cache:
            defs, names = self._definitions()
            paths: Obj = {}
            for rt in self._registry:
                name = names.get((rt.group, rt.version, rt.kind))
                if name is None:
                    continue
                for path, ops in self._operations(rt, name).items():
                    paths[path] = {verb: _v2_operation(o) for verb, o in ops.items()}
            used = refs_closure({*names.values(), *(n + "List" for n in names.values()), *COMMON}, defs)
            doc = {
                "swagger": "2.0",
                "info": {"title": "Kubernetes", "version": f"v1.{builtin_schemas.KUBERNETES_MINOR}.0"},
                "paths": paths,
                "definitions": {n: _v2_schema(defs[n]) for n in sorted(used)},
                "securityDefinitions": {
                    "BearerToken": {"type": "apiKey", "name": "authorization", "in": "header"}
                },
                "security": [{"BearerToken": []}],
            }
            self._cache["v2"] = _document(doc)
        return self._cache["v2"]

    # ------------------------------------------------------------ v3
    def v3_root(self) -> Obj:
        """``{"paths": {"apis/apps/v1": {"serverRelativeURL": "/openapi/v3/apis/apps/v1?hash=..."}}}``."""
        paths: Obj = {}
        gvs = sorted({(rt.group, rt.version) for rt in self._registry})
        for group, version in gvs:
            key = _gv_path(group, version)
            doc = self.v3(key)
            if doc is not None:
                paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={doc.etag}"}
        return {"paths": paths}

    def v3(self, gv_path: str) -> Document | None:
        """The document of one group-version (``api/v1``, ``apis/apps/v1``), or None."""
        self._fresh()
        cached = self._cache.get(gv_path)
        if cached is not None:
            return cached
        parts = gv_path.split("/")
        if parts[0] == "api" and len(parts) == 2:
            group, version = "", parts[1]
        elif parts[0] == "apis" and len(parts) == 3:
            group, version = parts[1], parts[2]
        else:
            return None
        types = self._registry.in_group_version(group, version)
        if not types:
            return None
        defs, names = self._definitions()
        paths: Obj = {}
        roots: set[str] = set(COMMON)
        for rt in sorted(types, key=lambda r: r.plural):
            name = names.get((rt.group, rt.version, rt.kind))
            if name is None:
                continue
            roots |= {name, name + "List"}
            for path, ops in self._operations(rt, name).items():
                paths[path] = {verb: _v3_operation(o) for verb, o in ops.items()}
        used = refs_closure(roots, defs)
        doc = {
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": f"v1.{builtin_schemas.KUBERNETES_MINOR}.0"},
            "paths": paths,
            "components": {
                "schemas": {n: _v3_schema(defs[n]) for n in sorted(used)},
                "securitySchemes": {
                    "BearerToken": {
                        "type": "apiKey",
                        "description": "Bearer Token authentication",
                        "name": "authorization",
                        "in": "header",
                    }
                },
            },
        }
        self._cache[gv_path] = _document(doc)
        return self._cache[gv_path]


# ---------------------------------------------------------------- flavours
def _v2_operation(o: Obj) -> Obj:
    params: list[Obj] = []
    if "body" in o:
        params.append(
            {"name": "body", "in": "body", "required": True, "schema": {"$ref": REF_V2 + o["body"]}}
        )
    params += [
        {"name": n, "in": "query", "description": d, "type": t, "uniqueItems": True}
        for n, d, t in o["params"]
    ]
    out = {k: v for k, v in o.items() if k not in ("params", "result", "body")}
    out["consumes"] = list(PATCH_TYPES) if o["x-kubernetes-action"] == "patch" else ["*/*"]
    out["produces"] = ["application/json", "application/yaml", "application/vnd.kubernetes.protobuf"]
    out["schemes"] = ["https"]
    out["parameters"] = params
    out["responses"] = {
        "200": {"description": "OK", "schema": {"$ref": REF_V2 + o["result"]}},
        "401": {"description": "Unauthorized"},
    }
    return out


def _v3_operation(o: Obj) -> Obj:
    out = {k: v for k, v in o.items() if k not in ("params", "result", "body")}
    out["parameters"] = [
        {"name": n, "in": "query", "description": d, "schema": {"type": t, "uniqueItems": True}}
        for n, d, t in o["params"]
    ]
    if "body" in o:
        types = PATCH_TYPES if o["x-kubernetes-action"] == "patch" else ("*/*",)
        schema = {"$ref": REF_V3 + o["body"]}
        out["requestBody"] = {"content": {t: {"schema": schema} for t in types}, "required": True}
    result = {"schema": {"$ref": REF_V3 + o["result"]}}
    out["responses"] = {
        "200": {"description": "OK", "content": {"application/json": result, "application/yaml": result}},
        "401": {"description": "Unauthorized"},
    }
    return out


_V2_DROPPED = frozenset({"nullable", "x-kubernetes-validations", "oneOf", "anyOf", "not"})
_VALUES = frozenset({"enum", "default", "example"})  # data, not schemas


def _v2_schema(node: Any) -> Any:
    """v2 cannot say what structural v3 schemas may; drop it as the real server does."""
    if isinstance(node, list):
        return [_v2_schema(v) for v in node]
    if not isinstance(node, dict):
        return node
    out: Obj = {}
    for key, value in node.items():
        if key in _V2_DROPPED:
            continue
        if key in _VALUES:
            out[key] = value
        elif key == "properties" and isinstance(value, dict):
            out[key] = {name: _v2_schema(sub) for name, sub in value.items()}
        else:
            out[key] = _v2_schema(value)
    return out


def _v3_schema(node: Any) -> Any:
    """References move to ``components``; one with siblings (a description) is wrapped in allOf."""
    if isinstance(node, list):
        return [_v3_schema(v) for v in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str):
        target = REF_V3 + ref.rsplit("/", 1)[-1]
        rest = {k: _v3_schema(v) for k, v in node.items() if k != "$ref"}
        return {"allOf": [{"$ref": target}], **rest} if rest else {"$ref": target}
    out: Obj = {}
    for key, value in node.items():
        if key in _VALUES:
            out[key] = value
        elif key == "properties" and isinstance(value, dict):
            out[key] = {name: _v3_schema(sub) for name, sub in value.items()}
        else:
            out[key] = _v3_schema(value)
    return out
