"""Exact plans for small pools (``launcher.planner.exact``): optima checked against brute force.

Each optimum here is computed by the test itself, from the catalogue alone: a dynamic programme
for identical pods, or every partition of the pods into nodes for mixed ones.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import replace
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from launcher.aws.offline import offline_catalogue
from launcher.model import InstanceType
from launcher.planner import Plan, PoolView, plan
from launcher.planner.exact import ExactSettings
from launcher.planner.inputs import OPTIMAL_GAP
from launcher.provisioning.provisioner import plan_fields
from localcluster.demo.seed import load_seed
from shared import labels
from shared.api.nodepool import NodePool
from shared.demand import PodDemand
from shared.requirements import Requirements
from shared.resources import Resources
from shared.topologyspread import SpreadConstraint
from tests.launcher.planner_fixtures import CATALOGUE, nodepool, plain_instance_type, pod

APPS = {"intent": "apps"}
# Sizes as the seed's instance types hold 1-CPU pods: 3, 7 and 15 a node (c6a.xlarge, 2xlarge, 4xlarge).
STEPS = [
    plain_instance_type("x.small", 3, 12, 0.153),
    plain_instance_type("x.medium", 7, 28, 0.306),
    plain_instance_type("x.large", 15, 60, 0.612),
]


def demand_of(*pods: PodDemand) -> dict[str, PodDemand]:
    return {p.uid: p for p in pods}


def ones(count: int) -> dict[str, PodDemand]:
    return demand_of(*(pod(f"p{i}", "1", "1Gi", first_seen=float(i)) for i in range(count)))


def price_of(instance_type: InstanceType, reqs: Requirements) -> float | None:
    if not reqs.compatible(Requirements.from_labels(instance_type.labels)):
        return None
    return instance_type.cheapest_price(reqs)


def identical_optimum(types: Sequence[InstanceType], pool: PoolView, one: PodDemand, count: int) -> float:
    """Identical pods: best[n] = min over types of best[n - pods it holds] + its price."""
    reqs = pool.requirements.intersect(one.requirements[0])
    holds: dict[int, float] = {}
    for t in types:
        price = price_of(t, reqs)
        room = t.allocatable - pool.overhead
        fit = min(room.amount(k) // q for k, q in one.requests.items() if q > 0)
        if price is not None and fit > 0:
            holds[fit] = min(holds.get(fit, price), price)
    best = [0.0] + [float("inf")] * count
    for n in range(1, count + 1):
        best[n] = min(best[max(0, n - k)] + p for k, p in holds.items())
    return best[count]


def _partitions(items: Sequence[str]) -> Iterator[list[list[str]]]:
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for smaller in _partitions(rest):
        for i in range(len(smaller)):
            yield [*smaller[:i], [first, *smaller[i]], *smaller[i + 1 :]]
        yield [[first], *smaller]


def partition_optimum(types: Sequence[InstanceType], pool: PoolView, pods: dict[str, PodDemand]) -> float:
    """Every way to split the pods into nodes: each node the cheapest type their joint
    requirements allow that holds them; no two pods of one exclusive group on a node."""

    @cache
    def node_cost(block: tuple[str, ...]) -> float | None:
        keys = [pods[uid].exclusive for uid in block if pods[uid].exclusive is not None]
        if len(keys) != len(set(keys)):
            return None
        reqs = pool.requirements
        for uid in block:
            reqs = reqs.intersect(pods[uid].requirements[0])
        used = sum((pods[uid].requests for uid in block), Resources()) + pool.overhead
        prices = [p for t in types if used.fits_in(t.allocatable) and (p := price_of(t, reqs)) is not None]
        return min(prices, default=None)

    best = float("inf")
    for partition in _partitions(sorted(pods)):
        costs = [node_cost(tuple(block)) for block in partition]
        if all(c is not None for c in costs):
            best = min(best, sum(c for c in costs if c is not None))
    return best


def counted_usage(result: Plan, types: Sequence[InstanceType], key: str) -> int:
    """What the plan's claims count toward a limit: each the largest capacity among its types."""
    by_name = {t.name: t for t in types}
    return sum(max(by_name[n].capacity.amount(key) for n in c.instance_types) for c in result.claims)


@cache
def seed_catalogue() -> list[InstanceType]:
    return offline_catalogue()


def seed_pool() -> PoolView:
    """The seed's NodePool as ``jitnode convert`` makes it from ``examples/seed``."""
    nodepool_object = NodePool.from_api(load_seed("test").nodepool)
    return PoolView(nodepool_object, nodepool_object.requirements())


def test_the_seed_s_ten_pods_get_the_cheapest_nodes_where_packing_alone_does_not() -> None:
    types, pool = seed_catalogue(), seed_pool()
    pods = demand_of(*(pod(f"inflate-{i}", "1", "1.5Gi", selector=APPS) for i in range(10)))
    optimum = identical_optimum(types, pool, next(iter(pods.values())), 10)
    packed = plan(demand=pods, pools=[pool], types=types, exact=None)
    assert packed.cost_per_hour > optimum + 1e-9  # the case is worth solving (issue 13: 4 x c6a.xlarge)
    result = plan(demand=pods, pools=[pool], types=types)
    assert result.cost_per_hour == pytest.approx(optimum)  # c6a.2xlarge + c6a.xlarge, $0.459/h
    assert result.exact == {"default": "optimal"}
    assert result.optimal
    assert result.exact_bound_per_hour == pytest.approx(optimum, rel=1e-5)
    assert result.exact_bound_per_hour <= optimum


@pytest.mark.parametrize("count", [1, 4, 10, 11, 16, 23, 40])
def test_identical_pods_cost_the_optimum(count: int) -> None:
    pool = nodepool(requirements=[{"key": labels.CAPACITY_TYPE, "operator": "In", "values": ["on-demand"]}])
    pods = ones(count)
    result = plan(demand=pods, pools=[pool], types=STEPS)
    assert sum(len(c.pods) for c in result.claims) == count
    assert result.cost_per_hour == pytest.approx(identical_optimum(STEPS, pool, pods["p0"], count))
    assert result.optimal


def test_the_slots_model_finds_the_same_optimum() -> None:
    """With the contents model ruled out, the slot-based model plans the pool."""
    pods = ones(10)
    pool = nodepool()
    result = plan(demand=pods, pools=[pool], types=STEPS, exact=ExactSettings(max_contents=0, seconds=5))
    assert result.exact == {"default": "optimal"}
    assert result.cost_per_hour == pytest.approx(identical_optimum(STEPS, pool, pods["p0"], 10))


@pytest.mark.parametrize("max_contents", [6000, 0], ids=["contents", "slots"])
def test_replicas_of_an_exclusive_group_never_share_a_node(max_contents: int) -> None:
    # One 7-CPU node would hold everything; the four replicas need four nodes.
    replicas = [pod(f"web-{i}", "1", "1Gi", exclusive="web") for i in range(4)]
    others = [pod(f"job-{i}", "1", "1Gi") for i in range(5)]
    pods = demand_of(*replicas, *others)
    pool = nodepool()
    result = plan(
        demand=pods, pools=[pool], types=STEPS, exact=ExactSettings(max_contents=max_contents, seconds=5)
    )
    assert not result.unschedulable
    for claim in result.claims:
        assert sum(uid.startswith("web-") for uid in claim.pods) <= 1
    assert result.cost_per_hour == pytest.approx(partition_optimum(STEPS, pool, pods))
    assert result.optimal


def test_limits_hold_as_the_planner_counts_them() -> None:
    """A claim counts with the largest type it lists; the exact plan still fits under the limit."""
    pool = nodepool(limits={"cpu": "22"})
    pods = ones(10)
    result = plan(demand=pods, pools=[pool], types=STEPS)
    assert not result.unschedulable
    assert counted_usage(result, STEPS, "cpu") <= 22_000
    assert result.cost_per_hour == pytest.approx(identical_optimum(STEPS, pool, pods["p0"], 10))


def test_at_a_tight_limit_the_exact_plan_serves_pods_packing_turns_away() -> None:
    pool = nodepool(limits={"cpu": "15"})
    pods = ones(11)
    packed = plan(demand=pods, pools=[pool], types=STEPS, exact=None)
    assert packed.unschedulable  # its first claim lists x.large, which takes the whole limit
    result = plan(demand=pods, pools=[pool], types=STEPS)
    assert not result.unschedulable
    assert counted_usage(result, STEPS, "cpu") <= 15_000
    assert result.cost_per_hour == pytest.approx(identical_optimum(STEPS, pool, pods["p0"], 11))


def test_pods_spread_by_hostname_keep_their_cap_a_node() -> None:
    selector = Requirements.from_labels({"app": "web"})
    spread = (SpreadConstraint(labels.HOSTNAME, 2, True, selector),)
    pods = {uid: replace(p, labels={"app": "web"}, spread=spread) for uid, p in ones(9).items()}
    result = plan(demand=pods, pools=[nodepool()], types=STEPS)
    assert not result.unschedulable
    assert max(len(c.pods) for c in result.claims) <= 2
    cheapest = min(t.cheapest_price(Requirements()) or math.inf for t in STEPS)
    assert result.cost_per_hour == pytest.approx(math.ceil(9 / 2) * cheapest)  # each node its cheapest
    assert result.exact == {"default": "optimal"}


def test_a_timeout_falls_back_to_the_packing_plan() -> None:
    pods = ones(10)
    packed = plan(demand=pods, pools=[nodepool()], types=STEPS, exact=None)
    result = plan(demand=pods, pools=[nodepool()], types=STEPS, exact=ExactSettings(seconds=1e-9))
    assert result.exact == {"default": "timeout"}
    assert result.claims == packed.claims
    assert result.unschedulable == packed.unschedulable
    assert result.cost_per_hour == packed.cost_per_hour


def test_large_pools_are_not_solved_and_keep_the_lp_gap() -> None:
    pods = ones(10)
    packed = plan(demand=pods, pools=[nodepool()], types=STEPS, exact=None)
    result = plan(demand=pods, pools=[nodepool()], types=STEPS, exact=ExactSettings(max_pods=9))
    assert result.exact == {"default": "skipped"}
    assert result.claims == packed.claims
    assert result.exact_bound_per_hour == 0.0
    assert result.gap == result.lp_gap == packed.gap


def test_the_gap_is_against_the_best_bound_known_and_logged() -> None:
    pods = ones(10)
    result = plan(demand=pods, pools=[nodepool()], types=STEPS)
    assert result.lower_bound_per_hour < result.exact_bound_per_hour <= result.cost_per_hour
    assert result.bound_per_hour == result.exact_bound_per_hour
    assert result.gap == pytest.approx(result.cost_per_hour / result.exact_bound_per_hour)
    assert result.gap <= OPTIMAL_GAP < result.lp_gap
    fields = plan_fields(result)
    assert fields["gap"] == round(result.gap, 4)
    assert fields["bound_per_hour"] == round(result.exact_bound_per_hour, 4)
    assert fields["lp_gap"] == round(result.lp_gap, 4)
    assert fields["optimal"] is True
    assert fields["exact"] == {"default": "optimal"}


# Properties ---------------------------------------------------------------------------------

SHAPES = [("250m", "512Mi"), ("1", "1Gi"), ("2", "4Gi"), ("500m", "6Gi"), ("3", "2Gi"), ("1500m", "12Gi")]
ALTERNATIVES = [
    Requirements(),
    Requirements.from_labels({labels.ARCH: "amd64"}),
    Requirements.from_labels({labels.CAPACITY_TYPE: "on-demand"}),
    Requirements.from_api([{"key": labels.ZONE, "operator": "In", "values": ["us-east-1b"]}]),
]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(SHAPES), st.sampled_from(ALTERNATIVES), st.sampled_from([None, None, "web"])
        ),
        min_size=1,
        max_size=7,
    )
)
def test_small_plans_cost_the_brute_force_optimum(
    spec: list[tuple[tuple[str, str], Requirements, str | None]],
) -> None:
    pool = nodepool()
    pods = demand_of(
        *(
            pod(f"p{i}", cpu, memory, alternatives=(alt,), exclusive=key, first_seen=float(i))
            for i, ((cpu, memory), alt, key) in enumerate(spec)
        )
    )
    result = plan(demand=pods, pools=[pool], types=CATALOGUE, exact=ExactSettings(seconds=5))
    assert not result.unschedulable
    optimum = partition_optimum(CATALOGUE, pool, pods)
    assert result.exact_bound_per_hour <= optimum + 1e-9
    assert result.lower_bound_per_hour <= optimum + 1e-9
    assert result.cost_per_hour == pytest.approx(optimum)
    for claim in result.claims:
        keys = [pods[uid].exclusive for uid in claim.pods if pods[uid].exclusive is not None]
        assert len(keys) == len(set(keys))
