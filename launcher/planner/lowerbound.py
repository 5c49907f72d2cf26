"""A lower bound on what the pending pods must cost per hour: the LP relaxation of packing.

Variables, per NodePool ``p`` and instance type ``t``: ``x[p,t] >= 0`` nodes bought and
``w[s,t] >= 0`` pods of shape ``s`` (a set of identical pods of pool ``p``) placed on them.

    minimise   sum price[p,t] * x[p,t]
    subject to sum_t w[s,t] = n[s]                                  for every shape s
               sum_s req[s,r] * w[s,t] <= room[p,t,r] * x[p,t]      for every p, t, resource r
               w[s,t] <= k[s,t] * x[p,t]     (k: how many whole pods of s one node of t holds)
               w[s,t] = 0 where shape s does not fit type t or its requirements exclude t

Why it is a valid bound: any real plan puts each pod on one node of its pool; summing each
node's capacity constraint over the nodes of the same pool and type gives the second row, and
counting pods gives the first; a node never holds more than k[s,t] pods of one shape, which
gives the third. So every real plan is a feasible point of the LP. ``price[p,t]``
is the cheapest offering of ``t`` that ANY shape of the pool allows, which is never more than
what a real node pays, so the LP optimum is at most the cost of every real plan. Pods of
different groups of the same pool may share nodes here, so the bound holds even where the
packer keeps groups apart.

Types dominated within a pool (another type is no dearer, has at least as much of every
resource and suits every shape this one suits) are dropped first: that cannot change the LP
optimum, and it keeps the model small.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import highspy
import numpy as np

Vector = tuple[int, ...]
_banner_lock = threading.Lock()
_banner_shown = False
# HiGHS solves to a relative tolerance of about 1e-7; the bound is lowered by more than that so
# a rounding error can never lift it above the true LP optimum.
_SOLVER_TOLERANCE = 1e-6
# Rows of types compared at once in the dominance test (bounds its memory to a few MB).
_CHUNK = 256


def silent_solver() -> highspy.Highs:
    """A silent HiGHS instance (the LP bound's and the exact plans' solver).

    HiGHS prints a banner from C++ to file descriptor 1 when the first instance of a process is
    created, which would break the one-JSON-object-a-line log stream; the first instance is
    therefore created with that descriptor pointed at /dev/null.
    """
    global _banner_shown
    with _banner_lock:
        if _banner_shown:
            highs = highspy.Highs()  # type: ignore[no-untyped-call]
        else:
            sys.stdout.flush()
            saved = os.dup(1)
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, 1)
                highs = highspy.Highs()  # type: ignore[no-untyped-call]
            finally:
                os.dup2(saved, 1)
                os.close(saved)
                os.close(devnull)
            _banner_shown = True
    highs.setOptionValue("output_flag", False)
    return highs


def _solver() -> highspy.Highs:
    highs = silent_solver()
    # Primal simplex: on these models (few rows per type, many types) about twice as fast as
    # HiGHS's default choice, measured at 10,000 pods over the full catalogue.
    highs.setOptionValue("solver", "simplex")
    highs.setOptionValue("simplex_strategy", 4)
    return highs


@dataclass(frozen=True)
class LPShape:
    pool: str
    requests: Vector
    count: int
    allowed: frozenset[str]  # instance type names its requirements allow (and it fits)


@dataclass(frozen=True)
class LPType:
    pool: str
    name: str
    price: float
    room: Vector


def _pods_per_node(requests: Vector, room: Vector) -> int:
    """Whole pods of ``requests`` one node of ``room`` holds (a cut: pods are not divisible)."""
    limit = 1 << 30
    for request, capacity in zip(requests, room, strict=True):
        if request > 0:
            limit = min(limit, capacity // request)
    return limit


def _undominated(types: Sequence[LPType], suits: dict[str, frozenset[int]]) -> list[LPType]:
    """``types`` less those another type dominates, in order of price (vectorised).

    ``j`` dominates ``i`` when it comes first in (price, larger room, name) order, costs no more,
    has at least as much of every resource and suits every shape ``i`` suits. The relation is a
    strict order, so every dropped type is dominated by a kept one.
    """
    if not types:
        return []
    ordered = sorted(types, key=lambda t: (t.price, tuple(-r for r in t.room), t.name))
    count = len(ordered)
    prices = np.array([t.price for t in ordered])
    rooms = np.array([t.room for t in ordered], dtype=np.int64).reshape(count, -1)
    shape_ids = sorted(set().union(*(suits[t.name] for t in ordered)))
    column = {shape: j for j, shape in enumerate(shape_ids)}
    signatures = np.zeros((count, len(shape_ids)), dtype=bool)
    for i, t in enumerate(ordered):
        for shape in suits[t.name]:
            signatures[i, column[shape]] = True
    by_signature: dict[bytes, list[int]] = {}
    for i in range(count):
        by_signature.setdefault(signatures[i].tobytes(), []).append(i)
    dominated = np.zeros(count, dtype=bool)
    for members in by_signature.values():
        wanted = signatures[members[0]]
        dominators = np.flatnonzero(signatures[:, wanted].all(axis=1))
        for chunk in range(0, len(members), _CHUNK):
            block = np.array(members[chunk : chunk + _CHUNK])
            hit = (
                (dominators[None, :] < block[:, None])
                & (prices[dominators][None, :] <= prices[block][:, None])
                & np.all(rooms[dominators][None, :, :] >= rooms[block][:, None, :], axis=2)
            )
            dominated[block] = hit.any(axis=1)
    return [t for t, gone in zip(ordered, dominated.tolist(), strict=True) if not gone]


def lower_bound(shapes: Sequence[LPShape], types: Sequence[LPType]) -> float:
    """The LP optimum (0.0 when there is nothing to place or the LP cannot be solved)."""
    if not shapes:
        return 0.0
    columns_cost: list[float] = []
    starts: list[int] = [0]
    indices: list[int] = []
    values: list[float] = []
    row_lower: list[float] = []
    row_upper: list[float] = []
    shape_rows: dict[int, int] = {}
    for i, shape in enumerate(shapes):
        shape_rows[i] = len(row_lower)
        row_lower.append(float(shape.count))
        row_upper.append(float(shape.count))
    resources = len(shapes[0].requests)
    pools = sorted({s.pool for s in shapes})
    for pool in pools:
        pool_shapes = [i for i, s in enumerate(shapes) if s.pool == pool]
        pool_types = [t for t in types if t.pool == pool]
        suits = {t.name: frozenset(i for i in pool_shapes if t.name in shapes[i].allowed) for t in pool_types}
        for lp_type in _undominated(pool_types, suits):
            if not suits[lp_type.name]:
                continue
            capacity_row = len(row_lower)
            for _ in range(resources):
                row_lower.append(-highspy.kHighsInf)
                row_upper.append(0.0)
            # One row per shape: a node holds at most k[s,t] whole pods of shape s.
            suited = sorted(suits[lp_type.name])
            slot_row = {i: len(row_lower) + n for n, i in enumerate(suited)}
            per_node = {i: _pods_per_node(shapes[i].requests, lp_type.room) for i in suited}
            for _ in suited:
                row_lower.append(-highspy.kHighsInf)
                row_upper.append(0.0)
            # Each capacity row is divided by the type's room so coefficients are near 1: raw
            # bytes (1e10) beside millicores (1e3) make the solver numerically unreliable.
            # x[p,t]: -1 on each capacity row.
            columns_cost.append(lp_type.price)
            for r, room in enumerate(lp_type.room):
                if room > 0:
                    indices.append(capacity_row + r)
                    values.append(-1.0)
            for i in suited:
                indices.append(slot_row[i])
                values.append(-float(per_node[i]))
            starts.append(len(indices))
            # w[s,t]: 1 on the shape's row, its share of the room on the capacity rows.
            for i in suited:
                columns_cost.append(0.0)
                indices.append(shape_rows[i])
                values.append(1.0)
                indices.append(slot_row[i])
                values.append(1.0)
                for r, (request, room) in enumerate(zip(shapes[i].requests, lp_type.room, strict=True)):
                    if request and room > 0:
                        indices.append(capacity_row + r)
                        values.append(request / room)
                starts.append(len(indices))
    if len(columns_cost) == 0:
        return 0.0
    highs = _solver()
    lp = highspy.HighsLp()
    lp.num_col_ = len(columns_cost)
    lp.num_row_ = len(row_lower)
    lp.col_cost_ = np.array(columns_cost)
    lp.col_lower_ = np.zeros(len(columns_cost))
    lp.col_upper_ = np.full(len(columns_cost), highspy.kHighsInf)
    lp.row_lower_ = np.array(row_lower)
    lp.row_upper_ = np.array(row_upper)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = np.array(starts, dtype=np.int32)
    lp.a_matrix_.index_ = np.array(indices, dtype=np.int32)
    lp.a_matrix_.value_ = np.array(values)
    highs.passModel(lp)
    highs.run()
    if highs.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return 0.0
    return float(highs.getInfo().objective_function_value) * (1.0 - _SOLVER_TOLERANCE)
