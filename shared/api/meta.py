"""Object metadata and status conditions, the parts every ``jitnode.io`` object shares.

Only the metadata fields the services use are kept (name, uid, resourceVersion for optimistic
updates, generation for observedGeneration, labels, annotations, timestamps, finalizers); the
rest of ``metadata`` is ignored, as it belongs to the API server.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from shared.api._fields import Checker, format_time, join

CONDITION_STATUSES: Final = ("True", "False", "Unknown")
CONDITION_KEYS: Final = frozenset(
    {"type", "status", "reason", "message", "lastTransitionTime", "observedGeneration"}
)


@dataclass(frozen=True)
class ObjectMeta:
    """The useful part of ``metadata``."""

    name: str
    uid: str = ""
    resource_version: str = ""
    generation: int = 0
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    finalizers: tuple[str, ...] = ()
    creation_timestamp: datetime | None = None
    deletion_timestamp: datetime | None = None
    namespace: str = ""  # empty for cluster-scoped objects

    @classmethod
    def parse(cls, raw: Mapping[str, Any], check: Checker, path: str = "metadata") -> ObjectMeta:
        """Read ``metadata`` (errors go to ``check``); a name is required."""
        name = check.string(raw, "name", path, required=True) or ""
        finalizers: list[str] = []
        for i, item in enumerate(check.items(raw, "finalizers", path)):
            if isinstance(item, str):
                finalizers.append(item)
            else:
                check.error(f"{join(path, 'finalizers')}[{i}]", "expected a string")
        return cls(
            name=name,
            uid=check.string(raw, "uid", path) or "",
            namespace=check.string(raw, "namespace", path) or "",
            resource_version=check.string(raw, "resourceVersion", path) or "",
            generation=check.integer(raw, "generation", path, minimum=0) or 0,
            labels=check.string_map(raw, "labels", path),
            annotations=check.string_map(raw, "annotations", path),
            finalizers=tuple(finalizers),
            creation_timestamp=check.timestamp(raw, "creationTimestamp", path),
            deletion_timestamp=check.timestamp(raw, "deletionTimestamp", path),
        )

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.namespace:
            out["namespace"] = self.namespace
        if self.uid:
            out["uid"] = self.uid
        if self.resource_version:
            out["resourceVersion"] = self.resource_version
        if self.generation:
            out["generation"] = self.generation
        if self.labels:
            out["labels"] = dict(self.labels)
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.finalizers:
            out["finalizers"] = list(self.finalizers)
        if self.creation_timestamp is not None:
            out["creationTimestamp"] = format_time(self.creation_timestamp)
        if self.deletion_timestamp is not None:
            out["deletionTimestamp"] = format_time(self.deletion_timestamp)
        return out


@dataclass(frozen=True)
class Condition:
    """One ``metav1.Condition``: a named fact about an object with when and why it changed."""

    type: str
    status: str
    reason: str = ""
    message: str = ""
    last_transition_time: datetime | None = None
    observed_generation: int | None = None

    @property
    def is_true(self) -> bool:
        return self.status == "True"

    @classmethod
    def parse(cls, raw: Mapping[str, Any], check: Checker, path: str) -> Condition:
        check.keys(raw, path, CONDITION_KEYS)
        return cls(
            type=check.string(raw, "type", path, required=True, min_length=1) or "",
            status=check.string(raw, "status", path, required=True, enum=CONDITION_STATUSES) or "Unknown",
            reason=check.string(raw, "reason", path) or "",
            message=check.string(raw, "message", path) or "",
            last_transition_time=check.timestamp(raw, "lastTransitionTime", path),
            observed_generation=check.integer(raw, "observedGeneration", path, minimum=0),
        )

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "status": self.status}
        if self.reason:
            out["reason"] = self.reason
        if self.message:
            out["message"] = self.message
        if self.last_transition_time is not None:
            out["lastTransitionTime"] = format_time(self.last_transition_time)
        if self.observed_generation is not None:
            out["observedGeneration"] = self.observed_generation
        return out


def parse_conditions(raw: Mapping[str, Any], check: Checker, path: str) -> tuple[Condition, ...]:
    """``status.conditions``; a type appearing twice is an error (conditions are a map by type)."""
    out: list[Condition] = []
    seen: set[str] = set()
    for item_path, item in check.objects(raw, "conditions", path):
        condition = Condition.parse(item, check, item_path)
        if condition.type in seen:
            check.error(join(item_path, "type"), f"duplicate condition {condition.type!r}")
            continue
        seen.add(condition.type)
        out.append(condition)
    return tuple(out)


def find_condition(conditions: Sequence[Condition], type_: str) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)
