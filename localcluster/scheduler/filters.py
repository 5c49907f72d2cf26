"""kube-scheduler's in-tree filter plugins, on parsed facts.

The default profile runs, in this order, NodeUnschedulable, NodeName, TaintToleration,
NodeAffinity and NodeResourcesFit (ports, volumes and pod affinity are not emulated) and stops
at the first plugin that rejects a node, so each node fails with one plugin's reasons. The
reason strings are kube-scheduler's own, because users and jitnode's launcher read them from
the pod's PodScheduled condition. Pure.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Final

from shared.resources import CPU, EPHEMERAL_STORAGE, MEMORY, PODS
from shared.taints import HARD_EFFECTS, NO_SCHEDULE, Taint, Toleration, tolerates, untolerated_taints

from .cache import NodeInfo
from .model import TAINT_UNSCHEDULABLE, NodeFacts, PodFacts

REASON_UNSCHEDULABLE: Final = "node(s) were unschedulable"
REASON_NODE_NAME: Final = "node(s) didn't match the requested node name"
REASON_NODE_AFFINITY: Final = "node(s) didn't match Pod's node affinity/selector"
REASON_TOO_MANY_PODS: Final = "Too many pods"
_UNSCHEDULABLE_TAINT: Final = Taint(key=TAINT_UNSCHEDULABLE, effect=NO_SCHEDULE)


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """Why a node was rejected; ``resolvable`` is False for UnschedulableAndUnresolvable.

    Preemption only considers nodes whose failure removing pods could fix (resolvable ones).
    """

    reasons: tuple[str, ...]
    resolvable: bool = True


def untolerated_taint_reason(taint: Taint) -> str:
    """TaintToleration's reason: ``node(s) had untolerated taint {key: value}``."""
    return f"node(s) had untolerated taint {{{taint.key}: {taint.value}}}"


def insufficient_reason(resource: str) -> str:
    return f"Insufficient {resource}"


def tolerated(tolerations: Collection[Toleration], taint: Taint) -> bool:
    return any(tolerates(t, taint) for t in tolerations)


def first_untolerated_taint(tolerations: Collection[Toleration], taints: Collection[Taint]) -> Taint | None:
    """The first NoSchedule/NoExecute taint of the node that no toleration tolerates."""
    untolerated = untolerated_taints(tolerations, taints, HARD_EFFECTS)
    return untolerated[0] if untolerated else None


def node_affinity_matches(pod: PodFacts, node: NodeFacts) -> bool:
    """nodeSelector and required node affinity (``shared.pods.node_selector_terms`` alternatives)."""
    return any(alternative.matches(node.match_labels) for alternative in pod.alternatives)


def node_unschedulable(pod: PodFacts, node: NodeFacts) -> NodeStatus | None:
    if node.unschedulable and not tolerated(pod.tolerations, _UNSCHEDULABLE_TAINT):
        return NodeStatus((REASON_UNSCHEDULABLE,), resolvable=False)
    return None


def node_name(pod: PodFacts, node: NodeFacts) -> NodeStatus | None:
    if pod.node_name and pod.node_name != node.name:
        return NodeStatus((REASON_NODE_NAME,), resolvable=False)
    return None


def taint_toleration(pod: PodFacts, node: NodeFacts) -> NodeStatus | None:
    taint = first_untolerated_taint(pod.tolerations, node.taints)
    if taint is not None:
        return NodeStatus((untolerated_taint_reason(taint),), resolvable=False)
    return None


def node_affinity(pod: PodFacts, node: NodeFacts) -> NodeStatus | None:
    if not node_affinity_matches(pod, node):
        return NodeStatus((REASON_NODE_AFFINITY,), resolvable=False)
    return None


def insufficient_resources(pod: PodFacts, info: NodeInfo, ignored: Collection[str] = ()) -> list[str]:
    """NodeResourcesFit's reasons: pod count, then cpu, memory, storage and extended resources.

    ``ignored`` names extended resources an extender manages with ``ignoredByScheduler``.
    """
    assert info.facts is not None
    allocatable = info.facts.allocatable
    reasons: list[str] = []
    if len(info.pods) + 1 > allocatable.amount(PODS):
        reasons.append(REASON_TOO_MANY_PODS)
    requested = info.requested
    ordered = [CPU, MEMORY, EPHEMERAL_STORAGE]
    ordered += sorted(name for name in pod.requests if name not in (CPU, MEMORY, EPHEMERAL_STORAGE, PODS))
    for name in ordered:
        want = pod.requests.amount(name)
        if want <= 0 or ("/" in name and name in ignored):
            continue
        if want > allocatable.amount(name) - requested.amount(name):
            reasons.append(insufficient_reason(name))
    return reasons


def node_resources_fit(pod: PodFacts, info: NodeInfo, ignored: Collection[str] = ()) -> NodeStatus | None:
    reasons = insufficient_resources(pod, info, ignored)
    return NodeStatus(tuple(reasons), resolvable=True) if reasons else None


def run_filters(pod: PodFacts, info: NodeInfo, ignored: Collection[str] = ()) -> NodeStatus | None:
    """Every in-tree filter in kube-scheduler's order; None when the node passes them all."""
    node = info.facts
    assert node is not None
    return (
        node_unschedulable(pod, node)
        or node_name(pod, node)
        or taint_toleration(pod, node)
        or node_affinity(pod, node)
        or node_resources_fit(pod, info, ignored)
    )
