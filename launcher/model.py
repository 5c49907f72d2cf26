"""Plain data the launcher's planner and its cloud provider exchange.

The planner (pure) reads :class:`InstanceType` values; the AWS provider builds them from
DescribeInstanceTypes, offerings and prices, and turns a :class:`LaunchRequest` into an
:class:`Instance`. Neither side imports the other: this module is the contract, like
Karpenter's ``cloudprovider.InstanceType`` and ``Offering``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from shared import labels
from shared.requirements import Requirements
from shared.resources import Resources

ON_DEMAND: Final = labels.CAPACITY_TYPE_ON_DEMAND
SPOT: Final = labels.CAPACITY_TYPE_SPOT


@dataclass(frozen=True, slots=True)
class Offering:
    """One way to buy an instance type: a zone and a capacity type, at a price per hour."""

    zone: str
    capacity_type: str
    price: float
    available: bool = True


@dataclass(frozen=True)
class InstanceType:
    """An EC2 instance type as the planner sees it.

    ``labels`` are the node labels every instance of the type gets (instance-type, arch, os,
    family, size, category, generation, cpu, memory); zone and capacity type depend on the
    offering and are added per offering. ``allocatable`` is what pods can use after kube- and
    system-reserved and the eviction threshold, before any DaemonSet overhead.
    """

    name: str
    labels: Mapping[str, str]
    capacity: Resources
    allocatable: Resources
    offerings: tuple[Offering, ...]
    # EC2 can hibernate it (warm pools): the provider says so only for types it can launch ready
    # for hibernation; the conservative default is no.
    can_hibernate: bool = False

    @property
    def memory_mib(self) -> int:
        """Its RAM as the provider reports it (the ``instance-memory`` label), 0 when unknown."""
        value = self.labels.get(labels.INSTANCE_MEMORY, "")
        return int(value) if value.isdigit() else 0

    @property
    def architecture(self) -> str:
        return self.labels.get(labels.ARCH, "amd64")

    def requirements(self) -> Requirements:
        """What the type offers as requirements, zones and capacity types included."""
        zones = sorted({o.zone for o in self.offerings if o.available})
        capacity_types = sorted({o.capacity_type for o in self.offerings if o.available})
        offered = {**self.labels}
        reqs = Requirements.from_labels(offered)
        return reqs.intersect(
            Requirements.from_api(
                [
                    {"key": labels.ZONE, "operator": "In", "values": zones or ["none"]},
                    {"key": labels.CAPACITY_TYPE, "operator": "In", "values": capacity_types or ["none"]},
                ]
            )
        )

    def offerings_for(self, reqs: Requirements) -> list[Offering]:
        """Available offerings whose zone and capacity type ``reqs`` allow, cheapest first."""
        return sorted(
            (
                o
                for o in self.offerings
                if o.available
                and reqs.allows(labels.ZONE, o.zone)
                and reqs.allows(labels.CAPACITY_TYPE, o.capacity_type)
            ),
            key=lambda o: o.price,
        )

    def cheapest_price(self, reqs: Requirements) -> float | None:
        """The lowest price among offerings ``reqs`` allow, or None when none is available."""
        offerings = self.offerings_for(reqs)
        return offerings[0].price if offerings else None


@dataclass(frozen=True)
class LaunchRequest:
    """Everything the provider needs for one CreateFleet call: one NodeClaim, one instance."""

    nodeclaim: str
    nodepool: str
    nodeclass: str
    client_token: str
    instance_types: tuple[str, ...]  # cheapest first; the fleet may pick any of them
    zones: tuple[str, ...]
    capacity_types: tuple[str, ...]
    architecture: str  # Kubernetes spelling (amd64, arm64): picks the launch template
    tags: Mapping[str, str] = field(default_factory=dict)
    # (type, zone, capacity type) offerings of the listed types marked unavailable: the fleet
    # asks for none of them, though the type and the zone are each usable with others.
    unavailable: frozenset[tuple[str, str, str]] = frozenset()


@dataclass(frozen=True)
class Instance:
    """A launched EC2 instance as the lifecycle code needs it."""

    id: str
    instance_type: str
    zone: str
    capacity_type: str
    state: str  # pending | running | shutting-down | terminated | stopping | stopped
    launch_time: datetime
    private_dns_name: str
    image_id: str
    tags: Mapping[str, str] = field(default_factory=dict)
    # Where it runs, for drift (empty / None: not described, e.g. a launch not yet listed).
    subnet_id: str = ""
    security_groups: tuple[str, ...] | None = None
    # Launched ready for hibernation (a warm fill of a Hibernated pool); any other instance can
    # only be stopped plainly.
    hibernation_configured: bool = False

    @property
    def provider_id(self) -> str:
        """The Node's ``spec.providerID`` for this instance."""
        return f"aws:///{self.zone}/{self.id}"


class LaunchError(Exception):
    """A launch failed for a reason other than capacity (bad template, permissions, ...)."""


class InsufficientCapacityError(LaunchError):
    """No requested offering had capacity; the named offerings should be avoided for a while."""

    def __init__(self, message: str, offerings: tuple[tuple[str, str, str], ...]) -> None:
        super().__init__(message)
        self.offerings = offerings  # (instance type, zone, capacity type)


class ThrottledError(LaunchError):
    """EC2 asked us to slow down (RequestLimitExceeded); retry with backoff and jitter."""
