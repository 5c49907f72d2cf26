"""Warm pools' pure decisions: representation, sizing, each step, what the planner is offered, cost.

And what they change elsewhere: the lifecycle waits on a parked instance instead of deleting its
claim, leak collection spares owned warm instances and collects orphans, in-flight accounting
counts a taken claim's pods, and the real planner covers pods with warm instances before it buys.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from launcher.lifecycle import decisions as lifecycle
from launcher.lifecycle.garbage import leaked_instances
from launcher.model import Instance
from launcher.planner import plan
from launcher.provisioning.inputs import in_flight_claims
from launcher.warmpool import steps
from launcher.warmpool.candidates import activations, warm_in_flight
from launcher.warmpool.claims import (
    activated_at,
    held,
    is_warm,
    parked_state,
    served,
    serves_annotation,
    stopped_on_purpose,
)
from launcher.warmpool.controller import within_limits
from launcher.warmpool.cost import WarmInstanceCost, ebs_per_hour, format_dollars, hourly_cost
from launcher.warmpool.sizing import (
    desired_size,
    is_expired,
    recent_demand,
    surplus_claims,
    warm_requirements,
    warm_types,
)
from shared import labels
from shared.api.nodeclaim import NodeClaim
from shared.api.nodepool import NodePool
from shared.api.warmpool import HIBERNATED, RUNNING, STOPPED, WarmPoolSpec
from shared.errors import ValidationError
from shared.resources import EMPTY, Resources
from tests.launcher.planner_fixtures import CATALOGUE, nodepool, pod

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
TYPES = {t.name: t for t in CATALOGUE}
STOPPED_SPEC = WarmPoolSpec(size=2, state=STOPPED)


def _time(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def claim(
    name: str = "default-warm1",
    *,
    warm: bool = True,
    warm_condition: tuple[str, str, datetime] | None = None,
    initialized: bool = False,
    registered: bool = False,
    launched: str | None = "m5.xlarge",
    zone: str = "us-east-1a",
    created: datetime = NOW - timedelta(minutes=5),
    annotations: dict[str, str] | None = None,
    deleting: bool = False,
    types: tuple[str, ...] = ("m5.xlarge", "m5.2xlarge"),
) -> NodeClaim:
    meta_labels = {labels.NODEPOOL: "default", "intent": "apps"}
    if warm:
        meta_labels[labels.WARM_LABEL] = "true"
    if launched:
        meta_labels.update(
            {labels.INSTANCE_TYPE: launched, labels.ZONE: zone, labels.CAPACITY_TYPE: "on-demand"}
        )
    conditions: list[dict[str, Any]] = [
        {"type": "Launched", "status": "True", "lastTransitionTime": _time(created)}
    ]
    if registered or initialized:
        conditions.append({"type": "Registered", "status": "True", "lastTransitionTime": _time(created)})
    if initialized:
        conditions.append({"type": "Initialized", "status": "True", "lastTransitionTime": _time(created)})
    if warm_condition is not None:
        status, reason, at = warm_condition
        conditions.append(
            {"type": "Warm", "status": status, "reason": reason, "lastTransitionTime": _time(at)}
        )
    metadata: dict[str, Any] = {
        "name": name,
        "resourceVersion": "3",
        "labels": meta_labels,
        "annotations": annotations or {},
        "creationTimestamp": _time(created),
    }
    if deleting:
        metadata["deletionTimestamp"] = _time(NOW)
    return NodeClaim.from_api(
        {
            "apiVersion": "jitnode.io/v1",
            "kind": "NodeClaim",
            "metadata": metadata,
            "spec": {
                "nodeClassRef": {"group": "jitnode.io", "kind": "EC2NodeClass", "name": "default"},
                "requirements": [
                    {"key": "intent", "operator": "In", "values": ["apps"]},
                    {"key": labels.NODEPOOL, "operator": "In", "values": ["default"]},
                    {"key": labels.CAPACITY_TYPE, "operator": "In", "values": ["on-demand"]},
                    {"key": labels.INSTANCE_TYPE, "operator": "In", "values": list(types)},
                ],
            },
            "status": {"conditions": conditions, "instanceID": "i-warm"},
        }
    )


def parked(state: str = STOPPED, **kwargs: Any) -> NodeClaim:
    return claim(warm_condition=("True", state, NOW - timedelta(minutes=1)), initialized=True, **kwargs)


def taken(at: datetime = NOW - timedelta(seconds=5), **kwargs: Any) -> NodeClaim:
    return claim(warm=False, warm_condition=("False", "Activated", at), **kwargs)


def instance(
    state: str = "running",
    tags: dict[str, str] | None = None,
    claim_name: str = "default-warm1",
    *,
    hibernation_configured: bool = False,
) -> Instance:
    return Instance(
        id="i-warm",
        instance_type="m5.xlarge",
        zone="us-east-1a",
        capacity_type="on-demand",
        state=state,
        launch_time=NOW - timedelta(hours=2),
        private_dns_name="ip-10-0-0-1.ec2.internal",
        image_id="ami-1",
        tags={labels.TAG_NODECLAIM: claim_name, **(tags or {})},
        hibernation_configured=hibernation_configured,
    )


def node(
    *, cordoned: bool = False, ready: bool = True, name: str = "ip-10-0-0-1.ec2.internal"
) -> dict[str, Any]:
    spec: dict[str, Any] = {"providerID": "aws:///us-east-1a/i-warm"}
    meta: dict[str, Any] = {"name": name, "labels": {}}
    if cordoned:
        spec["unschedulable"] = True
        spec["taints"] = [{"key": labels.WARM_TAINT, "effect": "NoSchedule"}]
        meta["labels"][labels.WARM_LABEL] = "true"
    return {
        "metadata": meta,
        "spec": spec,
        "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def bound_pod(name: str, *, daemon: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "default", "uid": f"u-{name}"}
    if daemon:
        meta["ownerReferences"] = [
            {"kind": "DaemonSet", "name": "ds", "apiVersion": "apps/v1", "uid": "d", "controller": True}
        ]
    return {
        "metadata": meta,
        "spec": {"nodeName": "ip-10-0-0-1.ec2.internal"},
        "status": {"phase": "Running"},
    }


# Representation -----------------------------------------------------------------------------


def test_a_claim_is_warm_by_label_parked_by_condition_and_taken_by_activation() -> None:
    filling = claim()
    assert is_warm(filling)
    assert parked_state(filling) is None
    assert held(filling)
    assert parked_state(parked(HIBERNATED)) == HIBERNATED
    at = NOW - timedelta(seconds=3)
    took = taken(at)
    assert not is_warm(took)
    assert activated_at(took) == at
    assert held(took), "taken and not yet Ready again: its stopped instance is expected"
    assert not held(taken(initialized=True)), "Ready again: an ordinary claim"
    assert not held(claim(warm=False))


def test_served_reads_the_taken_claims_pods_and_requests() -> None:
    requests = Resources(cpu=2000, memory=3 * 2**30, pods=2)
    took = taken(annotations={labels.WARM_SERVES_ANNOTATION: serves_annotation(["b", "a"], requests)})
    assert served(took) == (("a", "b"), requests)


@pytest.mark.parametrize(
    "raw", ["not json", "[1]", '{"pods": "a"}', '{"pods": [], "requests": {"cpu": "x"}}']
)
def test_an_unreadable_serves_annotation_serves_nothing(raw: str) -> None:
    assert served(taken(annotations={labels.WARM_SERVES_ANNOTATION: raw})) == ((), EMPTY)


# Sizing -------------------------------------------------------------------------------------


@given(size=st.integers(0, 20), extra=st.integers(0, 20), demand=st.integers(0, 100), bounded=st.booleans())
def test_desired_size_stays_within_size_and_max_size(
    size: int, extra: int, demand: int, bounded: bool
) -> None:
    spec = WarmPoolSpec(size=size, max_size=size + extra if bounded else None)
    wanted = desired_size(spec, demand)
    assert spec.size <= wanted <= spec.upper
    if spec.size <= demand <= spec.upper:
        assert wanted == demand


def test_recent_demand_counts_cold_launches_and_warm_starts_within_the_window() -> None:
    claims = [
        claim("cold-new", warm=False, created=NOW - timedelta(minutes=2)),
        claim("cold-old", warm=False, created=NOW - timedelta(minutes=30)),
        taken(NOW - timedelta(minutes=1), created=NOW - timedelta(hours=3)),
        claim("still-warm", created=NOW - timedelta(minutes=1)),
    ]
    assert recent_demand(claims, NOW, timedelta(minutes=10)) == 2


def test_warm_types_follow_the_mix_the_planner_chose_lately() -> None:
    requirements = warm_requirements(nodepool().requirements)
    chosen = warm_types(
        requirements,
        TYPES,
        recent_types=["m5.xlarge", "m5.xlarge", "m5.xlarge", "c5.xlarge"],
        existing_types=[],
        count=4,
        target=4,
    )
    assert sorted(t[0] for t in chosen) == ["c5.xlarge", "m5.xlarge", "m5.xlarge", "m5.xlarge"]
    # Each lists fallbacks at least as large, of the same architecture, cheapest first.
    m5 = next(t for t in chosen if t[0] == "m5.xlarge")
    assert "m5.2xlarge" in m5
    assert "m6g.xlarge" not in m5
    assert "c5.xlarge" not in m5  # half the memory
    # What the pool already holds counts toward the mix.
    refill = warm_types(
        requirements,
        TYPES,
        recent_types=["m5.xlarge", "m5.xlarge", "m5.xlarge", "c5.xlarge"],
        existing_types=["m5.xlarge", "m5.xlarge", "m5.xlarge"],
        count=1,
        target=4,
    )
    assert [t[0] for t in refill] == ["c5.xlarge"]


def test_without_recent_claims_the_cheapest_type_of_two_vcpus_or_more() -> None:
    requirements = warm_requirements(nodepool().requirements)
    chosen = warm_types(requirements, TYPES, recent_types=[], existing_types=[], count=2, target=2)
    # t3.micro and m5.large have less than 2 allocatable vCPUs; arm64's m6g.xlarge is cheaper
    # than c5.xlarge, and is the cheapest that qualifies.
    assert [t[0] for t in chosen] == ["m6g.xlarge", "m6g.xlarge"]


def test_warm_types_skip_unavailable_offerings_and_spot_only_pools() -> None:
    requirements = warm_requirements(nodepool().requirements)
    chosen = warm_types(
        requirements,
        TYPES,
        recent_types=["m5.xlarge"],
        existing_types=[],
        count=1,
        target=1,
        is_unavailable=lambda name, zone, capacity: name == "m5.xlarge",
    )
    assert chosen
    assert "m5.xlarge" not in chosen[0]
    spot_only = nodepool(requirements=[{"key": labels.CAPACITY_TYPE, "operator": "In", "values": ["spot"]}])
    assert (
        warm_types(
            warm_requirements(spot_only.requirements),
            TYPES,
            recent_types=[],
            existing_types=[],
            count=1,
            target=1,
        )
        == []
    )


# Steps --------------------------------------------------------------------------------------


def test_filling_cordon_then_evict_then_remove_the_node_then_stop_then_park() -> None:
    joined = claim(initialized=True)
    assert steps.next_warm_step(claim(), instance("pending"), None, [], STOPPED_SPEC) == steps.Wait(
        "launching"
    )
    assert steps.next_warm_step(claim(registered=True), instance(), node(), [], STOPPED_SPEC) == steps.Cordon(
        "ip-10-0-0-1.ec2.internal"
    )
    assert steps.next_warm_step(
        claim(registered=True), instance(), node(cordoned=True), [], STOPPED_SPEC
    ) == (steps.Wait("joining"))
    landed = bound_pod("web")
    step = steps.next_warm_step(
        joined, instance(), node(cordoned=True), [landed, bound_pod("agent", daemon=True)], STOPPED_SPEC
    )
    assert step == steps.Evict((landed,))
    assert steps.next_warm_step(
        joined, instance(), node(cordoned=True), [], STOPPED_SPEC
    ) == steps.DeleteNode("ip-10-0-0-1.ec2.internal")
    assert steps.next_warm_step(joined, instance(), None, [], STOPPED_SPEC) == steps.Stop("i-warm", False)
    hibernating = WarmPoolSpec(size=1, state=HIBERNATED)
    ready = instance(hibernation_configured=True)
    assert steps.next_warm_step(joined, ready, None, [], hibernating) == steps.Stop("i-warm", True)
    assert steps.next_warm_step(joined, instance("stopping"), None, [], STOPPED_SPEC) == steps.Wait(
        "stopping"
    )
    assert steps.next_warm_step(joined, instance("stopped"), None, [], STOPPED_SPEC) == steps.Park(STOPPED)
    stopped_ready = instance("stopped", hibernation_configured=True)
    assert steps.next_warm_step(joined, stopped_ready, None, [], hibernating) == steps.Park(HIBERNATED)
    # EC2 would not hibernate it: parked as what the stop answered, saying so.
    step = steps.next_warm_step(joined, stopped_ready, None, [], hibernating, stopped_as=STOPPED)
    assert step == steps.Park(STOPPED, "stopped, not hibernated: EC2 refused to hibernate it")
    assert steps.next_warm_step(parked(), instance("stopped"), None, [], STOPPED_SPEC) == steps.Wait("parked")


def test_a_running_warm_pool_parks_the_cordoned_node_as_it_is() -> None:
    spec = WarmPoolSpec(size=1, state=RUNNING)
    joined = claim(initialized=True)
    assert steps.next_warm_step(joined, instance(), node(cordoned=True), [], spec) == steps.Park(RUNNING)
    assert steps.next_warm_step(parked(RUNNING), instance(), node(cordoned=True), [], spec) == steps.Wait(
        "parked"
    )
    assert isinstance(steps.next_warm_step(parked(RUNNING), instance(), None, [], spec), steps.Retire)


def test_a_node_not_ready_yet_is_not_drained() -> None:
    step = steps.next_warm_step(
        claim(initialized=True), instance(), node(cordoned=True, ready=False), [], STOPPED_SPEC
    )
    assert step == steps.Wait("joining")


def test_a_taken_claim_is_started_only_from_stopped_and_its_node_uncordoned() -> None:
    assert steps.next_warm_step(taken(), instance("stopped"), None, [], STOPPED_SPEC) == steps.Start("i-warm")
    assert steps.next_warm_step(taken(), instance("stopping"), None, [], STOPPED_SPEC) == steps.Wait(
        "stopping; started once stopped"
    )
    assert steps.next_warm_step(taken(), instance("pending"), None, [], STOPPED_SPEC) == steps.Wait(
        "starting"
    )
    assert steps.next_warm_step(taken(), instance(), node(cordoned=True), [], STOPPED_SPEC) == steps.Uncordon(
        "ip-10-0-0-1.ec2.internal"
    )
    # Ready again: a later stop (by someone else) is not undone by the warm pool.
    assert steps.next_warm_step(taken(initialized=True), instance("stopped"), None, [], STOPPED_SPEC) == (
        steps.Wait("in use")
    )


def test_claims_being_deleted_or_not_warm_are_left_alone() -> None:
    assert isinstance(
        steps.next_warm_step(claim(deleting=True), instance(), node(), [], STOPPED_SPEC), steps.Wait
    )
    assert isinstance(
        steps.next_warm_step(claim(warm=False), instance(), node(), [], STOPPED_SPEC), steps.Wait
    )


# The lifecycle and leak collection --------------------------------------------------------


def test_the_lifecycle_waits_on_a_parked_instance_and_deletes_an_ordinary_stopped_one() -> None:
    timeout = timedelta(minutes=15)
    step = lifecycle.next_step(parked(), instance("stopped"), None, NOW, registration_timeout=timeout)
    assert isinstance(step, lifecycle.Wait)
    ordinary = claim(warm=False, initialized=True)
    step = lifecycle.next_step(ordinary, instance("stopped"), None, NOW, registration_timeout=timeout)
    assert isinstance(step, lifecycle.Delete)
    # A warm claim whose Node was removed while it stops is not a registration failure.
    step = lifecycle.next_step(claim(initialized=True), instance(), None, NOW, registration_timeout=timeout)
    assert isinstance(step, lifecycle.Wait)


def test_a_taken_claim_times_its_registration_from_when_it_was_taken() -> None:
    timeout = timedelta(minutes=15)
    old = NOW - timedelta(hours=2)  # launched long ago, taken 5 seconds ago
    step = lifecycle.next_step(taken(created=old), instance(), None, NOW, registration_timeout=timeout)
    assert step == lifecycle.Wait("waiting for the node to register")
    late = taken(NOW - timedelta(minutes=16), created=old)
    assert isinstance(
        lifecycle.next_step(late, instance(), None, NOW, registration_timeout=timeout), lifecycle.Delete
    )


def test_leak_collection_spares_owned_warm_instances_and_collects_orphans() -> None:
    owned = instance("stopped")
    orphan = Instance(**{**owned.__dict__, "id": "i-orphan", "tags": {labels.TAG_NODECLAIM: "gone"}})
    leaks = leaked_instances([owned, orphan], {"default-warm1"}, {"i-warm"}, NOW, timedelta(minutes=1))
    assert [i.id for i in leaks] == ["i-orphan"]


# What the planner is offered ----------------------------------------------------------------


def test_warm_claims_are_offered_fastest_first_with_their_types_room() -> None:
    overhead = {"default": Resources(cpu=200)}
    offered = warm_in_flight(
        [
            claim("filling", launched=None),
            parked(STOPPED, name="stopped"),
            parked(RUNNING, name="running"),
            parked(HIBERNATED, name="hibernated"),
            claim("cold", warm=False),
            parked(STOPPED, name="deleting", deleting=True),
        ],
        TYPES,
        overhead,
    )
    assert [f.name for f in offered] == ["running", "hibernated", "stopped", "filling"]
    assert offered[0].room.amount("cpu") == 3900 - 200
    assert offered[0].requirements.allowed_values(labels.ZONE) == frozenset({"us-east-1a"})
    assert offered[3].room.amount("cpu") == 3900 - 200  # the smallest type it may become
    assert all(not f.pods for f in offered)


def test_a_drifted_warm_claim_is_offered_to_no_plan() -> None:
    raw = parked(STOPPED, name="drifted").to_api()
    drift = {"type": "Drifted", "status": "True", "reason": "AMIDrift", "lastTransitionTime": _time(NOW)}
    raw["status"]["conditions"].append(drift)
    offered = warm_in_flight([NodeClaim.from_api(raw), parked(STOPPED, name="current")], TYPES, {})
    assert [f.name for f in offered] == ["current"]


def test_the_planner_covers_pods_with_a_warm_instance_before_it_buys() -> None:
    pool = nodepool(pool_labels={"intent": "apps"})
    demand = {p.uid: p for p in (pod(f"p{i}", selector={"intent": "apps"}) for i in range(2))}
    warm = warm_in_flight([parked(STOPPED, name="warm-a")], TYPES, {})
    result = plan(demand=demand, pools=[pool], types=CATALOGUE, in_flight=warm)
    assert result.claims == ()
    assert set(result.covered.values()) == {"warm-a"}
    taken_for = activations(result.covered, {"warm-a"}, demand)
    assert taken_for["warm-a"][0] == ("p0", "p1")
    assert taken_for["warm-a"][1].amount("cpu") == 2000


def test_the_planner_launches_cold_only_for_what_warm_instances_cannot_hold() -> None:
    pool = nodepool(pool_labels={"intent": "apps"})
    demand = {p.uid: p for p in (pod(f"p{i}", selector={"intent": "apps"}) for i in range(6))}
    warm = warm_in_flight([parked(STOPPED, name="warm-a")], TYPES, {})
    result = plan(demand=demand, pools=[pool], types=CATALOGUE, in_flight=warm)
    on_warm = [uid for uid, place in result.covered.items() if place == "warm-a"]
    assert len(on_warm) == 3  # 3.9 allocatable vCPUs hold three 1-vCPU pods
    assert sorted(uid for c in result.claims for uid in c.pods) == sorted(set(demand) - set(on_warm))


def test_a_warm_instance_in_another_zone_does_not_serve_a_pod_pinned_elsewhere() -> None:
    pool = nodepool(pool_labels={"intent": "apps"})
    pinned = pod("p0", selector={"intent": "apps", labels.ZONE: "us-east-1b"})
    warm = warm_in_flight([parked(STOPPED, name="warm-a")], TYPES, {})
    result = plan(demand={"p0": pinned}, pools=[pool], types=CATALOGUE, in_flight=warm)
    assert "warm-a" not in result.covered.values()
    assert len(result.claims) == 1


def test_in_flight_accounting_counts_a_taken_claims_pods_and_skips_warm_ones() -> None:
    requests = Resources(cpu=2000, memory=2**30, pods=2)
    took = taken(annotations={labels.WARM_SERVES_ANNOTATION: serves_annotation(["a", "b"], requests)})
    flights = in_flight_claims([took, parked()], TYPES, now=NOW)
    assert [f.name for f in flights] == [took.name]
    assert flights[0].pods == frozenset({"a", "b"})
    assert flights[0].room.amount("cpu") == 3900 - 2000


# Cost and limits ----------------------------------------------------------------------------


def test_cost_is_ebs_only_while_stopped_and_the_price_while_running() -> None:
    pool = [WarmInstanceCost(STOPPED, 0.192, 20.0), WarmInstanceCost(RUNNING, 0.17, 20.0)]
    now, running = hourly_cost(pool)
    assert now == pytest.approx(ebs_per_hour(20.0) + 0.17)
    assert running == pytest.approx(0.192 + 0.17)
    assert ebs_per_hour(20.0) == pytest.approx(20 * 0.08 / 730)
    assert format_dollars(0.0021917808) == "0.002192"
    assert format_dollars(0.0) == "0"
    assert format_dollars(0.34) == "0.34"


def test_a_warm_instance_is_added_only_within_the_pools_limits() -> None:
    limits = Resources(cpu=8000)
    assert within_limits(limits, Resources(cpu=4000), Resources(cpu=4000, memory=2**34))
    assert not within_limits(limits, Resources(cpu=4001), Resources(cpu=4000))
    assert within_limits(EMPTY, Resources(cpu=10**6), Resources(cpu=4000))


# The API ------------------------------------------------------------------------------------


def _pool(warm_pool: Any) -> dict[str, Any]:
    return {
        "apiVersion": "jitnode.io/v1",
        "kind": "NodePool",
        "metadata": {"name": "default"},
        "spec": {
            "template": {
                "spec": {"nodeClassRef": {"group": "jitnode.io", "kind": "EC2NodeClass", "name": "nc"}}
            },
            "warmPool": warm_pool,
        },
    }


def test_warm_pool_defaults() -> None:
    spec = NodePool.from_api(_pool({"size": 3})).warm_pool
    assert spec == WarmPoolSpec(size=3, max_size=None, state=STOPPED, reuse_on_scale_in=False)
    assert spec is not None
    assert spec.upper == 3
    assert NodePool.from_api(_pool({})).warm_pool is None


@pytest.mark.parametrize(
    ("warm_pool", "path"),
    [
        ({"size": 3, "maxSize": 2}, "spec.warmPool.maxSize"),
        ({"size": -1}, "spec.warmPool.size"),
        ({"size": "2"}, "spec.warmPool.size"),
        ({"state": "Frozen"}, "spec.warmPool.state"),
        ({"reuseOnScaleIn": "yes"}, "spec.warmPool.reuseOnScaleIn"),
        ({"minSize": 1}, "spec.warmPool.minSize"),
    ],
)
def test_bad_warm_pools_are_refused_naming_the_field(warm_pool: dict[str, Any], path: str) -> None:
    with pytest.raises(ValidationError) as raised:
        NodePool.from_api(_pool(warm_pool))
    assert path in str(raised.value)


def test_a_warm_node_is_cordoned_as_it_registers_and_uncordoned_when_taken() -> None:
    registered = {"metadata": {"name": "n"}, "spec": {"taints": [{"key": "team", "effect": "NoSchedule"}]}}
    patch = steps.with_cordon({"metadata": {"labels": {"intent": "apps"}}}, registered)
    assert patch["spec"]["unschedulable"] is True
    assert patch["spec"]["taints"] == [
        {"key": "team", "effect": "NoSchedule"},
        {"key": labels.WARM_TAINT, "effect": "NoSchedule"},
    ]
    assert patch["metadata"]["labels"] == {"intent": "apps", labels.WARM_LABEL: "true"}
    assert patch["metadata"]["annotations"][labels.DO_NOT_DISRUPT_ANNOTATION] == "true"
    cordoned = {"metadata": {"name": "n"}, "spec": patch["spec"]}
    assert steps.is_cordoned(cordoned)
    assert steps.has_warm_marks(cordoned)
    back = steps.uncordon(cordoned)
    assert back["spec"] == {"unschedulable": None, "taints": [{"key": "team", "effect": "NoSchedule"}]}
    assert back["metadata"]["labels"] == {labels.WARM_LABEL: None}
    # A user's own cordon is not the warm pool's to undo.
    assert not steps.has_warm_marks({"metadata": {"name": "n"}, "spec": {"unschedulable": True}})


def test_a_take_interrupted_before_its_label_went_is_parked_again() -> None:
    """The status says Activated but the label (the commit point) is still there: still warm."""
    half = claim(warm_condition=("False", "Activated", NOW), initialized=True)
    assert is_warm(half)
    assert activated_at(half) is not None
    assert steps.next_warm_step(half, instance("stopped"), None, [], STOPPED_SPEC) == steps.Park(STOPPED)
    step = lifecycle.next_step(
        half, instance("stopped"), None, NOW, registration_timeout=timedelta(minutes=15)
    )
    assert isinstance(step, lifecycle.Wait)


def test_expired_warm_claims_rotate_and_the_youngest_are_the_surplus() -> None:
    young = claim("young", created=NOW - timedelta(minutes=1))
    old = claim("old", created=NOW - timedelta(hours=800))  # expireAfter defaults to 720h
    middle = claim("middle", created=NOW - timedelta(hours=1))
    assert is_expired(old, NOW)
    assert not is_expired(young, NOW)
    assert [c.name for c in surplus_claims([young, old, middle], 2)] == ["young"]
    assert surplus_claims([young, old], 2) == []


def test_only_the_warm_pools_own_stops_are_no_interruption() -> None:
    """An EC2 state-change notice (stopping, stopped) for a warm or starting claim's instance is
    the warm pool's own doing; for any other claim it is an interruption."""
    assert stopped_on_purpose(parked().to_api())
    assert stopped_on_purpose(claim().to_api())
    assert stopped_on_purpose(taken().to_api())
    assert not stopped_on_purpose(taken(initialized=True).to_api())
    assert not stopped_on_purpose(claim(warm=False, initialized=True).to_api())
    assert not stopped_on_purpose({"kind": "NodeClaim", "spec": "broken"})
