"""kube-scheduler's default score plugins and host selection, on parsed facts.

Each plugin scores a node 0..100 (MaxNodeScore), is normalized across the candidates like the
real plugin, and is multiplied by the profile's weight for it (kube-scheduler's defaults:
TaintToleration 3, NodeAffinity 2, PodTopologySpread 2, NodeResourcesFit 1,
NodeResourcesBalancedAllocation 1; PodTopologySpread's own arithmetic is in ``topologyspread.py``).
NodeResourcesFit scores with the profile's strategy, LeastAllocated (the default) or
MostAllocated, over the strategy's resources and their weights. Extender scores (0..10) are
scaled by their weight and by MaxNodeScore/MaxExtenderPriority before being added. Integer
arithmetic mirrors Go's so ties (and thus spreading) match. Pure.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from typing import Final

from shared.resources import CPU, MEMORY
from shared.taints import PREFER_NO_SCHEDULE, Toleration

from .cache import NodeInfo
from .config import (
    BALANCED_ALLOCATION,
    DEFAULT_FIT_RESOURCES,
    DEFAULT_SCORING,
    LEAST_ALLOCATED,
    MOST_ALLOCATED,
    NODE_AFFINITY,
    NODE_RESOURCES_FIT,
    POD_TOPOLOGY_SPREAD,
    TAINT_TOLERATION,
    Scoring,
)
from .filters import tolerated
from .model import NodeFacts, PodFacts
from .topologyspread import SpreadScoreState, spread_scores

MAX_NODE_SCORE: Final = 100
MAX_EXTENDER_PRIORITY: Final = 10


def _requested(pod: PodFacts, info: NodeInfo, resource: str) -> int:
    """What the node would have requested of ``resource`` with the pod on it, as NodeResourcesFit
    counts it: non-zero requests for cpu and memory (100m / 200Mi for containers that request
    nothing, so request-less pods still count), plain requests for anything else."""
    if resource == CPU:
        return info.nonzero_cpu + pod.nonzero_cpu
    if resource == MEMORY:
        return info.nonzero_memory + pod.nonzero_memory
    return info.requested.amount(resource) + pod.requests.amount(resource)


def resource_allocation(
    pod: PodFacts,
    info: NodeInfo,
    strategy: str = LEAST_ALLOCATED,
    resources: Sequence[tuple[str, int]] = DEFAULT_FIT_RESOURCES,
) -> int:
    """NodeResourcesFit's score: the weighted mean over ``resources`` of each one's score.

    LeastAllocated scores a resource by its free share after placing the pod (0 when it does not
    fit), MostAllocated by its requested share (capped at the capacity). Resources the node has
    none of are left out of the mean, as kube-scheduler leaves them out.
    """
    assert info.facts is not None
    allocatable = info.facts.allocatable
    total = weights = 0
    for resource, weight in resources:
        capacity = allocatable.amount(resource)
        if capacity == 0:
            continue
        requested = _requested(pod, info, resource)
        if strategy == MOST_ALLOCATED:
            score = min(requested, capacity) * MAX_NODE_SCORE // capacity
        else:
            score = 0 if requested > capacity else (capacity - requested) * MAX_NODE_SCORE // capacity
        total += score * weight
        weights += weight
    return total // weights if weights else 0


def least_allocated(pod: PodFacts, info: NodeInfo) -> int:
    """NodeResourcesFit LeastAllocated over cpu and memory, weight 1 each (the default)."""
    return resource_allocation(pod, info, LEAST_ALLOCATED)


def most_allocated(pod: PodFacts, info: NodeInfo) -> int:
    """NodeResourcesFit MostAllocated over cpu and memory, weight 1 each."""
    return resource_allocation(pod, info, MOST_ALLOCATED)


def balanced_allocation(pod: PodFacts, info: NodeInfo) -> int:
    """NodeResourcesBalancedAllocation: favour nodes whose cpu and memory use stay even."""
    assert info.facts is not None
    allocatable = info.facts.allocatable
    fractions: list[float] = []
    for name in (CPU, MEMORY):
        capacity = allocatable.amount(name)
        if capacity == 0:
            continue
        used = info.requested.amount(name) + pod.requests.amount(name)
        fractions.append(min(used / capacity, 1.0))
    if len(fractions) == 2:
        std = abs(fractions[0] - fractions[1]) / 2
    elif len(fractions) > 2:
        mean = sum(fractions) / len(fractions)
        std = math.sqrt(sum((f - mean) ** 2 for f in fractions) / len(fractions))
    else:
        std = 0.0
    return int((1 - std) * MAX_NODE_SCORE)


def intolerable_prefer_no_schedule(tolerations: Sequence[Toleration], node: NodeFacts) -> int:
    """TaintToleration's raw score: PreferNoSchedule taints the pod does not tolerate."""
    relevant = [t for t in tolerations if t.effect in ("", PREFER_NO_SCHEDULE)]
    return sum(1 for t in node.taints if t.effect == PREFER_NO_SCHEDULE and not tolerated(relevant, t))


def preferred_affinity(pod: PodFacts, node: NodeFacts) -> int:
    """NodeAffinity's raw score: the summed weights of matching preferred terms."""
    return sum(
        p.weight
        for p in pod.preferred_terms
        if p.weight and p.requirements is not None and p.requirements.matches(node.match_labels)
    )


def normalize(scores: Mapping[str, int], *, reverse: bool = False) -> dict[str, int]:
    """``helper.DefaultNormalizeScore``: scale to 0..100 by the maximum, optionally reversed."""
    top = max(scores.values(), default=0)
    if top == 0:
        return dict.fromkeys(scores, MAX_NODE_SCORE if reverse else 0)
    out: dict[str, int] = {}
    for name, score in scores.items():
        scaled = MAX_NODE_SCORE * score // top
        out[name] = MAX_NODE_SCORE - scaled if reverse else scaled
    return out


def plugin_scores(
    pod: PodFacts,
    nodes: Sequence[NodeInfo],
    scoring: Scoring = DEFAULT_SCORING,
    spread: SpreadScoreState | None = None,
) -> dict[str, int]:
    """The weighted sum of the profile's in-tree score plugins for every candidate node.

    ``spread`` is PodTopologySpread's PreScore (``topologyspread.spread_score_state``, which
    needs all of the cluster's nodes); None skips the plugin, as for a pod with no soft
    constraint.
    """
    facts = {info.name: info.facts for info in nodes if info.facts is not None}
    out = dict.fromkeys((info.name for info in nodes), 0)
    weight = scoring.weight(POD_TOPOLOGY_SPREAD)
    if weight and spread is not None:
        for name, score in spread_scores(nodes, spread).items():
            out[name] += score * weight
    weight = scoring.weight(TAINT_TOLERATION)
    if weight:
        taints = normalize(
            {name: intolerable_prefer_no_schedule(pod.tolerations, f) for name, f in facts.items()},
            reverse=True,
        )
        for name, score in taints.items():
            out[name] += score * weight
    weight = scoring.weight(NODE_AFFINITY)
    if weight:
        for name, score in normalize({name: preferred_affinity(pod, f) for name, f in facts.items()}).items():
            out[name] += score * weight
    fit = scoring.weight(NODE_RESOURCES_FIT)
    balanced = scoring.weight(BALANCED_ALLOCATION)
    for info in nodes:
        if info.facts is None:
            continue
        if fit:
            score = resource_allocation(pod, info, scoring.fit_strategy, scoring.fit_resources)
            out[info.name] += fit * score
        if balanced:
            out[info.name] += balanced * balanced_allocation(pod, info)
    return out


def extender_score(score: int, weight: int) -> int:
    """An extender's 0..10 score on the scheduler's 0..100 scale, times the extender's weight."""
    return score * weight * (MAX_NODE_SCORE // MAX_EXTENDER_PRIORITY)


def select_host(scores: Mapping[str, int], rng: random.Random) -> str:
    """The highest-scoring node; ties broken uniformly at random (reservoir sampling, as in Go)."""
    if not scores:
        raise ValueError("no nodes to select from")
    best = ""
    best_score = -math.inf
    ties = 0
    for name, score in scores.items():
        if score > best_score:
            best, best_score, ties = name, score, 1
        elif score == best_score:
            ties += 1
            if rng.randrange(ties) == 0:
                best = name
    return best
