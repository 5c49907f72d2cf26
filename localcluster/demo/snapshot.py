"""What the demo shows at one instant, built from plain API objects (pure).

One snapshot per poll: the Deployment's pods by state, jitnode's NodeClaims with their phase and
instance type, the Nodes jitnode launched, and what they cost per hour. The live view draws it,
the plain log prints what changed between two of them, and the timeline looks for milestones.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from shared import labels
from shared.api.nodeclaim import LAUNCHED, Phase
from shared.pods import is_bound, unschedulable_condition

# USD per hour for (instance type, capacity type); None when no price is known.
PriceOf = Callable[[str, str], float | None]


@dataclass(frozen=True)
class ClaimView:
    name: str
    phase: str
    instance_type: str | None = None
    capacity_type: str | None = None
    instance_id: str | None = None


@dataclass(frozen=True)
class NodeView:
    name: str
    ready: bool
    instance_type: str | None = None
    capacity_type: str | None = None
    deleting: bool = False


@dataclass(frozen=True)
class Snapshot:
    """The cluster as the demo sees it (see the module docstring)."""

    pods_total: int = 0
    pods_pending: int = 0  # not yet bound to a node
    pods_unschedulable: int = 0  # the scheduler said no: what the extender reports as demand
    pods_running: int = 0
    claims: tuple[ClaimView, ...] = ()
    nodes: tuple[NodeView, ...] = ()
    cost_per_hour: float = 0.0

    def claims_by_phase(self) -> dict[str, int]:
        counts = Counter(c.phase for c in self.claims)
        return {phase.value: counts[phase.value] for phase in Phase if counts[phase.value]}

    def instance_types(self) -> dict[str, int]:
        """Instance types of the launched claims, with counts, most common first."""
        counts = Counter(c.instance_type for c in self.claims if c.instance_type)
        return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))

    @property
    def nodes_ready(self) -> int:
        return sum(1 for n in self.nodes if n.ready and not n.deleting)

    @property
    def launched(self) -> bool:
        """Some instance exists: a claim has one, or a Node (which only an instance can register)."""
        return any(c.instance_id for c in self.claims) or bool(self.nodes)


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _status(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    status = obj.get("status")
    return status if isinstance(status, Mapping) else {}


def _conditions(obj: Mapping[str, Any]) -> dict[str, str]:
    raw = _status(obj).get("conditions")
    if not isinstance(raw, list):
        return {}
    return {str(c.get("type")): str(c.get("status")) for c in raw if isinstance(c, Mapping)}


def claim_phase(claim: Mapping[str, Any]) -> str:
    """The claim's :class:`~shared.api.nodeclaim.Phase` from its conditions, as the CLI prints it."""
    if _meta(claim).get("deletionTimestamp"):
        return Phase.TERMINATING.value
    conditions = _conditions(claim)
    if conditions.get("Ready") == "True" or conditions.get("Initialized") == "True":
        return Phase.READY.value
    if conditions.get("Registered") == "True":
        return Phase.REGISTERED.value
    if conditions.get(LAUNCHED) == "True" or _status(claim).get("instanceID"):
        return Phase.LAUNCHED.value
    return Phase.PENDING.value


def claim_view(claim: Mapping[str, Any]) -> ClaimView:
    claim_labels = _meta(claim).get("labels") or {}
    instance_id = _status(claim).get("instanceID")
    return ClaimView(
        name=str(_meta(claim).get("name", "")),
        phase=claim_phase(claim),
        instance_type=claim_labels.get(labels.INSTANCE_TYPE),
        capacity_type=claim_labels.get(labels.CAPACITY_TYPE),
        instance_id=instance_id if isinstance(instance_id, str) and instance_id else None,
    )


def node_view(node: Mapping[str, Any]) -> NodeView:
    node_labels = _meta(node).get("labels") or {}
    return NodeView(
        name=str(_meta(node).get("name", "")),
        ready=_conditions(node).get("Ready") == "True",
        instance_type=node_labels.get(labels.INSTANCE_TYPE),
        capacity_type=node_labels.get(labels.CAPACITY_TYPE),
        deleting=bool(_meta(node).get("deletionTimestamp")),
    )


def is_jitnode_node(node: Mapping[str, Any]) -> bool:
    """A Node jitnode launched: it carries the NodePool label the launcher sets."""
    return labels.NODEPOOL in (_meta(node).get("labels") or {})


def build_snapshot(
    pods: Iterable[Mapping[str, Any]],
    claims: Iterable[Mapping[str, Any]],
    nodes: Iterable[Mapping[str, Any]],
    price_of: PriceOf,
) -> Snapshot:
    """The snapshot of the Deployment's ``pods`` and jitnode's ``claims`` and ``nodes``.

    Pods being deleted are not counted: they are leaving, not demand. The cost is that of the
    launched claims not yet terminating, priced by instance and capacity type.
    """
    live = [p for p in pods if not _meta(p).get("deletionTimestamp")]
    claim_views = tuple(sorted((claim_view(c) for c in claims), key=lambda c: c.name))
    node_views = tuple(sorted((node_view(n) for n in nodes if is_jitnode_node(n)), key=lambda n: n.name))
    cost = 0.0
    for claim in claim_views:
        if claim.instance_type and claim.phase != Phase.TERMINATING.value:
            cost += (
                price_of(claim.instance_type, claim.capacity_type or labels.CAPACITY_TYPE_ON_DEMAND) or 0.0
            )
    return Snapshot(
        pods_total=len(live),
        pods_pending=sum(1 for p in live if not is_bound(p)),
        pods_unschedulable=sum(1 for p in live if not is_bound(p) and unschedulable_condition(p)),
        pods_running=sum(1 for p in live if _status(p).get("phase") == "Running"),
        claims=claim_views,
        nodes=node_views,
        cost_per_hour=round(cost, 4),
    )


def changes(before: Snapshot, after: Snapshot) -> list[str]:
    """One human-readable line per change from ``before`` to ``after`` (the plain log)."""
    lines: list[str] = []
    pods_before = (before.pods_total, before.pods_pending, before.pods_unschedulable, before.pods_running)
    pods_after = (after.pods_total, after.pods_pending, after.pods_unschedulable, after.pods_running)
    if pods_before != pods_after:
        lines.append(
            f"pods: {after.pods_total} total, {after.pods_pending} pending "
            f"({after.pods_unschedulable} unschedulable), {after.pods_running} running"
        )
    old_claims = {c.name: c for c in before.claims}
    new_claims = {c.name: c for c in after.claims}
    for name, claim in new_claims.items():
        old = old_claims.get(name)
        if old is None:
            lines.append(f"nodeclaim {name}: created ({claim.phase})")
        elif old.phase != claim.phase:
            lines.append(f"nodeclaim {name}: {old.phase} -> {claim.phase}")
        if claim.instance_id and (old is None or old.instance_id != claim.instance_id):
            lines.append(
                f"nodeclaim {name}: instance {claim.instance_id} "
                f"({claim.instance_type or '?'}, {claim.capacity_type or '?'})"
            )
    lines.extend(f"nodeclaim {name}: deleted" for name in sorted(old_claims.keys() - new_claims.keys()))
    old_nodes = {n.name: n for n in before.nodes}
    new_nodes = {n.name: n for n in after.nodes}
    for name, node in new_nodes.items():
        previous = old_nodes.get(name)
        if previous is None:
            lines.append(f"node {name}: registered ({node.instance_type or '?'})")
        if node.ready and (previous is None or not previous.ready):
            lines.append(f"node {name}: Ready")
        elif previous is not None and previous.ready and not node.ready:
            lines.append(f"node {name}: NotReady")
        if node.deleting and (previous is None or not previous.deleting):
            lines.append(f"node {name}: deleting")
    lines.extend(f"node {name}: deleted" for name in sorted(old_nodes.keys() - new_nodes.keys()))
    if before.cost_per_hour != after.cost_per_hour:
        lines.append(f"cost: ${after.cost_per_hour:.4f}/h")
    return lines
