"""The next step for one warm claim, or for one just taken from the pool (pure).

Level-triggered like ``launcher.lifecycle.decisions``: decided afresh from the claim, its
instance as EC2 reports it and its Node, so a restart in any state resumes. The lifecycle
controller launches, registers and initializes a warm claim like any other; from there:

filling   the Node joined: cordon it (unschedulable, the ``jitnode.io/warm`` NoSchedule taint,
          ``do-not-disrupt``); once it is Ready (images pulled), evict what landed on it; then
          for Running park it as it is, otherwise delete the Node and stop (or hibernate) the
          instance, and park it once EC2 says it is stopped. Only an instance launched ready for
          hibernation (``Instance.hibernation_configured``: a warm fill of a Hibernated pool
          on a type that can hibernate) is hibernated; any other, such as a node returned to the
          pool on scale-in, is stopped plainly and parked Stopped, saying why;
parked    nothing, until the planner takes it;
taken     start the instance if it is stopped and not yet Ready again (StartInstances only from
          ``stopped``, so a retry after a crash never acts twice); uncordon its Node while it
          still carries the warm pool's taint or label.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from launcher.lifecycle.decisions import node_is_ready
from launcher.model import Instance
from launcher.warmpool.claims import activated_at, is_warm, parked_state, starting
from shared import labels, pods
from shared.api.nodeclaim import INITIALIZED, NodeClaim
from shared.api.warmpool import HIBERNATED, RUNNING, STOPPED, WarmPoolSpec

Obj = Mapping[str, Any]


@dataclass(frozen=True)
class Cordon:
    node_name: str


@dataclass(frozen=True)
class Evict:
    pods: tuple[Obj, ...]


@dataclass(frozen=True)
class DeleteNode:
    node_name: str


@dataclass(frozen=True)
class Stop:
    instance_id: str
    hibernate: bool


PARKED: Final = "parked in the warm pool"


@dataclass(frozen=True)
class Park:
    """Record the claim as parked in ``state`` (its ``Warm`` condition turns True, ``message``
    its message)."""

    state: str
    message: str = PARKED


@dataclass(frozen=True)
class Start:
    instance_id: str


@dataclass(frozen=True)
class Uncordon:
    node_name: str


@dataclass(frozen=True)
class Retire:
    """A parked Running instance lost its Node: replace it (delete the claim)."""

    reason: str


@dataclass(frozen=True)
class Wait:
    reason: str


WarmStep = Cordon | Evict | DeleteNode | Stop | Park | Start | Uncordon | Retire | Wait


def is_cordoned(node: Obj) -> bool:
    spec = node.get("spec") or {}
    taints = spec.get("taints") or []
    return bool(spec.get("unschedulable")) and any(t.get("key") == labels.WARM_TAINT for t in taints)


def with_cordon(patch: Mapping[str, Any], node: Obj) -> dict[str, Any]:
    """``patch`` (a Node merge patch, maybe setting taints) that also cordons the node for the warm
    pool: unschedulable, the ``jitnode.io/warm`` NoSchedule taint, the warm label, and
    ``do-not-disrupt`` (consolidation must not take a node kept empty on purpose)."""
    meta = dict(patch.get("metadata") or {})
    spec = dict(patch.get("spec") or {})
    taints = spec.get("taints", (node.get("spec") or {}).get("taints") or [])
    kept = [t for t in taints if t.get("key") != labels.WARM_TAINT]
    meta["labels"] = {**(meta.get("labels") or {}), labels.WARM_LABEL: "true"}
    meta["annotations"] = {**(meta.get("annotations") or {}), labels.DO_NOT_DISRUPT_ANNOTATION: "true"}
    spec["unschedulable"] = True
    spec["taints"] = [*kept, {"key": labels.WARM_TAINT, "effect": "NoSchedule"}]
    return {**patch, "metadata": meta, "spec": spec}


def uncordon(node: Obj) -> dict[str, Any]:
    """The Node merge patch that takes the warm pool's marks off a node taken from it."""
    taints = [t for t in (node.get("spec") or {}).get("taints") or [] if t.get("key") != labels.WARM_TAINT]
    return {
        "metadata": {
            "labels": {labels.WARM_LABEL: None},
            "annotations": {labels.DO_NOT_DISRUPT_ANNOTATION: None},
        },
        "spec": {"unschedulable": None, "taints": taints},
    }


def has_warm_marks(node: Obj) -> bool:
    """Whether the node still carries the warm pool's taint or label (its cordon and
    ``do-not-disrupt`` annotation go with them; a user's own cordon is left alone)."""
    meta = node.get("metadata") or {}
    spec = node.get("spec") or {}
    return any(t.get("key") == labels.WARM_TAINT for t in spec.get("taints") or []) or (
        labels.WARM_LABEL in (meta.get("labels") or {})
    )


def to_evict(pods_here: Sequence[Obj]) -> tuple[Obj, ...]:
    """Pods that landed on a warm node before it was cordoned (DaemonSet pods stay)."""
    return tuple(
        p
        for p in pods_here
        if not pods.is_daemonset_pod(p)
        and not pods.is_terminal(p)
        and not (p.get("metadata") or {}).get("deletionTimestamp")
    )


def next_warm_step(
    claim: NodeClaim,
    instance: Instance | None,
    node: Obj | None,
    pods_here: Sequence[Obj],
    spec: WarmPoolSpec,
    stopped_as: str | None = None,
) -> WarmStep:
    """The one next step for a warm or taken claim (see the module docstring).

    ``stopped_as`` is what the stop of the instance answered (Hibernated, or Stopped when EC2
    refused to hibernate it); unknown (after a restart), the pool's state says."""
    if claim.metadata.deletion_timestamp is not None:
        return Wait("being deleted")
    if not is_warm(claim) and activated_at(claim) is not None:
        return _taken_step(claim, instance, node)
    if not is_warm(claim):
        return Wait("not a warm claim")
    if instance is None or instance.state == "pending":
        return Wait("launching")
    if instance.state in ("shutting-down", "terminated"):
        return Wait("instance gone")
    if instance.state == "stopping":
        return Wait("stopping")
    parked = parked_state(claim)
    hibernate = spec.hibernate and instance.hibernation_configured
    if instance.state == "stopped":
        # After a restart (``stopped_as`` unknown) a parked claim keeps the state it recorded: a
        # hibernation EC2 refused stays Stopped.
        recorded = parked if parked in (STOPPED, HIBERNATED) else None
        wanted = stopped_as or recorded or (HIBERNATED if hibernate else STOPPED)
        return Wait("parked") if parked == wanted else Park(wanted, park_message(spec, wanted, instance))
    # Running.
    if node is None:
        if parked == RUNNING:
            return Retire("the parked node is gone")
        if claim.is_true(INITIALIZED):
            return Stop(instance.id, hibernate)
        return Wait("joining")
    node_name = str((node.get("metadata") or {}).get("name"))
    if not is_cordoned(node):
        return Cordon(node_name)
    if not claim.is_true(INITIALIZED) or not node_is_ready(node):
        return Wait("joining")
    landed = to_evict(pods_here)
    if landed:
        return Evict(landed)
    if not spec.stops:
        return Wait("parked") if parked == RUNNING else Park(RUNNING)
    return DeleteNode(node_name)


def park_message(spec: WarmPoolSpec, state: str, instance: Instance) -> str:
    """The ``Warm`` condition's message: why a Hibernated pool's instance was only stopped."""
    if not spec.hibernate or state != STOPPED:
        return PARKED
    if not instance.hibernation_configured:
        return (
            "stopped, not hibernated: not launched for hibernation (a serving node, or no allowed type can)"
        )
    return "stopped, not hibernated: EC2 refused to hibernate it"


def _taken_step(claim: NodeClaim, instance: Instance | None, node: Obj | None) -> WarmStep:
    """A claim taken from the pool: started until it is a Ready node; its node uncordoned."""
    if node is not None and has_warm_marks(node):
        return Uncordon(str((node.get("metadata") or {}).get("name")))
    if instance is None or not starting(claim):
        return Wait("in use")
    if instance.state == "stopped":
        return Start(instance.id)
    if instance.state == "stopping":
        return Wait("stopping; started once stopped")
    return Wait("starting")
