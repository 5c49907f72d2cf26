"""From CapacityBuffers to virtual pods the planner keeps capacity for, and their status (pure).

A buffer's chunks become virtual pods: ``PodDemand`` values shaped like the buffer's pod
template, with reason ``predicted`` so the planner lets free room on existing nodes hold them
(only the shortfall launches), and uids under :data:`BUFFER_UID_PREFIX` so the rest of the
launcher can tell them from real pods (no events on them, and disruption moves them rather than
letting them pin a node). Their order in a plan is the planner's usual one (priority, then age):
a buffer's chunks are as old as the buffer.

How many chunks (upstream's rules): the larger of ``replicas`` and ``percentage`` of the
scalable workload's replicas (rounded up), capped by what fits in ``limits``; with neither, as
many as fit in ``limits``. :func:`translate` answers the chunks and the buffer controller's part
of the status (``podTemplateRef``, ``podTemplateGeneration``, ``replicas`` and the
``ReadyForProvisioning`` condition); :func:`provisioning` answers the autoscaler's part (the
``Provisioning`` condition) from what the last plan did with the chunks.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final

from launcher.planner.inputs import Plan
from shared.api._fields import Checker
from shared.api.capacitybuffer import (
    ACTIVE_CAPACITY,
    PROVISIONING,
    READY_FOR_PROVISIONING,
    CapacityBuffer,
    CapacityBufferStatus,
    status_to_api,
)
from shared.api.meta import Condition, find_condition, parse_conditions
from shared.demand import PodDemand
from shared.errors import FieldError, ValidationError
from shared.resources import Resources

BUFFER_UID_PREFIX: Final = "capacitybuffer/"
# What a plan did with a chunk (see :func:`chunk_states`).
HELD: Final = "held"
LAUNCHING: Final = "launching"
UNAVAILABLE: Final = "unavailable"
# A buffer sized by limits alone on a tiny template could ask for millions of chunks; no
# cluster jitnode plans for needs more, and the planner's work grows with the count.
MAX_CHUNKS: Final = 1000
# Kinds a scalableRef may name: those whose pod template and replicas the controller reads.
SCALABLE_KINDS: Final = {("apps", "Deployment"), ("apps", "ReplicaSet"), ("apps", "StatefulSet")}


def is_buffer_uid(uid: str) -> bool:
    """Whether ``uid`` names a buffer's virtual pod rather than a real one (real uids are UUIDs)."""
    return uid.startswith(BUFFER_UID_PREFIX)


def chunk_uid(namespace: str, name: str, index: int) -> str:
    """Stable across restarts and leaders, so claims planned for a chunk stay its claims."""
    return f"{BUFFER_UID_PREFIX}{namespace}/{name}/{index}"


@dataclass(frozen=True)
class Source:
    """What the buffer's reference resolved to: the pod template and, for a workload, its replicas.

    ``template`` is a PodTemplateSpec (``metadata`` and ``spec``); ``problem`` says why there is
    none (reason, message), e.g. the PodTemplate does not exist.
    """

    template: Mapping[str, Any] | None = None
    template_name: str | None = None  # a PodTemplate's name (status.podTemplateRef)
    generation: int | None = None  # that PodTemplate's generation
    replicas: int | None = None  # the scalable workload's spec.replicas
    problem: tuple[str, str] | None = None


@dataclass(frozen=True)
class Translation:
    """One buffer's chunks, and the status the buffer controller writes for it."""

    key: str
    demands: tuple[PodDemand, ...]
    status: CapacityBufferStatus

    @property
    def ready(self) -> bool:
        """ReadyForProvisioning: the spec was translated into chunks."""
        ready = find_condition(self.status.conditions, READY_FOR_PROVISIONING)
        return ready is not None and ready.is_true


def chunk_count(buffer: CapacityBuffer, requests: Resources, replicas: int | None) -> int | str:
    """How many chunks the buffer asks for, or why it cannot say (upstream's rules, see module)."""
    wanted: list[int] = []
    if buffer.replicas is not None:
        wanted.append(buffer.replicas)
    if buffer.percentage is not None and buffer.scalable_ref is not None:
        wanted.append(math.ceil((replicas or 0) * buffer.percentage / 100))
    count = max(wanted) if wanted else None
    if buffer.limits is not None:
        fitting = [
            buffer.limits.amount(name) // requests.amount(name)
            for name in buffer.limited
            if requests.amount(name) > 0
        ]
        if fitting:
            count = min(fitting) if count is None else min(count, min(fitting))
        elif count is None:
            return "spec.limits names no resource a chunk requests, so it does not bound the chunks"
    if count is None:
        return "spec: set replicas, percentage or limits"
    return min(count, MAX_CHUNKS)


def translate(
    buffer: CapacityBuffer, source: Source, old: CapacityBufferStatus, now: datetime
) -> Translation:
    """The buffer's virtual pods and its controller status (see the module doc)."""
    status = CapacityBufferStatus(
        pod_template_ref=source.template_name,
        pod_template_generation=source.generation,
        provisioning_strategy=buffer.provisioning_strategy,
        conditions=old.conditions,
    )
    if source.problem is not None or source.template is None:
        reason, message = source.problem or ("PodTemplateNotFound", "no pod template")
        return _failed(buffer, status, reason, message, now)
    try:
        shape = PodDemand.from_pod(_pod(buffer, source.template), "predicted", _first_seen(buffer))
    except (ValidationError, FieldError) as exc:
        return _failed(buffer, status, "InvalidPodTemplate", str(exc), now)
    count = chunk_count(buffer, shape.requests, source.replicas)
    if isinstance(count, str):
        return _failed(buffer, status, "InvalidSpec", count, now)
    demands = tuple(
        replace(
            shape,
            uid=chunk_uid(buffer.namespace, buffer.name, i),
            name=f"{buffer.name}-chunk-{i}",
            owner_kind="CapacityBuffer",
            owner_name=buffer.name,
        )
        for i in range(count)
    )
    ready = condition(
        old.conditions,
        READY_FOR_PROVISIONING,
        "True",
        "BufferTranslated",
        f"{count} chunks of {shape.requests.to_api()}",
        buffer.metadata.generation,
        now,
    )
    return Translation(
        buffer.key,
        demands,
        replace(status, replicas=count, conditions=_with(status.conditions, ready)),
    )


def invalid(key: str, raw: Mapping[str, Any], error: ValidationError, now: datetime) -> Translation:
    """A buffer that does not parse: no chunks, and why on ReadyForProvisioning."""
    old = _raw_conditions(raw)
    generation = int(((raw.get("metadata") or {}).get("generation")) or 0)
    ready = condition(old, READY_FOR_PROVISIONING, "False", "InvalidSpec", str(error), generation, now)
    return Translation(key, (), CapacityBufferStatus(conditions=_with(old, ready)))


def _failed(
    buffer: CapacityBuffer, status: CapacityBufferStatus, reason: str, message: str, now: datetime
) -> Translation:
    ready = condition(
        status.conditions, READY_FOR_PROVISIONING, "False", reason, message, buffer.metadata.generation, now
    )
    conditions = tuple(c for c in _with(status.conditions, ready) if c.type != PROVISIONING)
    return Translation(buffer.key, (), replace(status, replicas=0, conditions=conditions))


def is_active(buffer: CapacityBuffer) -> bool:
    """Whether jitnode provides this buffer (other strategies belong to other provisioners)."""
    return buffer.provisioning_strategy == ACTIVE_CAPACITY


def provisioning(
    translation: Translation, plan: Plan, nodes: Collection[str], generation: int, now: datetime
) -> Condition | None:
    """The ``Provisioning`` condition from what ``plan`` did with the buffer's chunks; ``nodes``
    names the places that are capacity already (Nodes, and claims whose node is up).

    True while every chunk has a place: ``Provisioned`` once all are held by free room on
    existing nodes, ``ScalingUp`` while some wait for a launching NodeClaim. False
    (``CapacityUnavailable``) when the planner could not place some, with its reason (no
    NodePool matches, limits reached...). None for a buffer that is not ready.
    """
    if not translation.ready:
        return None
    old = translation.status.conditions
    uids = [d.uid for d in translation.demands]
    states = chunk_states(uids, plan, nodes)
    total = len(uids)
    refused = next((plan.unschedulable[uid] for uid in uids if uid in plan.unschedulable), None)
    if refused is not None:
        message = f"{states[UNAVAILABLE]} of {total} chunks cannot be provisioned: {refused}"
        return condition(old, PROVISIONING, "False", "CapacityUnavailable", message, generation, now)
    if states[LAUNCHING]:
        message = (
            f"{states[HELD]} of {total} chunks held on nodes, "
            f"{states[LAUNCHING]} waiting for launching capacity"
        )
        return condition(old, PROVISIONING, "True", "ScalingUp", message, generation, now)
    message = f"all {total} chunks held by free room on nodes"
    return condition(old, PROVISIONING, "True", "Provisioned", message, generation, now)


def chunk_states(uids: Sequence[str], plan: Plan, nodes: Collection[str]) -> dict[str, int]:
    """How many of the chunks ``uids`` the plan left on capacity that is there (``held``), could
    not place (``unavailable``), or is launching or about to launch capacity for (``launching``)."""
    held = sum(1 for uid in uids if plan.covered.get(uid) in nodes)
    unavailable = sum(1 for uid in uids if uid in plan.unschedulable)
    return {HELD: held, LAUNCHING: len(uids) - held - unavailable, UNAVAILABLE: unavailable}


def with_condition(status: CapacityBufferStatus, new: Condition | None) -> CapacityBufferStatus:
    return status if new is None else replace(status, conditions=_with(status.conditions, new))


def condition(
    old: Sequence[Condition],
    type_: str,
    status: str,
    reason: str,
    message: str,
    generation: int,
    now: datetime,
) -> Condition:
    """A condition whose transition time moves only when its status does."""
    previous = find_condition(old, type_)
    since = previous.last_transition_time if previous is not None and previous.status == status else None
    return Condition(type_, status, reason, message, since or now, generation)


def status_patch(status: CapacityBufferStatus) -> dict[str, Any]:
    """The whole status as a merge patch (``null`` clears a field that is no longer set)."""
    out: dict[str, Any] = {
        "podTemplateRef": None,
        "replicas": None,
        "podTemplateGeneration": None,
        "provisioningStrategy": None,
        "conditions": None,
    }
    out.update(status_to_api(status))
    return out


def _with(conditions: Sequence[Condition], new: Condition) -> tuple[Condition, ...]:
    return (*(c for c in conditions if c.type != new.type), new)


def _raw_conditions(raw: Mapping[str, Any]) -> tuple[Condition, ...]:
    status = raw.get("status")
    if not isinstance(status, Mapping):
        return ()
    check = Checker()
    conditions = parse_conditions(status, check, "status")
    return () if check.errors else conditions


def _first_seen(buffer: CapacityBuffer) -> float:
    created = buffer.metadata.creation_timestamp
    return created.timestamp() if created is not None else 0.0


def _pod(buffer: CapacityBuffer, template: Mapping[str, Any]) -> dict[str, Any]:
    """A pod as the template would make it, named after the buffer (uid set per chunk)."""
    meta = template.get("metadata")
    labels = meta.get("labels") if isinstance(meta, Mapping) else None
    return {
        "metadata": {
            "name": f"{buffer.name}-chunk",
            "namespace": buffer.namespace,
            "uid": chunk_uid(buffer.namespace, buffer.name, 0),
            "labels": dict(labels) if isinstance(labels, Mapping) else {},
        },
        "spec": template.get("spec") or {},
    }
