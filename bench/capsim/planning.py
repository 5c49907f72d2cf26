"""jitnode's real planner (``launcher.planner.plan``) as the simulator calls it, memoised.

The simulator's pods come in a few shapes, so a planning question is a count of pods per shape
and its answer is reused: the planner rebuilds its type index on each call (about 0.1 s over the
full catalogue), which a day of events could not afford otherwise. The NodePool is the seed's,
converted as ``jitnode demo`` does (``localcluster.demo.seed``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, cached_property

from launcher.aws.offline import offline_catalogue
from launcher.model import InstanceType
from launcher.planner import PoolView, plan
from localcluster.demo.seed import Seed, load_seed
from shared import labels
from shared.api.nodepool import NodePool
from shared.demand import PodDemand
from shared.requirements import Requirements
from shared.resources import Resources

Shape = tuple[int, int]  # (millicores, memory bytes) of one pod
Counts = tuple[tuple[Shape, int], ...]  # pods per shape, sorted

SEED_CLUSTER = "capsim"


@cache
def seed() -> Seed:
    """The seed walkthrough's objects, converted as ``jitnode demo`` applies them."""
    return load_seed(SEED_CLUSTER)


def seed_pool() -> PoolView:
    """The seed Provisioner as the NodePool ``jitnode convert`` makes of it: on-demand, no size
    up to large, and v1alpha5's defaults made explicit (amd64, categories c/m/r, generation > 2)."""
    nodepool = NodePool.from_api(seed().nodepool)
    return PoolView(nodepool, nodepool.requirements())


def seed_selector() -> dict[str, str]:
    """The node selector of the seed's ``inflate`` pods (``intent: apps``), which every pod here has."""
    selector = seed().deployment["spec"]["template"]["spec"].get("nodeSelector") or {}
    return {str(k): str(v) for k, v in selector.items()}


@dataclass(frozen=True)
class TypeInfo:
    """What the simulator needs of an instance type: room for pods, RAM, on-demand price."""

    name: str
    cpu_m: int
    memory: int
    pods: int
    ram_gib: float
    price: float  # $ per hour

    def holds(self, shape: Shape) -> bool:
        return shape[0] <= self.cpu_m and shape[1] <= self.memory and self.pods >= 1


@dataclass(frozen=True)
class Claim:
    """One node the planner buys: the types that hold its pods (cheapest first) and its pods."""

    instance_types: tuple[str, ...]
    pods: Counts


class Planner:
    """The planner over the bundled catalogue and the seed's NodePool, with answers memoised."""

    def __init__(self, types: Sequence[InstanceType] | None = None, pool: PoolView | None = None):
        self.pool = pool or seed_pool()
        allowed = self.pool.requirements
        self.types = [t for t in (types or offline_catalogue()) if _allowed(t, allowed)]
        self._memo: dict[Counts, tuple[Claim, ...]] = {}
        self.calls = 0

    @cached_property
    def info(self) -> dict[str, TypeInfo]:
        out = {}
        for t in self.types:
            prices = [o.price for o in t.offerings if o.capacity_type == labels.CAPACITY_TYPE_ON_DEMAND]
            if not prices:
                continue
            out[t.name] = TypeInfo(
                name=t.name,
                cpu_m=t.allocatable.amount("cpu"),
                memory=t.allocatable.amount("memory"),
                pods=t.allocatable.amount("pods"),
                ram_gib=t.capacity.amount("memory") / 2**30,
                price=min(prices),
            )
        return out

    def plan(self, counts: Counts) -> tuple[Claim, ...]:
        """The claims jitnode's planner makes for these pending pods (none for no pods)."""
        if not counts:
            return ()
        found = self._memo.get(counts)
        if found is None:
            self.calls += 1
            found = self._plan(counts)
            self._memo[counts] = found
        return found

    def _plan(self, counts: Counts) -> tuple[Claim, ...]:
        demand: dict[str, PodDemand] = {}
        shape_of: dict[str, Shape] = {}
        selector = (Requirements.from_labels(seed_selector()),)
        for s, (shape, n) in enumerate(counts):
            requests = Resources(cpu=shape[0], memory=shape[1], pods=1)
            for i in range(n):
                uid = f"s{s}-{i:05d}"
                shape_of[uid] = shape
                demand[uid] = PodDemand(
                    uid=uid,
                    namespace="sim",
                    name=uid,
                    requests=requests,
                    requirements=selector,
                    tolerations=(),
                    priority=0,
                    owner_kind="ReplicaSet",
                    owner_name=f"shape-{s}",
                    first_seen=float(i),
                    reason="unschedulable",
                )
        result = plan(demand=demand, pools=[self.pool], types=self.types)
        claims = []
        for claim in result.claims:
            tally: dict[Shape, int] = {}
            for uid in claim.pods:
                tally[shape_of[uid]] = tally.get(shape_of[uid], 0) + 1
            known = tuple(name for name in claim.instance_types if name in self.info)
            claims.append(Claim(known, tuple(sorted(tally.items()))))
        return tuple(claims)


def _allowed(instance_type: InstanceType, requirements: Requirements) -> bool:
    """Whether the pool may ever launch the type (cuts the catalogue the planner indexes)."""
    return requirements.compatible(instance_type.requirements())
