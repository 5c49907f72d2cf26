"""The planner: example scenarios and hypothesis properties over a small catalogue."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from launcher.planner import InFlightClaim, NodeRoom, PoolView, plan
from launcher.planner.offerings import UnavailableOfferings
from shared import labels
from shared.demand import PodDemand
from shared.requirements import Requirements
from shared.resources import Resources
from shared.taints import Taint, Toleration, untolerated_taints
from tests.launcher.planner_fixtures import CATALOGUE, ZONES, nodepool, pod

BY_NAME = {t.name: t for t in CATALOGUE}
SMALL = ["nano", "micro", "small", "medium", "large"]


def seed_pool() -> PoolView:
    return nodepool(
        requirements=[
            {"key": labels.CAPACITY_TYPE, "operator": "In", "values": ["on-demand"]},
            {"key": labels.INSTANCE_SIZE, "operator": "NotIn", "values": SMALL},
        ],
        pool_labels={"intent": "apps"},
        limits={"cpu": "1000", "memory": "1000Gi"},
    )


def demand_of(*pods: PodDemand) -> dict[str, PodDemand]:
    return {p.uid: p for p in pods}


def test_seed_inflate_pods_pack_onto_the_cheapest_fitting_types() -> None:
    pods = demand_of(*(pod(f"p{i}", "1", "1.5Gi", selector={"intent": "apps"}) for i in range(10)))
    result = plan(demand=pods, pools=[seed_pool()], types=CATALOGUE)
    assert result.unschedulable == {}
    planned = [uid for claim in result.claims for uid in claim.pods]
    assert sorted(planned) == sorted(pods)
    for claim in result.claims:
        for name in claim.instance_types:
            assert BY_NAME[name].labels[labels.INSTANCE_SIZE] not in SMALL
        assert claim.requirements.allows(labels.CAPACITY_TYPE, "on-demand")
        assert not claim.requirements.allows(labels.CAPACITY_TYPE, "spot")
        assert claim.requirements.allows("intent", "apps")
    # 10 cpu of 1-cpu pods: the arm64 xlarge at $0.154 per 3 pods beats an 8-cpu m5 at $0.384 per 7.
    assert result.cost_per_hour == pytest.approx(sum(c.price for c in result.claims))
    assert result.cost_per_hour <= 0.154 * 4 + 1e-9
    assert 0 < result.lower_bound_per_hour <= result.cost_per_hour


def test_instance_types_are_listed_cheapest_first() -> None:
    result = plan(demand=demand_of(pod("a", "1", "1Gi")), pools=[nodepool()], types=CATALOGUE)
    (claim,) = result.claims
    prices = [min(o.price for o in BY_NAME[n].offerings) for n in claim.instance_types]
    assert prices == sorted(prices)
    assert claim.price == prices[0]


def test_a_custom_label_the_pool_does_not_define_cannot_be_served() -> None:
    result = plan(demand=demand_of(pod("a", selector={"team": "data"})), pools=[nodepool()], types=CATALOGUE)
    assert result.claims == ()
    assert "team" in result.unschedulable["a"]


def test_higher_weight_pool_wins_when_it_can_serve() -> None:
    cheap = nodepool(
        "spot", weight=50, requirements=[{"key": labels.CAPACITY_TYPE, "operator": "In", "values": ["spot"]}]
    )
    fallback = nodepool("on-demand", weight=10)
    result = plan(demand=demand_of(pod("a")), pools=[fallback, cheap], types=CATALOGUE)
    assert [c.nodepool for c in result.claims] == ["spot"]


def test_untolerated_taint_sends_pods_to_another_pool() -> None:
    gpu = nodepool("gpu", weight=100, taints=[{"key": "gpu", "value": "true", "effect": "NoSchedule"}])
    general = nodepool("general")
    tolerating = pod("t", tolerations=(Toleration(key="gpu", operator="Exists"),))
    result = plan(demand=demand_of(pod("plain"), tolerating), pools=[general, gpu], types=CATALOGUE)
    by_pod = {uid: c.nodepool for c in result.claims for uid in c.pods}
    assert by_pod == {"plain": "general", "t": "gpu"}


def test_limits_are_never_exceeded_and_the_rest_is_reported() -> None:
    pool = nodepool(limits={"cpu": "8"})
    pods = demand_of(*(pod(f"p{i}", "1", "1Gi") for i in range(20)))
    result = plan(demand=pods, pools=[pool], types=CATALOGUE)
    counted = sum(max(BY_NAME[n].capacity.amount("cpu") for n in c.instance_types) for c in result.claims)
    assert counted <= 8000
    assert result.unschedulable
    assert all("limits" in reason for reason in result.unschedulable.values())
    assert len(result.unschedulable) + sum(len(c.pods) for c in result.claims) == 20


def test_pods_planned_for_an_in_flight_claim_are_not_planned_again() -> None:
    claim = InFlightClaim(
        name="default-abc",
        nodepool="default",
        requirements=Requirements.from_labels({labels.INSTANCE_TYPE: "m5.2xlarge"}),
        taints=(),
        room=Resources(cpu=3000, memory=8 * 2**30, pods=20),
        pods=frozenset({"a", "b"}),
    )
    pods = demand_of(pod("a"), pod("b"), pod("c"), pod("d", "6"))
    result = plan(demand=pods, pools=[nodepool()], types=CATALOGUE, in_flight=[claim])
    assert result.covered == {"a": "default-abc", "b": "default-abc", "c": "default-abc"}
    assert [list(c.pods) for c in result.claims] == [["d"]]


def _ready(name: str, node: str, planned: set[str]) -> InFlightClaim:
    """A claim whose Node just became Ready (within its bind grace)."""
    requirements = Requirements.from_labels({labels.INSTANCE_TYPE: "m5.xlarge"})
    return InFlightClaim(name, "default", requirements, (), Resources(), frozenset(planned), node=node)


def _room(name: str, cpu: int) -> NodeRoom:
    return NodeRoom(name, {labels.ARCH: "amd64"}, (), Resources(cpu=cpu, memory=16 * 2**30, pods=50))


def test_a_ready_claims_pods_wait_for_it_while_its_node_has_room() -> None:
    pods = demand_of(pod("a"), pod("b"))
    claim = _ready("default-abc", "node-1", {"a", "b"})
    result = plan(
        demand=pods, pools=[nodepool()], types=CATALOGUE, in_flight=[claim], nodes=[_room("node-1", 3000)]
    )
    assert result.covered == {"a": "default-abc", "b": "default-abc"}
    assert result.claims == ()


def test_a_ready_claims_pod_the_scheduler_left_out_is_planned_again_at_once() -> None:
    """Other pods took its node (a node of the plan never came): it no longer waits for it."""
    pods = demand_of(pod("a"), pod("b"))
    claim = _ready("default-abc", "node-1", {"a", "b"})
    result = plan(
        demand=pods, pools=[nodepool()], types=CATALOGUE, in_flight=[claim], nodes=[_room("node-1", 1000)]
    )
    assert result.covered == {"a": "default-abc"}
    assert [list(c.pods) for c in result.claims] == [["b"]]


def test_a_left_out_pod_waits_for_another_fresh_node_with_room() -> None:
    pods = demand_of(pod("a"))
    full, roomy = _ready("claim-1", "node-1", {"a"}), _ready("claim-2", "node-2", set())
    nodes = [_room("node-1", 0), _room("node-2", 2000)]
    result = plan(demand=pods, pools=[nodepool()], types=CATALOGUE, in_flight=[full, roomy], nodes=nodes)
    assert result.covered == {"a": "claim-1"}
    assert result.claims == ()


def test_a_left_out_pod_waits_for_a_launching_claim_whose_pods_went_elsewhere() -> None:
    """The scheduler put the launching claim's pods on the Ready node and left that node's own
    pod out: the launching claim has their room (given the demand, its pods are no longer in it)."""
    launching = InFlightClaim(
        "claim-2",
        "default",
        Requirements.from_labels({labels.INSTANCE_TYPE: "m5.xlarge"}),
        (),
        Resources(cpu=2000, memory=8 * 2**30, pods=20),
        frozenset({"bound-elsewhere"}),
    )
    pods = demand_of(pod("a"))
    result = plan(
        demand=pods,
        pools=[nodepool()],
        types=CATALOGUE,
        in_flight=[_ready("claim-1", "node-1", {"a"}), launching],
        nodes=[_room("node-1", 0)],
    )
    assert result.covered == {"a": "claim-2"}
    assert result.claims == ()


def test_existing_room_counts_only_for_predicted_demand() -> None:
    node = NodeRoom("node-1", {labels.ARCH: "amd64"}, (), Resources(cpu=4000, memory=16 * 2**30, pods=50))
    pods = demand_of(pod("predicted", reason="predicted"), pod("failed"))
    result = plan(demand=pods, pools=[nodepool()], types=CATALOGUE, nodes=[node])
    assert result.covered == {"predicted": "node-1"}
    assert [list(c.pods) for c in result.claims] == [["failed"]]


def test_unavailable_offerings_are_left_out() -> None:
    unavailable = UnavailableOfferings(clock=lambda: 0.0)
    for zone in ("us-east-1a", "us-east-1b"):
        for capacity_type in ("on-demand", "spot"):
            unavailable.mark("m6g.xlarge", zone, capacity_type)
            unavailable.mark("m5.large", zone, capacity_type)
    result = plan(
        demand=demand_of(pod("a")),
        pools=[nodepool()],
        types=CATALOGUE,
        is_unavailable=unavailable.is_unavailable,
    )
    (claim,) = result.claims
    assert "m6g.xlarge" not in claim.instance_types
    assert "m5.large" not in claim.instance_types


def test_a_pod_too_big_for_every_type_is_reported() -> None:
    result = plan(demand=demand_of(pod("huge", "64", "1Gi")), pools=[nodepool()], types=CATALOGUE)
    assert result.claims == ()
    assert "no instance type fits" in result.unschedulable["huge"]


def test_ten_thousand_identical_pods_pack_in_bulk() -> None:
    pods = demand_of(*(pod(f"p{i}", "500m", "1Gi", first_seen=float(i)) for i in range(10_000)))
    started = datetime.now(UTC)
    result = plan(demand=pods, pools=[nodepool()], types=CATALOGUE)
    assert (datetime.now(UTC) - started).total_seconds() < 30  # a guard against quadratic blow-up only
    assert sum(len(c.pods) for c in result.claims) == 10_000
    assert result.gap < 1.05


# Properties ---------------------------------------------------------------------------------

SHAPES = [("250m", "512Mi"), ("1", "1Gi"), ("2", "4Gi"), ("500m", "6Gi"), ("3", "2Gi")]
ALTERNATIVES = [
    (Requirements(),),
    (Requirements.from_labels({labels.ARCH: "amd64"}),),
    (Requirements.from_api([{"key": labels.ZONE, "operator": "In", "values": ["us-east-1b"]}]),),
    (
        Requirements.from_labels({labels.ARCH: "arm64"}),
        Requirements.from_labels({labels.INSTANCE_FAMILY: "c5"}),
    ),
    (Requirements.from_labels({"intent": "apps"}),),
]
TOLERATIONS = [(), (Toleration(key="dedicated", operator="Exists"),)]
# (exclusive key, kept a zone apart): one key always comes with the same flag, as from a pod spec.
EXCLUSIVE: list[tuple[str | None, bool]] = [(None, False), (None, False), ("web", False), ("db", True)]


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[dict[str, PodDemand], list[PoolView]]:
    count = draw(st.integers(1, 40))
    pods = {}
    for i in range(count):
        cpu, memory = draw(st.sampled_from(SHAPES))
        exclusive, exclusive_zone = draw(st.sampled_from(EXCLUSIVE))
        pods[f"p{i}"] = pod(
            f"p{i}",
            cpu,
            memory,
            alternatives=draw(st.sampled_from(ALTERNATIVES)),
            tolerations=draw(st.sampled_from(TOLERATIONS)),
            first_seen=float(i),
            exclusive=exclusive,
            exclusive_zone=exclusive_zone,
        )
    pools = [nodepool("general", limits={"cpu": str(draw(st.integers(4, 64)))})]
    if draw(st.booleans()):
        pools.append(
            nodepool(
                "dedicated",
                weight=draw(st.integers(0, 100)),
                pool_labels={"intent": "apps"},
                taints=[{"key": "dedicated", "value": "x", "effect": "NoSchedule"}],
            )
        )
    return pods, pools


@settings(max_examples=60, deadline=None)
@given(scenarios())
def test_every_pod_is_planned_exactly_once(scenario: tuple[dict[str, PodDemand], list[PoolView]]) -> None:
    pods, pools = scenario
    result = plan(demand=pods, pools=pools, types=CATALOGUE)
    seen = [uid for c in result.claims for uid in c.pods] + list(result.covered) + list(result.unschedulable)
    assert sorted(seen) == sorted(pods)


@settings(max_examples=60, deadline=None)
@given(scenarios())
def test_no_claim_holds_two_pods_of_one_exclusive_group(
    scenario: tuple[dict[str, PodDemand], list[PoolView]],
) -> None:
    pods, pools = scenario
    result = plan(demand=pods, pools=pools, types=CATALOGUE)
    zones_of: dict[str, list[str]] = {}
    for claim in result.claims:
        keys = [pods[uid].exclusive for uid in claim.pods if pods[uid].exclusive is not None]
        assert len(keys) == len(set(keys)), (claim.pods, keys)
        for uid in claim.pods:
            if pods[uid].exclusive_zone:
                assert len(claim.zones) == 1, claim  # pinned to one zone
                zones_of.setdefault(str(pods[uid].exclusive), []).extend(claim.zones)
    for key, zones in zones_of.items():
        assert len(zones) == len(set(zones)), (key, zones)  # never two replicas in one zone


def test_replicas_that_repel_each_other_get_a_node_each_and_others_still_share() -> None:
    one_type = nodepool(
        requirements=[
            {"key": labels.INSTANCE_TYPE, "operator": "In", "values": ["m5.xlarge"]},
            {"key": labels.CAPACITY_TYPE, "operator": "In", "values": ["on-demand"]},
        ]
    )  # 3 one-cpu pods per node

    def web_per_claim(exclusive: str | None) -> list[int]:
        replicas = [pod(f"web-{i}", exclusive=exclusive) for i in range(3)]
        others = [pod(f"job-{i}") for i in range(6)]
        result = plan(demand=demand_of(*replicas, *others), pools=[one_type], types=CATALOGUE)
        assert not result.unschedulable
        assert len(result.claims) == 3  # nine pods, three per node, either way
        return sorted(sum(uid.startswith("web-") for uid in c.pods) for c in result.claims)

    assert web_per_claim("web") == [1, 1, 1]  # each node one replica, the jobs fill the rest
    assert web_per_claim(None) != [1, 1, 1]  # without the key the packer puts replicas together


def test_replicas_kept_a_zone_apart_get_a_free_zone_each_and_the_rest_are_reported() -> None:
    def replicas(n: int) -> dict[str, PodDemand]:
        return demand_of(*(pod(f"zk-{i}", exclusive="zk", exclusive_zone=True) for i in range(n)))

    result = plan(demand=replicas(3), pools=[nodepool()], types=CATALOGUE)  # two zones offered
    assert sorted(z for c in result.claims for z in c.zones) == ["us-east-1a", "us-east-1b"]
    assert len(result.unschedulable) == 1
    assert "a zone apart" in next(iter(result.unschedulable.values()))
    # A zone where a replica already runs is not launched into.
    taken = plan(
        demand=replicas(2),
        pools=[nodepool()],
        types=CATALOGUE,
        occupied_zones={"zk": frozenset({"us-east-1a"})},
    )
    assert [c.zones for c in taken.claims] == [("us-east-1b",)]
    assert len(taken.unschedulable) == 1


def test_a_refused_zone_replica_does_not_take_its_node_mates_with_it() -> None:
    one_type = nodepool(
        requirements=[{"key": labels.INSTANCE_TYPE, "operator": "In", "values": ["m5.xlarge"]}]
    )
    pods = demand_of(pod("zk-0", exclusive="zk", exclusive_zone=True), pod("job-0"), pod("job-1"))
    result = plan(demand=pods, pools=[one_type], types=CATALOGUE, occupied_zones={"zk": frozenset(ZONES)})
    assert list(result.unschedulable) == ["zk-0"]
    assert sorted(uid for c in result.claims for uid in c.pods) == ["job-0", "job-1"]


def test_a_zone_replica_waits_only_for_a_claim_in_a_free_zone() -> None:
    def claim(name: str, zone: str) -> InFlightClaim:
        return InFlightClaim(
            name=name,
            nodepool="default",
            requirements=Requirements.from_labels({labels.INSTANCE_TYPE: "m5.2xlarge", labels.ZONE: zone}),
            taints=(),
            room=Resources(cpu=6000, memory=16 * 2**30, pods=20),
        )

    pods = demand_of(
        pod("zk-0", exclusive="zk", exclusive_zone=True), pod("zk-1", exclusive="zk", exclusive_zone=True)
    )
    result = plan(
        demand=pods,
        pools=[nodepool()],
        types=CATALOGUE,
        in_flight=[claim("in-a", "us-east-1a"), claim("in-b", "us-east-1b")],
        occupied_zones={"zk": frozenset({"us-east-1a"})},
    )
    assert result.covered == {"zk-0": "in-b"}
    assert list(result.unschedulable) == ["zk-1"]  # both zones now hold one


def test_an_exclusive_pod_does_not_wait_for_a_claim_holding_its_sibling() -> None:
    claim = InFlightClaim(
        name="default-abc",
        nodepool="default",
        requirements=Requirements.from_labels({labels.INSTANCE_TYPE: "m5.2xlarge"}),
        taints=(),
        room=Resources(cpu=6000, memory=16 * 2**30, pods=20),
        pods=frozenset({"web-0"}),
    )
    pods = demand_of(
        pod("web-0", exclusive="web"),
        pod("web-1", exclusive="web"),
        pod("db-0", exclusive="db"),
        pod("db-1", exclusive="db"),
    )
    result = plan(demand=pods, pools=[nodepool()], types=CATALOGUE, in_flight=[claim])
    # web-1 may not join its sibling; db-0 may, and then db-1 may not join db-0.
    assert result.covered == {"web-0": "default-abc", "db-0": "default-abc"}
    assert sorted(sorted(c.pods) for c in result.claims) in ([["db-1"], ["web-1"]], [["db-1", "web-1"]])


@settings(max_examples=60, deadline=None)
@given(scenarios())
def test_every_claim_holds_its_pods_on_its_smallest_type(
    scenario: tuple[dict[str, PodDemand], list[PoolView]],
) -> None:
    pods, pools = scenario
    views = {v.name: v for v in pools}
    result = plan(demand=pods, pools=pools, types=CATALOGUE)
    for claim in result.claims:
        assert 1 <= len(claim.instance_types) <= 60
        smallest = min(
            (BY_NAME[n] for n in claim.instance_types),
            key=lambda t: (t.allocatable.amount("cpu"), t.allocatable.amount("memory")),
        )
        total = sum((pods[uid].requests for uid in claim.pods), Resources()) + views[claim.nodepool].overhead
        assert total.fits_in(smallest.allocatable)
        for name in claim.instance_types:
            type_reqs = Requirements.from_labels(BY_NAME[name].labels)
            assert claim.requirements.compatible(type_reqs)
        for uid in claim.pods:
            assert any(
                claim.requirements.intersect(alt) == claim.requirements
                or claim.requirements.intersect(alt).is_satisfiable()
                for alt in pods[uid].requirements
            )
            assert untolerated_taints(pods[uid].tolerations, views[claim.nodepool].taints) == []


@settings(max_examples=60, deadline=None)
@given(scenarios())
def test_limits_hold_and_the_bound_is_below_the_cost(
    scenario: tuple[dict[str, PodDemand], list[PoolView]],
) -> None:
    pods, pools = scenario
    result = plan(demand=pods, pools=pools, types=CATALOGUE)
    for view in pools:
        limit = view.pool.limits.amount("cpu")
        if not limit:
            continue
        counted = sum(
            max(BY_NAME[n].capacity.amount("cpu") for n in c.instance_types)
            for c in result.claims
            if c.nodepool == view.name
        )
        assert counted <= limit
    assert result.lower_bound_per_hour <= result.cost_per_hour + 1e-9


@settings(max_examples=30, deadline=None)
@given(scenarios())
def test_planning_is_deterministic(scenario: tuple[dict[str, PodDemand], list[PoolView]]) -> None:
    pods, pools = scenario
    first = plan(demand=pods, pools=pools, types=CATALOGUE)
    second = plan(demand=dict(reversed(list(pods.items()))), pools=list(reversed(pools)), types=CATALOGUE)
    assert first == second


def test_a_claims_taints_are_the_pools() -> None:
    pool = nodepool("tainted", taints=[{"key": "dedicated", "value": "x", "effect": "NoSchedule"}])
    assert pool.taints == (Taint("dedicated", "NoSchedule", "x"),)
