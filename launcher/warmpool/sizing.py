"""How many warm instances a pool keeps, and of which instance types (pure).

**How many.** Between ``size`` and ``maxSize``, as many as the pool needed lately: the nodes it
gained (warm instances started, or cold launches) within ``window``. A burst like the last one is
then served warm; after a quiet ``window`` the pool shrinks back to ``size``.

**Which types.** The planner's own choices: the instance types of the pool's recent claims,
weighted by how often it picked them, so the warm pool's mix follows the mix demand needed
(several types per pool, unlike a managed node group's single template). With no recent claim,
the cheapest type the pool allows with at least ``fallback_cpu`` millicores. Each warm claim lists
its chosen type first, then the types at least as large, cheapest first, so CreateFleet can fall
back when the first has no capacity. Warm instances are on-demand: spot instances cannot be
stopped and started at will. A Hibernated pool's warm instances are chosen among the types EC2
can hibernate (:func:`hibernating_types`), when the pool allows any.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Final

from launcher.model import ON_DEMAND, InstanceType
from launcher.warmpool.claims import activated_at, is_spare, is_warm
from shared import labels
from shared.api.nodeclaim import NodeClaim
from shared.api.warmpool import WarmPoolSpec
from shared.requirements import Requirement, Requirements
from shared.resources import CPU, MEMORY

DEFAULT_WINDOW: Final = timedelta(minutes=10)
FALLBACK_CPU: Final = 2000
MAX_TYPES_PER_CLAIM: Final = 10
IsUnavailable = Callable[[str, str, str], bool]


def recent_demand(claims: Iterable[NodeClaim], now: datetime, window: timedelta = DEFAULT_WINDOW) -> int:
    """Nodes the pool gained within ``window``: claims taken from the warm pool, and cold claims
    (also once returned to the pool on scale-in)."""
    count = 0
    for claim in claims:
        if is_warm(claim) and labels.WARM_RETURNED_ANNOTATION not in claim.metadata.annotations:
            continue  # a fill; a node returned on scale-in was launched for demand, and counts
        if is_spare(claim):
            continue  # a hedged start's spare: no pod asked for it
        at = activated_at(claim) or claim.metadata.creation_timestamp
        if at is not None and now - at <= window:
            count += 1
    return count


def desired_size(spec: WarmPoolSpec, demand: int) -> int:
    """``demand`` clamped to the pool's ``size``..``maxSize``."""
    return max(spec.size, min(spec.upper, demand))


def is_expired(claim: NodeClaim, now: datetime) -> bool:
    """Older than its ``expireAfter``: rotated (deleted, then refilled) like an expiring node."""
    created = claim.metadata.creation_timestamp
    return claim.expire_after is not None and created is not None and now - created >= claim.expire_after


def surplus_claims(alive: Sequence[NodeClaim], desired: int) -> list[NodeClaim]:
    """The warm claims beyond ``desired``: the youngest, as the oldest are the furthest along
    (parked, images pulled)."""
    oldest_first = sorted(
        alive, key=lambda c: (c.metadata.creation_timestamp or datetime.max.replace(tzinfo=UTC), c.name)
    )
    return oldest_first[desired:]


def warm_requirements(pool_requirements: Requirements) -> Requirements:
    """The pool's requirements narrowed to on-demand capacity (see the module docstring)."""
    return pool_requirements.intersect(Requirements.of(Requirement(labels.CAPACITY_TYPE, "In", (ON_DEMAND,))))


def hibernating_types(catalogue: Mapping[str, InstanceType]) -> dict[str, InstanceType]:
    """The types of ``catalogue`` that EC2 can hibernate (for a Hibernated pool's warm fills)."""
    return {name: t for name, t in catalogue.items() if t.can_hibernate}


def _usable(
    requirements: Requirements, catalogue: Mapping[str, InstanceType], is_unavailable: IsUnavailable
) -> list[InstanceType]:
    out = []
    for instance_type in catalogue.values():
        if not requirements.compatible(instance_type.requirements()):
            continue
        offerings = [
            o
            for o in instance_type.offerings_for(requirements)
            if not is_unavailable(instance_type.name, o.zone, o.capacity_type)
        ]
        if offerings:
            out.append(instance_type)
    return sorted(out, key=lambda t: (t.cheapest_price(requirements) or 0.0, t.name))


def _largest_remainder(weights: Mapping[str, int], total: int) -> Counter[str]:
    """``total`` split in proportion to ``weights`` (largest remainders get the leftovers)."""
    whole = sum(weights.values())
    shares = {name: total * weight / whole for name, weight in weights.items()}
    out = Counter({name: int(share) for name, share in shares.items()})
    leftovers = sorted(shares, key=lambda n: (-(shares[n] - int(shares[n])), -weights[n], n))
    for name in leftovers[: total - sum(out.values())]:
        out[name] += 1
    return out


def warm_types(
    requirements: Requirements,
    catalogue: Mapping[str, InstanceType],
    *,
    recent_types: Sequence[str],
    existing_types: Sequence[str],
    count: int,
    target: int,
    is_unavailable: IsUnavailable = lambda name, zone, capacity: False,
    fallback_cpu: int = FALLBACK_CPU,
) -> list[tuple[str, ...]]:
    """The instance types of ``count`` new warm claims, chosen first for each (see the module
    docstring); ``target`` is the pool's desired size, ``existing_types`` the primary type of each
    warm claim it holds. Fewer than ``count`` (none) when no type the pool allows is available."""
    usable = _usable(requirements, catalogue, is_unavailable)
    if not usable or count <= 0:
        return []
    by_name = {t.name: t for t in usable}
    weights = Counter(name for name in recent_types if name in by_name)
    if weights:
        wanted = _largest_remainder(weights, target) - Counter(existing_types)
        primaries: list[str] = []
        for name, missing in sorted(wanted.items(), key=lambda kv: (-kv[1], kv[0])):
            primaries.extend([name] * missing)
        ranked = [name for name, _ in weights.most_common()]
        while len(primaries) < count:
            primaries.append(ranked[len(primaries) % len(ranked)])
    else:
        big_enough = [t for t in usable if t.allocatable.amount(CPU) >= fallback_cpu] or usable
        primaries = [big_enough[0].name] * count
    out = []
    for name in primaries[:count]:
        first = by_name[name]
        larger = [
            t.name
            for t in usable
            if t.name != name
            and t.architecture == first.architecture
            and t.allocatable.amount(CPU) >= first.allocatable.amount(CPU)
            and t.allocatable.amount(MEMORY) >= first.allocatable.amount(MEMORY)
        ]
        out.append((name, *larger[: MAX_TYPES_PER_CLAIM - 1]))
    return out
