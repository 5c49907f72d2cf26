"""Pods that must share a node (required pod affinity by hostname), planned as one pod (pure).

A pod whose affinity term's key is per node (``kubernetes.io/hostname``) runs only on a node
already holding a pod that matches all its terms. A new node holds none, so such a pod can be
served by a new node only together with a pending pod it may join:

- another workload's pending pod matching its terms (the *anchor*): the pod, and every pod of
  its terms, ride on the anchor's node;
- else, when no pod matching the terms runs anywhere and the pod matches them itself, it is the
  first of its group (kube-scheduler lets it go anywhere) and the rest of its group must follow
  it onto that node: the group shares one node.

Each such set becomes one :class:`~shared.demand.PodDemand` (a *bundle*) whose requests are the
sum of its members', whose node requirements are theirs intersected and whose tolerations are
those all of them share, so the packer and the exact solver place it like any pod; the plan
lists its members on the claim. A member that cannot share the anchor's node (requirements that
do not intersect) or that needs a pod running on an existing node is reported unschedulable: a
new node cannot serve it. A bundle too large for any instance type is reported by the planner
like any pod that fits no type.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from launcher.planner.colocation import Colocation
from shared.demand import PodDemand
from shared.podaffinity import PodAffinityTerm
from shared.requirements import Requirements
from shared.resources import total

PREFIX = "bundle/"


@dataclass(frozen=True)
class Bundles:
    """The bundles made: their demands, their members, and the pods no bundle could take."""

    demand: dict[str, PodDemand] = field(default_factory=dict)  # bundle uid -> the bundle
    members: dict[str, tuple[str, ...]] = field(default_factory=dict)  # bundle uid -> member uids
    unschedulable: dict[str, str] = field(default_factory=dict)  # member uid -> why


def bundle(
    pods: Sequence[PodDemand],
    per_node_keys: frozenset[str],
    running_targets: Mapping[tuple[PodAffinityTerm, ...], bool],
    rules: Mapping[str, Colocation],
) -> tuple[Bundles, dict[str, Colocation]]:
    """Bundle the pods (in plan order) with affinity by a per-node key (module docstring).

    ``running_targets``: per set of affinity terms, whether a running pod matches them all.
    Returns the bundles and the per-node rules by uid, with each bundle's the union of its
    members'.
    """
    out = Bundles()
    anchors: dict[str, list[PodDemand]] = {}  # anchor uid -> members, anchor first
    by_uid = {p.uid: p for p in pods}
    for pod in pods:
        if not any(t.topology_key in per_node_keys for t in pod.affinity):
            continue
        anchor = _anchor(pod, pods)
        if anchor is None:
            if running_targets.get(pod.affinity) or not _matches_all(pod.affinity, pod):
                where = "run only on existing nodes" if running_targets.get(pod.affinity) else "are nowhere"
                out.unschedulable[pod.uid] = (
                    f"required pod affinity by {_per_node_key(pod, per_node_keys)}: the pods it must share a "
                    f"node with {where}, and a new node holds none"
                )
                continue
            anchor = next(p for p in pods if p.affinity == pod.affinity and _matches_all(pod.affinity, p))
        anchors.setdefault(anchor.uid, [anchor])
        if pod.uid != anchor.uid:
            anchors[anchor.uid].append(pod)
    merged_rules = dict(rules)
    for anchor_uid, members in anchors.items():
        if len(members) < 2:
            continue
        kept = [members[0]]
        requirements = members[0].requirements
        for member in members[1:]:
            both = tuple(
                joint for a in requirements for b in member.requirements if (joint := a & b).is_satisfiable()
            )
            if not both:
                out.unschedulable[member.uid] = (
                    f"required pod affinity: its node affinity or domain cannot be met on the node of "
                    f"{by_uid[anchor_uid].key}, which it must share"
                )
                continue
            requirements = _dedupe(both)
            kept.append(member)
        if len(kept) < 2:
            continue
        uid = PREFIX + anchor_uid
        out.demand[uid] = _combined(uid, kept, requirements)
        out.members[uid] = tuple(m.uid for m in kept)
        combined = Colocation()
        for member in kept:
            combined |= merged_rules.pop(member.uid, Colocation())
        if combined:
            merged_rules[uid] = combined
    return out, merged_rules


def _anchor(pod: PodDemand, pods: Sequence[PodDemand]) -> PodDemand | None:
    """The first pending pod of another set of terms matching all of the pod's terms."""
    return next((p for p in pods if p.affinity != pod.affinity and _matches_all(pod.affinity, p)), None)


def _matches_all(terms: tuple[PodAffinityTerm, ...], pod: PodDemand) -> bool:
    return bool(terms) and all(t.matches(pod.namespace, pod.labels) for t in terms)


def _per_node_key(pod: PodDemand, per_node_keys: frozenset[str]) -> str:
    return next(t.topology_key for t in pod.affinity if t.topology_key in per_node_keys)


def _dedupe(alternatives: Sequence[Requirements]) -> tuple[Requirements, ...]:
    return tuple(dict.fromkeys(alternatives))


def _combined(uid: str, members: Sequence[PodDemand], requirements: tuple[Requirements, ...]) -> PodDemand:
    first = members[0]
    common = tuple(t for t in first.tolerations if all(t in m.tolerations for m in members[1:]))
    return replace(
        first,
        uid=uid,
        requests=total([m.requests for m in members]),
        requirements=requirements,
        tolerations=common,
        priority=max(m.priority for m in members),
        first_seen=min(m.first_seen for m in members),
        reason="unschedulable" if any(m.reason == "unschedulable" for m in members) else "predicted",
        exclusive=None,
        exclusive_zone=False,
    )
