"""What the planner reads and what it answers: plain frozen data, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from shared.api.nodepool import NodePool
from shared.podaffinity import PodAffinityTerm
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
    # Its Node, once Ready: its pods are then still on their way only while a Node just made
    # Ready has room for them (the scheduler may have packed other pods onto it).
    node: str | None = None


@dataclass(frozen=True)
class NodeRoom:
    """Free room on an existing, schedulable node (only predicted demand may count on it)."""

    name: str
    labels: Mapping[str, str]
    taints: tuple[Taint, ...]
    free: Resources


@dataclass(frozen=True)
class ClusterNode:
    """A node as topology spread counts it: its labels (its domains) and taints (the policies)."""

    name: str
    labels: Mapping[str, str]
    taints: tuple[Taint, ...] = ()


@dataclass(frozen=True)
class RunningPod:
    """A pod bound to a node, as topology spread and pod affinity and anti-affinity count it."""

    namespace: str
    labels: Mapping[str, str]
    node: str
    anti_affinity: tuple[PodAffinityTerm, ...] = ()  # its required terms: it repels matching pods


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


# A plan within this of its bound is called optimal: the solvers' own tolerance is about 1e-6.
OPTIMAL_GAP = 1.00001


@dataclass(frozen=True)
class Plan:
    """The new claims and where the other pods go, with the plan's cost and bounds on it.

    ``lower_bound_per_hour`` is the LP bound (see ``lowerbound``); ``exact_bound_per_hour`` the
    exact solver's proven bound when it ran for every pool (0.0 otherwise, see ``exact``), which
    is the optimum itself when the solver finished; ``exact`` says per pool what it did.
    """

    claims: tuple[PlannedClaim, ...] = ()
    covered: Mapping[str, str] = field(default_factory=dict)  # pod uid -> claim or node name
    unschedulable: Mapping[str, str] = field(default_factory=dict)  # pod uid -> why
    cost_per_hour: float = 0.0
    lower_bound_per_hour: float = 0.0
    exact_bound_per_hour: float = 0.0
    exact: Mapping[str, str] = field(default_factory=dict)  # pool -> the exact solver's outcome

    @property
    def bound_per_hour(self) -> float:
        """The best lower bound known on what these claims' pods must cost."""
        return max(self.lower_bound_per_hour, self.exact_bound_per_hour)

    @property
    def gap(self) -> float:
        """Cost over the best bound known (1.0 is optimal; 1.0 when there is nothing to buy)."""
        if self.bound_per_hour <= 0:
            return 1.0
        return self.cost_per_hour / self.bound_per_hour

    @property
    def lp_gap(self) -> float:
        """Cost over the LP bound alone (what large plans are judged by)."""
        if self.lower_bound_per_hour <= 0:
            return 1.0
        return self.cost_per_hour / self.lower_bound_per_hour

    @property
    def optimal(self) -> bool:
        """Whether the plan is proven optimal (within the solvers' tolerance)."""
        return self.gap <= OPTIMAL_GAP
