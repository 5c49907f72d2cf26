"""``NodeClaim``: the record of one node jitnode decided to launch, from request to ready.

Shaped like Karpenter's ``karpenter.sh/v1`` NodeClaim. The launcher creates one before calling
EC2 (so a crash can't leak an untracked instance), with a deterministic ``clientToken`` for
idempotent launches, and records progress in ``status.conditions``. jitnode extras: ``spec.
clientToken``, ``spec.pods`` (what the claim was planned for) and ``status.instanceID``.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from shared import labels as well_known
from shared.api._fields import ROOT_KEYS, Checker, format_time, join
from shared.api.durations import format_duration, parse_api_duration
from shared.api.group import GROUP_VERSION, NODECLAIM_KIND
from shared.api.meta import CONDITION_KEYS, CONDITION_STATUSES, Condition, ObjectMeta, parse_conditions
from shared.api.nodeclass import NODECLASS_REF_ENUMS, NODECLASS_REF_KEYS, NodeClassRef
from shared.api.nodepool import DEFAULT_EXPIRE_AFTER
from shared.api.scheduling import (
    OPERATORS,
    REQUIREMENT_KEYS,
    TAINT_EFFECTS,
    TAINT_KEYS,
    parse_requirements,
    parse_taint_list,
)
from shared.requirements import Requirement, Requirements
from shared.resources import EMPTY, Resources
from shared.taints import Taint

# Condition types, as Karpenter names them.
LAUNCHED: Final = "Launched"
REGISTERED: Final = "Registered"
INITIALIZED: Final = "Initialized"
READY: Final = "Ready"
DRIFTED: Final = "Drifted"
EMPTY_CONDITION: Final = "Empty"
CONSOLIDATABLE: Final = "Consolidatable"
CONDITION_TYPES: Final = (LAUNCHED, REGISTERED, INITIALIZED, READY, DRIFTED, EMPTY_CONDITION, CONSOLIDATABLE)
# EC2 caps ClientToken at 64 ASCII characters.
CLIENT_TOKEN_MAX: Final = 64
CLIENT_TOKEN_PATTERN: Final = r"^[\x21-\x7e]{1,64}$"

KEYS: Final[Mapping[str, frozenset[str]]] = {
    "": ROOT_KEYS,
    "spec": frozenset(
        {
            "requirements",
            "resources",
            "taints",
            "startupTaints",
            "nodeClassRef",
            "expireAfter",
            "terminationGracePeriod",
            "clientToken",
            "pods",
        }
    ),
    "spec.requirements[]": REQUIREMENT_KEYS,
    "spec.resources": frozenset({"requests"}),
    "spec.taints[]": TAINT_KEYS,
    "spec.startupTaints[]": TAINT_KEYS,
    "spec.nodeClassRef": NODECLASS_REF_KEYS,
    "status": frozenset(
        {
            "providerID",
            "instanceID",
            "nodeName",
            "imageID",
            "capacity",
            "allocatable",
            "lastPodEventTime",
            "conditions",
        }
    ),
    "status.conditions[]": CONDITION_KEYS,
}
ENUMS: Final[Mapping[str, tuple[str, ...]]] = {
    "spec.requirements[].operator": OPERATORS,
    "spec.taints[].effect": TAINT_EFFECTS,
    "spec.startupTaints[].effect": TAINT_EFFECTS,
    **{f"spec.nodeClassRef.{k}": v for k, v in NODECLASS_REF_ENUMS.items()},
    "status.conditions[].status": CONDITION_STATUSES,
}
DEFAULTS: Final[Mapping[str, object]] = {"spec.expireAfter": DEFAULT_EXPIRE_AFTER}


class Phase(enum.StrEnum):
    """Where a claim is in its life, derived from its conditions (for printing and metrics)."""

    PENDING = "Pending"
    LAUNCHED = "Launched"
    REGISTERED = "Registered"
    READY = "Ready"
    TERMINATING = "Terminating"


def client_token_for(uid: str) -> str:
    """A deterministic EC2 ClientToken for a claim: retries of its launch are then idempotent."""
    return "jitnode-" + hashlib.sha256(uid.encode()).hexdigest()[:40]


@dataclass(frozen=True)
class NodeClaimStatus:
    provider_id: str | None = None
    instance_id: str | None = None
    node_name: str | None = None
    image_id: str | None = None
    capacity: Resources = EMPTY
    allocatable: Resources = EMPTY
    last_pod_event_time: datetime | None = None
    conditions: tuple[Condition, ...] = ()

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in (
            ("providerID", self.provider_id),
            ("instanceID", self.instance_id),
            ("nodeName", self.node_name),
            ("imageID", self.image_id),
        ):
            if value is not None:
                out[key] = value
        if self.capacity:
            out["capacity"] = self.capacity.to_api()
        if self.allocatable:
            out["allocatable"] = self.allocatable.to_api()
        if self.last_pod_event_time is not None:
            out["lastPodEventTime"] = format_time(self.last_pod_event_time)
        if self.conditions:
            out["conditions"] = [c.to_api() for c in self.conditions]
        return out


@dataclass(frozen=True)
class NodeClaim:
    """A parsed, validated NodeClaim (see the module docstring). ``expire_after`` None is Never."""

    metadata: ObjectMeta
    node_class_ref: NodeClassRef
    requirements: tuple[Requirement, ...] = ()
    requests: Resources = EMPTY
    taints: tuple[Taint, ...] = ()
    startup_taints: tuple[Taint, ...] = ()
    expire_after: timedelta | None = timedelta(hours=720)
    termination_grace_period: timedelta | None = None
    client_token: str | None = None
    pods: tuple[str, ...] = ()
    status: NodeClaimStatus = field(default_factory=NodeClaimStatus)

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def nodepool(self) -> str | None:
        return self.metadata.labels.get(well_known.NODEPOOL)

    def node_requirements(self) -> Requirements:
        """The claim's requirements as one conjunction (instance types included)."""
        return Requirements.of(*self.requirements)

    def condition(self, type_: str) -> Condition | None:
        return next((c for c in self.status.conditions if c.type == type_), None)

    def is_true(self, type_: str) -> bool:
        condition = self.condition(type_)
        return condition is not None and condition.is_true

    def phase(self) -> Phase:
        if self.metadata.deletion_timestamp is not None:
            return Phase.TERMINATING
        if self.is_true(READY) or self.is_true(INITIALIZED):
            return Phase.READY
        if self.is_true(REGISTERED):
            return Phase.REGISTERED
        if self.is_true(LAUNCHED):
            return Phase.LAUNCHED
        return Phase.PENDING

    @classmethod
    def from_api(cls, obj: Mapping[str, Any]) -> NodeClaim:
        """Parse and validate the object; raises ``ValidationError`` listing every problem."""
        check = Checker()
        check.keys(obj, "", KEYS[""])
        meta = ObjectMeta.parse(check.mapping(obj, "metadata", ""), check)
        check.require(obj, "", "spec")
        spec = check.mapping(obj, "spec", "")
        check.keys(spec, "spec", KEYS["spec"])
        check.require(spec, "spec", "nodeClassRef")
        resources = check.mapping(spec, "resources", "spec")
        check.keys(resources, "spec.resources", KEYS["spec.resources"])
        grace = spec.get("terminationGracePeriod")
        pods: list[str] = []
        for i, pod in enumerate(check.items(spec, "pods", "spec")):
            if isinstance(pod, str) and pod:
                pods.append(pod)
            else:
                check.error(f"spec.pods[{i}]", "expected a pod as namespace/name or uid")
        claim = cls(
            metadata=meta,
            node_class_ref=NodeClassRef.parse(
                check.mapping(spec, "nodeClassRef", "spec"), check, "spec.nodeClassRef"
            ),
            requirements=parse_requirements(spec, check, "spec", restrict_keys=False),
            requests=check.resources(resources, "requests", "spec.resources"),
            taints=parse_taint_list(spec, "taints", check, "spec"),
            startup_taints=parse_taint_list(spec, "startupTaints", check, "spec"),
            expire_after=check.run(
                lambda: parse_api_duration(
                    spec.get("expireAfter", DEFAULT_EXPIRE_AFTER), "spec.expireAfter", allow_never=True
                ),
                None,
            ),
            termination_grace_period=(
                check.run(lambda: parse_api_duration(grace, "spec.terminationGracePeriod"), None)
                if grace is not None
                else None
            ),
            client_token=check.string(spec, "clientToken", "spec", pattern=CLIENT_TOKEN_PATTERN),
            pods=tuple(pods),
            status=_status(check.mapping(obj, "status", ""), check),
        )
        check.done(NODECLAIM_KIND)
        return claim

    def to_api(self) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "nodeClassRef": self.node_class_ref.to_api(),
            "requirements": [r.to_api() for r in self.requirements],
            "resources": {"requests": self.requests.to_api()} if self.requests else {},
            "expireAfter": format_duration(self.expire_after),
        }
        if self.taints:
            spec["taints"] = [t.to_api() for t in self.taints]
        if self.startup_taints:
            spec["startupTaints"] = [t.to_api() for t in self.startup_taints]
        if self.termination_grace_period is not None:
            spec["terminationGracePeriod"] = format_duration(self.termination_grace_period)
        if self.client_token is not None:
            spec["clientToken"] = self.client_token
        if self.pods:
            spec["pods"] = list(self.pods)
        out: dict[str, Any] = {
            "apiVersion": GROUP_VERSION,
            "kind": NODECLAIM_KIND,
            "metadata": self.metadata.to_api(),
            "spec": spec,
        }
        status = self.status.to_api()
        if status:
            out["status"] = status
        return out


def _status(raw: Mapping[str, Any], check: Checker) -> NodeClaimStatus:
    """The status the launcher writes; unknown keys are tolerated so newer writers don't break us."""
    path = "status"
    return NodeClaimStatus(
        provider_id=check.string(raw, "providerID", path),
        instance_id=check.string(raw, "instanceID", path),
        node_name=check.string(raw, "nodeName", path),
        image_id=check.string(raw, "imageID", path),
        capacity=check.resources(raw, "capacity", path),
        allocatable=check.resources(raw, "allocatable", path),
        last_pod_event_time=check.timestamp(raw, "lastPodEventTime", path),
        conditions=parse_conditions(raw, check, join("", path)),
    )
