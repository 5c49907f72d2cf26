"""CustomResourceDefinitions: validation, the resource types they define, and schema defaults."""

from __future__ import annotations

from typing import Any

from localcluster.apiserver import crdvalidation
from localcluster.apiserver.objects import now_rfc3339
from localcluster.apiserver.registry import COMMON_FIELDS, ResourceType

Obj = dict[str, Any]


def crd_problems(crd: Obj) -> list[tuple[str, str]]:
    """Validation causes for a CRD, the few a real server would also reject."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    causes: list[tuple[str, str]] = []
    group, plural = spec.get("group"), names.get("plural")
    if not group or "." not in str(group):
        causes.append(("spec.group", f"Invalid value: {group!r}: should be a domain with at least one dot"))
    if not plural:
        causes.append(("spec.names.plural", "Required value"))
    if not names.get("kind"):
        causes.append(("spec.names.kind", "Required value"))
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        causes.append(("spec.scope", f"Unsupported value: {spec.get('scope')!r}: 'Cluster', 'Namespaced'"))
    versions = spec.get("versions") or []
    if not versions:
        causes.append(("spec.versions", "Required value: must have exactly one version marked as storage"))
    elif sum(1 for v in versions if v.get("storage")) != 1:
        causes.append(
            ("spec.versions", "Invalid value: must have exactly one version marked as storage version")
        )
    name = (crd.get("metadata") or {}).get("name")
    if plural and group and name != f"{plural}.{group}":
        causes.append(("metadata.name", f'Invalid value: {name!r}: must be spec.names.plural+"."+spec.group'))
    if not causes:
        causes.extend(crdvalidation.crd_rule_problems(crd))
    return causes


def resource_types(crd: Obj) -> list[ResourceType]:
    """One served :class:`ResourceType` per served version of the CRD."""
    spec = crd["spec"]
    names = spec["names"]
    out = []
    for version in spec.get("versions") or []:
        if not version.get("served", True):
            continue
        subs = version.get("subresources") or spec.get("subresources") or {}
        subresources = frozenset(k for k in ("status", "scale") if k in subs)
        out.append(
            ResourceType(
                group=spec["group"],
                version=version["name"],
                plural=names["plural"],
                kind=names["kind"],
                namespaced=spec["scope"] == "Namespaced",
                singular=names.get("singular") or names["kind"].lower(),
                subresources=subresources,
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                fields=COMMON_FIELDS,
                builtin=False,
                returns_deleted_object=True,
            )
        )
    return out


def established_status(crd: Obj) -> Obj:
    """The status a real server reaches within a moment of creating a valid CRD."""
    names = dict(crd["spec"]["names"])
    names.setdefault("singular", names["kind"].lower())
    names.setdefault("listKind", f"{names['kind']}List")
    at = now_rfc3339()
    return {
        "acceptedNames": names,
        "conditions": [
            {
                "type": "NamesAccepted",
                "status": "True",
                "reason": "NoConflicts",
                "message": "no conflicts found",
                "lastTransitionTime": at,
            },
            {
                "type": "Established",
                "status": "True",
                "reason": "InitialNamesAccepted",
                "message": "the initial names have been accepted",
                "lastTransitionTime": at,
            },
        ],
        "storedVersions": [v["name"] for v in crd["spec"]["versions"] if v.get("storage")],
    }


def schema_of(crd: Obj, version: str) -> Obj | None:
    for v in crd.get("spec", {}).get("versions") or []:
        if v.get("name") == version:
            schema = (v.get("schema") or {}).get("openAPIV3Schema")
            return schema if isinstance(schema, dict) else None
    return None


def apply_defaults(value: Any, schema: Obj | None) -> Any:
    """Fill ``default`` values from a structural schema into ``value`` (in place; returns it)."""
    if schema is None:
        return value
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        for name, sub in props.items():
            if name not in value and isinstance(sub, dict) and "default" in sub:
                value[name] = _copy(sub["default"])
            if name in value:
                value[name] = apply_defaults(value[name], sub if isinstance(sub, dict) else None)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for name in value:
                if name not in props:
                    value[name] = apply_defaults(value[name], extra)
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            return [apply_defaults(v, items) for v in value]
    return value


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value
