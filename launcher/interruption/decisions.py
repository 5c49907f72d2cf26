"""What an interruption event asks of the launcher, and the replacements it needs (pure).

:func:`respond` maps an event to a :class:`Response`: replace the instance's node by a
deadline, only report it, or ignore it.

- **Spot interruption warning**: replace, drained by the reclaim time (two minutes after the
  warning). The offering (instance type, zone, Spot) goes into the unavailable-offerings cache,
  so the replacement, and every plan for the cache's TTL, avoids it, as Karpenter does.
- **Rebalance recommendation**: advisory. ``act`` replaces the node like a graceful disruption
  (no deadline: it waits for Ready replacements as long as that takes); ``report`` only logs and
  records an Event, like Karpenter's default.
- **Scheduled change** (AWS Health): replace, drained by the maintenance's start time.
- **State change** to stopping, stopped, shutting-down or terminated: the instance is going or
  gone, so its node is drained at once; pending and running are nothing to act on.

A deadline is never less than ``min_drain`` from now: a notice that arrives late still gives the
pods one round of eviction (the controllers that own them re-create them at once rather than
when the node is found gone) before the NodeClaim is deleted.

:func:`replacement_actions` then sizes the nodes' replacements: their pods are placed first fit
on other Ready nodes (after pending pods took their room), and those left get NodeClaims planned
without the unavailable offerings. Nothing here reads a clock or the cluster.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from launcher.disruption.decisions import Action, NodeInfo, Snapshot, pod_fits
from launcher.disruption.mark import INTERRUPTED
from launcher.interruption.messages import (
    Ignored,
    InterruptionEvent,
    RebalanceRecommendation,
    ScheduledChange,
    SpotInterruption,
    StateChange,
)
from launcher.planner import PlannedClaim, plan
from launcher.planner.offerings import OfferingKey
from shared import labels
from shared.demand import PodDemand
from shared.resources import Resources


class Kind(enum.StrEnum):
    REPLACE = "replace"  # cordon, launch replacements, drain (by the deadline, if any)
    REPORT = "report"  # log and record an Event only
    IGNORE = "ignore"  # nothing to do


class RebalancePolicy(enum.StrEnum):
    ACT = "act"
    REPORT = "report"


@dataclass(frozen=True)
class Policy:
    rebalance: RebalancePolicy = RebalancePolicy.REPORT
    min_drain: timedelta = timedelta(seconds=30)


@dataclass(frozen=True)
class Response:
    kind: Kind
    event: str  # the Event reason users see: SpotInterrupted, InstanceStopping...
    message: str
    deadline: datetime | None = None
    # Whether the interrupted offering is marked unavailable (Spot capacity being reclaimed).
    offering_unavailable: bool = False


def respond(event: InterruptionEvent, policy: Policy, now: datetime) -> Response:
    """What to do about ``event`` (the same for each of its instances)."""

    def by(deadline: datetime) -> datetime:
        return max(deadline, now + policy.min_drain)

    match event:
        case SpotInterruption():
            return Response(
                Kind.REPLACE,
                "SpotInterrupted",
                f"Spot interruption warning: instance {event.action} at {_at(event.action_time)}",
                by(event.action_time),
                offering_unavailable=True,
            )
        case RebalanceRecommendation():
            message = "EC2 rebalance recommendation: elevated risk of Spot interruption"
            if policy.rebalance is RebalancePolicy.ACT:
                return Response(Kind.REPLACE, "SpotRebalanceRecommendation", message)
            return Response(Kind.REPORT, "SpotRebalanceRecommendation", message)
        case ScheduledChange():
            start = event.start_time or now
            return Response(
                Kind.REPLACE,
                "InstanceScheduledChange",
                f"AWS Health scheduled change {event.event_type} from {_at(start)}",
                by(start),
            )
        case StateChange():
            if not event.ending:
                return Response(Kind.IGNORE, "InstanceStateChange", f"instance is {event.state}")
            reason = "InstanceStopping" if event.state in ("stopping", "stopped") else "InstanceTerminating"
            return Response(Kind.REPLACE, reason, f"instance is {event.state}", by(event.time))
        case Ignored():
            return Response(Kind.IGNORE, "Ignored", event.why)


def offering_of(node_labels: Mapping[str, str]) -> OfferingKey | None:
    """The node's offering from its well-known labels; None when one is missing."""
    instance_type = node_labels.get(labels.INSTANCE_TYPE)
    zone = node_labels.get(labels.ZONE)
    capacity = node_labels.get(labels.CAPACITY_TYPE)
    if not instance_type or not zone or not capacity:
        return None
    return OfferingKey(instance_type, zone, capacity)


def replacement_actions(
    targets: Sequence[tuple[NodeInfo, Response]],
    snapshot: Snapshot,
    unavailable: Collection[OfferingKey] = frozenset(),
) -> tuple[Action, ...]:
    """The forced disruptions of the ``targets`` nodes, with replacements for the pods that fit
    nowhere else (one pass, so two interrupted nodes never count on the same free room).

    Every target must be managed (have a NodeClaim and a NodePool). Every pod counts,
    do-not-disrupt ones included: the instance goes whatever they say. Pods with a required
    inter-pod constraint get replacements of their own (first fit does not model them). A node
    already being disrupted has its replacements: it gets none here.
    """
    leaving = {node.name for node, _ in targets}
    destinations = [
        n
        for n in snapshot.nodes
        if n.name not in leaving and n.schedulable and n.initialized and not n.disrupting
    ]
    free = {n.name: n.free for n in destinations}
    for pod in sorted(snapshot.pending, key=lambda p: (-p.priority, p.first_seen, p.uid)):
        _place(pod, destinations, free)  # pending pods first: moved pods get what is left
    excluded = frozenset(unavailable)
    actions: list[Action] = []
    for node, response in targets:
        moving = () if node.disrupting else node.pods
        unplaced = [
            info.demand
            for info in sorted(moving, key=lambda p: (-p.demand.priority, p.uid))
            if info.inter_pod_constraint or _place(info.demand, destinations, free) is None
        ]
        claims: tuple[PlannedClaim, ...] = ()
        note = f"its {len(moving)} pods fit on other nodes"
        if unplaced:
            result = plan(
                demand={p.uid: p for p in unplaced},
                pools=list(snapshot.pools.values()),
                types=list(snapshot.types.values()),
                is_unavailable=lambda t, z, c: OfferingKey(t, z, c) in excluded,
                topology_aware=False,
            )
            claims = tuple(result.claims)
            note = f"{len(claims)} replacement(s) for {len(unplaced)} pods"
            if result.unschedulable:
                note += f"; {len(result.unschedulable)} pods have no replacement"
        message = f"{response.event}: {response.message}; {note}"
        actions.append(
            Action(node.name, str(node.nodeclaim), str(node.nodepool), INTERRUPTED, message, claims)
        )
    return tuple(actions)


def _place(pod: PodDemand, nodes: Sequence[NodeInfo], free: dict[str, Resources]) -> str | None:
    for node in nodes:
        if pod_fits(pod, node, free[node.name]):
            free[node.name] = free[node.name] - pod.requests
            return node.name
    return None


def _at(time: datetime) -> str:
    return time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
