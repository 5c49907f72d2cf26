"""Node groups of one instance type each, as the Cluster Autoscaler scales them (pure).

A scale-up picks one group with the least-waste expander (the least CPU and memory left unused
on the new nodes, then the cheapest) and packs the pending pods onto its one type first-fit
decreasing, as the autoscaler's binpacking estimator does.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from capsim.planning import Claim, Planner, Shape, TypeInfo


def groups_for(planner: Planner, shape: Shape, sizes: Sequence[str]) -> tuple[str, ...]:
    """One type per group: ``sizes`` of the first family the planner buys ten ``shape`` pods in
    that has them all; else the planner's first type alone."""
    preferred = planner.plan(((shape, 10),))[0].instance_types
    for family in dict.fromkeys(name.split(".")[0] for name in preferred):
        found = tuple(f"{family}.{size}" for size in sizes)
        if all(name in planner.info for name in found):
            return found
    return preferred[:1]


def least_waste(shapes: Sequence[Shape], groups: Sequence[str], info: Mapping[str, TypeInfo]) -> list[Claim]:
    """The chosen group's new nodes for pods of ``shapes`` (one entry a pod); none if no group
    holds any of them."""
    best: tuple[tuple[float, float], list[Claim]] | None = None
    ordered = sorted(shapes, key=lambda s: (-s[0], -s[1]))
    for name in groups:
        claims, waste = _pack(ordered, info[name])
        if not claims:
            continue
        key = (round(waste, 9), len(claims) * info[name].price)
        if best is None or key < best[0]:
            best = (key, claims)
    return best[1] if best is not None else []


def _pack(ordered: Sequence[Shape], node: TypeInfo) -> tuple[list[Claim], float]:
    """First-fit decreasing on ``node``'s type: the nodes, and their unused CPU plus memory share."""
    used: list[list[int]] = []  # per node: cpu, memory, pods
    contents: list[Counter[Shape]] = []
    for shape in ordered:
        if not node.holds(shape):
            continue
        for room, tally in zip(used, contents, strict=True):
            if room[0] + shape[0] <= node.cpu_m and room[1] + shape[1] <= node.memory and room[2] < node.pods:
                room[0] += shape[0]
                room[1] += shape[1]
                room[2] += 1
                tally[shape] += 1
                break
        else:
            used.append([shape[0], shape[1], 1])
            contents.append(Counter({shape: 1}))
    if not used:
        return [], 0.0
    n = len(used)
    cpu_waste = 1 - sum(u[0] for u in used) / (n * node.cpu_m)
    memory_waste = 1 - sum(u[1] for u in used) / (n * node.memory)
    return [Claim((node.name,), tuple(sorted(tally.items()))) for tally in contents], cpu_waste + memory_waste
