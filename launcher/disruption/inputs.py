"""From the launcher's view of the cluster to the disruption decisions' snapshot (pure).

Reads parsed NodeClaims, Node and Pod dicts and the catalogue; writes nothing. A node belongs to
a NodeClaim by the ``jitnode.io/nodeclaim`` label or the claim's recorded node name; nodes of no
claim are foreign: never disrupted, but pods may move onto them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from launcher.disruption.decisions import NodeInfo, PodInfo
from launcher.disruption.donotdisrupt import node_protection, pod_protection
from launcher.disruption.drain import evictable
from launcher.disruption.mark import Mark, node_mark
from launcher.disruption.podevents import present_pods, recorded_pod_event
from launcher.lifecycle.decisions import node_is_ready
from launcher.model import InstanceType
from launcher.podindex import PodIndex
from shared import labels, podaffinity, pods
from shared.api.nodeclaim import DRIFTED, INITIALIZED, NodeClaim
from shared.demand import PodDemand
from shared.errors import ValidationError
from shared.resources import EMPTY, Resources
from shared.taints import Taint, parse_taints

Obj = Mapping[str, Any]


def pod_ready(pod: Obj) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def pod_demand(pod: Obj, first_seen: float = 0.0) -> PodDemand:
    """The pod's needs as a planner demand; a pod we cannot read fits nowhere (stays put)."""
    try:
        return PodDemand.from_pod(pod, "unschedulable", first_seen)
    except ValidationError:
        meta = pod.get("metadata") or {}
        return PodDemand(
            uid=pods.pod_uid(pod),
            namespace=str(meta.get("namespace") or "default"),
            name=str(meta.get("name") or ""),
            requests=EMPTY,
            requirements=(),
            tolerations=(),
            priority=0,
            owner_kind=None,
            owner_name=None,
            first_seen=first_seen,
            reason="unschedulable",
        )


def moving_pods(pods_here: Iterable[Obj]) -> list[Obj]:
    """Pods a drain would have to move (evictable and not already leaving)."""
    return [p for p in pods_here if evictable(p) and not (p.get("metadata") or {}).get("deletionTimestamp")]


def claims_by_node(claims: Iterable[NodeClaim], nodes: Mapping[str, Obj]) -> dict[str, NodeClaim]:
    by_name = {c.name: c for c in claims}
    out: dict[str, NodeClaim] = {}
    for claim in by_name.values():
        if claim.status.node_name:
            out[claim.status.node_name] = claim
    for name, node in nodes.items():
        claim_name = ((node.get("metadata") or {}).get("labels") or {}).get(labels.NODECLAIM)
        if claim_name in by_name:
            out[name] = by_name[claim_name]
    return out


def offering_price(types: Mapping[str, InstanceType], node_labels: Mapping[str, str]) -> float | None:
    """What the node costs per hour, from its instance type, zone and capacity type labels."""
    instance_type = types.get(node_labels.get(labels.INSTANCE_TYPE, ""))
    if instance_type is None:
        return None
    zone = node_labels.get(labels.ZONE)
    capacity = node_labels.get(labels.CAPACITY_TYPE)
    prices = [
        o.price
        for o in instance_type.offerings
        if (zone is None or o.zone == zone) and (capacity is None or o.capacity_type == capacity)
    ]
    return min(prices) if prices else None


def _taints(node: Obj) -> tuple[Taint, ...]:
    try:
        return parse_taints((node.get("spec") or {}).get("taints") or [], "spec.taints")
    except ValidationError:
        return ()


def _requests(pod: Obj) -> Resources:
    try:
        return pods.effective_requests(pod)
    except ValidationError:
        return EMPTY


@dataclass(frozen=True)
class NodePods:
    """What a node's pods make of its :class:`NodeInfo`, and the uids that keep it from being
    empty (``podevents.present_pods``). Reading a pod's needs is most of a disruption round's
    cost, so the controller keeps this per node until a pod there changes; it also stops being
    valid when a pod's do-not-disrupt duration runs out (``expires``)."""

    used: Resources
    moving: tuple[PodInfo, ...]
    terminating: int
    present: frozenset[str]
    computed_at: datetime
    expires: datetime | None = None

    def valid_at(self, now: datetime) -> bool:
        return self.computed_at <= now and (self.expires is None or now < self.expires)


# A moving pod's needs and hard inter-pod constraint: the costly part of its PodInfo.
Needs = tuple[PodDemand, str | None]


def pod_needs(pod: Obj) -> Needs:
    return pod_demand(pod), podaffinity.hard_inter_pod_constraint(pod)


def node_pods(
    pods_here: Sequence[Obj],
    now: datetime,
    *,
    used: Resources | None = None,
    needs: Callable[[Obj], Needs] = pod_needs,
) -> NodePods:
    """The :class:`NodePods` of a node holding ``pods_here``, at ``now``; ``used`` (the sum of
    the unfinished pods' requests) and ``needs`` may come from what is already known."""
    live = [p for p in pods_here if not pods.is_terminal(p)]
    moving: list[PodInfo] = []
    expires: datetime | None = None
    for p in moving_pods(live):
        protection = pod_protection(p, now)  # reads status.startTime for durations
        if protection.active and protection.until is not None:
            expires = protection.until if expires is None else min(expires, protection.until)
        demand, constraint = needs(p)
        moving.append(
            PodInfo(
                demand, ready=pod_ready(p), do_not_disrupt=protection.active, inter_pod_constraint=constraint
            )
        )
    return NodePods(
        used=used if used is not None else sum((_requests(p) for p in live), EMPTY),
        moving=tuple(moving),
        terminating=sum(
            1 for p in live if evictable(p) and (p.get("metadata") or {}).get("deletionTimestamp")
        ),
        present=present_pods(pods_here),
        computed_at=now,
        expires=expires,
    )


class NodePodsCache:
    """Each node's :class:`NodePods`, recomputed only when a pod there changed (the pod index's
    generation of the node) or a pod's do-not-disrupt duration ran out: a disruption round then
    costs O(nodes), not O(pods)."""

    def __init__(self, index: PodIndex) -> None:
        self._index = index
        self._held: dict[str, tuple[int, NodePods, dict[str, tuple[tuple[Any, ...], Needs]]]] = {}

    def is_current(self, node: str, now: datetime) -> bool:
        """Whether :meth:`get` would answer from what it holds (no pod there changed since)."""
        held = self._held.get(node)
        return held is not None and held[0] == self._index.generation(node) and held[1].valid_at(now)

    def get(self, node: str, now: datetime) -> NodePods:
        if self.is_current(node, now):
            return self._held[node][1]
        held = self._held.get(node)
        # A pod's needs are read again only if what they are read from changed: a status update
        # (restart count, Ready) re-reads nothing.
        previous = held[2] if held is not None else {}
        known: dict[str, tuple[tuple[Any, ...], Needs]] = {}

        def needs(pod: Obj) -> Needs:
            key, inputs = pods.pod_key(pod), _needs_inputs(pod)
            kept = previous.get(key)
            value = kept[1] if kept is not None and kept[0] == inputs else pod_needs(pod)
            known[key] = (inputs, value)
            return value

        generation = self._index.generation(node)
        summary = node_pods(self._index.on_node(node), now, used=self._index.requested(node), needs=needs)
        self._held[node] = (generation, summary, known)
        return summary

    def keep_only(self, nodes: Collection[str]) -> None:
        """Forget nodes not in ``nodes`` (deleted ones)."""
        for gone in [n for n in self._held if n not in nodes]:
            del self._held[gone]


def _needs_inputs(pod: Obj) -> tuple[Any, ...]:
    """Every field :func:`pod_needs` reads (spec, identity, labels, owner, an in-place resize)."""
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    conditions = status.get("conditions")
    resizing = (
        [c for c in conditions if isinstance(c, Mapping) and c.get("type") == "PodResizePending"]
        if isinstance(conditions, list)
        else conditions
    )
    return (
        pod.get("spec"),
        meta.get("uid"),
        meta.get("name"),
        meta.get("namespace"),
        meta.get("labels"),
        meta.get("ownerReferences"),
        status.get("containerStatuses"),
        status.get("resize"),
        resizing,
    )


def node_info(
    node: Obj,
    claim: NodeClaim | None,
    pods_here: Sequence[Obj],
    types: Mapping[str, InstanceType],
    now: datetime,
    *,
    known_mark: Mark | None = None,
    replacing: bool = False,
    pod_event: datetime | None = None,
    summary: NodePods | None = None,
) -> NodeInfo:
    """One node's facts; ``known_mark`` covers a mark we wrote that the informer has not shown yet.

    ``pod_event`` is the node's last pod event as the controller's tracker knows it (see
    ``podevents``); without it, the time recorded on the claim. ``summary``: what
    :func:`node_pods` made of ``pods_here`` earlier (reused while still valid).
    """
    meta = node.get("metadata") or {}
    node_labels = {k: str(v) for k, v in (meta.get("labels") or {}).items()}
    try:
        allocatable = Resources.parse((node.get("status") or {}).get("allocatable"), "status.allocatable")
    except ValidationError:
        allocatable = EMPTY
    summary = summary if summary is not None and summary.valid_at(now) else node_pods(pods_here, now)
    used, moving, terminating = summary.used, summary.moving, summary.terminating
    deleting = bool(meta.get("deletionTimestamp"))
    info = NodeInfo(
        name=str(meta.get("name")),
        labels=node_labels,
        taints=_taints(node),
        allocatable=allocatable,
        used=used,
        pods=moving,
        terminating=terminating,
        schedulable=node_is_ready(node) and not (node.get("spec") or {}).get("unschedulable"),
        do_not_disrupt=node_protection(node).active or replacing,
        mark=node_mark(node, now) or known_mark,
        deleting=deleting,
        price=offering_price(types, node_labels),
        instance_type=node_labels.get(labels.INSTANCE_TYPE),
    )
    if claim is None:
        return info
    return replace(
        info,
        nodeclaim=claim.name,
        nodepool=claim.nodepool,
        created=claim.metadata.creation_timestamp,
        last_pod_event=pod_event if pod_event is not None else recorded_pod_event(claim),
        expire_after=claim.expire_after,
        planned_pods=frozenset(claim.pods),
        deleting=deleting or claim.metadata.deletion_timestamp is not None,
        initialized=claim.is_true(INITIALIZED),
        drifted=_drifted(claim),
        grace_period=claim.termination_grace_period,
    )


def _drifted(claim: NodeClaim) -> str | None:
    """The claim's ``Drifted`` condition as ``"<reason>: <message>"`` when True, else None."""
    condition = claim.condition(DRIFTED)
    if condition is None or not condition.is_true:
        return None
    return f"{condition.reason}: {condition.message}" if condition.message else condition.reason


def starting_pods(all_pods: Iterable[Obj], pending: Iterable[str]) -> frozenset[str]:
    """Uids of pods that exist and are not Ready yet (pending or starting), plus pending demand."""
    out = set(pending)
    for pod in all_pods:
        if not pods.is_terminal(pod) and not pod_ready(pod):
            out.add(pods.pod_uid(pod))
    return frozenset(out)
