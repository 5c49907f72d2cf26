"""kube-scheduler's PodTopologySpread plugin (pkg/scheduler/framework/plugins/podtopologyspread).

Filter (DoNotSchedule constraints): PreFilter counts, over every node that has all the
constraints' topology keys and that each constraint's node inclusion policies admit
(nodeAffinityPolicy Honor: the pod's nodeSelector and required node affinity; nodeTaintsPolicy
Honor: no untolerated NoSchedule/NoExecute taint), the non-terminating pods of the pod's
namespace its selector matches, per domain. A node passes when for every constraint
``count(domain) + (1 if the pod matches itself) - global minimum <= maxSkew``, where the global
minimum is the least count over the eligible domains, or 0 when there are fewer of them than
``minDomains``. A node without a topology key fails as unresolvable.

Score (ScheduleAnyway constraints): PreScore sizes each topology over the feasible nodes (nodes
lacking a key are ignored and score 0, except under the system defaults, which let zoneless
nodes still spread by hostname) and counts matching pods over all nodes in those domains. A
node's raw score is ``sum(count * log(size + 2) + maxSkew - 1)``, rounded; fewer matching pods
is better, so NormalizeScore reverses it onto 0..100 against the minimum and maximum.

A pod with constraints of its own uses only those; one without gets the profile's defaults,
with the selector ``workloads.WorkloadSelectors`` derives for it. With no constraint of a kind,
the state is :data:`NO_SPREAD` (the plugin's Skip) and costs nothing per node. Pure.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Final

from shared.labels import HOSTNAME
from shared.requirements import Requirements
from shared.taints import HARD_EFFECTS, untolerated_taints
from shared.topologyspread import SpreadConstraint

from .cache import NodeInfo
from .config import SpreadArgs
from .filters import NodeStatus
from .model import NodeFacts, PodFacts
from .workloads import WorkloadSelectors

REASON_SPREAD: Final = "node(s) didn't match pod topology spread constraints"
REASON_SPREAD_LABEL: Final = f"{REASON_SPREAD} (missing required label)"
_MAX_NODE_SCORE: Final = 100
_SPREAD: Final = NodeStatus((REASON_SPREAD,), resolvable=True)
_MISSING_LABEL: Final = NodeStatus((REASON_SPREAD_LABEL,), resolvable=False)


def constraints_for(
    pod: PodFacts, *, hard: bool, args: SpreadArgs, workloads: WorkloadSelectors | None
) -> tuple[SpreadConstraint, ...]:
    """The pod's DoNotSchedule (``hard``) or ScheduleAnyway constraints, else the defaults.

    Defaults apply only to a pod without constraints of its own and only with a non-empty
    default selector (no ``workloads``: none is known, so none apply).
    """
    if pod.spread_constraints:
        return tuple(c for c in pod.spread_constraints if c.hard == hard)
    defaults = [c for c in args.default_constraints if c.hard == hard]
    if not defaults or workloads is None:
        return ()
    selector = workloads.default_selector(pod.namespace, pod.labels, pod.controller)
    if selector is None:
        return ()
    return tuple(replace(c, selector=selector) for c in defaults)


def _has_keys(labels: Mapping[str, str], constraints: Sequence[SpreadConstraint]) -> bool:
    """``nodeLabelsMatchSpreadConstraints``: the node has every constraint's topology key."""
    return all(c.topology_key in labels for c in constraints)


def _included(pod: PodFacts, node: NodeFacts, constraint: SpreadConstraint) -> bool:
    """``matchNodeInclusionPolicies``: whether the node's domain counts for this constraint."""
    if constraint.honor_node_affinity and not any(
        alternative.matches(node.match_labels) for alternative in pod.alternatives
    ):
        return False
    if constraint.honor_node_taints:
        return not untolerated_taints(pod.tolerations, node.taints, HARD_EFFECTS)
    return True


def count_matching(pod: PodFacts, info: NodeInfo, constraint: SpreadConstraint) -> int:
    """``countPodsMatchSelector``: the node's pods in the pod's namespace that the constraint
    selects, leaving out terminating ones (and the pod itself, should it be counted already)."""
    selector = constraint.selector
    if selector is None:
        return 0
    namespace, uid = pod.namespace, pod.uid
    count = 0
    for usage in info.pods.values():
        if usage.namespace == namespace and not usage.terminating and usage.uid != uid:
            count += selector.matches(usage.labels)
    return count


class _Counts:
    """Matching pods per node, counted once per selector in a cycle: the system defaults'
    hostname and zone constraints share one selector, so each node's pods are read once."""

    __slots__ = ("_by_selector", "_pod")

    def __init__(self, pod: PodFacts) -> None:
        self._pod = pod
        self._by_selector: dict[Requirements | None, dict[str, int]] = {}

    def on(self, info: NodeInfo, constraint: SpreadConstraint) -> int:
        counted = self._by_selector.setdefault(constraint.selector, {})
        count = counted.get(info.name)
        if count is None:
            count = counted[info.name] = count_matching(self._pod, info, constraint)
        return count


@dataclass(frozen=True, slots=True)
class SpreadFilterState:
    """PreFilter's state: per constraint the matching count per eligible domain, the global
    minimum (minDomains applied) and whether the pod matches its own selector."""

    constraints: tuple[SpreadConstraint, ...] = ()
    counts: tuple[Mapping[str, int], ...] = ()
    minimums: tuple[int, ...] = ()
    self_match: tuple[int, ...] = ()

    def filter(self, node: NodeFacts) -> NodeStatus | None:
        """The plugin's Filter for one node; None when it passes (or there is no constraint)."""
        labels = node.labels
        for i, constraint in enumerate(self.constraints):
            value = labels.get(constraint.topology_key)
            if value is None:
                return _MISSING_LABEL
            skew = self.counts[i].get(value, 0) + self.self_match[i] - self.minimums[i]
            if skew > constraint.max_skew:
                return _SPREAD
        return None


NO_SPREAD: Final = SpreadFilterState()


def spread_filter_state(
    pod: PodFacts, constraints: Sequence[SpreadConstraint], nodes: Iterable[NodeInfo]
) -> SpreadFilterState:
    """PreFilter over ``nodes`` (all of the cluster's) for the pod's DoNotSchedule constraints."""
    if not constraints:
        return NO_SPREAD
    counts: list[dict[str, int]] = [{} for _ in constraints]
    for info in nodes:
        node = info.facts
        if node is None or not _has_keys(node.labels, constraints):
            continue
        for i, constraint in enumerate(constraints):
            if not _included(pod, node, constraint):
                continue
            value = node.labels[constraint.topology_key]
            counts[i][value] = counts[i].get(value, 0) + count_matching(pod, info, constraint)
    minimums = tuple(
        min(domains.values()) if len(domains) >= c.min_domains else 0
        for c, domains in zip(constraints, counts, strict=True)
    )
    return SpreadFilterState(
        constraints=tuple(constraints),
        counts=tuple(counts),
        minimums=minimums,
        self_match=tuple(1 if c.selects(pod.labels) else 0 for c in constraints),
    )


@dataclass(frozen=True, slots=True)
class SpreadScoreState:
    """PreScore's state: nodes not scored, per non-hostname constraint the matching count per
    domain of the feasible nodes, each constraint's ``topologyNormalizingWeight``, and the
    per-node counts (filled in as Score needs them, for this cycle only)."""

    constraints: tuple[SpreadConstraint, ...]
    ignored: frozenset[str]
    counts: tuple[Mapping[str, int], ...]
    weights: tuple[float, ...]
    per_node: _Counts


def topology_normalizing_weight(size: int) -> float:
    """``log(size + 2)``: counts in a topology of few domains weigh less than in one of many."""
    return math.log(size + 2)


def spread_score_state(
    pod: PodFacts,
    constraints: Sequence[SpreadConstraint],
    feasible: Sequence[NodeInfo],
    nodes: Sequence[NodeInfo],
    *,
    require_all_keys: bool,
) -> SpreadScoreState | None:
    """PreScore over the ``feasible`` nodes, counting pods on all ``nodes``; None to skip.

    ``require_all_keys``: the pod has constraints of its own or the defaults are not the
    system's; otherwise a node lacking a key is still scored (its domain for that key is "").
    """
    if not constraints or not nodes:
        return None
    ignored: set[str] = set()
    domains: list[dict[str, int]] = [{} for _ in constraints]
    for info in feasible:
        node = info.facts
        assert node is not None
        if require_all_keys and not _has_keys(node.labels, constraints):
            ignored.add(info.name)
            continue
        for i, constraint in enumerate(constraints):
            if constraint.topology_key != HOSTNAME:
                domains[i].setdefault(node.labels.get(constraint.topology_key, ""), 0)
    weights = tuple(
        topology_normalizing_weight(
            len(feasible) - len(ignored) if c.topology_key == HOSTNAME else len(domains[i])
        )
        for i, c in enumerate(constraints)
    )
    per_node = _Counts(pod)
    for info in nodes:
        node = info.facts
        if node is None or (require_all_keys and not _has_keys(node.labels, constraints)):
            continue
        for i, constraint in enumerate(constraints):
            value = node.labels.get(constraint.topology_key, "")
            if value not in domains[i] or not _included(pod, node, constraint):
                continue
            domains[i][value] += per_node.on(info, constraint)
    return SpreadScoreState(tuple(constraints), frozenset(ignored), tuple(domains), weights, per_node)


def _round(score: float) -> int:
    """Go's ``math.Round`` for the non-negative scores here: halves away from zero."""
    return math.floor(score + 0.5)


def raw_score(info: NodeInfo, state: SpreadScoreState) -> int:
    """The plugin's Score: ``sum(count * weight + maxSkew - 1)`` over the keys the node has."""
    node = info.facts
    assert node is not None
    score = 0.0
    for i, constraint in enumerate(state.constraints):
        value = node.labels.get(constraint.topology_key)
        if value is None:
            continue
        if constraint.topology_key == HOSTNAME:
            count = state.per_node.on(info, constraint)
        else:
            count = state.counts[i][value]
        score += count * state.weights[i] + (constraint.max_skew - 1)
    return _round(score)


def spread_scores(feasible: Sequence[NodeInfo], state: SpreadScoreState) -> dict[str, int]:
    """Score and NormalizeScore: 0..100, 100 for the fewest matching pods, 0 for ignored nodes."""
    raw = {info.name: raw_score(info, state) for info in feasible if info.name not in state.ignored}
    lowest = min(raw.values(), default=0)
    highest = max(0, *raw.values()) if raw else 0
    out = dict.fromkeys((info.name for info in feasible), 0)
    for name, score in raw.items():
        if highest == 0:
            out[name] = _MAX_NODE_SCORE
        else:
            out[name] = _MAX_NODE_SCORE * (highest + lowest - score) // highest
    return out


def waits_for(pod: PodFacts, namespace: str, labels: Mapping[str, str]) -> bool:
    """Whether a pod newly placed (``namespace``, ``labels``) may let ``pod`` pass the filter:
    one of its own DoNotSchedule constraints selects it (the plugin's queueing hint)."""
    return pod.namespace == namespace and any(c.hard and c.selects(labels) for c in pod.spread_constraints)
