"""CEL declaration types of a structural schema, with the size bounds the cost estimator reads.

Follows Kubernetes' ``SchemaDeclType``: a string's ``maxLength`` bounds its size (times 4 for
UTF-8 bytes), an enum bounds it by its longest value, and anything unbounded is bounded only by
the 3 MiB request size divided by the smallest serialized element.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

MAX_REQUEST_SIZE_BYTES: Final = 3 * 1024 * 1024
MIN_STRING_SIZE: Final = 2
MIN_BOOL_SIZE: Final = 4
MIN_NUMBER_SIZE: Final = 1
MAX_DATETIME_SIZE_JSON: Final = 32
MIN_DATETIME_SIZE_JSON: Final = 21
JSON_DATE_SIZE: Final = 12
MAX_DURATION_SIZE_JSON: Final = 32
MIN_DURATION_SIZE_JSON: Final = 3


@dataclass(eq=False)
class DeclType:
    """``kind`` is one of object, map, list, string, bytes, int, double, bool, timestamp, duration, dyn."""

    kind: str
    max_elements: int = 0
    min_size: int = 1
    fields: dict[str, DeclType] = field(default_factory=dict)
    elem: DeclType | None = None
    key: DeclType | None = None
    schema: dict[str, Any] | None = None


STRING_KEY: Final = DeclType("string", 0, MIN_STRING_SIZE)


def _max_string(schema: dict[str, Any]) -> int:
    fmt = schema.get("format")
    if fmt in ("date-time", "duration"):
        return MAX_DATETIME_SIZE_JSON
    if fmt == "date":
        return JSON_DATE_SIZE
    return MAX_REQUEST_SIZE_BYTES - 2


def decl_type(schema: dict[str, Any], *, root: bool = False) -> DeclType | None:
    """The declaration type of ``schema``; None where CEL cannot see the field."""
    if schema.get("x-kubernetes-int-or-string"):
        max_len = schema.get("maxLength")
        bound = max(0, int(max_len)) * 4 if max_len is not None else MAX_REQUEST_SIZE_BYTES - 2
        return DeclType("dyn", bound, 1, schema=schema)
    kind = schema.get("type")
    if kind == "array":
        items = schema.get("items")
        if not isinstance(items, dict):
            return None
        elem = decl_type(items)
        if elem is None:
            return None
        if schema.get("maxItems") is not None:
            count = max(0, int(schema["maxItems"]))
        else:
            count = (MAX_REQUEST_SIZE_BYTES - 2) // (elem.min_size + 1)
        return DeclType("list", count, 2, elem=elem, schema=schema)
    if kind == "object":
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            value = decl_type(extra)
            if value is None:
                return None
            if schema.get("maxProperties") is not None:
                count = max(0, int(schema["maxProperties"]))
            else:
                count = (MAX_REQUEST_SIZE_BYTES - 2) // (value.min_size + 6)
            return DeclType("map", count, 2, elem=value, key=STRING_KEY, schema=schema)
        props: dict[str, Any] = dict(schema.get("properties") or {})
        if root:
            props.setdefault("kind", {"type": "string"})
            props.setdefault("apiVersion", {"type": "string"})
            props["metadata"] = {
                "type": "object",
                "properties": {"name": {"type": "string"}, "generateName": {"type": "string"}},
            }
        required = set(schema.get("required") or ())
        out = DeclType("object", 0, 2, schema=schema)
        for name, prop in props.items():
            if not isinstance(prop, dict):
                continue
            sub = decl_type(prop)
            if sub is None:
                continue
            out.fields[name] = sub
            if name in required and "default" not in prop:
                out.min_size += len(name) + sub.min_size + 4
        return out
    if kind == "string":
        fmt = schema.get("format")
        if fmt == "byte":
            bound = int(schema["maxLength"]) if "maxLength" in schema else MAX_REQUEST_SIZE_BYTES - 2
            return DeclType("bytes", max(0, bound), MIN_STRING_SIZE, schema=schema)
        if fmt == "duration":
            return DeclType("duration", MAX_DURATION_SIZE_JSON, MIN_DURATION_SIZE_JSON, schema=schema)
        if fmt in ("date", "date-time"):
            low = JSON_DATE_SIZE if fmt == "date" else MIN_DATETIME_SIZE_JSON
            return DeclType("timestamp", _max_string(schema), low, schema=schema)
        if schema.get("maxLength") is not None:
            bound = max(0, int(schema["maxLength"])) * 4
        elif schema.get("enum"):
            bound = max((len(v) for v in schema["enum"] if isinstance(v, str)), default=0)
        else:
            bound = MAX_REQUEST_SIZE_BYTES - 2
        return DeclType("string", bound, MIN_STRING_SIZE, schema=schema)
    if kind == "boolean":
        return DeclType("bool", 0, MIN_BOOL_SIZE, schema=schema)
    if kind == "number":
        return DeclType("double", 0, MIN_NUMBER_SIZE, schema=schema)
    if kind == "integer":
        return DeclType("int", 0, MIN_NUMBER_SIZE, schema=schema)
    return None
