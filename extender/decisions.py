"""What filter and prioritize answer, and how much room a pod shape has left: pure functions.

Filter fails only nodes the launcher is taking away. Anything else it failed would make
kube-scheduler requeue the pod and retry on every cluster event, and would duplicate the
in-tree filters. Unknown names pass: the scheduler's cache can be ahead of ours.

Prioritize packs: most allocated after placing the pod (mean of cpu and memory), tilted toward
capacity that is cheaper per resource unit when prices are known, so pods pile onto few cheap
nodes and empty ones can be removed. Nodes being disrupted, or expiring within the window,
score 0.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from extender.cache import ClusterCache, NodeState
from extender.protocol import MAX_EXTENDER_PRIORITY
from shared.resources import PODS

DISRUPTED_REASON = "node is being disrupted by jitnode (draining or about to be deleted)"
# Share of the score that price can move: packing always dominates, price breaks near-ties.
_PRICE_WEIGHT = 0.5


def filter_nodes(names: Sequence[str], disrupted: set[str]) -> tuple[list[str], dict[str, str]]:
    """Split candidates into (passed, unresolvable failures) in one set lookup per node."""
    if not disrupted:
        return list(names), {}
    passed = [name for name in names if name not in disrupted]
    if len(passed) == len(names):
        return passed, {}
    return passed, {name: DISRUPTED_REASON for name in names if name in disrupted}


def score_nodes(
    names: Sequence[str],
    pod_cpu: int,
    pod_memory: int,
    cache: ClusterCache,
    now: float,
    expiry_window: float,
) -> list[tuple[str, int]]:
    """A 0..10 score per candidate (see the module doc); unknown nodes score 0."""
    nodes = cache.nodes
    usage = cache.usage
    prices = [s.price_per_unit for n in names if (s := nodes.get(n)) is not None and s.price_per_unit]
    cheapest = min(prices) if prices else None
    horizon = now + expiry_window
    out: list[tuple[str, int]] = []
    for name in names:
        state = nodes.get(name)
        if state is None or state.disrupted or (state.expires_at is not None and state.expires_at <= horizon):
            out.append((name, 0))
            continue
        used = usage.get(name)
        cpu = pod_cpu + (used.requested.get("cpu", 0) if used is not None else 0)
        memory = pod_memory + (used.requested.get("memory", 0) if used is not None else 0)
        packing = _packing(cpu, state.alloc_cpu, memory, state.alloc_memory)
        if packing <= 0.0:
            out.append((name, 0))
            continue
        cheapness = 1.0
        if cheapest is not None and state.price_per_unit:
            cheapness = cheapest / state.price_per_unit
        weight = (1.0 - _PRICE_WEIGHT) + _PRICE_WEIGHT * cheapness
        out.append((name, round(MAX_EXTENDER_PRIORITY * packing * weight)))
    return out


def _packing(cpu: int, alloc_cpu: int, memory: int, alloc_memory: int) -> float:
    """Mean allocated fraction of cpu and memory after placement; 0 when the pod doesn't fit."""
    if (alloc_cpu and cpu > alloc_cpu) or (alloc_memory and memory > alloc_memory):
        return 0.0
    fractions = [cpu / alloc_cpu if alloc_cpu else 0.0, memory / alloc_memory if alloc_memory else 0.0]
    return sum(fractions) / 2


# Room for a pod shape --------------------------------------------------------------------


def fit_count(requests: Mapping[str, int], free: Mapping[str, int]) -> int:
    """How many pods with ``requests`` fit in ``free`` (one pod slot each)."""
    count = free.get(PODS, 0) if PODS in free else 1 << 30
    for name, amount in requests.items():
        if amount > 0 and name != PODS:
            count = min(count, free.get(name, 0) // amount)
    return max(0, count)


def group_nodes(nodes: Iterable[NodeState]) -> dict[tuple[object, ...], list[NodeState]]:
    """Nodes by label and taint signature: eligibility is decided once per group."""
    groups: dict[tuple[object, ...], list[NodeState]] = {}
    for state in nodes:
        groups.setdefault(state.signature, []).append(state)
    return groups


def room_for(
    requests: Mapping[str, int],
    eligible: Callable[[NodeState], bool],
    groups: Mapping[tuple[object, ...], list[NodeState]],
    cache: ClusterCache,
) -> int:
    """How many more pods of this shape fit on every node that could host one.

    Cordoned and disrupted nodes offer no room; ``eligible`` decides labels and taints on one
    node per group and holds for the rest of the group.
    """
    room = 0
    for members in groups.values():
        if not eligible(members[0]):
            continue
        for state in members:
            if state.disrupted or state.cordoned:
                continue
            room += fit_count(requests, cache.free(state.name))
    return room


def shortfall(room: int, placed: bool, headroom: int) -> int:
    """Pods of this shape to provision for: how far the room left is below ``headroom``.

    ``placed`` says whether the pod is already counted in the cache (bound); when it is not,
    placing it takes one slot of the room first.
    """
    left = room if placed else room - 1
    return max(0, headroom - left)
