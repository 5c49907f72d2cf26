"""``plan()``: from pending pods to the NodeClaims that serve them at the least cost (pure).

Steps, in order:

0. Pods whose placement depends on other pods (topology spread, required pod affinity and
   anti-affinity against other workloads) are pinned to a zone (or other wider domain) each,
   restricted, or given per-node rules (see ``topology``); every other pod skips this step.
1. Pods already planned for an in-flight claim stay with it.
2. Other pods that fit the spare room of an in-flight claim wait for it; predicted demand may
   also count on free room of existing nodes (pods the scheduler already rejected may not:
   its verdict beats our simulation). A pod never waits for a claim that already holds a pod
   of its exclusive group, nor does a pod with per-node rules from step 0 wait for room it was
   not planned onto.
3. Every other pod is given the highest-weight NodePool that can serve it (see ``fit``), and
   pods with the same pool and requirements form a group.
4. Each group is bin-packed (see ``packing``) within the per-node rules (``colocation``): at
   most one pod of an exclusive group per node (``PodDemand.exclusive``: replicas that repel
   each other by pod anti-affinity), and those of step 0; the bins of a pool are then improved
   by merging light ones whose requirements are compatible and whose pods' rules admit each
   other (see ``improve``). A claim holding a pod whose group must also keep a zone apart
   (``PodDemand.exclusive_zone``) is pinned to a zone no pod of the group holds yet
   (``occupied_zones``: running ones; and claims of this plan or in flight); with no such
   zone left, that pod is turned away and the rest of the claim stands.
   Each bin becomes a claim listing every type that holds its pods, cheapest first, capped at
   60 for CreateFleet. When a pool's pods are few, its bins are also solved for exactly, as a
   mixed-integer program under a time budget, and the cheaper of the two plans is kept (see
   ``exact``).
5. Limits: a claim counts toward its pool's limits with the LARGEST capacity among the types
   it lists (CreateFleet may launch any of them, as Karpenter counts). A claim that would take
   its pool past its limits keeps only the types that fit under them; if none does, its pods
   go back to step 3 without that pool (the next pool by weight may serve them), and are
   reported with the limit when no pool can.
6. The LP lower bound (see ``lowerbound``) tells how far from optimal the plan may be; the
   exact solver's bound, when it ran for every pool, is tighter.

Deterministic: pods are ordered by priority, first-seen time and uid, pools by weight and
name, groups by pool and requirements, and every tie is broken by a name.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache, partial

import numpy as np
import numpy.typing as npt

from launcher.model import InstanceType
from launcher.planner import topology
from launcher.planner.colocation import NONE, Colocation, NodeTally
from launcher.planner.colocation import exclusive as colocation_exclusive
from launcher.planner.exact import ExactSettings, Outcome
from launcher.planner.exact import Group as ExactGroup
from launcher.planner.exact import solve as solve_exactly
from launcher.planner.fit import Candidate, IsUnavailable, PoolChoice, TypeIndex, choose_pool
from launcher.planner.improve import Draft, Option, merge
from launcher.planner.inputs import (
    ClusterNode,
    InFlightClaim,
    NodeRoom,
    Plan,
    PlannedClaim,
    PoolView,
    RunningPod,
)
from launcher.planner.lowerbound import LPShape, LPType, lower_bound
from launcher.planner.packing import Shape, pack, room_matrix, vector
from shared import labels
from shared.demand import PodDemand
from shared.requirements import Requirement, Requirements
from shared.resources import PODS, Resources, total
from shared.taints import untolerated_taints

MAX_TYPES_PER_CLAIM = 60
EXACT = ExactSettings()


def _never_unavailable(instance_type: str, zone: str, capacity_type: str) -> bool:
    return False


def _implies(claim: Requirements, alternative: Requirements) -> bool:
    """True when every node the claim may become satisfies ``alternative``."""
    return claim.intersect(alternative) == claim


def _room_after(room: Resources, requests: Resources) -> Resources | None:
    left = room - requests
    return None if any(v < 0 for v in left.values()) else left


@dataclass
class _Group:
    """Pods of one pool with the same requirements, by shape (identical requests and exclusive key)."""

    pool: str
    requirements: Requirements
    shapes: list[Resources]
    queues: list[list[str]]  # uids per shape, in planning order
    exclusive: list[str | None]  # per shape: no two pods with one key on a node
    exclusive_zone: list[bool]  # per shape: ... nor in a zone
    rules: list[Colocation] = field(default_factory=list)  # per shape: its per-node rules, exclusive included

    def zone_keys(self, shape: int) -> set[str]:
        key = self.exclusive[shape]
        return {key} if key is not None and self.exclusive_zone[shape] else set()


@dataclass
class _Fitting:
    """A pool's candidates for some requirements, with their rooms as a matrix for fit tests."""

    candidates: list[Candidate]
    rooms: npt.NDArray[np.int64]
    options: list[Option] = field(default_factory=list)
    lp_names: list[list[str]] = field(default_factory=list)  # "type|capacity type" per candidate
    _capacities: dict[tuple[str, ...], npt.NDArray[np.int64]] = field(default_factory=dict)

    def capacities(self, keys: Sequence[str]) -> npt.NDArray[np.int64]:
        """The candidates' capacities (what limits count) for ``keys``, one row each."""
        key = tuple(keys)
        found = self._capacities.get(key)
        if found is None:
            rows = [[c.type.capacity.amount(k) for k in keys] for c in self.candidates]
            found = np.array(rows, dtype=np.int64).reshape(len(self.candidates), len(keys))
            self._capacities[key] = found
        return found


class _Planner:
    def __init__(
        self,
        pools: Sequence[PoolView],
        types: Sequence[InstanceType],
        is_unavailable: IsUnavailable,
        keys: Sequence[str],
    ):
        self.pools = sorted(pools, key=lambda p: (-p.weight, p.name))
        self.views = {p.name: p for p in self.pools}
        self.index = TypeIndex(types, is_unavailable)
        self.keys = list(keys)
        self._candidates: dict[tuple[str, Requirements], list[Candidate]] = {}
        self._fitting: dict[tuple[str, Requirements], _Fitting] = {}
        self._choices: dict[tuple[object, ...], PoolChoice | str] = {}
        self._domains: dict[tuple[object, ...], tuple[str, ...] | None] = {}

    def candidates(self, view: PoolView, reqs: Requirements) -> list[Candidate]:
        key = (view.name, reqs)
        found = self._candidates.get(key)
        if found is None:
            found = self.index.candidates(reqs, view.overhead)
            self._candidates[key] = found
        return found

    def fitting(self, pool: str, reqs: Requirements) -> _Fitting:
        key = (pool, reqs)
        found = self._fitting.get(key)
        if found is None:
            cands = self.candidates(self.views[pool], reqs)
            rooms = room_matrix(cands, self.keys)
            rows = [tuple(int(v) for v in row) for row in rooms.tolist()]
            options = [Option(c.type.name, c.price, row) for c, row in zip(cands, rows, strict=True)]
            names = [[f"{c.type.name}|{ct}" for ct in c.prices] for c in cands]
            found = _Fitting(cands, rooms, options, names)
            self._fitting[key] = found
        return found

    def fits_some_type(self, view: PoolView, reqs: Requirements, requests: Resources) -> bool:
        return any(requests.fits_in(c.room) for c in self.candidates(view, reqs))

    def new_domains(self, demand: PodDemand, key: str) -> tuple[str, ...] | None:
        """The values of ``key`` a new node for the pod may carry, best first (``topology``).

        Every pool that can serve the pod counts, as Karpenter counts domains: a value is the
        pool's label when it sets the key, else, for zones and capacity types, those of a type
        that fits the pod with an allowed, available offering, and for instance-type labels
        those of such types. Ranked by the pool's preference (weight), then the cheapest
        offering. None when no pool knows the key's values (nodes get it from elsewhere), or no
        pool serves the pod: the constraint is then not modelled.
        """
        cache_key = (demand.requests, demand.requirements, demand.tolerations, key)
        if cache_key in self._domains:
            return self._domains[cache_key]
        best: dict[str, tuple[int, float]] = {}
        for rank, view in enumerate(self.pools):
            choice = choose_pool(demand, [view], self.fits_some_type)
            if isinstance(choice, str):
                continue
            for value, price in self._pool_domains(view, choice.requirements, demand.requests, key).items():
                best.setdefault(value, (rank, price))
        known = key in (labels.ZONE, labels.CAPACITY_TYPE) or bool(best)
        found = tuple(sorted(best, key=lambda v: (best[v], v))) if known else None
        self._domains[cache_key] = found
        return found

    def _pool_domains(
        self, view: PoolView, reqs: Requirements, requests: Resources, key: str
    ) -> dict[str, float]:
        """``key``'s values on a new node of ``view`` for a pod: value -> cheapest price there."""
        pool_labels = view.pool.labels()
        if key in pool_labels:
            return {pool_labels[key]: 0.0} if reqs.allows(key, pool_labels[key]) else {}
        best: dict[str, float] = {}
        candidates = self.candidates(view, reqs)
        universe: set[str] = set()
        if key == labels.ZONE:
            universe = {z for c in candidates for z in c.zones}
        elif key == labels.CAPACITY_TYPE:
            universe = {ct for c in candidates for ct in c.prices}
        for c in candidates:
            if universe and len(best) == len(universe) and c.price >= max(best.values()):
                break  # candidates come cheapest first: none after this one can lower a price
            if not requests.fits_in(c.room):
                continue
            if key == labels.ZONE:
                for o in c.type.offerings:
                    allowed = o.available and o.zone in c.zones and o.capacity_type in c.prices
                    if allowed and o.price < best.get(o.zone, math.inf):
                        best[o.zone] = o.price
            elif key == labels.CAPACITY_TYPE:
                for capacity_type, price in c.prices.items():
                    best[capacity_type] = min(price, best.get(capacity_type, price))
            elif key in c.type.labels:
                best.setdefault(c.type.labels[key], c.price)
        return best

    def choose(self, demand: PodDemand, excluded: frozenset[str]) -> PoolChoice | str:
        key = (demand.requests, demand.requirements, demand.tolerations, excluded)
        choice = self._choices.get(key)
        if choice is None:
            pools = [p for p in self.pools if p.name not in excluded]
            choice = choose_pool(demand, pools, self.fits_some_type)
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
    occupied_zones: Mapping[str, frozenset[str]] | None = None,
    exact: ExactSettings | None = EXACT,
    cluster_nodes: Sequence[ClusterNode] = (),
    running: Sequence[RunningPod] = (),
    topology_aware: bool = True,
) -> Plan:
    """Plan new NodeClaims for ``demand`` (pod uid -> demand); see the module docstring.

    ``occupied_zones``: per exclusive key, the zones where a pod of that group already runs.
    ``exact``: when to solve a pool's new claims exactly (None: never).
    ``cluster_nodes`` and ``running``: every node and the pods bound to them, which topology
    spread and pod affinity count (step 0). ``topology_aware`` False skips step 0, planning
    such pods as if they had no constraints (to compare against, as the e2e tests do).
    """
    ordered = sorted(demand.values(), key=lambda d: (-d.priority, d.first_seen, d.uid))
    taken: dict[str, set[str]] = {k: set(v) for k, v in (occupied_zones or {}).items()}
    keys = sorted({k for pod in ordered for k in pod.requests} | {PODS})
    planner = _Planner(pools, types, is_unavailable, keys)
    unschedulable: dict[str, str] = {}
    rules: dict[str, Colocation] = {}
    members: dict[str, tuple[str, ...]] = {}
    if topology_aware:
        ordered, rules, members = _place_topology(
            planner, ordered, in_flight, cluster_nodes, running, unschedulable
        )
    if rules:
        covered, pending = _cover_unruled(ordered, in_flight, nodes, taken, rules)
    else:
        covered, pending = _cover(ordered, in_flight, nodes, taken)
    usage = {view.name: view.usage for view in planner.pools}
    excluded: dict[str, frozenset[str]] = {}
    turned_away: dict[str, str] = {}
    claims: list[PlannedClaim] = []
    planned: dict[tuple[str, Requirements, Resources], int] = defaultdict(int)

    outcomes: list[tuple[str, Outcome]] = []
    rounds = 0
    todo = pending
    while todo:
        rounds += 1
        groups: dict[
            tuple[str, Requirements], dict[tuple[Resources, str | None, bool, Colocation], list[str]]
        ] = {}
        by_uid = {pod.uid: pod for pod in todo}
        for pod in todo:
            choice = planner.choose(pod, excluded.get(pod.uid, frozenset()))
            if isinstance(choice, str):
                earlier = turned_away.get(pod.uid)
                unschedulable[pod.uid] = f"{earlier}; {choice}" if earlier else choice
                continue
            by_shape = groups.setdefault((choice.pool.name, choice.requirements), {})
            shape = (pod.requests, pod.exclusive, pod.exclusive_zone, rules.get(pod.uid, NONE))
            by_shape.setdefault(shape, []).append(pod.uid)
        bounced: list[PodDemand] = []
        for view in planner.pools:
            pool_groups = [
                _Group(
                    pool,
                    reqs,
                    [requests for requests, _, _, _ in by_shape],
                    list(by_shape.values()),
                    [exclusive for _, exclusive, _, _ in by_shape],
                    [zone for _, _, zone, _ in by_shape],
                    [
                        own if exclusive is None else own | colocation_exclusive(exclusive)
                        for _, exclusive, _, own in by_shape
                    ],
                )
                for (pool, reqs), by_shape in sorted(groups.items(), key=lambda g: str(g[0][1]))
                if pool == view.name
            ]
            if not pool_groups:
                continue
            drafts = _drafts(planner, pool_groups)
            drafts = merge(
                drafts, partial(_options, planner, view.name), conflict=partial(_clash, pool_groups)
            )
            if exact is not None:
                outcome = _exact(
                    planner, view, pool_groups, drafts, usage[view.name], exact, max_types_per_claim
                )
                outcomes.append((view.name, outcome))
                drafts = outcome.drafts
            for draft in drafts:
                pinned = _pin_zone(planner, view.name, draft, pool_groups, taken)
                if isinstance(pinned, str):
                    refused = {k: n for k, n in draft.contents.items() if pool_groups[k[0]].zone_keys(k[1])}
                    for (g, s), n in sorted(refused.items()):
                        for uid in _take(pool_groups[g].queues[s], n):
                            excluded[uid] = excluded.get(uid, frozenset()) | {view.name}
                            turned_away[uid] = pinned
                            bounced.append(by_uid[uid])
                    draft = _without(draft, refused, pool_groups, planner.keys)
                    if not draft.contents:
                        continue
                else:
                    draft = pinned
                uids = [
                    uid
                    for (g, s), n in sorted(draft.contents.items())
                    for uid in _take(pool_groups[g].queues[s], n)
                ]
                made = _make_claim(planner, view, draft, pool_groups, usage, max_types_per_claim, uids)
                if isinstance(made, str):
                    for uid in uids:
                        excluded[uid] = excluded.get(uid, frozenset()) | {view.name}
                        turned_away[uid] = made
                        bounced.append(by_uid[uid])
                    continue
                claims.append(made)
                for g, s in draft.contents:
                    for key in pool_groups[g].zone_keys(s):
                        taken.setdefault(key, set()).update(made.zones)
                for (g, s), n in draft.contents.items():
                    planned[(view.name, pool_groups[g].requirements, pool_groups[g].shapes[s])] += n
        todo = sorted(bounced, key=lambda d: (-d.priority, d.first_seen, d.uid))

    result = Plan(
        claims=tuple(claims),
        covered=covered,
        unschedulable=unschedulable,
        cost_per_hour=sum(c.price for c in claims),
        lower_bound_per_hour=_bound(planner, planned),
        exact_bound_per_hour=_exact_bound(outcomes, rounds),
        exact={pool: "+".join(o.status for p, o in outcomes if p == pool) for pool, _ in outcomes},
    )
    return _unbundled(result, members)


def _exact(
    planner: _Planner,
    view: PoolView,
    groups: Sequence[_Group],
    drafts: list[Draft],
    usage: Resources,
    settings: ExactSettings,
    max_types: int,
) -> Outcome:
    """The heuristic's ``drafts`` for a pool, or an exact plan when it is better (see ``exact``).

    Pools holding pods kept a zone apart keep the heuristic's: their zones are chosen claim by
    claim (``_pin_zone``), which the model does not see.
    """
    if any(any(group.exclusive_zone) for group in groups):
        return Outcome(drafts, "skipped")
    limits = view.pool.limits
    headroom = {k: limits.amount(k) - usage.amount(k) for k in limits} if limits else None

    def fitting(reqs: Requirements) -> tuple[list[Candidate], npt.NDArray[np.int64]]:
        found = planner.fitting(view.name, reqs)
        return found.candidates, found.rooms

    exact_groups = [
        ExactGroup(
            group.requirements,
            tuple(vector(shape, planner.keys) for shape in group.shapes),
            tuple(len(queue) for queue in group.queues),
            tuple(group.rules),
        )
        for group in groups
    ]
    return solve_exactly(exact_groups, drafts, fitting, settings, headroom=headroom, max_types=max_types)


def _exact_bound(outcomes: Sequence[tuple[str, Outcome]], rounds: int) -> float:
    """The sum of the pools' exact bounds when each pool was solved once for all its pods (no pod
    went back to another pool) and every one has a bound; else 0.0 (unknown)."""
    if rounds != 1 or not outcomes or any(outcome.bound <= 0 for _, outcome in outcomes):
        return 0.0
    return sum(outcome.bound for _, outcome in outcomes)


def _place_topology(
    planner: _Planner,
    ordered: list[PodDemand],
    in_flight: Sequence[InFlightClaim],
    cluster_nodes: Sequence[ClusterNode],
    running: Sequence[RunningPod],
    unschedulable: dict[str, str],
) -> tuple[list[PodDemand], dict[str, Colocation], dict[str, tuple[str, ...]]]:
    """Step 0 (see ``topology``): the pods with their requirements narrowed, less those no domain
    can take (added to ``unschedulable``) and with pods that must share a node as one bundle,
    the per-node rules by uid, and each bundle's members. Pods kept for an in-flight claim stay
    as they are and count where the claim is."""
    by_uid = {pod.uid: pod for pod in ordered}
    kept = [
        (by_uid[uid], _pinned_keys(claim.requirements))
        for claim in in_flight
        for uid in claim.pods
        if uid in by_uid
    ]
    sites = topology.sites_of(running, cluster_nodes, kept)
    if not topology.involved(ordered, sites):
        return ordered, {}, {}
    kept_uids = {pod.uid for pod, _ in kept}
    placement = topology.place(
        [pod for pod in ordered if pod.uid not in kept_uids], sites, cluster_nodes, planner.new_domains
    )
    unschedulable.update(placement.unschedulable)
    bundled = {uid for members in placement.bundles.members.values() for uid in members}
    placed = [
        placement.demand.get(pod.uid, pod)
        for pod in ordered
        if pod.uid not in placement.unschedulable and pod.uid not in bundled
    ]
    placed += placement.bundles.demand.values()
    placed.sort(key=lambda d: (-d.priority, d.first_seen, d.uid))
    return placed, placement.rules, placement.bundles.members


def _unbundled(result: Plan, members: Mapping[str, tuple[str, ...]]) -> Plan:
    """The plan with each bundle of pods that share a node (``bundles``) listed as its members."""
    if not members:
        return result

    def uids(uid: str) -> tuple[str, ...]:
        return members.get(uid, (uid,))

    return replace(
        result,
        claims=tuple(replace(c, pods=tuple(u for uid in c.pods for u in uids(uid))) for c in result.claims),
        covered={u: where for uid, where in result.covered.items() for u in uids(uid)},
        unschedulable={u: why for uid, why in result.unschedulable.items() for u in uids(uid)},
    )


def _pinned_keys(requirements: Requirements) -> dict[str, str]:
    """The keys a claim's requirements allow one value of: what its node will be labelled."""
    out: dict[str, str] = {}
    for key, constraint in requirements.items():
        values = constraint.allowed_values()
        if values is not None and len(values) == 1:
            out[key] = next(iter(values))
    return out


def _cover_unruled(
    ordered: Sequence[PodDemand],
    in_flight: Sequence[InFlightClaim],
    nodes: Sequence[NodeRoom],
    taken: dict[str, set[str]],
    rules: Mapping[str, Colocation],
) -> tuple[dict[str, str], list[PodDemand]]:
    """``_cover``, where pods with per-node rules (step 0) wait only for claims planned for them:
    the room of others is not checked against their rules."""
    planned_for = {uid for claim in in_flight for uid in claim.pods}
    free = {pod.uid for pod in ordered if pod.uid in rules and pod.uid not in planned_for}
    covered, pending = _cover([pod for pod in ordered if pod.uid not in free], in_flight, nodes, taken)
    waiting = {pod.uid for pod in pending} | free
    return covered, [pod for pod in ordered if pod.uid in waiting]


def _cover(
    ordered: Sequence[PodDemand],
    in_flight: Sequence[InFlightClaim],
    nodes: Sequence[NodeRoom],
    taken: dict[str, set[str]],
) -> tuple[dict[str, str], list[PodDemand]]:
    """Pods served by in-flight claims or existing nodes (uid -> name), and the rest.

    ``taken`` (exclusive key -> zones) gains the zone of each one-zone claim a zone-exclusive
    pod is or will be on; such a pod waits only for a one-zone claim in a zone not yet taken.
    """
    covered: dict[str, str] = {}
    pending: list[PodDemand] = []
    planned_for = {uid: claim.name for claim in in_flight for uid in claim.pods}
    claim_room = {claim.name: claim.room for claim in in_flight}
    node_room = {node.name: node.free for node in nodes}
    by_uid = {pod.uid: pod for pod in ordered}
    # Exclusive keys of the pods each claim is (or is now taken to be) for.
    claim_keys = {
        claim.name: {
            key for uid in claim.pods if uid in by_uid and (key := by_uid[uid].exclusive) is not None
        }
        for claim in in_flight
    }
    claim_zone = {claim.name: _single_zone(claim.requirements) for claim in in_flight}
    claim_node = {claim.name: claim.node for claim in in_flight if claim.node}
    nodes_by_name = {node.name: node for node in nodes}
    for pod in ordered:
        place = planned_for.get(pod.uid)
        if place in claim_node:
            place = _fresh_node_room(pod, place, claim_node, nodes_by_name, node_room)
        place = place or _existing_place(
            pod, in_flight, claim_room, claim_keys, claim_zone, taken, nodes, node_room
        )
        if place is None:
            pending.append(pod)
            continue
        covered[pod.uid] = place
        if pod.exclusive is not None and place in claim_keys:
            claim_keys[place].add(pod.exclusive)
            zone = claim_zone[place]
            if pod.exclusive_zone and zone is not None:
                taken.setdefault(pod.exclusive, set()).add(zone)
    return covered, pending


def _fresh_node_room(
    pod: PodDemand,
    claim: str,
    claim_node: Mapping[str, str],
    nodes: Mapping[str, NodeRoom],
    node_room: dict[str, Resources],
) -> str | None:
    """``claim`` (Ready: it is a Node) while its Node, or another just made Ready that ``pod``
    may run on, has room for it; None once they are full (the scheduler packed other pods
    there), so the pod is planned again at once rather than after the claim's bind grace."""
    for name in dict.fromkeys([claim_node[claim], *claim_node.values()]):
        node = nodes.get(name)
        if node is None or untolerated_taints(pod.tolerations, node.taints):
            continue
        if name != claim_node[claim] and (
            pod.exclusive is not None or not any(alt.matches(node.labels) for alt in pod.requirements)
        ):
            continue
        left = _room_after(node_room[name], pod.requests)
        if left is not None:
            node_room[name] = left
            return claim
    return None


def _single_zone(requirements: Requirements) -> str | None:
    zones = requirements.allowed_values(labels.ZONE)
    return next(iter(zones)) if zones is not None and len(zones) == 1 else None


def _pin_zone(
    planner: _Planner, pool: str, draft: Draft, groups: Sequence[_Group], taken: Mapping[str, set[str]]
) -> Draft | str:
    """``draft`` pinned to a zone none of its zone-exclusive groups holds (unchanged without
    such pods), or why there is none. The zone of the cheapest type that holds it wins."""
    keys = set().union(*(groups[g].zone_keys(s) for g, s in draft.contents))
    if not keys:
        return draft
    blocked = set().union(*(taken.get(key, set()) for key in keys))
    fitting = planner.fitting(pool, draft.requirements)
    holding = np.flatnonzero(np.all(fitting.rooms >= np.array(draft.used, dtype=np.int64), axis=1))
    for i in holding.tolist():
        free = [zone for zone in fitting.candidates[i].zones if zone not in blocked]
        if free:
            zone = Requirements.of(Requirement(labels.ZONE, "In", (free[0],)))
            return Draft(
                draft.requirements.intersect(zone), draft.used, dict(draft.contents), draft.price, draft.room
            )
    return (
        "pod anti-affinity keeps its replicas a zone apart and every zone where one would fit holds one "
        f"already ({', '.join(sorted(blocked)) or 'none'})"
    )


def _without(
    draft: Draft, removed: Mapping[tuple[int, int], int], groups: Sequence[_Group], keys: Sequence[str]
) -> Draft:
    """``draft`` less the ``removed`` pods (by group and shape)."""
    contents = {k: n for k, n in draft.contents.items() if k not in removed}
    used = [0] * len(keys)
    for (g, s), n in contents.items():
        for i, amount in enumerate(vector(groups[g].shapes[s], keys)):
            used[i] += amount * n
    return Draft(draft.requirements, tuple(used), contents, draft.price, draft.room)


def _clash(groups: Sequence[_Group], a: Draft, b: Draft) -> bool:
    """Whether the per-node rules of the pods of drafts ``a`` and ``b`` forbid one node for them."""
    ruled_a = [(groups[g].rules[s], n) for (g, s), n in a.contents.items() if groups[g].rules[s]]
    ruled_b = [(groups[g].rules[s], n) for (g, s), n in b.contents.items() if groups[g].rules[s]]
    if not ruled_a and not ruled_b:
        return False
    return not NodeTally.of(ruled_a).admits(NodeTally.of(ruled_b))


def _options(planner: _Planner, pool: str, reqs: Requirements) -> list[Option]:
    return planner.fitting(pool, reqs).options


def _drafts(planner: _Planner, groups: Sequence[_Group]) -> list[Draft]:
    """Each group packed on its own, one draft per node."""
    drafts: list[Draft] = []
    for g, group in enumerate(groups):
        fitting = planner.fitting(group.pool, group.requirements)
        shapes = [
            Shape(i, vector(requests, planner.keys), len(group.queues[i]), group.rules[i])
            for i, requests in enumerate(group.shapes)
        ]
        for packed in pack(shapes, fitting.candidates, planner.keys, rooms=fitting.rooms):
            cheapest = packed.fitting[0]
            room = vector(cheapest, planner.keys)
            contents = {(g, s): n for s, n in packed.contents.items()}
            for _ in range(packed.multiplicity):
                drafts.append(Draft(group.requirements, packed.used, dict(contents), cheapest.price, room))
    return drafts


def _take(queue: list[str], n: int) -> list[str]:
    taken, queue[:n] = queue[:n], []
    return taken


def _existing_place(
    pod: PodDemand,
    in_flight: Sequence[InFlightClaim],
    claim_room: dict[str, Resources],
    claim_keys: Mapping[str, set[str]],
    claim_zone: Mapping[str, str | None],
    taken: Mapping[str, set[str]],
    nodes: Sequence[NodeRoom],
    node_room: dict[str, Resources],
) -> str | None:
    for claim in in_flight:
        if pod.exclusive is not None and pod.exclusive in claim_keys[claim.name]:
            continue
        if pod.exclusive is not None and pod.exclusive_zone:
            zone = claim_zone[claim.name]
            if zone is None or zone in taken.get(pod.exclusive, set()):
                continue
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
    planner: _Planner,
    view: PoolView,
    draft: Draft,
    groups: Sequence[_Group],
    usage: dict[str, Resources],
    max_types: int,
    uids: list[str],
) -> PlannedClaim | str:
    """The claim for ``draft`` within its pool's limits, or why it cannot be made."""
    fitting = planner.fitting(view.name, draft.requirements)
    holding = np.flatnonzero(np.all(fitting.rooms >= np.array(draft.used, dtype=np.int64), axis=1))
    limits = view.pool.limits
    current = usage[view.name]
    if limits:
        names = sorted(limits)
        capacities = fitting.capacities(names)[holding]
        headroom = np.array([limits.amount(k) - current.amount(k) for k in names], dtype=np.int64)
        within = holding[np.all(capacities <= headroom, axis=1)][:max_types]
        if len(within) == 0:
            over = np.any(capacities > headroom, axis=0)
            exceeded = [k for k, hit in zip(names, over.tolist(), strict=True) if hit]
            return f"nodepool {view.name} limits would be exceeded: {', '.join(exceeded)}"
        chosen = [fitting.candidates[int(i)] for i in within]
        largest = fitting.capacities(names)[within].max(axis=0).tolist()
        usage[view.name] = current + Resources(dict(zip(names, largest, strict=True)))
    else:
        chosen = [fitting.candidates[int(i)] for i in holding[:max_types]]
    requirements = draft.requirements.without(labels.INSTANCE_TYPE).intersect(
        _offered_requirements(
            tuple(sorted({z for c in chosen for z in c.zones})),
            tuple(sorted({ct for c in chosen for ct in c.prices})),
        )
    )
    requests = (
        total([groups[g].shapes[s] * n for (g, s), n in sorted(draft.contents.items())]) + view.overhead
    )
    return PlannedClaim(
        nodepool=view.name,
        pods=tuple(uids),
        requirements=requirements,
        instance_types=tuple(c.type.name for c in chosen),
        requests=requests,
        price=chosen[0].price,
        zones=tuple(sorted(requirements.allowed_values(labels.ZONE) or ())),
        capacity_types=tuple(sorted(requirements.allowed_values(labels.CAPACITY_TYPE) or ())),
    )


@lru_cache(maxsize=256)
def _offered_requirements(zones: tuple[str, ...], capacity_types: tuple[str, ...]) -> Requirements:
    """Zone and capacity-type requirements narrowed to where a claim's types are offered."""
    return Requirements.of(
        Requirement(labels.ZONE, "In", zones), Requirement(labels.CAPACITY_TYPE, "In", capacity_types)
    )


def _bound(planner: _Planner, planned: Mapping[tuple[str, Requirements, Resources], int]) -> float:
    """The LP lower bound for the pods the plan buys nodes for (see ``lowerbound``).

    LP node classes are (type, capacity type): a node is either spot or on-demand, so pods that
    allow only on-demand must not borrow spot prices in the bound.
    """
    shapes: list[LPShape] = []
    prices: dict[tuple[str, str], tuple[float, tuple[int, ...]]] = {}
    priced: set[tuple[str, Requirements]] = set()
    for (pool, reqs, requests), count in sorted(
        planned.items(), key=lambda i: (i[0][0], str(i[0][1]), str(i[0][2]))
    ):
        fitting = planner.fitting(pool, reqs)
        if (pool, reqs) not in priced:
            priced.add((pool, reqs))
            for c, option, names in zip(fitting.candidates, fitting.options, fitting.lp_names, strict=True):
                for name, price in zip(names, c.prices.values(), strict=True):
                    known = prices.get((pool, name))
                    if known is None or price < known[0]:
                        prices[(pool, name)] = (price, option.room)
        wanted = vector(requests, planner.keys)
        mask = np.all(fitting.rooms >= np.array(wanted, dtype=np.int64), axis=1)
        allowed = frozenset(name for i in np.flatnonzero(mask) for name in fitting.lp_names[int(i)])
        shapes.append(LPShape(pool, wanted, count, allowed))
    types = [LPType(pool, name, price, room) for (pool, name), (price, room) in sorted(prices.items())]
    return lower_bound(shapes, types)
