"""Server-side printing: ``meta.k8s.io/v1`` Table answers for custom resources (pure).

``kubectl get`` asks for ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io`` and prints
the columns the server chooses; for a custom resource those are ``Name`` and the version's
``additionalPrinterColumns`` (``Age`` from creationTimestamp when it declares none), each cell the
first result of the column's JSONPath. Supported JSONPath: fields (``\\.`` escapes a dot in a key),
``[n]``, ``[*]`` and ``[?(@.field=="value")]`` filters, which is what CRDs use in practice.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

import orjson

TABLE_API_VERSION: Final = "meta.k8s.io/v1"
DEFAULT_COLUMNS: Final = ({"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},)
_FILTER = re.compile(r"""^\?\(@\.([\w.\-/]+)\s*(==|!=)\s*(?:"([^"]*)"|'([^']*)'|(\S+))\)$""")


def wants_table(accept: str) -> bool:
    """Whether the client asked for a v1 Table (it also lists plain JSON as a fallback)."""
    return any(
        {"as=Table", "g=meta.k8s.io", "v=v1"} <= {p.strip() for p in part.split(";")}
        for part in accept.split(",")
    )


def parse_path(path: str) -> list[tuple[str, str]]:
    """``.a.b\\.c[0][?(@.x=="y")]`` as steps: ("key", name), ("index", n), ("all", ""), ("filter", expr)."""
    steps: list[tuple[str, str]] = []
    text = path.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    i, key = 0, ""
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            key += text[i + 1]
            i += 2
            continue
        if ch in ".[":
            if key:
                steps.append(("key", key))
                key = ""
            if ch == "[":
                end = text.index("]", i)
                inner = text[i + 1 : end].strip()
                if inner == "*":
                    steps.append(("all", ""))
                elif inner.lstrip("-").isdigit():
                    steps.append(("index", inner))
                elif inner[:1] in "'\"":
                    steps.append(("key", inner[1:-1]))
                else:
                    steps.append(("filter", inner))
                i = end + 1
                continue
            i += 1
            continue
        key += ch
        i += 1
    if key:
        steps.append(("key", key))
    return steps


def _matches(item: Any, expr: str) -> bool:
    m = _FILTER.match(expr)
    if m is None or not isinstance(item, Mapping):
        return False
    value: Any = item
    for part in m.group(1).split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    wanted = next(g for g in (m.group(3), m.group(4), m.group(5), "") if g is not None)
    if value is None:
        return m.group(2) == "!="
    equal = (str(value).lower() if isinstance(value, bool) else str(value)) == wanted
    return equal if m.group(2) == "==" else not equal


def evaluate(obj: Any, path: str) -> list[Any]:
    """Every value ``path`` selects in ``obj``, in order."""
    current = [obj]
    for kind, arg in parse_path(path):
        nxt: list[Any] = []
        for value in current:
            if kind == "key" and isinstance(value, Mapping) and arg in value:
                nxt.append(value[arg])
            elif kind == "index" and isinstance(value, list) and -len(value) <= int(arg) < len(value):
                nxt.append(value[int(arg)])
            elif kind == "all":
                nxt.extend(
                    value.values() if isinstance(value, Mapping) else value if isinstance(value, list) else []
                )
            elif kind == "filter" and isinstance(value, list):
                nxt.extend(v for v in value if _matches(v, arg))
        current = nxt
    return current


def human_duration(seconds: float) -> str:
    """kubectl's age format (apimachinery's ``duration.HumanDuration``)."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y{days}d" if days else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"


def cell(obj: Any, column: Mapping[str, Any], now: datetime) -> Any:
    """One cell: the first value the column's JSONPath selects, rendered for its type (None: empty)."""
    results = evaluate(obj, str(column.get("jsonPath", "")))
    if not results or results[0] is None:
        return None
    value = results[0]
    kind = column.get("type", "string")
    if kind == "date" and isinstance(value, str):
        try:
            at = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
        return human_duration((now - at).total_seconds())
    if kind == "string" and not isinstance(value, str):
        return (
            orjson.dumps(value).decode()
            if isinstance(value, dict | list)
            else str(value).lower()
            if isinstance(value, bool)
            else str(value)
        )
    return value


def column_definitions(columns: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    out = [
        {
            "name": "Name",
            "type": "string",
            "format": "name",
            "description": "Name must be unique within a namespace.",
            "priority": 0,
        }
    ]
    for column in columns:
        out.append(
            {
                "name": column.get("name", ""),
                "type": column.get("type", "string"),
                "format": column.get("format", ""),
                "description": column.get("description", ""),
                "priority": int(column.get("priority", 0)),
            }
        )
    return out


def printer_columns(crd: Mapping[str, Any] | None, version: str) -> Sequence[Mapping[str, Any]]:
    """The version's ``additionalPrinterColumns`` (or the CRD-wide ones), else Age alone."""
    spec = (crd or {}).get("spec") or {}
    for v in spec.get("versions") or []:
        if v.get("name") == version and v.get("additionalPrinterColumns"):
            return list(v["additionalPrinterColumns"])
    return list(spec.get("additionalPrinterColumns") or DEFAULT_COLUMNS)


def _row_object(obj: Mapping[str, Any], include: str) -> dict[str, Any] | None:
    if include == "None":
        return None
    if include == "Object":
        return dict(obj)
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": TABLE_API_VERSION,
        "metadata": obj.get("metadata", {}),
    }


def table(
    objects: Sequence[Mapping[str, Any]],
    columns: Sequence[Mapping[str, Any]],
    list_meta: Mapping[str, Any],
    *,
    include_object: str = "Metadata",
    now: datetime | None = None,
) -> dict[str, Any]:
    """The Table for ``objects`` (``include_object``: None, Metadata or Object, as the query says)."""
    at = now or datetime.now(UTC)
    rows = []
    for obj in objects:
        row: dict[str, Any] = {
            "cells": [(obj.get("metadata") or {}).get("name", ""), *(cell(obj, col, at) for col in columns)]
        }
        included = _row_object(obj, include_object)
        if included is not None:
            row["object"] = included
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": TABLE_API_VERSION,
        "metadata": dict(list_meta),
        "columnDefinitions": column_definitions(columns),
        "rows": rows,
    }
