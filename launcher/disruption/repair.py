"""Node repair: which unhealthy nodes to replace, and when (pure).

Karpenter's ``NodeRepair``: a managed node whose Node condition has matched a repair policy
(``Ready`` ``False`` or ``Unknown``, ``DiskPressure`` ``True``, ...) for longer than the policy's
toleration is replaced, forcefully: disruption budgets, ``do-not-disrupt`` and PodDisruptionBudgets
do not hold it back. One rule does: when more than ``max_unhealthy_percent`` of a NodePool's nodes
(rounded up, like a PDB's percentage, so 1 of 3 may go) are unhealthy, none of them is repaired.
Something is then wrong beyond one node (a bad AMI, a network outage), and replacing nodes would
only churn.

The clock of a node starts at its condition's ``lastTransitionTime`` (without one, at the Node's
creation). Of several matching policies, the one due first names the repair. A node already
being disrupted for another reason is repaired too (its drain could wait forever for pods that
a dead kubelet never removes); one being repaired, or disrupted by a deadline (an interruption
notice), is left to it. Repair is opt-in: per NodePool (``spec.disruption.repair``) or, for
pools that say nothing, in the launcher's configuration. :func:`repair_actions` turns the
repairs into disruption actions whose replacement NodeClaims hold the pods that fit on no other
node.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from launcher.disruption.decisions import Action, NodeInfo, Snapshot, pod_fits
from launcher.disruption.mark import Mark
from launcher.disruption.repairpolicy import DEFAULT_MAX_UNHEALTHY_PERCENT, RepairPolicy
from launcher.planner import PlannedClaim, plan
from shared.api._fields import format_time, parse_time
from shared.api.durations import format_duration
from shared.api.nodepool import REPAIR_ENABLED
from shared.demand import PodDemand
from shared.resources import Resources

UNHEALTHY: Final = "Unhealthy"  # the disruption reason: mark, Events, logs and metrics
Obj = Mapping[str, Any]


def repair_enabled(pool_setting: str | None, default: bool) -> bool:
    """A NodePool's ``spec.disruption.repair`` wins; unset, the launcher's ``repair.enabled``."""
    if pool_setting is None:
        return default
    return pool_setting == REPAIR_ENABLED


@dataclass(frozen=True)
class NodeCondition:
    type: str
    status: str
    since: datetime | None  # lastTransitionTime


@dataclass(frozen=True)
class NodeHealth:
    """A node as repair sees it; ``mark`` is its disruption mark, if it is being disrupted."""

    name: str
    nodeclaim: str | None
    nodepool: str | None
    conditions: tuple[NodeCondition, ...] = ()
    created: datetime | None = None
    mark: Mark | None = None
    deleting: bool = False

    @property
    def managed(self) -> bool:
        return self.nodeclaim is not None and self.nodepool is not None


def _time(value: object) -> datetime | None:
    try:
        return parse_time(value)
    except ValueError:
        return None


def node_health(
    node: Obj,
    *,
    nodeclaim: str | None,
    nodepool: str | None,
    mark: Mark | None = None,
    deleting: bool = False,
) -> NodeHealth:
    """Read ``status.conditions`` (type, status, lastTransitionTime) and ``metadata.creationTimestamp``."""
    meta = node.get("metadata") or {}
    raw = (node.get("status") or {}).get("conditions") or []
    conditions = tuple(
        NodeCondition(str(c.get("type")), str(c.get("status")), _time(c.get("lastTransitionTime")))
        for c in raw
        if isinstance(c, Mapping) and c.get("type")
    )
    return NodeHealth(
        name=str(meta.get("name")),
        nodeclaim=nodeclaim,
        nodepool=nodepool,
        conditions=conditions,
        created=_time(meta.get("creationTimestamp")),
        mark=mark,
        deleting=deleting or bool(meta.get("deletionTimestamp")),
    )


@dataclass(frozen=True)
class Unhealthy:
    """The policy a node matches and since when; it is due for repair at ``due``."""

    policy: RepairPolicy
    since: datetime

    @property
    def due(self) -> datetime:
        return self.since + self.policy.toleration


def unhealthy(node: NodeHealth, policies: Iterable[RepairPolicy]) -> Unhealthy | None:
    """The matching policy due first, or None when the node matches none (it is healthy)."""
    by_type = {c.type: c for c in node.conditions}
    found: Unhealthy | None = None
    for policy in policies:
        condition = by_type.get(policy.condition)
        if condition is None or condition.status != policy.status:
            continue
        since = condition.since or node.created
        if since is None:
            continue  # no time to count from: never due, but it still counts as unhealthy below
        candidate = Unhealthy(policy, since)
        if found is None or candidate.due < found.due:
            found = candidate
    return found


def matches_any(node: NodeHealth, policies: Iterable[RepairPolicy]) -> bool:
    by_type = {c.type: c.status for c in node.conditions}
    return any(by_type.get(p.condition) == p.status for p in policies)


def unhealthy_limit(total: int, percent: int) -> int:
    """How many of ``total`` nodes may be unhealthy with repair still acting (rounded up)."""
    return math.ceil(total * percent / 100)


@dataclass(frozen=True)
class Repair:
    node: str
    nodeclaim: str
    nodepool: str
    condition: str
    status: str
    since: datetime
    toleration: timedelta

    @property
    def message(self) -> str:
        return (
            f"{self.condition} has been {self.status} since {format_time(self.since)}, "
            f"longer than {format_duration(self.toleration)}"
        )


@dataclass(frozen=True)
class RepairDecisions:
    repairs: tuple[Repair, ...] = ()
    blocked: Mapping[str, str] = field(default_factory=dict)  # node -> why it is not repaired
    # When the first unhealthy node not yet due becomes due: decide again then.
    recheck_at: datetime | None = None


def decide_repairs(
    nodes: Sequence[NodeHealth],
    *,
    enabled: Callable[[str], bool],
    policies: Sequence[RepairPolicy],
    now: datetime,
    max_unhealthy_percent: int = DEFAULT_MAX_UNHEALTHY_PERCENT,
) -> RepairDecisions:
    """The nodes to repair now (see the module docstring); ``enabled`` answers per NodePool."""
    managed = [n for n in nodes if n.managed and enabled(str(n.nodepool))]
    totals: dict[str, int] = {}
    sick: dict[str, int] = {}
    for node in managed:
        pool = str(node.nodepool)
        totals[pool] = totals.get(pool, 0) + 1
        if matches_any(node, policies):
            sick[pool] = sick.get(pool, 0) + 1
    repairs: list[Repair] = []
    blocked: dict[str, str] = {}
    upcoming: list[datetime] = []
    for node in sorted(managed, key=lambda n: n.name):
        found = unhealthy(node, policies)
        if found is None or node.deleting or _bounded(node.mark):
            continue  # healthy, or already going by a deadline
        if now < found.due:
            upcoming.append(found.due)
            continue
        pool = str(node.nodepool)
        limit = unhealthy_limit(totals[pool], max_unhealthy_percent)
        if sick[pool] > limit:
            blocked[node.name] = (
                f"{sick[pool]} of {totals[pool]} nodes of nodepool {pool} are unhealthy, more than "
                f"{max_unhealthy_percent}% ({limit}): repair waits"
            )
        else:
            policy = found.policy
            repairs.append(
                Repair(
                    node.name,
                    str(node.nodeclaim),
                    pool,
                    policy.condition,
                    policy.status,
                    found.since,
                    policy.toleration,
                )
            )
    return RepairDecisions(tuple(repairs), blocked, min(upcoming, default=None))


def _bounded(mark: Mark | None) -> bool:
    """Being repaired, or disrupted by a deadline (an interruption): nothing for repair to add."""
    return mark is not None and (mark.reason == UNHEALTHY or mark.deadline is not None)


def repair_actions(
    repairs: Iterable[Repair], snapshot: Snapshot, busy: Collection[str] = ()
) -> tuple[Action, ...]:
    """Disruption actions for ``repairs``, skipping nodes in ``busy`` (acted on this round).

    The pods of each node are placed first fit on other Ready, schedulable nodes not being
    disrupted, after pending pods took their room; those left over get replacement NodeClaims.
    """
    infos = {n.name: n for n in snapshot.nodes}
    chosen = [r for r in repairs if r.node not in busy and r.node in infos]
    leaving = set(busy) | {r.node for r in chosen}
    destinations = [
        n
        for n in snapshot.nodes
        if n.schedulable and n.initialized and not n.disrupting and n.name not in leaving
    ]
    free = {n.name: n.free for n in destinations}
    for pod in sorted(snapshot.pending, key=lambda p: (-p.priority, p.first_seen, p.uid)):
        _place(pod, destinations, free)
    actions: list[Action] = []
    for repair in chosen:
        info = infos[repair.node]
        moving = () if info.disrupting else info.pods  # a disrupted node has its replacements
        unplaced = [
            p.demand
            for p in sorted(moving, key=lambda p: p.uid)
            if _place(p.demand, destinations, free) is None
        ]
        replacements, note = _replacements(unplaced, snapshot)
        actions.append(
            Action(
                repair.node,
                repair.nodeclaim,
                repair.nodepool,
                UNHEALTHY,
                f"{repair.message}; {note}",
                replacements,
            )
        )
    return tuple(actions)


def _place(pod: PodDemand, nodes: Sequence[NodeInfo], free: dict[str, Resources]) -> str | None:
    for node in nodes:
        if pod_fits(pod, node, free[node.name]):
            free[node.name] = free[node.name] - pod.requests
            return node.name
    return None


def _replacements(pods: Sequence[PodDemand], snapshot: Snapshot) -> tuple[tuple[PlannedClaim, ...], str]:
    if not pods:
        return (), "its pods fit on other nodes"
    result = plan(
        demand={p.uid: p for p in pods},
        pools=list(snapshot.pools.values()),
        types=list(snapshot.types.values()),
        topology_aware=False,
    )
    note = f"{len(result.claims)} replacement(s) for {len(pods)} pods"
    if result.unschedulable:
        note += f"; {len(result.unschedulable)} pods have no replacement"
    return tuple(result.claims), note
