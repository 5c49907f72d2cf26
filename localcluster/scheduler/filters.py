"""kube-scheduler's in-tree filter plugins, on parsed facts.

The default profile runs, in this order, NodeUnschedulable, NodeName, TaintToleration,
NodeAffinity, NodeResourcesFit, PodTopologySpread (``topologyspread.py``) and InterPodAffinity
(ports and volumes are not emulated) and stops at the first plugin that rejects a node, so each
node fails with one plugin's reasons. The reason strings are kube-scheduler's own, because users
and jitnode's launcher read them from the pod's PodScheduled condition.

InterPodAffinity (required terms only; preferred ones only score, which is not emulated) is
split like the real plugin: :func:`inter_pod_state` is its PreFilter, run once per scheduling
cycle over all nodes, and :func:`inter_pod_affinity` its per-node Filter, a few set lookups.
When neither the pod nor any pod in the cluster has required inter-pod terms the state is
:data:`NO_INTER_POD` and the filter returns at once. Given the Namespaces' labels, a term's
namespaceSelector selects namespaces as kube-scheduler's does. Pure.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from shared.podaffinity import PodAffinityTerm
from shared.resources import CPU, EPHEMERAL_STORAGE, MEMORY, PODS
from shared.taints import HARD_EFFECTS, NO_SCHEDULE, Taint, Toleration, tolerates, untolerated_taints

from .cache import NodeInfo
from .model import TAINT_UNSCHEDULABLE, NamespaceScope, NodeFacts, PodFacts

if TYPE_CHECKING:
    from .topologyspread import SpreadFilterState

REASON_UNSCHEDULABLE: Final = "node(s) were unschedulable"
REASON_NODE_NAME: Final = "node(s) didn't match the requested node name"
REASON_NODE_AFFINITY: Final = "node(s) didn't match Pod's node affinity/selector"
REASON_TOO_MANY_PODS: Final = "Too many pods"
REASON_POD_AFFINITY: Final = "node(s) didn't match pod affinity rules"
REASON_POD_ANTI_AFFINITY: Final = "node(s) didn't match pod anti-affinity rules"
REASON_EXISTING_ANTI_AFFINITY: Final = "node(s) didn't satisfy existing pods anti-affinity rules"
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


# InterPodAffinity ------------------------------------------------------------------------

TopologyPair = tuple[str, str]


@dataclass(frozen=True, slots=True)
class InterPodState:
    """InterPodAffinity's PreFilter state: topology domains as ``(topologyKey, value)`` pairs.

    ``affinity`` holds the domains of existing pods that match *all* the pod's required
    affinity terms (one pair per term whose key the pod's node has); ``anti_affinity`` those of
    existing pods matching one of its anti-affinity terms (that term's key); ``existing`` those
    where an existing pod's anti-affinity term matching the pod applies. ``matches_own_affinity``:
    the pod matches all its own affinity terms (the first pod of a group may then go anywhere).
    """

    affinity: frozenset[TopologyPair] = frozenset()
    anti_affinity: frozenset[TopologyPair] = frozenset()
    existing: frozenset[TopologyPair] = frozenset()
    matches_own_affinity: bool = False
    active: bool = True


NO_INTER_POD: Final = InterPodState(active=False)


NamespaceLabels = Mapping[str, Mapping[str, str]]
Scopes = tuple[NamespaceScope | None, ...]


def term_matches(
    term: PodAffinityTerm,
    scope: NamespaceScope | None,
    namespace: str,
    labels: Mapping[str, str],
    namespace_labels: NamespaceLabels | None,
) -> bool:
    """``AffinityTerm.Matches`` for a pod in ``namespace`` with ``labels``: its namespace is in
    scope and its labels are selected. Without ``namespace_labels`` (unknown), a namespaceSelector
    is read as every namespace, as ``PodAffinityTerm`` reads it."""
    if scope is None or namespace_labels is None:
        return term.matches(namespace, labels)
    selector = term.selector
    return selector is not None and scope.admits(namespace, namespace_labels) and selector.matches(labels)


def _scoped(
    terms: tuple[PodAffinityTerm, ...], scopes: Scopes
) -> Iterable[tuple[PodAffinityTerm, NamespaceScope | None]]:
    return zip(terms, scopes or (None,) * len(terms), strict=True)


def matches_all_terms(
    terms: tuple[PodAffinityTerm, ...],
    namespace: str,
    labels: Mapping[str, str],
    scopes: Scopes = (),
    namespace_labels: NamespaceLabels | None = None,
) -> bool:
    """``podMatchesAllAffinityTerms``: False for no terms."""
    return bool(terms) and all(
        term_matches(term, scope, namespace, labels, namespace_labels)
        for term, scope in _scoped(terms, scopes)
    )


def inter_pod_state(
    pod: PodFacts, nodes: Iterable[NodeInfo], namespace_labels: NamespaceLabels | None = None
) -> InterPodState:
    """InterPodAffinity's PreFilter over ``nodes`` (all of the cluster's, with their pods).

    Only pods on known nodes count, and only where their node has the term's topology label.
    ``namespace_labels`` are the Namespaces' labels, for namespaceSelectors. Costs one pass over
    the nodes when neither the pod nor any existing pod has terms.
    """
    affinity_terms = pod.affinity_terms
    affinity_scopes = pod.affinity_scopes
    anti_terms = tuple(_scoped(pod.anti_affinity_terms, pod.anti_affinity_scopes))
    incoming = bool(affinity_terms or anti_terms)
    affinity: set[TopologyPair] = set()
    anti_affinity: set[TopologyPair] = set()
    existing: set[TopologyPair] = set()
    for info in nodes:
        node = info.facts
        if node is None:
            continue
        labels = node.labels
        for usage in info.anti_affinity_pods.values():
            if usage.uid == pod.uid:
                continue
            for term, scope in _scoped(usage.anti_affinity_terms, usage.anti_affinity_scopes):
                value = labels.get(term.topology_key)
                if value is not None and term_matches(
                    term, scope, pod.namespace, pod.labels, namespace_labels
                ):
                    existing.add((term.topology_key, value))
        if not incoming:
            continue
        for usage in info.pods.values():
            if usage.uid == pod.uid:
                continue
            if matches_all_terms(
                affinity_terms, usage.namespace, usage.labels, affinity_scopes, namespace_labels
            ):
                for term in affinity_terms:
                    value = labels.get(term.topology_key)
                    if value is not None:
                        affinity.add((term.topology_key, value))
            for term, scope in anti_terms:
                value = labels.get(term.topology_key)
                if value is not None and term_matches(
                    term, scope, usage.namespace, usage.labels, namespace_labels
                ):
                    anti_affinity.add((term.topology_key, value))
    if not incoming and not existing:
        return NO_INTER_POD
    return InterPodState(
        affinity=frozenset(affinity),
        anti_affinity=frozenset(anti_affinity),
        existing=frozenset(existing),
        matches_own_affinity=matches_all_terms(
            affinity_terms, pod.namespace, pod.labels, affinity_scopes, namespace_labels
        ),
    )


def satisfies_pod_affinity(pod: PodFacts, node: NodeFacts, state: InterPodState) -> bool:
    """Every affinity term has a matching pod in the node's domain, and the node has every key.

    When no existing pod matches the terms at all but the pod matches them itself, it is the
    first of its group and any node with the topology labels will do.
    """
    pods_exist = True
    for term in pod.affinity_terms:
        value = node.labels.get(term.topology_key)
        if value is None:
            return False
        if (term.topology_key, value) not in state.affinity:
            pods_exist = False
    return pods_exist or (not state.affinity and state.matches_own_affinity)


def satisfies_pod_anti_affinity(pod: PodFacts, node: NodeFacts, state: InterPodState) -> bool:
    """No anti-affinity term has a matching pod in the node's domain (no label: no domain)."""
    if not state.anti_affinity:
        return True
    labels = node.labels
    return not any(
        (t.topology_key, labels.get(t.topology_key)) in state.anti_affinity for t in pod.anti_affinity_terms
    )


def satisfies_existing_anti_affinity(node: NodeFacts, state: InterPodState) -> bool:
    """The node is in no domain an existing pod's anti-affinity term keeps the pod out of."""
    labels = node.labels
    return not any(labels.get(key) == value for key, value in state.existing)


def inter_pod_affinity(pod: PodFacts, node: NodeFacts, state: InterPodState) -> NodeStatus | None:
    """InterPodAffinity's Filter: affinity, then the pod's anti-affinity, then existing pods'."""
    if not state.active:
        return None
    if not satisfies_pod_affinity(pod, node, state):
        return NodeStatus((REASON_POD_AFFINITY,), resolvable=False)
    if not satisfies_pod_anti_affinity(pod, node, state):
        return NodeStatus((REASON_POD_ANTI_AFFINITY,), resolvable=True)
    if not satisfies_existing_anti_affinity(node, state):
        return NodeStatus((REASON_EXISTING_ANTI_AFFINITY,), resolvable=True)
    return None


def run_filters(
    pod: PodFacts,
    info: NodeInfo,
    ignored: Collection[str] = (),
    inter_pod: InterPodState | None = None,
    spread: SpreadFilterState | None = None,
) -> NodeStatus | None:
    """Every in-tree filter in kube-scheduler's order; None when the node passes them all.

    ``inter_pod`` is the cycle's :func:`inter_pod_state` over all nodes; without it only the
    pods on this node are considered (right for a one-node cluster, and for tests). ``spread``
    is the cycle's ``topologyspread.spread_filter_state``; without it PodTopologySpread is
    skipped (as for a pod with no DoNotSchedule constraint).
    """
    node = info.facts
    assert node is not None
    return (
        node_unschedulable(pod, node)
        or node_name(pod, node)
        or taint_toleration(pod, node)
        or node_affinity(pod, node)
        or node_resources_fit(pod, info, ignored)
        or (spread.filter(node) if spread is not None and spread.constraints else None)
        or inter_pod_affinity(
            pod, node, inter_pod if inter_pod is not None else inter_pod_state(pod, (info,))
        )
    )
