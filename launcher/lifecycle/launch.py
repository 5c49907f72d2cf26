"""Turn a NodeClaim into the LaunchRequest for its CreateFleet call (pure).

The planner writes a claim's instance types cheapest first into its ``instance-type In``
requirement; that order is kept. Offerings marked unavailable since planning are dropped, so a
retry after insufficient capacity asks only for what may still work.
"""

from __future__ import annotations

from collections.abc import Mapping

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
    for name in names:
        instance_type = catalogue.get(name)
        if instance_type is None:
            continue
        # Only keys the type defines are checked: the claim also carries pool labels (such as
        # ``intent: apps``) that the node gets from its user data, not from its type. Zone and
        # capacity type are per offering (``offerings_for`` checks them).
        if not reqs.compatible(Requirements.from_labels(instance_type.labels)):
            continue
        usable = [
            o
            for o in instance_type.offerings_for(reqs)
            if not unavailable.is_unavailable(name, o.zone, o.capacity_type)
        ]
        if not usable:
            continue
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
    return LaunchRequest(
        nodeclaim=claim.name,
        nodepool=nodepool,
        nodeclass=claim.node_class_ref.name,
        client_token=claim.client_token or claim.name,
        instance_types=tuple(chosen),
        zones=tuple(sorted(zones)),
        capacity_types=tuple(sorted(capacity_types)),
        architecture=architectures.pop(),
        tags={
            **tags,
            labels.TAG_NODEPOOL: nodepool,
            labels.TAG_NODECLAIM: claim.name,
        },
    )
