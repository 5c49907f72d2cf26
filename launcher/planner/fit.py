"""Which NodePool serves a pod, and which instance types can host a group of pods (pure).

A pod goes to the highest-weight NodePool whose taints it tolerates and whose requirements
admit one of its node-affinity alternatives (Karpenter's rule: a custom label the pool does not
define cannot be satisfied by its new nodes), provided some instance type of that pool fits it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from launcher.model import InstanceType
from launcher.planner.inputs import PoolView
from shared import labels
from shared.demand import PodDemand
from shared.requirements import Requirements
from shared.resources import Resources
from shared.taints import untolerated_taints

IsUnavailable = Callable[[str, str, str], bool]


@dataclass(frozen=True)
class Candidate:
    """An instance type usable for a group, with its cheapest allowed offering's price."""

    type: InstanceType
    price: float
    room: Resources  # allocatable minus the pool's daemonset overhead


def prices_by_capacity_type(
    instance_type: InstanceType, reqs: Requirements, is_unavailable: IsUnavailable
) -> dict[str, float]:
    """The cheapest allowed, available offering of ``instance_type`` per capacity type."""
    out: dict[str, float] = {}
    for offering in instance_type.offerings:
        if not offering.available or is_unavailable(
            instance_type.name, offering.zone, offering.capacity_type
        ):
            continue
        if not reqs.allows(labels.ZONE, offering.zone) or not reqs.allows(
            labels.CAPACITY_TYPE, offering.capacity_type
        ):
            continue
        known = out.get(offering.capacity_type)
        if known is None or offering.price < known:
            out[offering.capacity_type] = offering.price
    return out


def cheapest_offering_price(
    instance_type: InstanceType, reqs: Requirements, is_unavailable: IsUnavailable
) -> float | None:
    prices = prices_by_capacity_type(instance_type, reqs, is_unavailable)
    return min(prices.values()) if prices else None


def candidates(
    reqs: Requirements,
    overhead: Resources,
    types: Sequence[InstanceType],
    type_reqs: Mapping[str, Requirements],
    is_unavailable: IsUnavailable,
) -> list[Candidate]:
    """Types compatible with ``reqs`` that have an allowed, available offering; cheapest first."""
    out: list[Candidate] = []
    for instance_type in types:
        if not reqs.compatible(type_reqs[instance_type.name]):
            continue
        price = cheapest_offering_price(instance_type, reqs, is_unavailable)
        if price is None:
            continue
        room = instance_type.allocatable - overhead
        if any(amount < 0 for amount in room.values()):
            continue
        out.append(Candidate(instance_type, price, room))
    out.sort(key=lambda c: (c.price, c.type.name))
    return out


@dataclass(frozen=True)
class PoolChoice:
    pool: PoolView
    requirements: Requirements  # pool ∧ the pod's alternative


def choose_pool(
    demand: PodDemand,
    pools: Sequence[PoolView],
    fits_some_type: Callable[[PoolView, Requirements, Resources], bool],
) -> PoolChoice | str:
    """The pool and requirement alternative for a pod, or why no pool can serve it."""
    if not demand.requirements:
        return "the pod's required node affinity matches no node"
    reasons: list[str] = []
    for view in pools:
        untolerated = untolerated_taints(demand.tolerations, view.taints)
        if untolerated:
            reasons.append(f"nodepool {view.name}: untolerated taint {untolerated[0].key}")
            continue
        for alternative in demand.requirements:
            conflicts = alternative.nodepool_conflicts(view.requirements)
            if conflicts:
                reasons.append(f"nodepool {view.name}: {conflicts[0]}")
                continue
            combined = view.requirements.intersect(alternative)
            if fits_some_type(view, combined, demand.requests):
                return PoolChoice(view, combined)
            reasons.append(f"nodepool {view.name}: no instance type fits {demand.requests.to_api()}")
    if not pools:
        return "no NodePool exists"
    return "; ".join(dict.fromkeys(reasons))
