"""The planner under topology spread and inter-pod affinity (``launcher.planner.topology``).

Each test plans pods whose placement depends on other pods and checks where the claims go:
their zones (or other domains), which pods share a node, and what is reported unschedulable.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from launcher.planner import Plan, PlannedClaim, PoolView, plan
from launcher.planner.inputs import ClusterNode, InFlightClaim, RunningPod
from shared import labels
from shared.demand import PodDemand
from shared.podaffinity import PodAffinityTerm
from shared.requirements import Requirements
from shared.resources import Resources
from shared.taints import Taint
from shared.topologyspread import SpreadConstraint
from tests.launcher.planner_fixtures import nodepool, plain_instance_type, pod

ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")
A, B, C = ZONES
TYPES = [
    plain_instance_type("m5.large", 2, 8, 0.096, zones=ZONES),
    plain_instance_type("m5.xlarge", 4, 16, 0.192, zones=ZONES),
    plain_instance_type("m5.2xlarge", 8, 32, 0.384, zones=ZONES),
]
WEB = {"app": "web"}
DB = {"app": "db"}


def selector(pod_labels: dict[str, str]) -> Requirements:
    return Requirements.from_labels(pod_labels)


def zone_spread(max_skew: int = 1, hard: bool = True, **kw: object) -> SpreadConstraint:
    return SpreadConstraint(labels.ZONE, max_skew, hard, selector(WEB), **kw)  # type: ignore[arg-type]


def term(key: str, pod_labels: dict[str, str]) -> PodAffinityTerm:
    return PodAffinityTerm(key, selector(pod_labels), frozenset({"default"}))


def replicas(
    prefix: str,
    n: int,
    *,
    pod_labels: dict[str, str] = WEB,
    spread: tuple[SpreadConstraint, ...] = (),
    affinity: tuple[PodAffinityTerm, ...] = (),
    anti: tuple[PodAffinityTerm, ...] = (),
    cpu: str = "1",
    node_selector: dict[str, str] | None = None,
    first_seen: float = 0.0,
) -> dict[str, PodDemand]:
    out = {}
    for i in range(n):
        base = pod(f"{prefix}{i}", cpu, "1Gi", selector=node_selector, first_seen=first_seen)
        out[base.uid] = replace(base, labels=pod_labels, spread=spread, affinity=affinity, anti_affinity=anti)
    return out


def node(name: str, zone: str, taints: tuple[Taint, ...] = (), **extra: str) -> ClusterNode:
    return ClusterNode(name, {labels.HOSTNAME: name, labels.ZONE: zone, **extra}, taints)


def running(node_name: str, n: int, pod_labels: dict[str, str] = WEB, **kw: object) -> list[RunningPod]:
    return [RunningPod("default", pod_labels, node_name, **kw) for _ in range(n)]  # type: ignore[arg-type]


def zone_of(claim: PlannedClaim) -> str:
    assert len(claim.zones) == 1, claim.zones
    return claim.zones[0]


def pods_per_zone(result: Plan) -> Counter[str]:
    return Counter(zone_of(c) for c in result.claims for _ in c.pods)


def by_pod(result: Plan) -> dict[str, PlannedClaim]:
    return {uid: c for c in result.claims for uid in c.pods}


def run(demand: dict[str, PodDemand], pools: list[PoolView] | None = None, **kw: object) -> Plan:
    return plan(demand=demand, pools=pools or [nodepool()], types=TYPES, **kw)  # type: ignore[arg-type]


# Zone spread ----------------------------------------------------------------------------------


def test_a_zone_spread_scaled_from_zero_gets_a_node_in_every_zone_in_one_plan() -> None:
    result = run(replicas("w", 6, spread=(zone_spread(),)))
    assert result.unschedulable == {}
    assert sorted(zone_of(c) for c in result.claims) == list(ZONES)
    assert pods_per_zone(result) == {A: 2, B: 2, C: 2}


def test_switched_off_the_same_pods_are_packed_with_no_zone_of_their_own() -> None:
    result = run(replicas("w", 6, spread=(zone_spread(),)), topology_aware=False)
    assert result.claims
    assert all(len(c.zones) == len(ZONES) for c in result.claims)


def test_the_skew_allows_unequal_zones_but_never_more_than_max_skew_apart() -> None:
    # maxSkew 2: every replica still goes to the emptiest zone, so 7 end 3/2/2.
    result = run(replicas("w", 7, spread=(zone_spread(2),)))
    assert sorted(pods_per_zone(result).values()) == [2, 2, 3]


def test_running_pods_count_so_new_ones_fill_the_other_zones_first() -> None:
    nodes = [node("n-a", A), node("n-b", B)]
    result = run(replicas("w", 4, spread=(zone_spread(),)), cluster_nodes=nodes, running=running("n-a", 2))
    # a: 2 running; b: 0; c: 0 -> b, c, b, c
    assert pods_per_zone(result) == {B: 2, C: 2}


def test_running_pods_of_another_namespace_or_selector_do_not_count() -> None:
    nodes = [node("n-a", A)]
    others = [RunningPod("other", WEB, "n-a"), RunningPod("default", DB, "n-a")] * 3
    result = run(replicas("w", 3, spread=(zone_spread(),)), cluster_nodes=nodes, running=others)
    assert pods_per_zone(result) == {A: 1, B: 1, C: 1}


def test_a_pod_not_selected_by_its_own_spread_is_placed_without_raising_counts() -> None:
    # The selector picks db pods; the web pods only must not go where db's skew is exceeded.
    nodes = [node("n-a", A), node("n-b", B), node("n-c", C)]
    spread = (SpreadConstraint(labels.ZONE, 1, True, selector(DB)),)
    db = running("n-a", 2, DB) + running("n-b", 1, DB) + running("n-c", 1, DB)
    result = run(replicas("w", 3, spread=spread), cluster_nodes=nodes, running=db)
    # a holds 2, the min is 1: a is 1 over, within maxSkew 1, so every zone stays allowed.
    assert result.unschedulable == {}
    assert sum(pods_per_zone(result).values()) == 3


def test_min_domains_caps_each_zone_at_max_skew_when_there_are_too_few_zones() -> None:
    result = run(replicas("w", 6, spread=(zone_spread(1, min_domains=4),)))
    assert pods_per_zone(result) == {A: 1, B: 1, C: 1}
    assert len(result.unschedulable) == 3
    assert all("topology spread" in why for why in result.unschedulable.values())


def test_do_not_schedule_refuses_and_schedule_anyway_prefers() -> None:
    # The pool only reaches zone a; zone b already holds 3 matching pods on a foreign node.
    pool = nodepool(requirements=[{"key": labels.ZONE, "operator": "In", "values": [A]}])
    nodes = [node("n-a", A), node("n-b", B)]
    existing = running("n-b", 3)
    hard = run(replicas("w", 5, spread=(zone_spread(),)), [pool], cluster_nodes=nodes, running=existing)
    assert pods_per_zone(hard) == {A: 4}  # a may reach b's 3 plus maxSkew 1
    assert len(hard.unschedulable) == 1
    soft = run(
        replicas("w", 5, spread=(zone_spread(hard=False),)), [pool], cluster_nodes=nodes, running=existing
    )
    assert pods_per_zone(soft) == {A: 5}
    assert soft.unschedulable == {}


def test_node_affinity_policy_decides_whether_a_zone_the_pod_cannot_use_counts() -> None:
    # Zone c has a node the pods' selector excludes, holding none of them.
    pool = nodepool(
        requirements=[{"key": labels.ZONE, "operator": "In", "values": [A, B]}],
        pool_labels={"intent": "apps"},
    )
    nodes = [node("n-a", A, intent="apps"), node("n-b", B, intent="apps"), node("n-c", C, intent="batch")]
    existing = running("n-a", 1) + running("n-b", 1)
    apps = {"intent": "apps"}
    honor = run(
        replicas("w", 2, spread=(zone_spread(),), node_selector=apps),
        [pool],
        cluster_nodes=nodes,
        running=existing,
    )
    assert pods_per_zone(honor) == {A: 1, B: 1}
    ignore = run(
        replicas("w", 2, spread=(zone_spread(honor_node_affinity=False),), node_selector=apps),
        [pool],
        cluster_nodes=nodes,
        running=existing,
    )
    assert ignore.claims == ()  # c counts, with 0: a and b are already 1 over
    assert len(ignore.unschedulable) == 2


def test_node_taints_policy_decides_whether_a_tainted_zone_counts() -> None:
    pool = nodepool(requirements=[{"key": labels.ZONE, "operator": "In", "values": [A, B]}])
    tainted = (Taint(key="dedicated", value="gpu", effect="NoSchedule"),)
    nodes = [node("n-a", A), node("n-b", B), node("n-c", C, tainted)]
    existing = running("n-a", 1) + running("n-b", 1)
    ignore = run(replicas("w", 2, spread=(zone_spread(),)), [pool], cluster_nodes=nodes, running=existing)
    assert ignore.claims == ()  # the default: the tainted zone counts, with 0 pods
    honor = run(
        replicas("w", 2, spread=(zone_spread(honor_node_taints=True),)),
        [pool],
        cluster_nodes=nodes,
        running=existing,
    )
    assert pods_per_zone(honor) == {A: 1, B: 1}


def test_match_label_keys_spread_a_new_revision_on_its_own() -> None:
    nodes = [node("n-a", A)]
    old = running("n-a", 3, {**WEB, "pod-template-hash": "v1"})
    new_labels = {**WEB, "pod-template-hash": "v2"}
    # As parsed with matchLabelKeys: [pod-template-hash] (shared.topologyspread).
    by_revision = SpreadConstraint(labels.ZONE, 1, True, selector(new_labels))
    fresh = run(
        replicas("w", 3, pod_labels=new_labels, spread=(by_revision,)), cluster_nodes=nodes, running=old
    )
    assert pods_per_zone(fresh) == {A: 1, B: 1, C: 1}
    every = run(
        replicas("w", 3, pod_labels=new_labels, spread=(zone_spread(),)), cluster_nodes=nodes, running=old
    )
    assert A not in pods_per_zone(every)  # without it the old revision's 3 count


def test_pods_kept_for_an_in_flight_claim_count_in_its_zone() -> None:
    kept = replicas("k", 2, spread=(zone_spread(),))
    claim = InFlightClaim(
        "default-abc",
        "default",
        Requirements.from_labels({labels.ZONE: A}),
        (),
        Resources(),
        frozenset(kept),
    )
    result = run({**kept, **replicas("w", 4, spread=(zone_spread(),))}, in_flight=[claim])
    assert set(result.covered) == set(kept)
    assert pods_per_zone(result) == {B: 2, C: 2}


def test_a_custom_key_spreads_over_the_pools_that_label_their_nodes_with_it() -> None:
    rack = "example.com/rack"
    pools = [nodepool(f"rack-{r}", pool_labels={rack: r}, weight=10 - i) for i, r in enumerate("xyz")]
    spread = (SpreadConstraint(rack, 1, True, selector(WEB)),)
    result = run(replicas("w", 6, spread=spread), pools)
    assert Counter(c.nodepool for c in result.claims for _ in c.pods) == {
        "rack-x": 2,
        "rack-y": 2,
        "rack-z": 2,
    }


def test_a_custom_key_no_pool_labels_is_unschedulable_for_a_hard_spread_only() -> None:
    spread = SpreadConstraint("example.com/rack", 1, True, selector(WEB))
    hard = run(replicas("w", 2, spread=(spread,)))
    assert hard.claims == ()
    assert all("example.com/rack" in why for why in hard.unschedulable.values())
    soft = run(replicas("w", 2, spread=(replace(spread, hard=False),)))
    assert soft.unschedulable == {}


# Hostname spread ------------------------------------------------------------------------------


@pytest.mark.parametrize("max_skew", [1, 2, 3])
def test_a_hostname_spread_puts_at_most_max_skew_replicas_on_a_new_node(max_skew: int) -> None:
    spread = (SpreadConstraint(labels.HOSTNAME, max_skew, True, selector(WEB)),)
    # Small pods: an m5.large would hold four of them, the skew allows fewer.
    result = run({**replicas("w", 6, spread=spread, cpu="500m"), **replicas("x", 6, pod_labels=DB)})
    web = [sum(1 for uid in c.pods if uid.startswith("w")) for c in result.claims]
    assert max(web) <= max_skew
    assert sum(web) == 6
    assert len([n for n in web if n]) >= 6 // max_skew
    assert result.unschedulable == {}


def test_a_soft_hostname_spread_does_not_buy_a_node_per_replica() -> None:
    spread = (SpreadConstraint(labels.HOSTNAME, 1, False, selector(WEB)),)
    result = run(replicas("w", 6, spread=spread))
    assert len(result.claims) < 6


# Anti-affinity against other workloads --------------------------------------------------------


def test_anti_affinity_keeps_pods_out_of_the_zone_of_a_running_pod_it_selects() -> None:
    nodes = [node("n-a", A)]
    result = run(
        replicas("w", 3, anti=(term(labels.ZONE, DB),)), cluster_nodes=nodes, running=running("n-a", 1, DB)
    )
    assert result.claims
    assert all(A not in c.zones for c in result.claims)


def test_a_running_pods_anti_affinity_keeps_the_pods_it_selects_out_of_its_zone() -> None:
    nodes = [node("n-a", A)]
    repeller = running("n-a", 1, DB, anti_affinity=(term(labels.ZONE, WEB),))
    result = run(replicas("w", 3), cluster_nodes=nodes, running=repeller)
    assert result.claims
    assert all(A not in c.zones for c in result.claims)


def test_zone_anti_affinity_between_two_pending_workloads_gives_them_different_zones() -> None:
    demand = {**replicas("w", 2, anti=(term(labels.ZONE, DB),)), **replicas("d", 2, pod_labels=DB)}
    result = run(demand)
    zones = {uid[0]: zone_of(c) for c in result.claims for uid in c.pods}
    assert zones["w"] != zones["d"]


def test_hostname_anti_affinity_between_two_pending_workloads_keeps_them_off_each_others_nodes() -> None:
    demand = {**replicas("w", 3, anti=(term(labels.HOSTNAME, DB),)), **replicas("d", 3, pod_labels=DB)}
    result = run(demand)
    assert result.unschedulable == {}
    for claim in result.claims:
        assert len({uid[0] for uid in claim.pods}) == 1, claim.pods
    # Each side still packs together: the rule is between the workloads, not within them.
    assert any(len(c.pods) > 1 for c in result.claims)
    blind = run(demand, topology_aware=False)
    assert any(len({uid[0] for uid in c.pods}) == 2 for c in blind.claims)


def test_replicas_repelling_themselves_stay_with_the_exclusive_key() -> None:
    own = term(labels.HOSTNAME, WEB)
    demand = {uid: replace(p, exclusive="web") for uid, p in replicas("w", 3, anti=(own,)).items()}
    result = run(demand)
    assert [len(c.pods) for c in result.claims] == [1, 1, 1]


# Affinity -------------------------------------------------------------------------------------


def test_zone_affinity_with_a_running_pod_pins_the_pods_to_its_zone() -> None:
    nodes = [node("n-a", A), node("n-b", B)]
    result = run(
        replicas("w", 3, affinity=(term(labels.ZONE, DB),)),
        cluster_nodes=nodes,
        running=running("n-b", 1, DB),
    )
    assert {zone_of(c) for c in result.claims} == {B}


def test_zone_affinity_with_pending_pods_of_another_workload_follows_them() -> None:
    # The web pods come first in plan order, yet wait for the db pods to be placed.
    demand = {
        **replicas("w", 3, affinity=(term(labels.ZONE, DB),)),
        **replicas("d", 2, pod_labels=DB, first_seen=5.0, node_selector={labels.ZONE: C}),
    }
    result = run(demand)
    assert {zone_of(c) for c in result.claims} == {C}
    assert result.unschedulable == {}


def test_zone_self_affinity_keeps_a_group_in_one_zone() -> None:
    result = run(replicas("w", 9, affinity=(term(labels.ZONE, WEB),)))
    assert len({zone_of(c) for c in result.claims}) == 1


def test_affinity_to_pods_that_are_nowhere_is_unschedulable() -> None:
    result = run(replicas("w", 2, affinity=(term(labels.ZONE, DB),)))
    assert result.claims == ()
    assert all("pod affinity" in why for why in result.unschedulable.values())


def test_hostname_affinity_with_a_pending_pod_shares_its_node() -> None:
    demand = {**replicas("w", 2, affinity=(term(labels.HOSTNAME, DB),)), **replicas("d", 1, pod_labels=DB)}
    result = run(demand)
    assert result.unschedulable == {}
    assert [sorted(c.pods) for c in result.claims] == [["d0", "w0", "w1"]]


def test_hostname_self_affinity_puts_the_whole_group_on_one_node() -> None:
    result = run(replicas("w", 5, affinity=(term(labels.HOSTNAME, WEB),)))
    assert [len(c.pods) for c in result.claims] == [5]


def test_hostname_affinity_with_running_pods_only_cannot_be_served_by_a_new_node() -> None:
    nodes = [node("n-a", A)]
    result = run(
        replicas("w", 2, affinity=(term(labels.HOSTNAME, DB),)),
        cluster_nodes=nodes,
        running=running("n-a", 1, DB),
    )
    assert result.claims == ()
    assert all("existing nodes" in why for why in result.unschedulable.values())


# The fast path --------------------------------------------------------------------------------


def test_pods_without_constraints_are_planned_exactly_as_before() -> None:
    demand = {**replicas("x", 7, pod_labels=DB), **replicas("y", 3, pod_labels={}, cpu="3")}
    nodes = [node("n-a", A)]
    aware = run(demand, cluster_nodes=nodes, running=running("n-a", 2, DB))
    assert aware == run(demand, topology_aware=False)


# Properties -----------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    existing=st.tuples(*(st.integers(0, 4) for _ in ZONES)),
    pods=st.integers(1, 12),
    max_skew=st.integers(1, 3),
)
def test_a_zone_spread_never_leaves_a_zone_more_than_max_skew_over_the_emptiest(
    existing: tuple[int, int, int], pods: int, max_skew: int
) -> None:
    nodes = [node(f"n-{z}", z) for z in ZONES]
    bound = [p for z, n in zip(ZONES, existing, strict=True) for p in running(f"n-{z}", n)]
    result = run(replicas("w", pods, spread=(zone_spread(max_skew),)), cluster_nodes=nodes, running=bound)
    assert result.unschedulable == {}  # every zone is open to new nodes: no skew can block them all
    final = Counter(dict(zip(ZONES, existing, strict=True))) + pods_per_zone(result)
    low = min(final[z] for z in ZONES)
    for zone, count in pods_per_zone(result).items():
        # A zone that took new pods is within the skew of the emptiest (or held them already).
        assert final[zone] - low <= max_skew or count == 0


@settings(max_examples=40, deadline=None)
@given(pods=st.integers(1, 10), max_skew=st.integers(1, 4), cpu=st.sampled_from(["250m", "1", "3"]))
def test_no_new_node_holds_more_than_max_skew_of_a_hostname_spread(
    pods: int, max_skew: int, cpu: str
) -> None:
    spread = (SpreadConstraint(labels.HOSTNAME, max_skew, True, selector(WEB)),)
    result = run({**replicas("w", pods, spread=spread, cpu=cpu), **replicas("x", 4, pod_labels=DB)})
    assert sum(len(c.pods) for c in result.claims) == pods + 4
    assert all(sum(1 for uid in c.pods if uid.startswith("w")) <= max_skew for c in result.claims)
