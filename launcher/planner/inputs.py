"""What the planner reads and what it answers: plain frozen data, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from shared.api.nodepool import NodePool
from shared.requirements import Requirements
from shared.resources import EMPTY, Resources
from shared.taints import Taint


@dataclass(frozen=True)
class PoolView:
    """A NodePool as the planner needs it.

    ``requirements`` is the pool's own (template requirements, labels, pool name) narrowed to the
    zones its EC2NodeClass has subnets in; ``overhead`` is what DaemonSets take on each new node;
    ``usage`` is the capacity its existing nodes and claims already count toward ``limits``.
    """

    pool: NodePool
    requirements: Requirements
    overhead: Resources = EMPTY
    usage: Resources = EMPTY

    @property
    def name(self) -> str:
        return self.pool.name

    @property
    def taints(self) -> tuple[Taint, ...]:
        return self.pool.template_taints

    @property
    def weight(self) -> int:
        return self.pool.weight or 0


@dataclass(frozen=True)
class InFlightClaim:
    """A claim launched but not yet Ready: pods may wait for it instead of a new node."""

    name: str
    nodepool: str
    requirements: Requirements
    taints: tuple[Taint, ...]
    room: Resources  # allocatable of its smallest type, minus overhead and planned pods
    pods: frozenset[str] = frozenset()  # uids it was planned for


@dataclass(frozen=True)
class NodeRoom:
    """Free room on an existing, schedulable node (only predicted demand may count on it)."""

    name: str
    labels: Mapping[str, str]
    taints: tuple[Taint, ...]
    free: Resources


@dataclass(frozen=True)
class PlannedClaim:
    """One new node: its pool, its pods, and every instance type that fits them all."""

    nodepool: str
    pods: tuple[str, ...]  # pod uids
    requirements: Requirements  # pool ∧ pods ∧ zones ∧ capacity types, without the instance-type key
    instance_types: tuple[str, ...]  # cheapest first, at most 60
    requests: Resources  # the pods' requests plus daemonset overhead
    price: float  # per hour, of the cheapest type's cheapest allowed offering
    zones: tuple[str, ...] = ()  # zones where some listed type has an allowed, available offering
    capacity_types: tuple[str, ...] = ()  # likewise, capacity types


@dataclass(frozen=True)
class Plan:
    claims: tuple[PlannedClaim, ...] = ()
    covered: Mapping[str, str] = field(default_factory=dict)  # pod uid -> claim or node name
    unschedulable: Mapping[str, str] = field(default_factory=dict)  # pod uid -> why
    cost_per_hour: float = 0.0
    lower_bound_per_hour: float = 0.0

    @property
    def gap(self) -> float:
        """Cost over the LP lower bound (1.0 is optimal; 1.0 when there is nothing to buy)."""
        if self.lower_bound_per_hour <= 0:
            return 1.0
        return self.cost_per_hour / self.lower_bound_per_hour
