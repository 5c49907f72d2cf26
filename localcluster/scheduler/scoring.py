"""kube-scheduler's default score plugins and host selection, on parsed facts.

Each plugin scores a node 0..100 (MaxNodeScore), is normalized across the candidates like the
real plugin, and is multiplied by its default weight: TaintToleration 3, NodeAffinity 2,
NodeResourcesFit (LeastAllocated) 1, NodeResourcesBalancedAllocation 1. Extender scores
(0..10) are scaled by their weight and by MaxNodeScore/MaxExtenderPriority before being
added. Integer arithmetic mirrors Go's so ties (and thus spreading) match. Pure.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from typing import Final

from shared.resources import CPU, MEMORY
from shared.taints import PREFER_NO_SCHEDULE, Toleration

from .cache import NodeInfo
from .filters import tolerated
from .model import NodeFacts, PodFacts

MAX_NODE_SCORE: Final = 100
MAX_EXTENDER_PRIORITY: Final = 10
WEIGHT_TAINT_TOLERATION: Final = 3
WEIGHT_NODE_AFFINITY: Final = 2
WEIGHT_LEAST_ALLOCATED: Final = 1
WEIGHT_BALANCED_ALLOCATION: Final = 1


def least_allocated(pod: PodFacts, info: NodeInfo) -> int:
    """NodeResourcesFit LeastAllocated: mean over cpu and memory of free share after placing the pod.

    Uses non-zero requests (100m cpu / 200Mi memory for containers that request nothing), so
    request-less pods still spread.
    """
    assert info.facts is not None
    allocatable = info.facts.allocatable
    total = 0
    for capacity, requested in (
        (allocatable.amount(CPU), info.nonzero_cpu + pod.nonzero_cpu),
        (allocatable.amount(MEMORY), info.nonzero_memory + pod.nonzero_memory),
    ):
        if capacity == 0 or requested > capacity:
            continue
        total += (capacity - requested) * MAX_NODE_SCORE // capacity
    return total // 2


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


def plugin_scores(pod: PodFacts, nodes: Sequence[NodeInfo]) -> dict[str, int]:
    """The weighted sum of the in-tree score plugins for every candidate node."""
    facts = {info.name: info.facts for info in nodes if info.facts is not None}
    taints = normalize(
        {name: intolerable_prefer_no_schedule(pod.tolerations, f) for name, f in facts.items()}, reverse=True
    )
    affinity = normalize({name: preferred_affinity(pod, f) for name, f in facts.items()})
    return {
        info.name: taints[info.name] * WEIGHT_TAINT_TOLERATION
        + affinity[info.name] * WEIGHT_NODE_AFFINITY
        + least_allocated(pod, info) * WEIGHT_LEAST_ALLOCATED
        + balanced_allocation(pod, info) * WEIGHT_BALANCED_ALLOCATION
        for info in nodes
    }


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
