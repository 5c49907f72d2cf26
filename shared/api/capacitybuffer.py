"""``CapacityBuffer``: spare capacity kept ready, the upstream ``autoscaling.x-k8s.io/v1beta1`` API.

The same object Cluster Autoscaler (1.34 alpha, 1.35 v1beta1) and Karpenter (alpha) read: one
chunk of the buffer is a pod shaped like a PodTemplate (``podTemplateRef``) or like the pods of
a scalable workload (``scalableRef``: a Deployment, ReplicaSet or StatefulSet); ``replicas``
and ``percentage`` (of the workload's replicas, rounded up) give how many chunks, the larger of
the two when both are set, capped by ``limits`` on the chunks' total requests; with neither, as
many chunks as fit in ``limits``. The status is written as upstream defines it. Validation
mirrors ``manifests/crds/autoscaling.x-k8s.io_capacitybuffers.yaml``, whose CEL rules repeat
the two rules a structural schema cannot express.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from shared.api._fields import ROOT_KEYS, Checker
from shared.api.meta import CONDITION_KEYS, Condition, ObjectMeta, parse_conditions
from shared.resources import Resources

BUFFER_GROUP: Final = "autoscaling.x-k8s.io"
BUFFER_VERSION: Final = "v1beta1"
BUFFER_GROUP_VERSION: Final = f"{BUFFER_GROUP}/{BUFFER_VERSION}"
BUFFER_KIND: Final = "CapacityBuffer"
BUFFER_PLURAL: Final = "capacitybuffers"

# The only strategy upstream defines: placeholder (here: virtual) pods that make the
# autoscaler provision capacity. Others belong to other provisioners and are left alone.
ACTIVE_CAPACITY: Final = "buffer.x-k8s.io/active-capacity"

# Upstream's condition types: the buffer controller's verdict on the spec, and the
# autoscaler's on the capacity.
READY_FOR_PROVISIONING: Final = "ReadyForProvisioning"
PROVISIONING: Final = "Provisioning"

KEYS: Final[Mapping[str, frozenset[str]]] = {
    "": ROOT_KEYS,
    "spec": frozenset(
        {"provisioningStrategy", "podTemplateRef", "scalableRef", "replicas", "percentage", "limits"}
    ),
    "spec.podTemplateRef": frozenset({"name"}),
    "spec.scalableRef": frozenset({"apiGroup", "kind", "name"}),
    "status": frozenset(
        {"podTemplateRef", "replicas", "podTemplateGeneration", "conditions", "provisioningStrategy"}
    ),
    "status.podTemplateRef": frozenset({"name"}),
    "status.conditions[]": CONDITION_KEYS,
}
DEFAULTS: Final[Mapping[str, Any]] = {"spec.provisioningStrategy": ACTIVE_CAPACITY}


@dataclass(frozen=True)
class ScalableRef:
    """A workload with a scale subresource whose pods shape the buffer's chunks."""

    kind: str
    name: str
    api_group: str = ""

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "name": self.name}
        if self.api_group:
            out["apiGroup"] = self.api_group
        return out


@dataclass(frozen=True)
class CapacityBufferStatus:
    pod_template_ref: str | None = None
    replicas: int | None = None
    pod_template_generation: int | None = None
    conditions: tuple[Condition, ...] = ()
    provisioning_strategy: str | None = None


@dataclass(frozen=True)
class CapacityBuffer:
    metadata: ObjectMeta
    provisioning_strategy: str = ACTIVE_CAPACITY
    pod_template_ref: str | None = None
    scalable_ref: ScalableRef | None = None
    replicas: int | None = None
    percentage: int | None = None
    limits: Resources | None = None
    # The resources ``limits`` names, a zero limit included (Resources keeps no zero amounts).
    limited: tuple[str, ...] = ()
    status: CapacityBufferStatus = field(default_factory=CapacityBufferStatus)

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str:
        return self.metadata.namespace

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @classmethod
    def from_api(cls, obj: Mapping[str, Any]) -> CapacityBuffer:
        """Parse and validate the object; raises ``ValidationError`` listing every problem."""
        check = Checker()
        check.keys(obj, "", KEYS[""])
        meta = ObjectMeta.parse(check.mapping(obj, "metadata", ""), check)
        check.require(obj, "", "spec")
        spec = check.mapping(obj, "spec", "")
        check.keys(spec, "spec", KEYS["spec"])
        template_raw = check.mapping(spec, "podTemplateRef", "spec")
        check.keys(template_raw, "spec.podTemplateRef", KEYS["spec.podTemplateRef"])
        template = (
            check.string(template_raw, "name", "spec.podTemplateRef", required=True, min_length=1)
            if "podTemplateRef" in spec
            else None
        )
        scalable = _scalable(spec, check) if "scalableRef" in spec else None
        if template is not None and scalable is not None:
            check.error("spec", "set podTemplateRef or scalableRef, not both")
        elif "podTemplateRef" not in spec and "scalableRef" not in spec:
            check.error("spec", "one of podTemplateRef or scalableRef is required")
        replicas = check.integer(spec, "replicas", "spec", minimum=0)
        percentage = check.integer(spec, "percentage", "spec", minimum=0)
        limits = check.resources(spec, "limits", "spec") if spec.get("limits") is not None else None
        limited = tuple(sorted(str(k) for k in check.mapping(spec, "limits", "spec")))
        if "podTemplateRef" in spec and spec.get("replicas") is None and spec.get("limits") is None:
            check.error("spec", "with podTemplateRef, replicas or limits must be set")
        if percentage is not None and "scalableRef" not in spec:
            check.error("spec.percentage", "applies to a scalableRef only")
        strategy = check.string(spec, "provisioningStrategy", "spec", min_length=1)
        buffer = cls(
            metadata=meta,
            provisioning_strategy=strategy if strategy is not None else ACTIVE_CAPACITY,
            pod_template_ref=template,
            scalable_ref=scalable,
            replicas=replicas,
            percentage=percentage,
            limits=limits,
            limited=limited,
            status=_status(check.mapping(obj, "status", ""), check),
        )
        check.done(BUFFER_KIND)
        return buffer

    def to_api(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"provisioningStrategy": self.provisioning_strategy}
        if self.pod_template_ref is not None:
            spec["podTemplateRef"] = {"name": self.pod_template_ref}
        if self.scalable_ref is not None:
            spec["scalableRef"] = self.scalable_ref.to_api()
        if self.replicas is not None:
            spec["replicas"] = self.replicas
        if self.percentage is not None:
            spec["percentage"] = self.percentage
        if self.limits is not None:
            spec["limits"] = {**dict.fromkeys(self.limited, "0"), **self.limits.to_api()}
        out: dict[str, Any] = {
            "apiVersion": BUFFER_GROUP_VERSION,
            "kind": BUFFER_KIND,
            "metadata": self.metadata.to_api(),
            "spec": spec,
        }
        status = status_to_api(self.status)
        if status:
            out["status"] = status
        return out


def status_to_api(status: CapacityBufferStatus) -> dict[str, Any]:
    """The status as upstream spells it; unset fields are left out."""
    out: dict[str, Any] = {}
    if status.pod_template_ref is not None:
        out["podTemplateRef"] = {"name": status.pod_template_ref}
    if status.replicas is not None:
        out["replicas"] = status.replicas
    if status.pod_template_generation is not None:
        out["podTemplateGeneration"] = status.pod_template_generation
    if status.conditions:
        out["conditions"] = [c.to_api() for c in status.conditions]
    if status.provisioning_strategy is not None:
        out["provisioningStrategy"] = status.provisioning_strategy
    return out


def _scalable(spec: Mapping[str, Any], check: Checker) -> ScalableRef | None:
    path = "spec.scalableRef"
    raw = check.mapping(spec, "scalableRef", "spec")
    check.keys(raw, path, KEYS[path])
    kind = check.string(raw, "kind", path, required=True, min_length=1)
    name = check.string(raw, "name", path, required=True, min_length=1)
    group = check.string(raw, "apiGroup", path) or ""
    if kind is None or name is None:
        return None
    return ScalableRef(kind=kind, name=name, api_group=group)


def _status(raw: Mapping[str, Any], check: Checker) -> CapacityBufferStatus:
    check.keys(raw, "status", KEYS["status"])
    ref = check.mapping(raw, "podTemplateRef", "status")
    check.keys(ref, "status.podTemplateRef", KEYS["status.podTemplateRef"])
    return CapacityBufferStatus(
        pod_template_ref=check.string(ref, "name", "status.podTemplateRef") if ref else None,
        replicas=check.integer(raw, "replicas", "status", minimum=0),
        pod_template_generation=check.integer(raw, "podTemplateGeneration", "status", minimum=0),
        conditions=parse_conditions(raw, check, "status"),
        provisioning_strategy=check.string(raw, "provisioningStrategy", "status"),
    )
