"""The three PATCH flavours Kubernetes clients send: JSON merge, strategic merge and JSON patch.

Pure functions: they never mutate their inputs (nested values the patch does not touch are
shared with the original, which is safe because stored objects are never mutated in place).

Strategic merge knows list semantics by field name rather than from OpenAPI schemas; the table
below mirrors the ``patchMergeKey`` tags of the core types (conditions by ``type``, containers by
``name``...). Lists not in it are replaced, as in Kubernetes (notably ``spec.taints`` and
``spec.tolerations``, which carry no patch strategy). ``$patch``, ``$retainKeys``,
``$deleteFromPrimitiveList/<field>`` are honoured; ``$setElementOrder/<field>`` is ignored.
"""

from __future__ import annotations

import copy
from typing import Any

import orjson

MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "conditions": "type",
    "addresses": "type",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "ownerReferences": "uid",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
    "podIPs": "ip",
    "hostIPs": "ip",
    "secrets": "name",
}
PRIMITIVE_MERGE_LISTS = frozenset({"finalizers"})


class PatchError(ValueError):
    """A patch that cannot be applied; ``malformed`` ones are a 400, failed ones a 422."""

    def __init__(self, message: str, *, malformed: bool = False) -> None:
        super().__init__(message)
        self.malformed = malformed


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: maps merge recursively, ``null`` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _clean(value: Any) -> Any:
    """Strip strategic-merge directives from a value inserted as is."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_clean(v) for v in value if not (isinstance(v, dict) and "$patch" in v and len(v) == 1)]
    return value


def _merge_key(field: str, items: list[Any]) -> str | None:
    if field == "ports":
        return "containerPort" if any(isinstance(i, dict) and "containerPort" in i for i in items) else "port"
    return MERGE_KEYS.get(field)


def _smp_list(field: str, original: list[Any], patch: list[Any]) -> list[Any]:
    if any(isinstance(i, dict) and i.get("$patch") == "replace" for i in patch):
        return [_clean(i) for i in patch if not (isinstance(i, dict) and i.get("$patch") == "replace")]
    key = _merge_key(field, original + patch)
    if key is not None and all(isinstance(i, dict) for i in patch):
        result = list(original)
        for item in patch:
            ident = item.get(key)
            at = next(
                (n for n, e in enumerate(result) if isinstance(e, dict) and e.get(key) == ident),
                None,
            )
            if item.get("$patch") == "delete":
                result = [e for e in result if not (isinstance(e, dict) and e.get(key) == ident)]
            elif at is None:
                result.append(_clean(item))
            else:
                merged = _smp_map(result[at], item)
                if merged is None:
                    del result[at]
                else:
                    result[at] = merged
        return result
    if field in PRIMITIVE_MERGE_LISTS:
        return list(original) + [v for v in patch if v not in original]
    return [_clean(i) for i in patch]


def _smp_map(original: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any] | None:
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: _clean(v) for k, v in patch.items() if k != "$patch" and not k.startswith("$")}
    if directive == "delete":
        return None
    if directive is not None:
        raise PatchError(f"unknown patch directive {directive!r}")
    result = dict(original)
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            current = result.get(key)
            merged = _smp_map(current if isinstance(current, dict) else {}, value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list):
            current = result.get(key)
            result[key] = _smp_list(key, current if isinstance(current, list) else [], value)
        else:
            result[key] = value
    for key, value in patch.items():
        if key.startswith("$deleteFromPrimitiveList/") and isinstance(value, list):
            name = key.split("/", 1)[1]
            kept = [v for v in result.get(name) or [] if v not in value]
            if kept:
                result[name] = kept
            else:
                result.pop(name, None)
    retain = patch.get("$retainKeys")
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def strategic_merge_patch(original: dict[str, Any], patch: Any) -> dict[str, Any]:
    """Kubernetes strategic merge patch of ``original`` (see the module docstring for list rules)."""
    if not isinstance(patch, dict):
        raise PatchError("strategic merge patch must be a JSON object", malformed=True)
    merged = _smp_map(original, patch)
    return merged if merged is not None else {}


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"JSON pointer {path!r} must start with '/'", malformed=True)
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Any, parts: list[str], path: str) -> tuple[Any, str]:
    cur = doc
    for part in parts[:-1]:
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            raise PatchError(f"doc is missing path: {path!r}")
    return cur, parts[-1]


def _get(doc: Any, path: str) -> Any:
    parts = _pointer(path)
    if not parts:
        return doc
    parent, last = _parent(doc, parts, path)
    if isinstance(parent, dict) and last in parent:
        return parent[last]
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return parent[int(last)]
    raise PatchError(f"doc is missing key: {path!r}")


def _add(doc: Any, path: str, value: Any) -> Any:
    parts = _pointer(path)
    if not parts:
        return value
    parent, last = _parent(doc, parts, path)
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        elif last.isdigit() and int(last) <= len(parent):
            parent.insert(int(last), value)
        else:
            raise PatchError(f"invalid array index {last!r} in {path!r}")
    else:
        raise PatchError(f"cannot add to a scalar at {path!r}")
    return doc


def _remove(doc: Any, path: str) -> tuple[Any, Any]:
    parts = _pointer(path)
    if not parts:
        raise PatchError("cannot remove the whole document")
    parent, last = _parent(doc, parts, path)
    if isinstance(parent, dict) and last in parent:
        return doc, parent.pop(last)
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return doc, parent.pop(int(last))
    raise PatchError(f"unable to remove nonexistent key: {path!r}")


def json_patch(original: Any, operations: Any) -> Any:
    """RFC 6902 JSON patch; the whole patch fails if any operation (including ``test``) fails."""
    if not isinstance(operations, list):
        raise PatchError(
            "json: cannot unmarshal object into Go value of type jsonpatch.Patch (expected a JSON array)",
            malformed=True,
        )
    doc = orjson.loads(orjson.dumps(original))
    for n, op in enumerate(operations):
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError(f"operation {n} needs 'op' and 'path'", malformed=True)
        kind, path = op["op"], op["path"]
        if kind in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f"operation {n} ({kind}) needs 'value'", malformed=True)
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif kind == "remove":
            doc, _ = _remove(doc, path)
        elif kind == "replace":
            doc, _ = _remove(doc, path) if _pointer(path) else (doc, None)
            doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif kind == "test":
            if _get(doc, path) != op["value"]:
                raise PatchError(f"testing value {path} failed")
        elif kind in ("move", "copy"):
            if "from" not in op:
                raise PatchError(f"operation {n} ({kind}) needs 'from'", malformed=True)
            value = _get(doc, op["from"])
            if kind == "move":
                doc, value = _remove(doc, op["from"])
            doc = _add(doc, path, copy.deepcopy(value))
        else:
            raise PatchError(f"unexpected operation {kind!r}", malformed=True)
    return doc
