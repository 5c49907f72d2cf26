"""Turn a NodeClaim into the LaunchRequest for its CreateFleet call (pure).

The planner writes a claim's instance types cheapest first into its ``instance-type In``
requirement; that order is kept. Offerings marked unavailable since planning are dropped, so a
retry after insufficient capacity asks only for what may still work.

EC2 answers a CreateFleet whose ClientToken it has seen with the first call's result, and one
whose token it has seen with other parameters with ``IdempotentParameterMismatch``. So the
token is the claim's own, suffixed with a digest of what the call asks for: a retry of the same
call (after a timeout, or a launcher restart) is idempotent, and the narrower retry after
insufficient capacity is a new request.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from launcher.model import InstanceType, LaunchRequest
from launcher.planner.offerings import UnavailableOfferings
from shared import labels
from shared.api.nodeclaim import NodeClaim
from shared.requirements import Requirements

MAX_FLEET_TYPES = 60


def _ordered_values(claim: NodeClaim, key: str) -> list[str] | None:
    """Values of the claim's ``key In [...]`` requirement in the order written, or None."""
    for requirement in claim.requirements:
        if requirement.key == key and requirement.operator == "In":
            return list(requirement.values)
    return None


def fleet_token(claim_token: str, *parameters: Sequence[str]) -> str:
    """The ClientToken of one CreateFleet call: the claim's token and a digest of ``parameters``
    (at most 64 characters, EC2's limit)."""
    digest = hashlib.sha256("\x1f".join("\x1e".join(p) for p in parameters).encode()).hexdigest()
    return f"{claim_token[:51]}-{digest[:12]}"


def launch_request(
    claim: NodeClaim,
    catalogue: Mapping[str, InstanceType],
    unavailable: UnavailableOfferings,
    tags: Mapping[str, str],
) -> LaunchRequest | str:
    """The request, or a reason why nothing the claim allows can be launched now."""
    reqs = claim.node_requirements()
    names = _ordered_values(claim, labels.INSTANCE_TYPE)
    if names is None:
        names = sorted(catalogue, key=lambda n: catalogue[n].cheapest_price(reqs) or float("inf"))
    zones: set[str] = set()
    capacity_types: set[str] = set()
    chosen: list[str] = []
    architectures: set[str] = set()
    unusable: set[tuple[str, str, str]] = set()
    for name in names:
        instance_type = catalogue.get(name)
        if instance_type is None:
            continue
        # Only keys the type defines are checked: the claim also carries pool labels (such as
        # ``intent: apps``) that the node gets from its user data, not from its type. Zone and
        # capacity type are per offering (``offerings_for`` checks them).
        if not reqs.compatible(Requirements.from_labels(instance_type.labels)):
            continue
        allowed = instance_type.offerings_for(reqs)
        usable = [o for o in allowed if not unavailable.is_unavailable(name, o.zone, o.capacity_type)]
        if not usable:
            continue
        unusable.update((name, o.zone, o.capacity_type) for o in allowed if o not in usable)
        chosen.append(name)
        architectures.add(instance_type.architecture)
        zones.update(o.zone for o in usable)
        capacity_types.update(o.capacity_type for o in usable)
        if len(chosen) == MAX_FLEET_TYPES:
            break
    if not chosen:
        return "no instance type the claim allows has an available offering"
    if len(architectures) > 1:
        # One launch template per architecture: keep the cheapest type's architecture.
        first_arch = catalogue[chosen[0]].architecture
        chosen = [n for n in chosen if catalogue[n].architecture == first_arch]
        architectures = {first_arch}
    nodepool = claim.nodepool or ""
    architecture = architectures.pop()
    sorted_zones, sorted_capacity = tuple(sorted(zones)), tuple(sorted(capacity_types))
    excluded = frozenset(o for o in unusable if o[0] in chosen)
    # Other overrides make another call: a new token, or EC2 answers IdempotentParameterMismatch.
    narrowed = (tuple(sorted("/".join(o) for o in excluded)),) if excluded else ()
    return LaunchRequest(
        nodeclaim=claim.name,
        nodepool=nodepool,
        nodeclass=claim.node_class_ref.name,
        client_token=fleet_token(
            claim.client_token or claim.name,
            chosen,
            sorted_zones,
            sorted_capacity,
            (architecture,),
            *narrowed,
        ),
        instance_types=tuple(chosen),
        zones=sorted_zones,
        capacity_types=sorted_capacity,
        architecture=architecture,
        tags={
            **tags,
            labels.TAG_NODEPOOL: nodepool,
            labels.TAG_NODECLAIM: claim.name,
        },
        unavailable=excluded,
    )
