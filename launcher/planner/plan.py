"""``plan()``: from pending pods to the NodeClaims that serve them at the least cost (pure).

Steps, in order:

1. Pods already planned for an in-flight claim stay with it.
2. Other pods that fit the spare room of an in-flight claim wait for it; predicted demand may
   also count on free room of existing nodes (pods the scheduler already rejected may not:
   its verdict beats our simulation).
3. Every other pod is given the highest-weight NodePool that can serve it (see ``fit``), and
   pods with the same pool and requirements form a group.
4. Each group is bin-packed (see ``packing``); each bin becomes a claim listing every type that
   holds its pods, cheapest first, capped at 60 for CreateFleet. A claim that would take its
   pool past its limits (counted with the largest type it allows) keeps only the types that fit
   under them, or is not made and its pods are reported.
5. The LP lower bound (see ``lowerbound``) tells how far from optimal the plan may be.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from itertools import islice

from launcher.model import InstanceType
from launcher.planner.fit import (
    Candidate,
    IsUnavailable,
    PoolChoice,
    candidates,
    choose_pool,
    prices_by_capacity_type,
)
from launcher.planner.inputs import InFlightClaim, NodeRoom, Plan, PlannedClaim, PoolView
from launcher.planner.lowerbound import LPShape, LPType, lower_bound
from launcher.planner.packing import PackedBin, Shape, pack, vector
from shared import labels
from shared.demand import PodDemand
from shared.requirements import Requirements
from shared.resources import PODS, Resources, total
from shared.taints import untolerated_taints

MAX_TYPES_PER_CLAIM = 60


def _never_unavailable(instance_type: str, zone: str, capacity_type: str) -> bool:
    return False


def _implies(claim: Requirements, alternative: Requirements) -> bool:
    """True when every node the claim may become satisfies ``alternative``."""
    return claim.intersect(alternative) == claim


def _room_after(room: Resources, requests: Resources) -> Resources | None:
    left = room - requests
    return None if any(v < 0 for v in left.values()) else left


def _within_limits(pool: PoolView, usage: Resources, capacity: Resources) -> bool:
    return all(usage.amount(key) + capacity.amount(key) <= limit for key, limit in pool.pool.limits.items())


class _Planner:
    def __init__(
        self, pools: Sequence[PoolView], types: Sequence[InstanceType], is_unavailable: IsUnavailable
    ):
        self.pools = sorted(pools, key=lambda p: (-p.weight, p.name))
        self.types = types
        self.is_unavailable = is_unavailable
        self.type_reqs = {t.name: Requirements.from_labels(t.labels) for t in types}
        self._candidates: dict[tuple[str, Requirements], list[Candidate]] = {}
        self._choices: dict[tuple[object, ...], PoolChoice | str] = {}

    def candidates(self, view: PoolView, reqs: Requirements) -> list[Candidate]:
        key = (view.name, reqs)
        found = self._candidates.get(key)
        if found is None:
            found = candidates(reqs, view.overhead, self.types, self.type_reqs, self.is_unavailable)
            self._candidates[key] = found
        return found

    def fits_some_type(self, view: PoolView, reqs: Requirements, requests: Resources) -> bool:
        return any(requests.fits_in(c.room) for c in self.candidates(view, reqs))

    def choose(self, demand: PodDemand) -> PoolChoice | str:
        key = (demand.requests, demand.requirements, demand.tolerations)
        choice = self._choices.get(key)
        if choice is None:
            choice = choose_pool(demand, self.pools, self.fits_some_type)
            self._choices[key] = choice
        return choice


def plan(
    *,
    demand: Mapping[str, PodDemand],
    pools: Sequence[PoolView],
    types: Sequence[InstanceType],
    in_flight: Sequence[InFlightClaim] = (),
    nodes: Sequence[NodeRoom] = (),
    is_unavailable: IsUnavailable = _never_unavailable,
    max_types_per_claim: int = MAX_TYPES_PER_CLAIM,
) -> Plan:
    planner = _Planner(pools, types, is_unavailable)
    covered: dict[str, str] = {}
    unschedulable: dict[str, str] = {}
    ordered = sorted(demand.values(), key=lambda d: (-d.priority, d.first_seen, d.uid))

    planned_for = {uid: claim.name for claim in in_flight for uid in claim.pods}
    claim_room = {claim.name: claim.room for claim in in_flight}
    node_room = {node.name: node.free for node in nodes}
    pending: list[PodDemand] = []
    for pod in ordered:
        if pod.uid in planned_for:
            covered[pod.uid] = planned_for[pod.uid]
            continue
        place = _existing_place(pod, in_flight, claim_room, nodes, node_room)
        if place is not None:
            covered[pod.uid] = place
        else:
            pending.append(pod)

    groups: dict[tuple[str, Requirements], dict[Resources, list[str]]] = defaultdict(
        lambda: defaultdict(list)
    )
    views: dict[str, PoolView] = {}
    for pod in pending:
        choice = planner.choose(pod)
        if isinstance(choice, str):
            unschedulable[pod.uid] = choice
            continue
        views[choice.pool.name] = choice.pool
        groups[(choice.pool.name, choice.requirements)][pod.requests].append(pod.uid)

    keys = sorted({k for pod in pending for k in pod.requests} | {PODS})
    usage = {name: view.usage for name, view in views.items()}
    claims: list[PlannedClaim] = []
    lp_shapes: list[LPShape] = []
    lp_prices: dict[tuple[str, str], tuple[float, tuple[int, ...]]] = {}
    for (pool_name, reqs), by_shape in sorted(groups.items(), key=lambda g: (g[0][0], str(g[0][1]))):
        view = views[pool_name]
        group_candidates = planner.candidates(view, reqs)
        shape_requests = list(by_shape)
        shapes = [Shape(i, vector(r, keys), len(by_shape[r])) for i, r in enumerate(shape_requests)]
        # LP node classes are (type, capacity type): a node is either spot or on-demand, so
        # pods that allow only on-demand must not borrow spot prices in the bound.
        by_capacity_type: dict[str, dict[str, float]] = {}
        for c in group_candidates:
            by_capacity_type[c.type.name] = prices_by_capacity_type(c.type, reqs, planner.is_unavailable)
            for capacity_type, price in by_capacity_type[c.type.name].items():
                key = (pool_name, f"{c.type.name}|{capacity_type}")
                if key not in lp_prices or price < lp_prices[key][0]:
                    lp_prices[key] = (price, vector(c, keys))
        queues = {i: list(by_shape[r]) for i, r in enumerate(shape_requests)}
        planned_count = dict.fromkeys(queues, 0)
        for packed in pack(shapes, group_candidates, keys):
            for _ in range(packed.multiplicity):
                pods = [uid for i, n in sorted(packed.contents.items()) for uid in _take(queues[i], n)]
                made = _make_claim(view, reqs, packed, pods, shape_requests, usage, max_types_per_claim)
                if isinstance(made, str):
                    unschedulable.update(dict.fromkeys(pods, made))
                else:
                    claims.append(made)
                    for i, n in packed.contents.items():
                        planned_count[i] += n
        # The bound covers the pods the plan buys for (not those its pool's limits turned away).
        for shape, requests in zip(shapes, shape_requests, strict=True):
            if planned_count[shape.index]:
                allowed = frozenset(
                    f"{c.type.name}|{capacity_type}"
                    for c in group_candidates
                    if requests.fits_in(c.room)
                    for capacity_type in by_capacity_type[c.type.name]
                )
                lp_shapes.append(LPShape(pool_name, shape.requests, planned_count[shape.index], allowed))
    bound = lower_bound(
        lp_shapes, [LPType(pool, name, price, room) for (pool, name), (price, room) in lp_prices.items()]
    )
    return Plan(
        claims=tuple(claims),
        covered=covered,
        unschedulable=unschedulable,
        cost_per_hour=sum(c.price for c in claims),
        lower_bound_per_hour=bound,
    )


def _take(queue: list[str], n: int) -> list[str]:
    taken, queue[:n] = queue[:n], []
    return taken


def _existing_place(
    pod: PodDemand,
    in_flight: Sequence[InFlightClaim],
    claim_room: dict[str, Resources],
    nodes: Sequence[NodeRoom],
    node_room: dict[str, Resources],
) -> str | None:
    for claim in in_flight:
        left = _room_after(claim_room[claim.name], pod.requests)
        if left is None or untolerated_taints(pod.tolerations, claim.taints):
            continue
        if any(_implies(claim.requirements, alt) for alt in pod.requirements):
            claim_room[claim.name] = left
            return claim.name
    if pod.reason != "predicted":
        return None
    for node in nodes:
        left = _room_after(node_room[node.name], pod.requests)
        if left is None or untolerated_taints(pod.tolerations, node.taints):
            continue
        if any(alt.matches(node.labels) for alt in pod.requirements):
            node_room[node.name] = left
            return node.name
    return None


def _make_claim(
    view: PoolView,
    reqs: Requirements,
    packed: PackedBin,
    pods: list[str],
    shape_requests: list[Resources],
    usage: dict[str, Resources],
    max_types: int,
) -> PlannedClaim | str:
    if view.pool.limits:
        current = usage[view.name]
        chosen = list(
            islice((c for c in packed.fitting if _within_limits(view, current, c.type.capacity)), max_types)
        )
        if not chosen:
            exceeded = sorted(view.pool.limits)
            return f"nodepool {view.name} limits ({', '.join(exceeded)}) would be exceeded"
        usage[view.name] = current + _largest(c.type.capacity for c in chosen)
    else:
        chosen = list(packed.fitting[:max_types])
    requests = total([shape_requests[i] * n for i, n in packed.contents.items()]) + view.overhead
    return PlannedClaim(
        nodepool=view.name,
        pods=tuple(pods),
        requirements=reqs.without(labels.INSTANCE_TYPE),
        instance_types=tuple(c.type.name for c in chosen),
        requests=requests,
        price=chosen[0].price,
    )


def _largest(capacities: Iterable[Resources]) -> Resources:
    out = Resources()
    for capacity in capacities:
        out = out.max(capacity)
    return out
