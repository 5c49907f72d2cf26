"""Object metadata of a converted object: the name and the user's labels and annotations.

Everything the API server writes (uid, resourceVersion, timestamps, managedFields) and the
namespace (Karpenter's and jitnode's kinds are cluster-scoped) describe the old object, not the
user's intent, so they are left behind without a finding.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from shared.convert import shape
from shared.errors import FieldError

LAST_APPLIED: Final = "kubectl.kubernetes.io/last-applied-configuration"


def object_name(obj: Mapping[str, Any]) -> str:
    name = shape.string(shape.mapping(obj, "metadata", ""), "name", "metadata")
    if not name:
        raise FieldError("metadata.name", "is required")
    return name


def convert_metadata(obj: Mapping[str, Any], name: str | None = None) -> dict[str, Any]:
    """``{"name": ..., "labels": ..., "annotations": ...}`` for the converted object."""
    raw = shape.mapping(obj, "metadata", "")
    out: dict[str, Any] = {"name": name if name is not None else object_name(obj)}
    metadata_labels = shape.string_map(raw, "labels", "metadata")
    if metadata_labels:
        out["labels"] = metadata_labels
    annotations = {
        k: v for k, v in shape.string_map(raw, "annotations", "metadata").items() if k != LAST_APPLIED
    }
    if annotations:
        out["annotations"] = annotations
    return out
