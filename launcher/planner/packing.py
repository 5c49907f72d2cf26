"""Bin-packing one group of pods onto new nodes (pure, integer arithmetic).

A group is pods of one NodePool with the same requirements, so any of them may share a node
(unless their per-node rules say otherwise, below). Pods come in *shapes* (identical requests) with
counts, and bins carry a multiplicity, so 10,000 identical pods cost a division rather than
10,000 placements.

First-fit-decreasing: bins are sized by a "bin type"; shapes are placed largest first (by their
dominant share of the bin type), each into the first open bin with room, and new bins open when
none has any. A shape with per-node rules (``colocation``: replicas that repel each other, or
are spread by hostname) puts into a bin only as many pods as the rules of the pods already there
admit; such shapes go first, so the others fill the room they leave.
Each bin is then shrunk to the cheapest type that still holds its contents. The improvement
step repeats this for the few most promising bin types and keeps the cheapest result: the
single best-value type minimises cost for uniform demand, while smaller types can win for a
mixed or small group.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from launcher.planner.colocation import NONE, Colocation, NodeTally
from launcher.planner.fit import Candidate
from shared.resources import Resources

Vector = tuple[int, ...]


@dataclass(frozen=True)
class Shape:
    """Identical pods: their per-resource requests (in ``keys`` order), how many, and what they
    ask of the pods on their node (see ``colocation``)."""

    index: int
    requests: Vector
    count: int
    rules: Colocation = NONE


@dataclass
class Bin:
    """``multiplicity`` identical nodes, each holding ``contents`` (shape index -> pods)."""

    used: list[int]
    contents: dict[int, int] = field(default_factory=dict)
    multiplicity: int = 1
    tally: NodeTally | None = None  # the per-node rules of its pods, once one has any


@dataclass(frozen=True)
class PackedBin:
    contents: dict[int, int]
    multiplicity: int
    used: Vector
    fitting: tuple[Candidate, ...]  # cheapest first

    @property
    def price(self) -> float:
        return self.fitting[0].price


def vector(resources: Candidate | Resources, keys: Sequence[str]) -> Vector:
    """The amounts of ``keys`` (a candidate's room, or a resource list) as a plain int tuple."""
    room = resources.room if isinstance(resources, Candidate) else resources
    return tuple(room.amount(k) for k in keys)


def room_matrix(candidates: Sequence[Candidate], keys: Sequence[str]) -> npt.NDArray[np.int64]:
    """The candidates' rooms as one row each, for vectorised fit tests."""
    rows = [vector(c, keys) for c in candidates]
    return np.array(rows, dtype=np.int64).reshape(len(candidates), len(keys))


def fits(used: Sequence[int], room: Vector) -> bool:
    return all(u <= r for u, r in zip(used, room, strict=True))


def how_many(requests: Vector, free: Sequence[int]) -> int:
    """How many pods of ``requests`` fit in ``free`` (large when a pod requests nothing)."""
    limit = 1 << 30
    for req, room in zip(requests, free, strict=True):
        if req > 0:
            limit = min(limit, room // req if room >= 0 else 0)
    return max(limit, 0)


def first_fit_decreasing(shapes: Sequence[Shape], capacity: Vector) -> list[Bin]:
    def dominant(shape: Shape) -> float:
        return max((r / c for r, c in zip(shape.requests, capacity, strict=True) if c > 0), default=0.0)

    # With per-node rules a shape may pass over many bins; bins at the front that no shape can
    # use any more (short of a resource every shape requests) are then skipped for good.
    ruled = any(s.rules for s in shapes)
    smallest = [min(s.requests[i] for s in shapes) for i in range(len(capacity))] if ruled else []
    dead = 0
    bins: list[Bin] = []
    for shape in sorted(shapes, key=lambda s: (not s.rules, -dominant(s), s.index)):
        remaining = shape.count
        per_bin_cap = min(shape.rules.per_node, remaining)
        while ruled and dead < len(bins) and _full(bins[dead].used, smallest, capacity):
            dead += 1
        position = dead
        while remaining and position < len(bins):
            current = bins[position]
            allowed = remaining
            if shape.rules and current.tally is not None:
                allowed = current.tally.room(shape.rules)
                if allowed == 0:
                    position += 1
                    continue
            free = [c - u for c, u in zip(capacity, current.used, strict=True)]
            k = min(how_many(shape.requests, free), remaining, per_bin_cap, allowed)
            if k > 0:
                copies = min(current.multiplicity, remaining // k) if remaining >= k else 0
                if copies == 0:
                    # Fewer pods left than fill one copy: split one copy off and top it up.
                    copies, k = 1, remaining
                if copies < current.multiplicity:
                    tally = current.tally.copy() if current.tally is not None else None
                    untouched = Bin(
                        list(current.used), dict(current.contents), current.multiplicity - copies, tally
                    )
                    bins.insert(position + 1, untouched)
                    current.multiplicity = copies
                current.used = [u + k * r for u, r in zip(current.used, shape.requests, strict=True)]
                current.contents[shape.index] = current.contents.get(shape.index, 0) + k
                if shape.rules:
                    current.tally = current.tally or NodeTally()
                    current.tally.add(shape.rules, k)
                remaining -= k * copies
            position += 1
        if remaining:
            per_bin = how_many(shape.requests, capacity)
            if per_bin == 0:
                raise ValueError(f"shape {shape.index} does not fit the bin type")
            per_bin = min(per_bin, per_bin_cap)
            full, leftover = divmod(remaining, per_bin)
            if full:
                used = [per_bin * r for r in shape.requests]
                bins.append(Bin(used, {shape.index: per_bin}, full, _tally(shape, per_bin)))
            if leftover:
                used = [leftover * r for r in shape.requests]
                bins.append(Bin(used, {shape.index: leftover}, 1, _tally(shape, leftover)))
    return bins


def _full(used: Sequence[int], smallest: Sequence[int], capacity: Vector) -> bool:
    """Whether no pod of any shape fits beside ``used`` (some resource each requests is short)."""
    return any(m > 0 and c - u < m for u, m, c in zip(used, smallest, capacity, strict=True))


def _tally(shape: Shape, n: int) -> NodeTally | None:
    return NodeTally.of([(shape.rules, n)]) if shape.rules else None


def _shrink(
    bins: Sequence[Bin], candidates: Sequence[Candidate], rooms: npt.NDArray[np.int64]
) -> list[PackedBin] | None:
    packed: list[PackedBin] = []
    for b in bins:
        used = tuple(b.used)
        mask = np.all(rooms >= np.array(used, dtype=np.int64), axis=1)
        fitting = tuple(candidates[int(i)] for i in np.flatnonzero(mask))
        if not fitting:
            return None
        packed.append(PackedBin(dict(b.contents), b.multiplicity, used, fitting))
    return packed


def total_cost(packed: Sequence[PackedBin]) -> float:
    return sum(p.price * p.multiplicity for p in packed)


def pack(
    shapes: Sequence[Shape],
    candidates: Sequence[Candidate],
    keys: Sequence[str],
    tries: int = 4,
    rooms: npt.NDArray[np.int64] | None = None,
) -> list[PackedBin]:
    """Cheapest packing found for ``shapes`` onto ``candidates`` (cheapest first).

    First-fit-decreasing onto each of the ``tries`` bin types with the best estimated cost for
    the whole group, each bin then shrunk to the cheapest type that holds it; the cheapest
    result wins.
    ``rooms`` is ``room_matrix(candidates, keys)`` when the caller already has it.
    """
    if rooms is None:
        rooms = room_matrix(candidates, keys)
    rows: list[Vector] = [tuple(int(v) for v in row) for row in rooms.tolist()]
    best = _pack_one_type(shapes, candidates, rows, rooms, tries)
    if best is None:
        # No single type holds the largest of every resource: pack each shape on its own.
        best = []
        for shape in shapes:
            best.extend(pack([shape], candidates, keys, tries, rooms))
    return best


def _pack_one_type(
    shapes: Sequence[Shape],
    candidates: Sequence[Candidate],
    rows: Sequence[Vector],
    rooms: npt.NDArray[np.int64],
    tries: int,
) -> list[PackedBin] | None:
    """The cheapest of FFD onto each of the ``tries`` most promising bin types, or None."""
    width = len(rows[0]) if rows else 0
    demand = [sum(s.requests[i] * s.count for s in shapes) for i in range(width)]
    biggest = [max(s.requests[i] for s in shapes) for i in range(width)]

    def estimate(position: int) -> float:
        nodes = max(
            (math.ceil(d / r) for d, r in zip(demand, rows[position], strict=True) if d > 0 and r > 0),
            default=1,
        )
        return candidates[position].price * max(nodes, 1)

    bin_types = sorted(
        (i for i in range(len(candidates)) if fits(biggest, rows[i])),
        key=lambda i: (estimate(i), candidates[i].price, candidates[i].type.name),
    )
    best: list[PackedBin] | None = None
    for position in bin_types[:tries]:
        packed = _shrink(first_fit_decreasing(shapes, rows[position]), candidates, rooms)
        if packed is not None and (best is None or total_cost(packed) < total_cost(best)):
            best = packed
    return best
