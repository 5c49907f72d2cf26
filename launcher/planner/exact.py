"""Exact plans for small pools: mixed-integer programs solved by HiGHS under a time budget (pure).

Why: first-fit-decreasing and the merge pass are fast and near optimal at scale, but at small
scale one badly chosen node is a large share of the bill (the seed's 10 pods: 4 x c6a.xlarge for
$0.612/h where c6a.2xlarge + c6a.xlarge cost $0.459/h). When a pool's pods are few, its new claims
are also solved for exactly, with what the heuristic's claims cost as the cutoff ``C`` (none when
they would not all pass the pool's limits), and the better plan is kept. The solver also proves
a lower bound on the pool's cost, far tighter than the LP bound at this size, so each plan's gap
is reported against the best bound known. Only the new claims are decided: in-flight claims and
existing room were served first, and each pod's pool was chosen as for the heuristic. Pods come
in *shapes* (identical requests and per-node rules, within one requirements group); identical
pods are one integer count, never one variable each, which would only add symmetry.

**The contents model** (used whenever the pods can fill one node in at most ``max_contents``
ways, which covers most small plans). A *content* is how many pods of each shape one node holds:
within the room of the largest type all its groups allow, never two groups whose requirements
together allow no type, and within the per-node rules (``colocation``). Its price is what
``plan`` pays for a claim holding it: the cheapest type the content's joint requirements allow
that holds it. Then::

    z[c] in 0, 1, 2, ...   nodes bought with content c
    minimise   sum_c price[c] * z[c]
    subject to sum_c content[c,s] * z[c] >= count[s]                   every shape
               sum_c capacity[c,r] * z[c] <= limit[r] - usage[r]       every limited resource

A pod covered twice is taken out of one of its nodes afterwards, which never makes that node
dearer (fewer pods and fewer groups allow at least the same types), so the model may keep only
the *full* contents: those for which one more pod of any shape would cost (or count) more. Its LP relaxation
is tight (HiGHS proves most plans at the root in milliseconds, once its presolve, which stalls
on these near-parallel columns, is off). Among plans of the optimal price a second, smaller solve
picks one with the fewest nodes.

**The slots model** (the fallback for more varied pods). *Kinds* ``k`` are (instance type,
capacity type) pairs, at the least price any group pays for them: a node is either spot or
on-demand. Each kind gets ``K[k] = min(pods that fit k, floor(C / price[k]))`` interchangeable
*bins*, where ``C`` is the cutoff (a cheaper plan cannot buy more)::

    y[b] in {0,1}    bin b bought          n[s,b] in 0..fit[s,k]   pods of shape s on b
    u[.,b] in {0,1}  b holds pods of a shape, or of a group (only where a rule needs it)

    minimise   sum_b price[k(b)] * y[b]
    subject to sum_b n[s,b] = count[s]                                 every shape
               sum_s req[s,r] * n[s,b] <= room[k,r] * y[b]             every bin, resource
               n[s,b] <= fit[s,k] * y[b]                               (a tighter relaxation)
               sum_{s carries t} n[s,b] <= cap[t] (+ slack unless a pod setting it is on b)
               u[s,b] + u[s',b] <= 1     s repels a tag s' carries (``colocation``)
               u[g,b] + u[h,b] <= 1      groups g, h whose joint requirements exclude kind k
               sum_b capacity[k(b),r] * y[b] <= limit[r] - usage[r]    every limited resource
               y[k,j+1] <= y[k,j];  load[k,j+1] <= load[k,j]           symmetry breaking

``fit[s,k]`` is how many pods of ``s`` one node of ``k`` holds (0 where its group may not buy
``k``); rooms are allocatable less the pool's daemonset overhead, and ``pods`` is one of the
resources, so max pods per node holds in both models. Kinds dearer than ``C`` are dropped, and
so are kinds another kind dominates (no dearer, allowed for every group and pair of groups the
first is, no more limit capacity, and at least as much room as any content of the first can
use): replacing a dominated bin by its dominator keeps every plan feasible and no dearer.

**Limits.** ``plan`` counts a claim with the largest capacity among the types it lists, as
Karpenter does. The models count each node with its own type's capacity, which is never more,
so their optimum is a bound; when its plan fails ``plan``'s count, the contents model is solved
again counting each content as ``plan`` would at the pool's full headroom (the most among the
cheapest ``max_types`` types that hold it and fit the headroom), under which every claim passes,
whatever the order (the check below still confirms it: taking surplus pods out of a node can
change the types its claim lists). Limits no plan under ``C`` could reach are left out.

**The bound.** Both models relax the real problem of these pods in this pool (the slots model's
kind prices are the least any group pays, and only pairs of groups are checked for sharing a
node), and both are cut off at ``C``, so ``min(solver bound, C)`` is a lower bound on every real
plan. A solution is checked before it is used: each node's groups' requirements together must be
satisfiable, some type they allow must hold its pods (its price is then the real claim's), its
pods' per-node rules must admit each other, and the claims must pass the pool's limits as
``plan`` counts them, in order (dearest first). It replaces the heuristic's plan only when it
costs less or serves pods the heuristic's would turn away at the limits.

Determinism: the models are built in a fixed order and HiGHS is deterministic, so a plan repeats
exactly unless the time budget (wall time) cuts a search short.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Literal

import highspy
import numpy as np
import numpy.typing as npt

from launcher.planner.colocation import NONE, Colocation, NodeTally
from launcher.planner.fit import Candidate
from launcher.planner.improve import Draft
from launcher.planner.lowerbound import silent_solver
from shared.requirements import Requirements

Vector = tuple[int, ...]
Fitting = Callable[[Requirements], tuple[Sequence[Candidate], npt.NDArray[np.int64]]]
Status = Literal["skipped", "optimal", "improved", "timeout", "rejected"]
Nodes = list[dict[int, int]]  # per node bought: pods per shape (an index into the shapes)
# Bounds are lowered by this much (relative) so a solver's rounding never lifts one above the
# true optimum; HiGHS's own tolerances are about 1e-7.
_TOLERANCE = 1e-6
_CHUNK = 256  # rows of kinds compared at once in the dominance test
_NO_LIMIT = -highspy.kHighsInf


@dataclass(frozen=True)
class ExactSettings:
    """When a pool is solved exactly, and for how long.

    ``seconds``: HiGHS's wall-time budget per pool, all solves together (0 turns exact plans
    off). ``max_pods``: pools with more pods in new claims keep the heuristic's plan (at scale it
    is within a few percent, and the models would not be solved in time). ``max_contents``: the
    most ways to fill one node for the contents model; past it the slots model is used, if it
    has at most ``max_columns`` pod-count variables (shapes x bins, after pruning), else the pool
    keeps the heuristic's plan.
    """

    seconds: float = 0.08
    max_pods: int = 64
    max_contents: int = 6000
    max_columns: int = 6000


@dataclass(frozen=True)
class Group:
    """Pods of one pool with the same requirements, as the heuristic groups them."""

    requirements: Requirements
    shapes: tuple[Vector, ...]  # requests, in the plan's key order
    counts: tuple[int, ...]
    rules: tuple[Colocation, ...] = ()  # per shape (see ``colocation``); empty: none


@dataclass(frozen=True)
class Outcome:
    """The drafts to use for a pool, what the solver did, and a proven bound on the pool's cost.

    ``status``: ``optimal`` (proven; the drafts are the solver's or the heuristic's, whichever
    is cheaper), ``improved`` (the solver's, not proven optimal: the budget ran out, or the
    limits needed the second count; cheaper than the heuristic's, or serving pods its claims
    would turn away at the limits), ``timeout`` (nothing better found in time), ``rejected``
    (the solver's plan failed the checks, so the heuristic's stands), ``skipped`` (not
    attempted: too many pods, or too large a model). ``bound`` is 0.0 when none is known.
    """

    drafts: list[Draft]
    status: Status
    bound: float = 0.0


@dataclass(frozen=True)
class _Shape:
    group: int
    index: int  # within its group
    requests: Vector
    count: int
    rules: Colocation


@dataclass
class _Kind:
    """One (instance type, capacity type) the pool's groups may buy, at the least price any pays."""

    name: str
    capacity_type: str
    price: float
    room: Vector
    capacity: Vector  # of the limited resources, in name order
    groups: set[int] = field(default_factory=set)
    apart: list[tuple[int, int]] = field(default_factory=list)  # groups that may not share it


def solve(
    groups: Sequence[Group],
    drafts: list[Draft],
    fitting: Fitting,
    settings: ExactSettings,
    *,
    headroom: Mapping[str, int] | None = None,
    max_types: int = 60,
) -> Outcome:
    """The better of ``drafts`` (the heuristic's, for ``groups``) and an exact plan.

    ``fitting(requirements)``: the pool's candidates for those requirements (cheapest first)
    and their rooms, one row each in the plan's key order. ``headroom``: the pool's limits less
    its usage, per limited resource (None or empty: no limits). ``max_types``: how many types a
    claim lists (limits count the largest of them). Draft contents are keyed (group, shape).
    """
    pods = sum(sum(g.counts) for g in groups)
    if not drafts or pods == 0 or pods > settings.max_pods or settings.seconds <= 0:
        return Outcome(drafts, "skipped")
    limits = dict(sorted((headroom or {}).items()))
    # The cutoff is what the heuristic's claims will cost; when they would not all pass the
    # limits, any plan that does is better, whatever its cost.
    heuristic = claimed_cost(drafts, fitting, limits, max_types)
    cutoff = heuristic if heuristic is not None else math.inf
    shapes = [
        _Shape(g, s, requests, count, group.rules[s] if group.rules else NONE)
        for g, group in enumerate(groups)
        for s, (requests, count) in enumerate(zip(group.shapes, group.counts, strict=True))
        if count > 0
    ]
    contents = _Contents.build(shapes, groups, fitting, limits, cutoff, settings.max_contents)
    if contents is not None:
        solved = contents.solve(settings.seconds, cutoff)
    else:
        slots = _Slots(shapes, groups, fitting, cutoff, limits)
        if slots.columns > settings.max_columns:
            return Outcome(drafts, "skipped")
        solved = slots.solve(settings.seconds, cutoff)
    bound = min(solved.bound, cutoff) * (1.0 - _TOLERANCE)
    if solved.nodes is None:
        return Outcome(drafts, "optimal" if solved.proven else "timeout", bound)
    exact = _drafts(groups, shapes, solved.nodes, fitting)
    cost = claimed_cost(exact, fitting, limits, max_types) if exact is not None else None
    recounted = exact is not None and cost is None and contents is not None and contents.limited
    if recounted and contents is not None:
        left = settings.seconds - solved.seconds
        again = contents.solve(left, cutoff, counted=True, max_types=max_types)
        exact = _drafts(groups, shapes, again.nodes, fitting) if again.nodes is not None else None
        cost = claimed_cost(exact, fitting, limits, max_types) if exact is not None else None
    if exact is None or cost is None:
        return Outcome(drafts, "rejected", bound)
    if heuristic is not None and cost >= heuristic - 1e-9:
        status: Status = "rejected" if recounted else "optimal" if solved.proven else "timeout"
        return Outcome(drafts, status, bound)
    return Outcome(exact, "optimal" if solved.proven and not recounted else "improved", bound)


def claimed_cost(
    drafts: Sequence[Draft], fitting: Fitting, headroom: Mapping[str, int], max_types: int
) -> float | None:
    """What the drafts cost once ``plan`` makes them claims, in order; None if a claim would take
    the pool past its limits.

    A claim lists the cheapest ``max_types`` types that hold its pods and fit the headroom left,
    pays the first, and counts the largest capacity among them (CreateFleet may launch any).
    """
    if not headroom:
        return sum(d.price for d in drafts)
    names = sorted(headroom)
    left = np.array([headroom[k] for k in names], dtype=np.int64)
    cost = 0.0
    for draft in drafts:
        candidates, rooms = fitting(draft.requirements)
        holding = np.flatnonzero(np.all(rooms >= np.array(draft.used, dtype=np.int64), axis=1))
        capacities = _capacities([candidates[int(i)] for i in holding], names)
        within = np.flatnonzero(np.all(capacities <= left, axis=1))[:max_types]
        if len(within) == 0:
            return None
        cost += candidates[int(holding[within[0]])].price
        left = left - capacities[within].max(axis=0)
    return cost


def _capacities(candidates: Sequence[Candidate], names: Sequence[str]) -> npt.NDArray[np.int64]:
    rows = [[c.type.capacity.amount(k) for k in names] for c in candidates]
    return np.array(rows, dtype=np.int64).reshape(len(candidates), len(names))


@dataclass(frozen=True)
class _Solved:
    nodes: Nodes | None  # None: no plan under the cutoff found
    proven: bool  # the search finished
    bound: float  # a lower bound on the cost of every plan (0.0: none known)
    seconds: float  # solver time spent


@dataclass(frozen=True)
class _Column:
    content: tuple[int, ...]  # pods per shape
    price: float
    capacity: tuple[int, ...]  # what counts toward the binding limits


@dataclass(frozen=True)
class _Batch:
    """Contents whose pods come from the same groups, and the types their requirements allow."""

    contents: npt.NDArray[np.int64]  # [content, shape]: pods
    candidates: Sequence[Candidate]
    rooms: npt.NDArray[np.int64]
    used: npt.NDArray[np.int64]  # [content, resource]: what its pods request

    def holding(self, keep: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        """[content, k]: candidate ``keep[k]`` holds the content."""
        held: npt.NDArray[np.bool_] = np.all(self.rooms[keep][None, :, :] >= self.used[:, None, :], axis=2)
        return held

    def frontier(self, caps: npt.NDArray[np.int64] | None = None) -> npt.NDArray[np.int64]:
        """The candidates no earlier (no dearer) one beats: at least their room, as far as these
        contents use it, and (with ``caps``) no more capacity. The cheapest candidate holding a
        content, or each not beaten on capacity by a cheaper one holding it, is among them."""
        most = self.used.max(axis=0)
        room = np.minimum(self.rooms, most)
        count = len(self.candidates)
        if caps is None:
            # Past the first candidate that holds every content, all are beaten by it.
            holds_all = np.flatnonzero(np.all(room == most, axis=1))
            count = int(holds_all[0]) + 1 if len(holds_all) else count
        profile = room[:count] if caps is None else np.concatenate([room, -caps], axis=1)
        # Of candidates alike in room (and capacity), the first beats the rest.
        _, first = np.unique(profile, axis=0, return_index=True)
        alive = np.sort(first)
        beaten = np.zeros(len(alive), dtype=bool)
        for start in range(0, len(alive), _CHUNK):
            block = np.arange(start, min(len(alive), start + _CHUNK))
            hit = (np.arange(len(alive))[None, :] < block[:, None]) & np.all(
                profile[alive][None, :, :] >= profile[alive[block]][:, None, :], axis=2
            )
            beaten[block] = hit.any(axis=1)
        return alive[~beaten]


class _Contents:
    """The contents model (module docstring), with its columns for both ways to count limits."""

    def __init__(
        self, shapes: Sequence[_Shape], batches: list[_Batch], limits: Mapping[str, int], binding: list[str]
    ) -> None:
        self.shapes = shapes
        self.batches = batches
        self.all_limits = limits
        self.binding = binding  # the limits a plan under the cutoff could pass, by own capacity
        self.own = _full(shapes, _columns(batches, [limits[k] for k in binding], binding))
        self._counted: list[_Column] | None = None

    @property
    def limited(self) -> bool:
        return bool(self.all_limits)

    def counted_columns(self, max_types: int) -> list[_Column]:
        """Columns counting every limit as ``plan`` counts a claim at the full headroom (made on
        first use: only when the own-capacity plan failed ``plan``'s count)."""
        if self._counted is None:
            names = list(self.all_limits)
            headroom = [self.all_limits[k] for k in names]
            self._counted = _full(self.shapes, _columns(self.batches, headroom, names, max_types))
        return self._counted

    @classmethod
    def build(
        cls,
        shapes: Sequence[_Shape],
        groups: Sequence[Group],
        fitting: Fitting,
        limits: Mapping[str, int],
        cutoff: float,
        most: int,
    ) -> _Contents | None:
        """The model, or None when the pods may fill a node in more than ``most`` ways."""
        present = sorted({s.group for s in shapes})
        if len(groups) > 62:  # groups are bits of an int64 below
            return None
        every = {g: fitting(groups[g].requirements) for g in present}
        largest = {g: rooms.max(axis=0) for g, (_, rooms) in every.items() if len(rooms)}
        if len(largest) < len(present):
            return None  # a group no type serves (not reached: its pods were given this pool)
        apart = set()
        for g, h in combinations(present, 2):
            both = groups[g].requirements.intersect(groups[h].requirements)
            if not both.is_satisfiable() or not len(fitting(both)[0]):
                apart.add((g, h))
        found = _enumerate(shapes, largest, apart, most)
        if not found:
            return None
        # A limit binds only if the most nodes a plan under the cutoff buys (one a pod at most),
        # each of the largest capacity it could afford, could pass it.
        affordable = [c for cs, _ in every.values() for c in cs if c.price <= cutoff * (1 + 1e-9)]
        nodes = sum(s.count for s in shapes)
        if affordable and math.isfinite(cutoff):
            nodes = min(nodes, math.floor(cutoff / min(c.price for c in affordable) * (1 + 1e-9)))
        binding = [
            k
            for k, left in limits.items()
            if nodes * max((c.type.capacity.amount(k) for c in affordable), default=0) > left
        ]
        contents = np.array(found, dtype=np.int64)
        member = np.zeros((len(shapes), len(groups)), dtype=np.int64)  # [shape, group]
        member[np.arange(len(shapes)), [s.group for s in shapes]] = 1
        masks = (((contents > 0).astype(np.int64) @ member) > 0).astype(np.int64) @ (
            1 << np.arange(len(groups))
        )
        requests = np.array([s.requests for s in shapes], dtype=np.int64)
        batches: list[_Batch] = []
        for mask in np.unique(masks).tolist():
            members = [g for g in present if mask >> g & 1]
            reqs = _joint(groups, members)
            if not reqs.is_satisfiable():
                continue
            candidates, rooms = fitting(reqs)
            batch = contents[masks == mask]
            batches.append(_Batch(batch, candidates, rooms, batch @ requests))
        return cls(shapes, batches, limits, binding)

    def solve(self, seconds: float, cutoff: float, *, counted: bool = False, max_types: int = 60) -> _Solved:
        """The cheapest nodes under ``cutoff``, then among them the fewest (module docstring)."""
        columns = self.counted_columns(max_types) if counted else self.own
        limits = list(self.all_limits.values()) if counted else [self.all_limits[k] for k in self.binding]
        if not columns or seconds <= 0:
            return _Solved(None, False, 0.0, 0.0)
        m = _Builder()
        demand: list[list[tuple[int, float]]] = [[] for _ in self.shapes]
        usage: list[list[tuple[int, float]]] = [[] for _ in limits]
        cost: list[tuple[int, float]] = []
        for column in columns:
            needed = max(-(-s.count // n) for s, n in zip(self.shapes, column.content, strict=True) if n)
            z = m.column(column.price, float(needed))
            cost.append((z, column.price))
            for i, n in enumerate(column.content):
                if n:
                    demand[i].append((z, float(n)))
            for r, amount in enumerate(column.capacity):
                usage[r].append((z, float(amount)))
        for terms, shape in zip(demand, self.shapes, strict=True):
            m.row(terms, float(shape.count), highspy.kHighsInf)
        for terms, left in zip(usage, limits, strict=True):
            m.row(terms, _NO_LIMIT, float(left))
        values, proven, bound, spent = m.solve(seconds, cutoff)
        if values is None:
            return _Solved(None, proven, bound, spent)
        optimum = sum(price * values[z] for z, price in cost)
        if proven and seconds > spent and optimum < cutoff * (1 - 1e-9):
            # The fewest nodes among plans of the optimal price (a tie-break, skipped when the
            # heuristic's plan costs as little and stands; any answer it finds in time is optimal).
            m.row(cost, _NO_LIMIT, optimum * (1 + 1e-9) + 1e-12)
            fewest, _, _, more = m.solve(seconds - spent, math.inf, objective=[1.0] * len(columns))
            spent += more
            values = fewest or values
        found: list[list[int]] = []
        for column, value in zip(columns, values, strict=True):
            found.extend(list(column.content) for _ in range(round(value)))
        for i, shape in enumerate(self.shapes):  # take the surplus out, from the last nodes first
            surplus = sum(node[i] for node in found) - shape.count
            for node in reversed(found):
                taken = min(surplus, node[i])
                node[i] -= taken
                surplus -= taken
        nodes = [{i: n for i, n in enumerate(node) if n} for node in found if any(node)]
        return _Solved(nodes, proven, bound, spent)


def _columns(
    batches: Sequence[_Batch], headroom: Sequence[int], names: Sequence[str], max_types: int | None = None
) -> list[_Column]:
    """The contents' columns. Without ``names``: the cheapest type that holds each. With them and
    no ``max_types``: every type that holds it and that no cheaper type holding it beats on
    capacity (a limit may let only some of them through). With ``max_types``: the claim ``plan``
    would make at the full headroom, counted with the largest of the first ``max_types`` types
    that hold the content and fit."""
    columns: list[_Column] = []
    for b in batches:
        contents = [tuple(row) for row in b.contents.tolist()]
        if not names:
            keep = b.frontier()
            holding = b.holding(keep)
            for content, row in zip(contents, holding, strict=True):
                if row.any():
                    columns.append(_Column(content, b.candidates[int(keep[row.argmax()])].price, ()))
            continue
        caps = _capacities(b.candidates, names)
        if max_types is not None:
            everything = np.arange(len(b.candidates))
            within = (
                b.holding(everything) & np.all(caps <= np.array(headroom, dtype=np.int64), axis=1)[None, :]
            )
            listed = within & (np.cumsum(within, axis=1) <= max_types)
            counted = np.where(listed[:, :, None], caps[None, :, :], 0).max(axis=1)
            for content, row, count in zip(contents, listed, counted, strict=True):
                if row.any():
                    price = b.candidates[int(row.argmax())].price
                    columns.append(_Column(content, price, tuple(int(v) for v in count)))
            continue
        keep = b.frontier(caps)
        held = b.holding(keep)
        kept = caps[keep]
        beats = (np.arange(len(keep))[:, None] < np.arange(len(keep))[None, :]) & np.all(
            kept[:, None, :] <= kept[None, :, :], axis=2
        )
        beaten = (held.astype(np.float64) @ beats.astype(np.float64)) > 0
        for content, row in zip(contents, held & ~beaten, strict=True):
            for j in keep[row].tolist():
                columns.append(_Column(content, b.candidates[j].price, tuple(int(v) for v in caps[j])))
    return columns


def _full(shapes: Sequence[_Shape], columns: Sequence[_Column]) -> list[_Column]:
    """The columns no column with one more pod beats (no dearer, no more capacity), vectorised:
    a content is a number in mixed radix (a digit a shape), so one more pod is one addition."""
    if not columns:
        return []
    radix = np.cumprod([1] + [s.count + 1 for s in shapes[:-1]], dtype=np.int64)
    counts = np.array([s.count for s in shapes], dtype=np.int64)
    contents = np.array([c.content for c in columns], dtype=np.int64)
    codes = contents @ radix
    prices = np.array([c.price for c in columns])
    width = len(columns[0].capacity)
    capacities = np.array([c.capacity for c in columns], dtype=np.int64).reshape(len(columns), width)
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    beaten = np.zeros(len(columns), dtype=bool)
    for i in range(len(shapes)):
        more = codes + radix[i]
        start = np.searchsorted(sorted_codes, more, side="left")
        stop = np.searchsorted(sorted_codes, more, side="right")
        for offset in range(int((stop - start).max(initial=0))):  # columns of one content
            at = np.minimum(start + offset, len(columns) - 1)
            other = order[at]
            hit = (start + offset < stop) & (contents[:, i] < counts[i]) & (prices[other] <= prices + 1e-12)
            if width:
                hit &= np.all(capacities[other] <= capacities, axis=1)
            beaten |= hit
    return [column for column, gone in zip(columns, beaten.tolist(), strict=True) if not gone]


def _enumerate(
    shapes: Sequence[_Shape],
    largest: Mapping[int, npt.NDArray[np.int64]],
    apart: set[tuple[int, int]],
    most: int,
) -> list[tuple[int, ...]] | None:
    """Every non-empty content (pods per shape) one node might hold: within the largest room of
    a type every group present allows (``largest``, by group), no two groups ``apart`` (their
    requirements together allow no type), and the per-node rules; None when there are more than
    ``most``."""
    out: list[tuple[int, ...]] = []
    content = [0] * len(shapes)

    def visit(
        i: int,
        used: npt.NDArray[np.int64],
        room: npt.NDArray[np.int64] | None,
        present: frozenset[int],
        tally: NodeTally,
    ) -> bool:
        if i == len(shapes):
            if any(content):
                out.append(tuple(content))
            return len(out) <= most
        shape = shapes[i]
        top = 0
        joined = room
        if not any((min(shape.group, g), max(shape.group, g)) in apart for g in present):
            joined = largest[shape.group] if room is None else np.minimum(room, largest[shape.group])
            top = min(shape.count, shape.rules.per_node, tally.room(shape.rules))
            for r, q in enumerate(shape.requests):
                if q > 0:
                    top = min(top, int(joined[r] - used[r]) // q)
        step = np.array(shape.requests, dtype=np.int64)
        for n in range(max(top, 0) + 1):
            content[i] = n
            after = tally
            if n and shape.rules:
                after = tally.copy()
                after.add(shape.rules, n)
            if n:
                going_on = visit(i + 1, used + step * n, joined, present | {shape.group}, after)
            else:
                going_on = visit(i + 1, used, room, present, tally)
            if not going_on:
                return False
        content[i] = 0
        return True

    return (
        out
        if visit(0, np.zeros(len(shapes[0].requests), dtype=np.int64), None, frozenset(), NodeTally())
        else None
    )


def _joint(groups: Sequence[Group], members: Sequence[int]) -> Requirements:
    reqs = groups[members[0]].requirements
    for g in members[1:]:
        reqs = reqs.intersect(groups[g].requirements)
    return reqs


class _Slots:
    """The pool's MIP over node slots (module docstring): kinds after pruning, their bins, and
    how pods fit them."""

    def __init__(
        self,
        shapes: Sequence[_Shape],
        groups: Sequence[Group],
        fitting: Fitting,
        cutoff: float,
        limits: Mapping[str, int],
    ) -> None:
        self.limits = limits
        self.shapes = shapes
        kinds = _kinds(groups, fitting, cutoff, list(limits))
        fit = _fit(kinds, self.shapes)
        kept = [k for k in _undominated(kinds, fit, self.shapes, len(groups)) if fit[k].any()]
        self.kinds = [kinds[k] for k in kept]
        self.fit = fit[kept]
        self.bins: list[int] = []  # each bin's kind; a kind's bins in a row
        self.columns = 0
        for k, kind in enumerate(self.kinds):
            fitting_pods = int(self.fit[k].sum())
            affordable = (
                math.floor(cutoff / kind.price * (1 + 1e-9))
                if kind.price > 0 and math.isfinite(cutoff)
                else fitting_pods
            )
            copies = min(fitting_pods, affordable)
            self.bins.extend([k] * copies)
            self.columns += copies * int(np.count_nonzero(self.fit[k]))

    def solve(self, seconds: float, cutoff: float) -> _Solved:
        """The cheapest nodes under ``cutoff`` (no tie-break: this model is for when time is short)."""
        m = _Builder()
        demand: list[list[tuple[int, float]]] = [[] for _ in self.shapes]
        placed: list[tuple[int, dict[int, int]]] = []  # per bin: its y column, shape -> n column
        previous: dict[int, tuple[int, dict[int, int]]] = {}  # kind -> its last bin's columns
        for k in self.bins:
            kind = self.kinds[k]
            fits = {i: int(self.fit[k, i]) for i in np.flatnonzero(self.fit[k]).tolist()}
            y = m.column(kind.price, 1.0)
            n = {i: m.column(0.0, float(most)) for i, most in fits.items()}
            placed.append((y, n))
            for i, col in n.items():
                demand[i].append((col, 1.0))
                m.row([(col, 1.0), (y, -float(fits[i]))], _NO_LIMIT, 0.0)
            for r, room in enumerate(kind.room):
                requests = {i: q for i in n if (q := self.shapes[i].requests[r])}
                if sum(q * fits[i] for i, q in requests.items()) > room:  # else the row cannot bind
                    m.row([*((n[i], q / room) for i, q in requests.items()), (y, -1.0)], _NO_LIMIT, 0.0)
            self._rules(m, kind, fits, n)
            if k in previous:  # a kind's bins are interchangeable: bought first, fuller first
                y_before, n_before = previous[k]
                m.row([(y, 1.0), (y_before, -1.0)], _NO_LIMIT, 0.0)
                load = {i: self._share(k, i) for i in n}
                m.row(
                    [*((n[i], w) for i, w in load.items()), *((n_before[i], -w) for i, w in load.items())],
                    _NO_LIMIT,
                    0.0,
                )
            previous[k] = (y, n)
        for terms, shape in zip(demand, self.shapes, strict=True):
            m.row(terms, float(shape.count), float(shape.count))
        for r, left in enumerate(self.limits.values()):
            m.row(
                [(y, float(self.kinds[k].capacity[r])) for k, (y, _) in zip(self.bins, placed, strict=True)],
                _NO_LIMIT,
                float(left),
            )
        values, proven, bound, spent = m.solve(seconds, cutoff)
        if values is None:
            return _Solved(None, proven, bound, spent)
        found: list[dict[int, int]] = []
        for _, n in placed:
            contents = {i: count for i, col in n.items() if (count := round(values[col])) > 0}
            if contents:
                found.append(contents)
        return _Solved(found, proven, bound, spent)

    def _rules(self, m: _Builder, kind: _Kind, fits: Mapping[int, int], n: Mapping[int, int]) -> None:
        """Rows keeping one bin's pods within their per-node rules and their groups' requirements."""
        present: dict[object, int] = {}  # a shape (int) or a group (("group", g)): its indicator

        def indicator(key: object, members: Sequence[int]) -> int:
            if key not in present:
                present[key] = m.column(0.0, 1.0)
                for i in members:
                    m.row([(n[i], 1.0), (present[key], -float(fits[i]))], _NO_LIMIT, 0.0)
            return present[key]

        carriers: dict[str, list[int]] = {}
        for i in n:
            for tag in self.shapes[i].rules.tags:
                carriers.setdefault(tag, []).append(i)
        for tag, members in carriers.items():
            most = sum(fits[i] for i in members)
            setters: dict[int, list[int]] = {}
            for i in members:
                cap = dict(self.shapes[i].rules.caps).get(tag)
                if cap is not None:
                    setters.setdefault(cap, []).append(i)
            for cap, which in sorted(setters.items()):
                if most <= cap:
                    continue
                terms = [(n[i], 1.0) for i in members]
                if len(which) == len(members):  # every carrier sets it: a plain cap
                    m.row(terms, _NO_LIMIT, float(cap))
                else:  # binding only while a pod that sets it is on the bin
                    u = indicator(("cap", tag, cap), which)
                    m.row([*terms, (u, float(most - cap))], _NO_LIMIT, float(most))
        repelling = sorted(
            {
                (min(i, j), max(i, j))
                for i in n
                for j in n
                if i != j and self.shapes[i].rules.repels & self.shapes[j].rules.tags
            }
        )
        for i, j in repelling:  # (a shape repelling its own tag is held to one a node by ``fit``)
            m.row([(indicator(i, [i]), 1.0), (indicator(j, [j]), 1.0)], _NO_LIMIT, 1.0)
        for g, h in kind.apart:
            in_g = [i for i in n if self.shapes[i].group == g]
            in_h = [i for i in n if self.shapes[i].group == h]
            if in_g and in_h:
                m.row(
                    [(indicator(("group", g), in_g), 1.0), (indicator(("group", h), in_h), 1.0)],
                    _NO_LIMIT,
                    1.0,
                )

    def _share(self, k: int, i: int) -> float:
        """Shape ``i``'s share of kind ``k``'s room: the load that orders a kind's bins."""
        room = self.kinds[k].room
        return sum(q / r for q, r in zip(self.shapes[i].requests, room, strict=True) if r > 0)


def _kinds(groups: Sequence[Group], fitting: Fitting, cutoff: float, limited: Sequence[str]) -> list[_Kind]:
    """Every (type, capacity type) some group may buy for at most ``cutoff``, cheapest first."""
    kinds: dict[tuple[str, str], _Kind] = {}
    for g, group in enumerate(groups):
        candidates, rooms = fitting(group.requirements)
        for candidate, room in zip(candidates, rooms.tolist(), strict=True):
            for capacity_type, price in candidate.prices.items():
                if price > cutoff * (1 + 1e-9):
                    continue
                key = (candidate.type.name, capacity_type)
                kind = kinds.get(key)
                if kind is None:
                    capacity = tuple(candidate.type.capacity.amount(r) for r in limited)
                    kind = kinds[key] = _Kind(key[0], key[1], price, tuple(room), capacity)
                kind.price = min(kind.price, price)
                kind.groups.add(g)
    for g, h in combinations(range(len(groups)), 2):
        both = groups[g].requirements.intersect(groups[h].requirements)
        together: set[tuple[str, str]] = set()
        if both.is_satisfiable():
            candidates, _ = fitting(both)
            together = {(c.type.name, capacity_type) for c in candidates for capacity_type in c.prices}
        for key, kind in kinds.items():
            if g in kind.groups and h in kind.groups and key not in together:
                kind.apart.append((g, h))
    return sorted(kinds.values(), key=lambda k: (k.price, tuple(-r for r in k.room), k.name, k.capacity_type))


def _fit(kinds: Sequence[_Kind], shapes: Sequence[_Shape]) -> npt.NDArray[np.int64]:
    """Pods of each shape (columns) one node of each kind (rows) may hold: its room, its count and
    its per-node rules allowing; 0 where its group may not buy the kind."""
    fit = np.zeros((len(kinds), len(shapes)), dtype=np.int64)
    if not kinds:
        return fit
    rooms = np.array([k.room for k in kinds], dtype=np.int64)
    for i, shape in enumerate(shapes):
        most = np.full(len(kinds), min(shape.count, shape.rules.per_node), dtype=np.int64)
        for r, q in enumerate(shape.requests):
            if q > 0:
                most = np.minimum(most, rooms[:, r] // q)
        allowed = np.array([shape.group in k.groups for k in kinds], dtype=bool)
        fit[:, i] = np.where(allowed, most, 0)
    return fit


def _undominated(
    kinds: Sequence[_Kind], fit: npt.NDArray[np.int64], shapes: Sequence[_Shape], groups: int
) -> list[int]:
    """Positions of the kinds no other kind dominates (module docstring), vectorised.

    ``j`` dominates ``i`` when it comes first (kinds are sorted by price), costs no more, is
    allowed for every group and pair of groups ``i`` is, has no more capacity on any limited
    resource, and has at least as much of every resource as any content of ``i`` can use. The
    relation is a strict order, so every dropped kind is dominated by a kept one.
    """
    count = len(kinds)
    if count == 0:
        return []
    pairs = list(combinations(range(groups), 2))
    bits = np.zeros((count, groups + len(pairs)), dtype=bool)
    for k, kind in enumerate(kinds):
        for g in kind.groups:
            bits[k, g] = True
        for p, (g, h) in enumerate(pairs):
            bits[k, groups + p] = g in kind.groups and h in kind.groups and (g, h) not in kind.apart
    prices = np.array([k.price for k in kinds])
    rooms = np.array([k.room for k in kinds], dtype=np.int64).reshape(count, -1)
    capacities = np.array([k.capacity for k in kinds], dtype=np.int64).reshape(count, -1)
    requests = np.array([s.requests for s in shapes], dtype=np.int64).reshape(len(shapes), -1)
    usable = np.minimum(rooms, fit @ requests)  # the most any content of a kind can use
    by_bits: dict[bytes, list[int]] = {}
    for k in range(count):
        by_bits.setdefault(bits[k].tobytes(), []).append(k)
    dominated = np.zeros(count, dtype=bool)
    for members in by_bits.values():
        dominators = np.flatnonzero(bits[:, bits[members[0]]].all(axis=1))
        for start in range(0, len(members), _CHUNK):
            block = np.array(members[start : start + _CHUNK])
            hit = (
                (dominators[None, :] < block[:, None])
                & (prices[dominators][None, :] <= prices[block][:, None])
                & np.all(rooms[dominators][None, :, :] >= usable[block][:, None, :], axis=2)
                & np.all(capacities[dominators][None, :, :] <= capacities[block][:, None, :], axis=2)
            )
            dominated[block] = hit.any(axis=1)
    return [k for k in range(count) if not dominated[k]]


def _drafts(
    groups: Sequence[Group], shapes: Sequence[_Shape], found: Sequence[Mapping[int, int]], fitting: Fitting
) -> list[Draft] | None:
    """The solution's bins as drafts priced as real claims, dearest first; None if one fails the
    checks (module docstring)."""
    drafts: list[Draft] = []
    joint: dict[tuple[int, ...], Requirements] = {}
    for contents in found:
        held = {shapes[i]: pods for i, pods in sorted(contents.items())}
        members = tuple(sorted({shape.group for shape in held}))
        reqs = joint.get(members)
        if reqs is None:
            reqs = joint[members] = _joint(groups, members)
        tally = NodeTally()
        for shape, pods in held.items():
            if tally.room(shape.rules) < pods:
                return None
            tally.add(shape.rules, pods)
        used = np.zeros(len(shapes[0].requests), dtype=np.int64)
        for shape, pods in held.items():
            used += np.array(shape.requests, dtype=np.int64) * pods
        candidates, rooms = (
            fitting(reqs) if reqs.is_satisfiable() else ((), np.zeros((0, len(used)), dtype=np.int64))
        )
        holding = np.flatnonzero(np.all(rooms >= used, axis=1))
        if len(holding) == 0:
            return None
        cheapest = int(holding[0])
        drafts.append(
            Draft(
                reqs,
                tuple(int(v) for v in used),
                {(shape.group, shape.index): pods for shape, pods in held.items()},
                candidates[cheapest].price,
                tuple(int(v) for v in rooms[cheapest]),
            )
        )
    drafts.sort(key=lambda d: (-d.price, -sum(d.contents.values()), sorted(d.contents.items())))
    return drafts


class _Builder:
    """A pure-integer program assembled column by column and row by row, then solved by HiGHS."""

    def __init__(self) -> None:
        self.cost: list[float] = []
        self.upper: list[float] = []
        self.row_lower: list[float] = []
        self.row_upper: list[float] = []
        self.rows: list[int] = []
        self.cols: list[int] = []
        self.values: list[float] = []

    def column(self, cost: float, upper: float) -> int:
        """A new integer variable in ``[0, upper]``; returns its index."""
        self.cost.append(cost)
        self.upper.append(upper)
        return len(self.cost) - 1

    def row(self, terms: Sequence[tuple[int, float]], lower: float, upper: float) -> None:
        row = len(self.row_lower)
        self.row_lower.append(lower)
        self.row_upper.append(upper)
        for col, value in terms:
            self.rows.append(row)
            self.cols.append(col)
            self.values.append(value)

    def solve(
        self, seconds: float, cutoff: float, objective: Sequence[float] | None = None
    ) -> tuple[list[float] | None, bool, float, float]:
        """(column values of the best solution under ``cutoff``, or None; whether the search
        finished; a lower bound on the objective; seconds spent).

        The bound is the optimum when the search finished (``cutoff`` when nothing under it
        exists), else HiGHS's dual bound when it stopped (0.0 when it had none).
        """
        columns = len(self.cost)
        cols = np.array(self.cols, dtype=np.int64)
        order = np.lexsort((np.array(self.rows, dtype=np.int64), cols))
        lp = highspy.HighsLp()
        lp.num_col_ = columns
        lp.num_row_ = len(self.row_lower)
        lp.col_cost_ = np.array(self.cost if objective is None else objective, dtype=np.float64)
        lp.col_lower_ = np.zeros(columns)
        lp.col_upper_ = np.array(self.upper)
        lp.row_lower_ = np.array(self.row_lower)
        lp.row_upper_ = np.array(self.row_upper)
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = np.searchsorted(cols[order], np.arange(columns + 1)).astype(np.int32)
        lp.a_matrix_.index_ = np.array(self.rows, dtype=np.int32)[order]
        lp.a_matrix_.value_ = np.array(self.values)[order]
        lp.integrality_ = [highspy.HighsVarType.kInteger] * columns
        highs = silent_solver()
        highs.setOptionValue("time_limit", float(seconds))
        highs.setOptionValue("mip_rel_gap", _TOLERANCE / 10)
        highs.setOptionValue("mip_abs_gap", 1e-9)
        if math.isfinite(cutoff):
            highs.setOptionValue("objective_bound", cutoff * (1 + 1e-9))
        # HiGHS's presolve takes up to seconds over the near-parallel columns of the contents
        # model, which it then solves at the root in milliseconds.
        highs.setOptionValue("presolve", "off")
        # The feasibility-jump heuristic costs about 7 ms a run, more than the whole search here.
        highs.setOptionValue("mip_heuristic_run_feasibility_jump", False)
        highs.passModel(lp)
        highs.run()
        status = highs.getModelStatus()
        info = highs.getInfo()
        proven = status in (highspy.HighsModelStatus.kOptimal, highspy.HighsModelStatus.kInfeasible)
        has_solution = info.primal_solution_status == 2  # kSolutionStatusFeasible
        values = list(highs.getSolution().col_value) if has_solution else None
        bound = float(info.mip_dual_bound)
        if proven and not has_solution:
            bound = cutoff if math.isfinite(cutoff) else 0.0
        elif not math.isfinite(bound):
            bound = 0.0
        return values, proven, max(bound, 0.0), float(highs.getRunTime())
