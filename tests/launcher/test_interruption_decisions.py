"""Pure interruption decisions: what each event asks for, and the replacements an interrupted node gets."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from launcher.disruption.mark import INTERRUPTED, Mark
from launcher.interruption.decisions import (
    Kind,
    Policy,
    RebalancePolicy,
    Response,
    offering_of,
    replacement_actions,
    respond,
)
from launcher.interruption.messages import (
    INSTANCE_STATES,
    Ignored,
    RebalanceRecommendation,
    ScheduledChange,
    SpotInterruption,
    StateChange,
)
from launcher.model import InstanceType, Offering
from launcher.planner.offerings import OfferingKey
from shared import labels
from shared.resources import Resources
from tests.launcher.test_disruption_decisions import GIB, NOW, demand, node, pod, snap

POLICY = Policy(min_drain=timedelta(seconds=30))
SPOT_NOW = SpotInterruption("e1", NOW, "i-1", "terminate")


def test_spot_warning_replaces_by_the_reclaim_time_and_marks_the_offering() -> None:
    response = respond(SPOT_NOW, POLICY, NOW)
    assert response.kind is Kind.REPLACE
    assert response.deadline == NOW + timedelta(minutes=2)
    assert response.offering_unavailable
    assert response.event == "SpotInterrupted"


def test_a_late_notice_still_gets_the_minimum_drain() -> None:
    late = replace(SPOT_NOW, time=NOW - timedelta(minutes=5))
    assert respond(late, POLICY, NOW).deadline == NOW + timedelta(seconds=30)


@pytest.mark.parametrize(
    ("policy", "kind"), [(RebalancePolicy.ACT, Kind.REPLACE), (RebalancePolicy.REPORT, Kind.REPORT)]
)
def test_rebalance_acts_or_reports_as_configured(policy: RebalancePolicy, kind: Kind) -> None:
    response = respond(RebalanceRecommendation("e", NOW, "i-1"), Policy(rebalance=policy), NOW)
    assert response.kind is kind
    assert response.deadline is None  # advisory: no deadline, replacements Ready first
    assert not response.offering_unavailable


def test_scheduled_change_drains_by_its_start() -> None:
    start = NOW + timedelta(days=3)
    event = ScheduledChange("e", NOW, ("i-1", "i-2"), "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED", start)
    response = respond(event, POLICY, NOW)
    assert response.kind is Kind.REPLACE
    assert response.deadline == start
    assert "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED" in response.message
    unknown_start = respond(replace(event, start_time=None), POLICY, NOW)
    assert unknown_start.deadline == NOW + POLICY.min_drain


@pytest.mark.parametrize("state", INSTANCE_STATES)
def test_state_changes(state: str) -> None:
    response = respond(StateChange("e", NOW, "i-1", state), POLICY, NOW)
    if state in ("pending", "running"):
        assert response.kind is Kind.IGNORE
    else:
        assert response.kind is Kind.REPLACE
        assert response.deadline == NOW + POLICY.min_drain
        assert response.event == ("InstanceStopping" if state.startswith("stop") else "InstanceTerminating")
        assert not response.offering_unavailable


def test_ignored_events_are_ignored() -> None:
    assert respond(Ignored("e", NOW, "other"), POLICY, NOW).kind is Kind.IGNORE


def test_offering_of_reads_the_well_known_labels() -> None:
    node_labels = {labels.INSTANCE_TYPE: "m5.xlarge", labels.ZONE: "us-east-1b", labels.CAPACITY_TYPE: "spot"}
    assert offering_of(node_labels) == OfferingKey("m5.xlarge", "us-east-1b", "spot")
    for missing in node_labels:
        assert offering_of({k: v for k, v in node_labels.items() if k != missing}) is None


# Replacements ------------------------------------------------------------------------------------

RESPONSE = Response(Kind.REPLACE, "SpotInterrupted", "reclaimed", NOW + timedelta(minutes=2), True)


def spot_type(name: str, cpu: int, price: float, zone: str) -> InstanceType:
    """A type sold only as Spot, in one zone."""
    resources = Resources(cpu=cpu * 1000, memory=cpu * 4 * GIB, pods=110)
    return InstanceType(
        name=name,
        labels={labels.INSTANCE_TYPE: name, labels.ARCH: "amd64", labels.OS: "linux"},
        capacity=resources,
        allocatable=resources,
        offerings=(Offering(zone, "spot", price),),
    )


def test_pods_that_fit_on_other_nodes_need_no_replacement() -> None:
    s = snap(node("a", pod("p1"), pod("p2")), node("b", pod("p3")))
    (action,) = replacement_actions([(s.nodes[0], RESPONSE)], s)
    assert (action.node, action.nodeclaim, action.nodepool, action.reason) == (
        "a",
        "claim-a",
        "default",
        INTERRUPTED,
    )
    assert action.replacements == ()
    assert "SpotInterrupted: reclaimed" in action.message


def test_pods_with_nowhere_to_go_get_replacements_and_do_not_disrupt_does_not_stop_it() -> None:
    s = snap(node("a", pod("p1", 3000), pod("p2", 3000, do_not_disrupt=True)), node("b", pod("p3", 7000)))
    (action,) = replacement_actions([(s.nodes[0], RESPONSE)], s)
    assert sorted(uid for claim in action.replacements for uid in claim.pods) == ["p1", "p2"]


def test_pending_pods_take_free_room_first() -> None:
    s = snap(node("a", pod("p1", 2000)), node("b"), pending=[demand("waiting", 7000)])
    (action,) = replacement_actions([(s.nodes[0], RESPONSE)], s)
    assert [c.pods for c in action.replacements] == [("p1",)]


def test_nodes_interrupted_together_never_count_on_the_same_room_nor_on_each_other() -> None:
    s = snap(node("a", pod("p1", 5000)), node("b", pod("p2", 5000)), node("c", pod("p3", 2000)))
    actions = replacement_actions([(s.nodes[0], RESPONSE), (s.nodes[1], RESPONSE)], s)
    # c has 6 CPUs free: one of the two 5-CPU pods fits there, the other needs a replacement.
    moved = sorted(uid for a in actions for c in a.replacements for uid in c.pods)
    assert len(moved) == 1
    assert moved[0] in {"p1", "p2"}


def test_unready_cordoned_and_disrupting_nodes_are_no_destination() -> None:
    mark = Mark("Expired", NOW)
    for other in (
        node("b", schedulable=False),
        node("b", initialized=False),
        node("b", mark=mark),
        node("b", deleting=True),
    ):
        s = snap(node("a", pod("p1")), other)
        (action,) = replacement_actions([(s.nodes[0], RESPONSE)], s)
        assert [c.pods for c in action.replacements] == [("p1",)], other


def test_pods_with_inter_pod_constraints_get_their_own_replacement() -> None:
    s = snap(node("a", pod("p1", inter_pod_constraint="pod anti-affinity")), node("b"))
    (action,) = replacement_actions([(s.nodes[0], RESPONSE)], s)
    assert [c.pods for c in action.replacements] == [("p1",)]


def test_a_node_already_being_disrupted_gets_no_second_set_of_replacements() -> None:
    s = snap(node("a", pod("p1", 7000), mark=Mark("Underutilized", NOW, ("r1",))))
    (action,) = replacement_actions([(s.nodes[0], RESPONSE)], s)
    assert action.replacements == ()


def test_replacements_avoid_the_unavailable_offerings() -> None:
    types = {
        t.name: t
        for t in (spot_type("cheap", 8, 0.05, "us-east-1a"), spot_type("dear", 8, 0.2, "us-east-1b"))
    }
    s = replace(snap(node("a", pod("p1", 3000), itype_name="cheap")), types=types)
    (free_choice,) = replacement_actions([(s.nodes[0], RESPONSE)], s)
    assert free_choice.replacements[0].instance_types[0] == "cheap"
    gone = {OfferingKey("cheap", "us-east-1a", "spot")}
    (action,) = replacement_actions([(s.nodes[0], RESPONSE)], s, gone)
    (claim,) = action.replacements
    assert claim.instance_types == ("dear",)
    assert claim.price == pytest.approx(0.2)
    assert claim.zones == ("us-east-1b",)


def test_pods_no_pool_can_serve_are_said_to_have_no_replacement() -> None:
    s = snap(node("a", pod("p1", 64000)))
    (action,) = replacement_actions([(s.nodes[0], RESPONSE)], s)
    assert action.replacements == ()
    assert "1 pods have no replacement" in action.message


@given(
    st.lists(st.lists(st.integers(100, 9000), max_size=4), min_size=1, max_size=5),
    st.sets(st.integers(0, 4), min_size=1),
)
@settings(max_examples=60, deadline=None)
def test_each_moving_pod_is_placed_once_at_most(node_pods: list[list[int]], picked: set[int]) -> None:
    nodes = [
        node(f"n{i}", *(pod(f"n{i}-p{j}", cpu) for j, cpu in enumerate(cpus)))
        for i, cpus in enumerate(node_pods)
    ]
    s = snap(*nodes)
    targets = [(n, RESPONSE) for i, n in enumerate(nodes) if i in picked]
    actions = replacement_actions(targets, s)
    assert [a.node for a in actions] == [n.name for n, _ in targets]
    planned = [uid for a in actions for c in a.replacements for uid in c.pods]
    assert len(planned) == len(set(planned)), "a pod planned twice"
    moving = {p.uid for n, _ in targets for p in n.pods}
    assert set(planned) <= moving, "a replacement for a pod that does not move"
    # Room on the nodes that stay is never over-committed by the pods that fit there.
    staying_free = sum(n.free.amount("cpu") for i, n in enumerate(nodes) if i not in picked)
    placed_cpu = sum(
        p.demand.requests.amount("cpu") for n, _ in targets for p in n.pods if p.uid not in planned
    )
    assert placed_cpu <= staying_free
