"""Warm instances offered to the planner before it buys new ones (pure).

Each warm claim becomes an in-flight claim with the room of its instance type (less the pool's
DaemonSet overhead) and nothing planned on it. The planner covers pending pods with in-flight
room before it plans new claims, so it packs them onto warm instances first, by the same rules
(requirements, taints, zones, anti-affinity) it applies to any claim, and launches cold only for
what is left. ``plan.covered`` then says which warm claims to start, and for which pods.

Parked instances come first, fastest to serve first (Running, then Hibernated, then Stopped),
then those still filling; within each, the cheapest type. A drifted warm claim is offered to no
plan: it is about to be rotated.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

from launcher.model import InstanceType
from launcher.planner.inputs import InFlightClaim
from launcher.warmpool.claims import is_warm, parked_state
from shared import labels
from shared.api.nodeclaim import DRIFTED, NodeClaim
from shared.api.warmpool import HIBERNATED, RUNNING, STOPPED
from shared.demand import PodDemand
from shared.requirements import Requirements
from shared.resources import EMPTY, Resources

# Lower serves first.
SPEED_ORDER: Final = {RUNNING: 0, HIBERNATED: 1, STOPPED: 2}
FILLING_ORDER: Final = 3


def _launched_type(claim: NodeClaim, catalogue: Mapping[str, InstanceType]) -> InstanceType | None:
    launched = claim.metadata.labels.get(labels.INSTANCE_TYPE)
    if launched:
        return catalogue.get(launched)
    names = claim.node_requirements().allowed_values(labels.INSTANCE_TYPE) or frozenset()
    known = [catalogue[n] for n in names if n in catalogue]
    return min(
        known,
        key=lambda t: (t.allocatable.amount("cpu"), t.allocatable.amount("memory"), t.name),
        default=None,
    )


def _price(claim: NodeClaim, instance_type: InstanceType) -> float:
    return instance_type.cheapest_price(claim.node_requirements()) or 0.0


def warm_in_flight(
    claims: Iterable[NodeClaim],
    catalogue: Mapping[str, InstanceType],
    overhead: Mapping[str, Resources],
) -> list[InFlightClaim]:
    """The pool's warm claims as in-flight claims the planner may cover pods with."""
    ranked: list[tuple[int, float, str, InFlightClaim]] = []
    for claim in claims:
        if not is_warm(claim) or claim.metadata.deletion_timestamp is not None or claim.is_true(DRIFTED):
            continue
        instance_type = _launched_type(claim, catalogue)
        if instance_type is None:
            continue
        # What the node will carry: the type's labels and, once launched, its zone and capacity
        # type (the claim's labels); before that, the claim's requirements keep them open.
        known = {
            key: value
            for key, value in claim.metadata.labels.items()
            if key in (labels.ZONE, labels.CAPACITY_TYPE, labels.INSTANCE_TYPE)
        }
        requirements = claim.node_requirements().intersect(
            Requirements.from_labels({**instance_type.labels, **known})
        )
        pool = claim.nodepool or ""
        state = parked_state(claim)
        order = SPEED_ORDER.get(state, FILLING_ORDER) if state is not None else FILLING_ORDER
        flight = InFlightClaim(
            name=claim.name,
            nodepool=pool,
            requirements=requirements,
            taints=claim.taints,
            room=(instance_type.allocatable - overhead.get(pool, EMPTY)).clamp_zero(),
        )
        ranked.append((order, _price(claim, instance_type), claim.name, flight))
    return [flight for *_, flight in sorted(ranked, key=lambda r: (r[0], r[1], r[2]))]


def activations(
    covered: Mapping[str, str], warm: Iterable[str], demand: Mapping[str, PodDemand]
) -> dict[str, tuple[tuple[str, ...], Resources]]:
    """Per warm claim the plan covered pods with: those pods and what they request."""
    names = set(warm)
    out: dict[str, list[str]] = {}
    for uid, place in covered.items():
        if place in names:
            out.setdefault(place, []).append(uid)
    return {
        name: (tuple(sorted(uids)), sum((demand[u].requests for u in uids if u in demand), EMPTY))
        for name, uids in out.items()
    }
