"""Which NodePool serves a pod, and which instance types can host a group of pods (pure).

A pod goes to the highest-weight NodePool whose taints it tolerates and whose requirements
admit one of its node-affinity alternatives (Karpenter's rule: a custom label the pool does not
define cannot be satisfied by its new nodes), provided some instance type of that pool fits it.

Instance types are filtered through a :class:`TypeIndex` built once per plan: a type is
compatible with requirements exactly when ``reqs.compatible(Requirements.from_labels(labels))``
holds, but the index checks each distinct label value once per requirement instead of building
and intersecting a Requirements per type, and prices offerings once per distinct zone and
capacity-type constraint. With a thousand types and dozens of pod groups this is the difference
between most of the planning budget and a few milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from launcher.model import InstanceType
from launcher.planner.inputs import PoolView
from shared import labels
from shared.demand import PodDemand
from shared.requirements import Constraint, Requirements
from shared.resources import Resources
from shared.taints import untolerated_taints

IsUnavailable = Callable[[str, str, str], bool]


@dataclass(frozen=True)
class Candidate:
    """An instance type usable for a group, with its cheapest allowed offering's price."""

    type: InstanceType
    price: float
    room: Resources  # allocatable minus the pool's daemonset overhead
    prices: Mapping[str, float]  # capacity type -> cheapest allowed, available offering
    zones: tuple[str, ...]  # zones with an allowed, available offering, sorted


@dataclass(frozen=True)
class _Offered:
    prices: dict[str, float]
    zones: tuple[str, ...]


class TypeIndex:
    """The catalogue indexed for fast compatibility and price look-ups (module docstring)."""

    def __init__(self, types: Sequence[InstanceType], is_unavailable: IsUnavailable) -> None:
        self.types = list(types)
        self._is_unavailable = is_unavailable
        self._positions: dict[str, dict[str, list[int]]] = {}
        for position, instance_type in enumerate(self.types):
            for key, value in instance_type.labels.items():
                self._positions.setdefault(key, {}).setdefault(value, []).append(position)
        self._offered: dict[tuple[Constraint, Constraint], list[_Offered | None]] = {}
        self._rooms: dict[Resources, list[Resources | None]] = {}

    def compatible(self, reqs: Requirements) -> list[int]:
        """Positions of the types whose labels ``reqs`` is compatible with, in catalogue order."""
        if not reqs.is_satisfiable():
            return []
        keep = bytearray(b"\x01") * len(self.types)
        for key, constraint in reqs.items():
            for value, positions in self._positions.get(key, {}).items():
                if not constraint.allows(value):
                    for position in positions:
                        keep[position] = 0
        return [position for position, kept in enumerate(keep) if kept]

    def offered(self, reqs: Requirements) -> list[_Offered | None]:
        """Per type: cheapest price per capacity type and the zones ``reqs`` allows (None: none)."""
        key = (reqs.get(labels.ZONE), reqs.get(labels.CAPACITY_TYPE))
        found = self._offered.get(key)
        if found is None:
            zone_ok, capacity_ok = key
            found = []
            for instance_type in self.types:
                prices: dict[str, float] = {}
                zones: set[str] = set()
                for o in instance_type.offerings:
                    if (
                        not o.available
                        or not zone_ok.allows(o.zone)
                        or not capacity_ok.allows(o.capacity_type)
                    ):
                        continue
                    if self._is_unavailable(instance_type.name, o.zone, o.capacity_type):
                        continue
                    zones.add(o.zone)
                    known = prices.get(o.capacity_type)
                    if known is None or o.price < known:
                        prices[o.capacity_type] = o.price
                found.append(_Offered(prices, tuple(sorted(zones))) if prices else None)
            self._offered[key] = found
        return found

    def rooms(self, overhead: Resources) -> list[Resources | None]:
        """Per type: allocatable minus ``overhead``, or None when the overhead alone overflows it."""
        found = self._rooms.get(overhead)
        if found is None:
            found = []
            for instance_type in self.types:
                room = instance_type.allocatable - overhead
                found.append(None if any(amount < 0 for amount in room.values()) else room)
            self._rooms[overhead] = found
        return found

    def candidates(self, reqs: Requirements, overhead: Resources) -> list[Candidate]:
        """Types compatible with ``reqs`` with an allowed, available offering; cheapest first."""
        offered = self.offered(reqs)
        rooms = self.rooms(overhead)
        out: list[Candidate] = []
        for position in self.compatible(reqs):
            offer, room = offered[position], rooms[position]
            if offer is None or room is None:
                continue
            price = min(offer.prices.values())
            out.append(Candidate(self.types[position], price, room, offer.prices, offer.zones))
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
    """The pool and requirement alternative for a pod, or why no pool can serve it.

    ``pools`` must be in order of preference (highest weight first); within a pool the pod's
    alternatives are tried in the order the pod lists them.
    """
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
            reasons.append(f"nodepool {view.name}: no instance type fits {_describe(demand.requests)}")
    if not pools:
        return "no NodePool exists"
    return "; ".join(dict.fromkeys(reasons))


def _describe(requests: Resources) -> str:
    return ", ".join(f"{name}={amount}" for name, amount in requests.to_api().items())
