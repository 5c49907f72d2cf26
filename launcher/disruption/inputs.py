"""From the launcher's view of the cluster to the disruption decisions' snapshot (pure).

Reads parsed NodeClaims, Node and Pod dicts and the catalogue; writes nothing. A node belongs to
a NodeClaim by the ``jitnode.io/nodeclaim`` label or the claim's recorded node name; nodes of no
claim are foreign: never disrupted, but pods may move onto them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from launcher.disruption.decisions import NodeInfo, PodInfo
from launcher.disruption.drain import do_not_disrupt, evictable
from launcher.disruption.mark import Mark, node_mark
from launcher.disruption.podevents import recorded_pod_event
from launcher.lifecycle.decisions import node_is_ready
from launcher.model import InstanceType
from shared import labels, podaffinity, pods
from shared.api.nodeclaim import INITIALIZED, NodeClaim
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
) -> NodeInfo:
    """One node's facts; ``known_mark`` covers a mark we wrote that the informer has not shown yet.

    ``pod_event`` is the node's last pod event as the controller's tracker knows it (see
    ``podevents``); without it, the time recorded on the claim.
    """
    meta = node.get("metadata") or {}
    node_labels = {k: str(v) for k, v in (meta.get("labels") or {}).items()}
    try:
        allocatable = Resources.parse((node.get("status") or {}).get("allocatable"), "status.allocatable")
    except ValidationError:
        allocatable = EMPTY
    live = [p for p in pods_here if not pods.is_terminal(p)]
    used = sum((_requests(p) for p in live), EMPTY)
    moving = tuple(
        PodInfo(
            pod_demand(p),
            ready=pod_ready(p),
            do_not_disrupt=do_not_disrupt(p),
            inter_pod_constraint=podaffinity.hard_inter_pod_constraint(p),
        )
        for p in moving_pods(live)
    )
    terminating = sum(1 for p in live if evictable(p) and (p.get("metadata") or {}).get("deletionTimestamp"))
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
        do_not_disrupt=do_not_disrupt(node) or replacing,
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
    )


def starting_pods(all_pods: Iterable[Obj], pending: Iterable[str]) -> frozenset[str]:
    """Uids of pods that exist and are not Ready yet (pending or starting), plus pending demand."""
    out = set(pending)
    for pod in all_pods:
        if not pods.is_terminal(pod) and not pod_ready(pod):
            out.add(pods.pod_uid(pod))
    return frozenset(out)
