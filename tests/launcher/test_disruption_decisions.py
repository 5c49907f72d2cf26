"""Pure disruption decisions: empty, expired and underutilized nodes, budgets and opt-outs."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from launcher.disruption.decisions import (
    NodeInfo,
    PodInfo,
    Snapshot,
    candidate_taints,
    decide,
    is_candidate,
    pod_fits,
)
from launcher.disruption.mark import EMPTY, EXPIRED, UNDERUTILIZED, Mark
from launcher.planner import InFlightClaim, PoolView
from shared import labels
from shared.api.nodepool import NodePool
from shared.demand import PodDemand
from shared.requirements import Requirements
from shared.resources import Resources
from shared.taints import Taint, Toleration
from tests.launcher.planner_fixtures import plain_instance_type

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
LONG_AGO = NOW - timedelta(hours=1)
GIB = 1024**3


def pool(
    name: str = "default",
    *,
    policy: str = "WhenEmptyOrUnderutilized",
    after: str = "30s",
    budgets: list[dict[str, Any]] | None = None,
    taints: list[dict[str, str]] | None = None,
    window: object = None,
) -> PoolView:
    disruption: dict[str, Any] = {"consolidationPolicy": policy, "consolidateAfter": after}
    if budgets is not None:
        disruption["budgets"] = budgets
    if window is not None:
        disruption["stabilizationWindow"] = window
    spec: dict[str, Any] = {
        "nodeClassRef": {"group": "jitnode.io", "kind": "EC2NodeClass", "name": "default"}
    }
    if taints:
        spec["taints"] = taints
    parsed = NodePool.from_api(
        {
            "apiVersion": "jitnode.io/v1",
            "kind": "NodePool",
            "metadata": {"name": name},
            "spec": {"template": {"spec": spec}, "disruption": disruption},
        }
    )
    return PoolView(parsed, parsed.requirements())


itype = plain_instance_type


TYPES = {
    t.name: t for t in (itype("small", 2, 4, 0.1), itype("big", 8, 32, 0.4), itype("huge", 32, 128, 1.6))
}


def demand(
    uid: str, cpu_m: int = 500, *, selector: dict[str, str] | None = None, tolerate: str = ""
) -> PodDemand:
    return PodDemand(
        uid=uid,
        namespace="default",
        name=uid,
        requests=Resources(cpu=cpu_m, memory=GIB // 2, pods=1),
        requirements=(Requirements.from_labels(selector or {}),),
        tolerations=(Toleration(key=tolerate, operator="Exists"),) if tolerate else (),
        priority=0,
        owner_kind="ReplicaSet",
        owner_name="rs",
        first_seen=0.0,
        reason="unschedulable",
    )


def node(
    name: str,
    *pod_list: PodInfo,
    pool_name: str | None = "default",
    cpu: int = 8,
    itype_name: str = "big",
    price: float | None = 0.4,
    **kwargs: Any,
) -> NodeInfo:
    used = Resources()
    for p in pod_list:
        used = used + p.demand.requests
    base = NodeInfo(
        name=name,
        labels={
            labels.NODEPOOL: pool_name or "",
            labels.INSTANCE_TYPE: itype_name,
            labels.ZONE: "us-east-1a",
        },
        taints=(),
        allocatable=Resources(cpu=cpu * 1000, memory=32 * GIB, pods=110),
        used=used,
        pods=pod_list,
        nodeclaim=f"claim-{name}" if pool_name else None,
        nodepool=pool_name,
        created=LONG_AGO,
        last_pod_event=LONG_AGO,
        expire_after=timedelta(hours=720),
        price=price,
        instance_type=itype_name,
    )
    return replace(base, **kwargs)


def pod(uid: str, cpu_m: int = 500, **kwargs: Any) -> PodInfo:
    return PodInfo(demand(uid, cpu_m), **kwargs)


def snap(*nodes: NodeInfo, pools: list[PoolView] | None = None, **kwargs: Any) -> Snapshot:
    views = pools or [pool()]
    return Snapshot(nodes=nodes, pools={v.name: v for v in views}, types=TYPES, now=NOW, **kwargs)


def chosen(s: Snapshot) -> dict[str, str]:
    return {a.node: a.reason for a in decide(s).actions}


# Empty nodes ------------------------------------------------------------------------------------


def test_empty_node_is_removed_after_consolidate_after() -> None:
    assert chosen(snap(node("a"))) == {"a": EMPTY}


def test_empty_node_waits_for_consolidate_after() -> None:
    recent = node("a", last_pod_event=NOW - timedelta(seconds=10))
    decisions = decide(snap(recent))
    assert decisions.actions == ()
    assert "consolidateAfter" in decisions.blocked["a"]


def test_consolidate_after_never_blocks_empty_removal() -> None:
    assert chosen(snap(node("a"), pools=[pool(after="Never")])) == {}


def test_empty_node_of_when_empty_pool_is_removed() -> None:
    assert chosen(snap(node("a"), pools=[pool(policy="WhenEmpty")])) == {"a": EMPTY}


def test_node_do_not_disrupt_blocks_empty_removal() -> None:
    decisions = decide(snap(node("a", do_not_disrupt=True)))
    assert decisions.actions == ()
    assert "do-not-disrupt" in decisions.blocked["a"]


def test_pending_pod_that_fits_keeps_empty_node() -> None:
    decisions = decide(snap(node("a"), pending=[demand("p1")]))
    assert decisions.actions == ()
    assert "pending pod" in decisions.blocked["a"]


def test_pending_pod_that_cannot_use_the_node_does_not_keep_it() -> None:
    elsewhere = demand("p1", selector={"zone-of": "elsewhere"})
    assert chosen(snap(node("a"), pending=[elsewhere])) == {"a": EMPTY}


def test_pending_pod_not_tolerating_node_taint_does_not_keep_it() -> None:
    tainted = node("a", taints=(Taint("dedicated", "NoSchedule", "gpu"),))
    assert chosen(snap(tainted, pending=[demand("p1")])) == {"a": EMPTY}
    assert chosen(snap(tainted, pending=[demand("p1", tolerate="dedicated")])) == {}


def test_node_launched_for_starting_pods_is_kept() -> None:
    launched = node("a", planned_pods=frozenset({"p1"}))
    assert chosen(snap(launched, starting=frozenset({"p1"}))) == {}
    assert chosen(snap(launched, starting=frozenset({"other"}))) == {"a": EMPTY}


def test_uninitialized_deleting_and_foreign_nodes_are_never_chosen() -> None:
    nodes = (
        node("a", initialized=False),
        node("b", deleting=True),
        node("c", pool_name=None),
        node("d", mark=Mark(EMPTY, NOW)),
    )
    assert chosen(snap(*nodes)) == {}


def test_budget_of_one_allows_one_empty_node_at_a_time() -> None:
    one = pool(budgets=[{"nodes": "1"}])
    assert len(chosen(snap(node("a"), node("b"), node("c"), pools=[one]))) == 1
    already = node("z", mark=Mark(EMPTY, NOW))
    assert chosen(snap(node("a"), node("b"), already, pools=[one])) == {}


def test_percentage_budget_rounds_up() -> None:
    ten = pool(budgets=[{"nodes": "10%"}])
    nodes = [node(f"n{i}") for i in range(11)]  # 10% of 11 is 1.1 -> 2
    assert len(chosen(snap(*nodes, pools=[ten]))) == 2


def test_budget_for_other_reason_does_not_limit_empty() -> None:
    budgets = [{"nodes": "0", "reasons": ["Underutilized"]}]
    assert len(chosen(snap(node("a"), node("b"), pools=[pool(budgets=budgets)]))) == 2


def test_budget_zero_blocks_empty() -> None:
    decisions = decide(snap(node("a"), pools=[pool(budgets=[{"nodes": "0"}])]))
    assert decisions.actions == ()
    assert "budget" in decisions.blocked["a"]


# Expiry --------------------------------------------------------------------------------------


def test_expired_node_whose_pods_fit_elsewhere_needs_no_replacement() -> None:
    old = node("old", pod("p1"), expire_after=timedelta(minutes=30))
    roomy = node("roomy", pod("q1"))
    actions = decide(snap(old, roomy, pools=[pool(policy="WhenEmpty")])).actions
    assert [(a.node, a.reason, a.replacements) for a in actions] == [("old", EXPIRED, ())]


def test_expired_node_whose_pods_do_not_fit_gets_replacement_first() -> None:
    old = node("old", pod("p1", 3000), pod("p2", 3000), expire_after=timedelta(minutes=30))
    full = node("full", pod("q1", 7500))
    actions = decide(snap(old, full, pools=[pool(policy="WhenEmpty")])).actions
    assert len(actions) == 1
    assert actions[0].reason == EXPIRED
    (replacement,) = actions[0].replacements
    assert sorted(replacement.pods) == ["p1", "p2"]
    assert replacement.instance_types[0] == "big"  # 6 cpu needs the 8-cpu type


def test_expiry_ignores_budgets_and_do_not_disrupt() -> None:
    old = node("old", pod("p1", do_not_disrupt=True), expire_after=timedelta(minutes=30), do_not_disrupt=True)
    actions = decide(snap(old, pools=[pool(policy="WhenEmpty", budgets=[{"nodes": "0"}])])).actions
    assert [(a.node, a.reason) for a in actions] == [("old", EXPIRED)]


def test_expiry_never_is_never_expired() -> None:
    assert chosen(snap(node("a", pod("p1"), expire_after=None), pools=[pool(policy="WhenEmpty")])) == {}


def test_expired_pods_do_not_count_on_room_another_expired_node_took() -> None:
    a = node("a", pod("p1", 6000), expire_after=timedelta(minutes=1))
    b = node("b", pod("p2", 6000), expire_after=timedelta(minutes=1))
    spare = node("spare", pod("s", 1500))  # room for one 6-cpu pod
    actions = {x.node: x for x in decide(snap(a, b, spare, pools=[pool(policy="WhenEmpty")])).actions}
    assert set(actions) == {"a", "b"}
    assert sum(len(x.replacements) for x in actions.values()) == 1


# Consolidation ---------------------------------------------------------------------------------


def test_underutilized_node_whose_pods_fit_elsewhere_is_deleted() -> None:
    small = node("small", pod("p1"))
    big = node("big", pod("q1"), pod("q2"))
    actions = decide(snap(small, big)).actions
    assert [(a.node, a.reason, a.replacements) for a in actions] == [("small", UNDERUTILIZED, ())]


def test_only_one_consolidation_per_pool_at_a_time() -> None:
    nodes = [node(f"n{i}", pod(f"p{i}")) for i in range(4)]
    assert len(chosen(snap(*nodes))) == 1
    busy = node("busy", pod("x"), mark=Mark(UNDERUTILIZED, NOW))
    decisions = decide(snap(*nodes, busy))
    assert decisions.actions == ()
    assert "in progress" in decisions.blocked["n0"]


def test_consolidation_respects_destination_requirements() -> None:
    picky = PodInfo(demand("p1", selector={labels.NODEPOOL: "gpu"}))
    a = node("a", picky)
    b = node("b", pod("q1"))
    decisions = decide(snap(a, b, pools=[pool()]))
    # a's pod cannot go to b (wrong pool label); b's pod can go to a.
    assert [x.node for x in decisions.actions] == ["b"]


def test_consolidation_respects_destination_taints() -> None:
    a = node("a", pod("p1"), price=None)  # no price: no replacement, deletion only
    b = node("b", pod("q1"), taints=(Taint("dedicated", "NoSchedule", "x"),))
    decisions = decide(snap(a, b))
    assert [(x.node, x.replacements) for x in decisions.actions] == [("b", ())]
    assert "a" in decisions.blocked


def test_consolidation_does_not_move_pods_onto_disrupting_nodes() -> None:
    a = node("a", pod("p1"))
    leaving = node("b", pod("q1"), mark=Mark(EXPIRED, NOW))
    decisions = decide(snap(a, leaving))
    assert decisions.actions == ()


def test_pending_pods_take_room_before_moved_pods() -> None:
    a = node("a", pod("p1", 4000), cpu=8)
    b = node("b", pod("q1", 4000), pod("q2", 3000), cpu=8)  # 1 cpu free
    pending_pod = demand("pending", 3500, selector={"nowhere": "x"})
    # The pending pod fits nowhere, so a's 4 cpu cannot go to b's 1 free cpu anyway.
    assert [x.node for x in decide(snap(a, b, pending=[pending_pod])).actions if not x.replacements] == []
    c = node("c", pod("r1", 500), cpu=8)  # 7.5 free
    big_pending = demand(
        "pending", 7000, selector={labels.NODEPOOL: "default", "kubernetes.io/hostname": "c"}
    )
    decisions = decide(snap(a, c, pending=[big_pending]))
    assert "a" not in {x.node for x in decisions.actions if not x.replacements}


def test_do_not_disrupt_pod_blocks_consolidation() -> None:
    a = node("a", pod("p1", do_not_disrupt=True))
    b = node("b", pod("q1"), pod("q2"))
    decisions = decide(snap(a, b))
    assert "a" not in chosen(snap(a, b))
    assert "do-not-disrupt" in decisions.blocked["a"]


def test_pods_with_inter_pod_constraints_block_consolidation_but_not_expiry() -> None:
    spread = "a DoNotSchedule topology spread on kubernetes.io/hostname"
    a = node("a", pod("p1", inter_pod_constraint=spread))
    b = node("b", pod("q1"), pod("q2"))
    decisions = decide(snap(a, b))
    assert "a" not in chosen(snap(a, b))
    assert spread in decisions.blocked["a"]
    # The same node without the constraint goes: the constraint is what kept it.
    assert chosen(snap(node("a", pod("p1")), b)) == {"a": UNDERUTILIZED}
    old = replace(a, created=NOW - timedelta(days=40), expire_after=timedelta(days=30))
    assert chosen(snap(old, b)) == {"a": EXPIRED}


def test_an_expired_nodes_constrained_pods_get_replacements_even_where_room_exists() -> None:
    expire: dict[str, Any] = {"created": NOW - timedelta(days=40), "expire_after": timedelta(days=30)}
    roomy = node("roomy", pod("r1"), do_not_disrupt=True)  # stays, with room for both pods
    plain = node("old", pod("p1"), pod("p2"), **expire)
    (action,) = [a for a in decide(snap(plain, roomy)).actions if a.node == "old"]
    assert action.replacements == ()  # both fit on roomy
    constrained = node("old", pod("p1", inter_pod_constraint="required podAntiAffinity"), pod("p2"), **expire)
    (action,) = [a for a in decide(snap(constrained, roomy)).actions if a.node == "old"]
    assert [list(r.pods) for r in action.replacements] == [["p1"]]  # p2 still moves to roomy


def test_not_ready_pods_block_consolidation() -> None:
    a = node("a", pod("p1", ready=False))
    b = node("b", pod("q1"), pod("q2"))
    decisions = decide(snap(a, b))
    assert "a" not in chosen(snap(a, b))
    assert "not Ready" in decisions.blocked["a"]


def test_in_flight_claims_block_consolidation() -> None:
    flight = InFlightClaim("c", "default", Requirements(), (), Resources(cpu=1000))
    a = node("a", pod("p1"))
    b = node("b", pod("q1"), pod("q2"))
    assert chosen(snap(a, b, in_flight=[flight])) == {}


def test_when_empty_pool_is_not_consolidated() -> None:
    a = node("a", pod("p1"))
    b = node("b", pod("q1"))
    assert chosen(snap(a, b, pools=[pool(policy="WhenEmpty")])) == {}


def test_underutilized_budget_zero_blocks_consolidation_only() -> None:
    budgets = [{"nodes": "0", "reasons": ["Underutilized"]}]
    decisions = decide(
        snap(node("a", pod("p1")), node("b", pod("q1")), node("e"), pools=[pool(budgets=budgets)])
    )
    assert {x.node: x.reason for x in decisions.actions} == {"e": EMPTY}


def test_lone_node_is_replaced_by_a_cheaper_type() -> None:
    lone = node("lone", pod("p1", 1000), cpu=32, itype_name="huge", price=1.6)
    (action,) = decide(snap(lone)).actions
    assert action.reason == UNDERUTILIZED
    (replacement,) = action.replacements
    assert replacement.instance_types[0] == "small"
    assert "huge" not in replacement.instance_types
    assert replacement.price < 1.6


def test_no_replacement_when_nothing_is_cheaper() -> None:
    lone = node("lone", pod("p1", 1000), cpu=2, itype_name="small", price=0.1)
    decisions = decide(snap(lone))
    assert decisions.actions == ()
    assert "cheaper" in decisions.blocked["lone"]


def test_no_replacement_when_price_unknown() -> None:
    decisions = decide(snap(node("lone", pod("p1"), price=None)))
    assert decisions.actions == ()


# Properties ------------------------------------------------------------------------------------

node_specs = st.lists(
    st.tuples(
        st.integers(0, 3),  # pods
        st.booleans(),  # node do-not-disrupt
        st.booleans(),  # a pod do-not-disrupt
        st.booleans(),  # already disrupting
        st.booleans(),  # expired
    ),
    min_size=1,
    max_size=8,
)


def _nodes_from(specs: list[tuple[int, bool, bool, bool, bool]]) -> list[NodeInfo]:
    out = []
    for i, (count, dnd, pod_dnd, disrupting, is_expired) in enumerate(specs):
        pods = tuple(pod(f"n{i}p{j}", 700, do_not_disrupt=pod_dnd and j == 0) for j in range(count))
        out.append(
            node(
                f"n{i}",
                *pods,
                do_not_disrupt=dnd,
                mark=Mark(EMPTY, NOW) if disrupting else None,
                expire_after=timedelta(minutes=1) if is_expired else timedelta(hours=720),
            )
        )
    return out


@settings(max_examples=150, deadline=None)
@given(specs=node_specs, budget=st.integers(0, 4), pending=st.integers(0, 2))
def test_properties_budgets_opt_outs_and_pending(
    specs: list[tuple[int, bool, bool, bool, bool]], budget: int, pending: int
) -> None:
    nodes = _nodes_from(specs)
    pending_pods = [demand(f"pending{i}", 600) for i in range(pending)]
    s = snap(*nodes, pools=[pool(budgets=[{"nodes": str(budget)}])], pending=pending_pods)
    actions = decide(s).actions
    by_name = {n.name: n for n in nodes}
    assert len({a.node for a in actions}) == len(actions), "a node chosen twice"
    voluntary = [a for a in actions if a.reason != EXPIRED]
    already = sum(1 for n in nodes if n.disrupting)
    # Voluntary disruption never takes the pool past its budget, counting nodes already disrupting.
    assert already + len(voluntary) <= budget or not voluntary
    for action in actions:
        chosen_node = by_name[action.node]
        assert not chosen_node.disrupting
        if action.reason != EXPIRED:
            assert not chosen_node.do_not_disrupt
            assert not any(p.do_not_disrupt for p in chosen_node.pods)
            # a pending pod that could use the node keeps it
            assert not any(p.requests.fits_in(chosen_node.free) for p in pending_pods)
    assert sum(1 for a in actions if a.reason == UNDERUTILIZED) <= 1


# Disruption-candidate taint ---------------------------------------------------------------------

WINDOW = timedelta(minutes=10)


def candidate_taint() -> Taint:
    return Taint(key=labels.DISRUPTION_CANDIDATE_TAINT, value="", effect="PreferNoSchedule")


def test_nodes_expiring_within_the_window_become_candidates_and_stop_being_ones() -> None:
    soon = node("soon", created=NOW - timedelta(hours=1), expire_after=timedelta(hours=1, minutes=5))
    later = node("later", created=NOW, expire_after=timedelta(hours=2))
    stale = node("stale", taints=(candidate_taint(),))  # 720h left: its pool's expireAfter grew
    kept = node("kept", taints=(candidate_taint(),), created=NOW, expire_after=timedelta(minutes=1))
    never = node("never", expire_after=None)
    foreign = node("foreign", pool_name=None, expire_after=timedelta(seconds=1))
    going = node("going", deleting=True, created=NOW, expire_after=timedelta(minutes=1))
    changes = candidate_taints([soon, later, stale, kept, never, foreign, going], NOW, WINDOW)
    assert changes.add == ("soon",)
    assert changes.remove == ("stale",)
    # The next look: when "later" enters the window (stale's is 720h away).
    assert changes.next_at == NOW + timedelta(hours=2) - WINDOW
    assert is_candidate(soon, NOW, WINDOW)
    assert not is_candidate(later, NOW, WINDOW)
    assert is_candidate(later, NOW + timedelta(hours=2) - WINDOW, WINDOW)
    assert not is_candidate(foreign, NOW, WINDOW)


def test_candidate_taint_changes_nothing_the_simulation_places() -> None:
    """PreferNoSchedule is a preference: consolidation may still move pods onto such a node."""
    tainted = node("target", taints=(candidate_taint(),))
    assert pod_fits(demand("p"), tainted, tainted.free)
