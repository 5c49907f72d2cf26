"""Node labels, requirements and taints of a Karpenter node template, in jitnode's keys.

Shared by every NodePool source version: they spell these fields the same way and differ only
in where they keep them. Values are carried as written; jitnode's parsers validate the result.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Final

from shared import labels as well_known
from shared.api.scheduling import RESTRICTED_LABELS
from shared.convert import shape
from shared.convert.labelkeys import CAPACITY_TYPES, map_label_key
from shared.convert.report import Report
from shared.errors import FieldError

REQUIREMENT_FIELDS: Final = frozenset({"key", "operator", "values", "minValues"})
TAINT_FIELDS: Final = frozenset({"key", "value", "effect"})
_WIDENS: Final = "dropping it lets this pool launch instances the requirement excluded"


def drop_unknown(raw: Mapping[str, Any], known: Collection[str], path: str, report: Report) -> None:
    """Report every field of ``raw`` the converter does not know (so nothing vanishes unseen)."""
    for key in raw:
        if key not in known:
            report.drop(shape.join(path, str(key)), "not a field jitnode knows; dropped")


def _restricted(key: str) -> str:
    return f"jitnode sets {key!r} on every node itself; a NodePool may not set or require it"


def convert_labels(raw: Mapping[str, Any], key: str, path: str, report: Report) -> dict[str, str]:
    """Template labels with Karpenter's well-known keys renamed; unmappable keys dropped."""
    where = shape.join(path, key)
    out: dict[str, str] = {}
    for name, value in shape.string_map(raw, key, path).items():
        mapped = map_label_key(name)
        if mapped.key is None:
            report.drop(shape.join(where, name), mapped.reason)
        elif mapped.key in RESTRICTED_LABELS:
            report.drop(shape.join(where, name), _restricted(mapped.key))
        else:
            out[mapped.key] = value
    return out


def convert_requirements(raw: Mapping[str, Any], key: str, path: str, report: Report) -> list[dict[str, Any]]:
    """Requirements with keys renamed; a requirement jitnode cannot honour is dropped and reported."""
    out: list[dict[str, Any]] = []
    for item_path, item in shape.objects(raw, key, path):
        drop_unknown(item, REQUIREMENT_FIELDS, item_path, report)
        name = shape.string(item, "key", item_path)
        if not name:
            raise FieldError(shape.join(item_path, "key"), "is required")
        mapped = map_label_key(name)
        if mapped.key is None:
            report.drop(item_path, f"{mapped.reason}; {_WIDENS}")
            continue
        if mapped.key in RESTRICTED_LABELS:
            report.drop(item_path, _restricted(mapped.key))
            continue
        requirement: dict[str, Any] = {"key": mapped.key, "operator": item.get("operator")}
        values = item.get("values")
        if mapped.key == well_known.CAPACITY_TYPE and isinstance(values, list):
            unsupported = [v for v in values if v not in CAPACITY_TYPES]
            if unsupported:
                values = [v for v in values if v in CAPACITY_TYPES]
                report.drop(
                    shape.join(item_path, "values"),
                    "jitnode launches only on-demand and spot capacity; dropped "
                    + ", ".join(map(str, unsupported)),
                )
                if not values and item.get("operator") == "In":
                    report.drop(item_path, f"no capacity type left; {_WIDENS}")
                    continue
        if values:
            requirement["values"] = list(values)
        if item.get("minValues") is not None:
            requirement["minValues"] = item["minValues"]
        out.append(requirement)
    return out


def convert_taints(raw: Mapping[str, Any], key: str, path: str, report: Report) -> list[dict[str, Any]]:
    """Taints as written (their keys are not node labels); ``timeAdded`` is the API server's business."""
    out: list[dict[str, Any]] = []
    for item_path, item in shape.objects(raw, key, path):
        drop_unknown(item, TAINT_FIELDS | {"timeAdded"}, item_path, report)
        out.append({k: item[k] for k in ("key", "value", "effect") if item.get(k) is not None})
    return out
