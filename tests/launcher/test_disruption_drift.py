"""Drift: which check fires (pure), the hashes stamped on claims, and drifted nodes in ``decide``."""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from launcher.disruption.decisions import decide
from launcher.disruption.drift import (
    AMI_DRIFT,
    HASH_VERSION,
    NODECLASS_DRIFT,
    NODECLASS_HASH_ANNOTATION,
    NODECLASS_HASH_VERSION_ANNOTATION,
    NODEPOOL_DRIFTED,
    NODEPOOL_HASH_ANNOTATION,
    NODEPOOL_HASH_VERSION_ANNOTATION,
    REQUIREMENTS_DRIFTED,
    SECURITY_GROUP_DRIFT,
    SUBNET_DRIFT,
    ClaimFacts,
    Wanted,
    drifted,
    nodeclass_hash,
    nodeclass_hash_annotations,
    nodepool_hash,
    nodepool_hash_annotations,
    restamp,
)
from launcher.disruption.mark import DRIFTED, EMPTY, EXPIRED, Mark
from launcher.provisioning.claims import nodeclaim_body
from shared import labels
from shared.api.nodeclass import EC2NodeClass
from shared.api.nodepool import NodePool
from shared.requirements import Requirements
from shared.resources import Resources
from tests.launcher.test_disruption_decisions import NOW, node, pod, pool, snap

POOL_SPEC: dict[str, Any] = {
    "template": {
        "metadata": {"labels": {"intent": "apps"}},
        "spec": {
            "nodeClassRef": {"group": "jitnode.io", "kind": "EC2NodeClass", "name": "default"},
            "requirements": [{"key": labels.CAPACITY_TYPE, "operator": "In", "values": ["on-demand"]}],
            "expireAfter": "720h",
        },
    },
    "disruption": {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "30s"},
}
CLASS_SPEC: dict[str, Any] = {
    "amiSelectorTerms": [{"alias": "al2023@latest"}],
    "subnetSelectorTerms": [{"tags": {"team": "a"}}],
    "securityGroupSelectorTerms": [{"tags": {"team": "a"}}],
    "role": "node-role",
}


def nodepool(spec: dict[str, Any] | None = None) -> NodePool:
    body = {"apiVersion": "jitnode.io/v1", "kind": "NodePool", "metadata": {"name": "default"}}
    return NodePool.from_api({**body, "spec": spec or POOL_SPEC})


def nodeclass(spec: dict[str, Any] | None = None) -> EC2NodeClass:
    body = {"apiVersion": "jitnode.io/v1", "kind": "EC2NodeClass", "metadata": {"name": "default"}}
    return EC2NodeClass.from_api({**body, "spec": spec or CLASS_SPEC})


def edited(spec: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(spec)
    target = out
    for key in path[:-1]:
        target = target.setdefault(key, {})
    target[path[-1]] = value
    return out


# Hashes -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("template", "metadata", "labels"), {"intent": "batch"}),
        (("template", "metadata", "annotations"), {"team": "b"}),
        (("template", "spec", "taints"), [{"key": "gpu", "effect": "NoSchedule"}]),
        (("template", "spec", "startupTaints"), [{"key": "boot", "effect": "NoSchedule"}]),
        (("template", "spec", "nodeClassRef", "name"), "other"),
    ],
)
def test_nodepool_hash_changes_with_the_template(path: tuple[str, ...], value: Any) -> None:
    assert nodepool_hash(nodepool(edited(POOL_SPEC, path, value))) != nodepool_hash(nodepool())


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("template", "spec", "requirements"), []),  # checked on its own (RequirementsDrifted)
        (("template", "spec", "expireAfter"), "24h"),  # behaviour, not what the node is
        (("template", "spec", "terminationGracePeriod"), "1h"),
        (("disruption", "consolidationPolicy"), "WhenEmptyOrUnderutilized"),
        (("limits",), {"cpu": "100"}),
        (("weight",), 10),
    ],
)
def test_nodepool_hash_ignores_what_does_not_make_a_node_drift(path: tuple[str, ...], value: Any) -> None:
    assert nodepool_hash(nodepool(edited(POOL_SPEC, path, value))) == nodepool_hash(nodepool())


def test_nodeclass_hash_changes_with_the_spec_but_not_the_selectors() -> None:
    base = nodeclass_hash(nodeclass())
    assert nodeclass_hash(nodeclass({**CLASS_SPEC, "role": "other-role"})) != base
    assert nodeclass_hash(nodeclass({**CLASS_SPEC, "tags": {"cost": "x"}})) != base
    assert nodeclass_hash(nodeclass({**CLASS_SPEC, "userData": "echo hi"})) != base
    moved = {
        **CLASS_SPEC,
        "amiSelectorTerms": [{"alias": "al2023@v20260101"}],
        "subnetSelectorTerms": [{"id": "subnet-1"}],
        "securityGroupSelectorTerms": [{"id": "sg-1"}],
    }
    assert nodeclass_hash(nodeclass(moved)) == base  # AMI/subnet/SG drift look at what they resolve to


def test_hash_is_stable_across_key_order() -> None:
    reordered = {"disruption": POOL_SPEC["disruption"], "template": POOL_SPEC["template"]}
    assert nodepool_hash(nodepool(reordered)) == nodepool_hash(nodepool())


def test_new_claims_carry_the_pool_hash() -> None:
    body = nodeclaim_body("default-abcde", nodepool(), [], Resources(cpu=1000), ["default/p"])
    annotations = body["metadata"]["annotations"]
    assert annotations[NODEPOOL_HASH_ANNOTATION] == nodepool_hash(nodepool())
    assert annotations[NODEPOOL_HASH_VERSION_ANNOTATION] == HASH_VERSION


# Drift checks --------------------------------------------------------------------------------------

STAMPED = {**nodepool_hash_annotations(nodepool()), **nodeclass_hash_annotations(nodeclass())}
LABELS = {labels.CAPACITY_TYPE: "on-demand", "intent": "apps", labels.NODEPOOL: "default"}
FACTS = ClaimFacts(STAMPED, LABELS, "ami-old", "subnet-a", ("sg-a",))
WANTED = Wanted(
    nodepool_hash=nodepool_hash(nodepool()),
    requirements=nodepool().requirements(),
    amis=frozenset({"ami-old", "ami-arm"}),
    subnets=frozenset({"subnet-a", "subnet-b"}),
    security_groups=frozenset({"sg-a"}),
    nodeclass_hash=nodeclass_hash(nodeclass()),
)


def test_nothing_changed_is_no_drift() -> None:
    assert drifted(FACTS, WANTED) is None


def test_ami_behind_the_alias_moved_on() -> None:
    found = drifted(FACTS, replace(WANTED, amis=frozenset({"ami-new", "ami-arm"})))
    assert found is not None
    assert found.reason == AMI_DRIFT
    assert "ami-old" in found.message
    assert "ami-new" in found.message


def test_subnet_no_longer_selected() -> None:
    found = drifted(FACTS, replace(WANTED, subnets=frozenset({"subnet-b"})))
    assert found is not None
    assert found.reason == SUBNET_DRIFT
    assert "subnet-a" in found.message


def test_security_groups_no_longer_selected() -> None:
    found = drifted(FACTS, replace(WANTED, security_groups=frozenset({"sg-b"})))
    assert found is not None
    assert found.reason == SECURITY_GROUP_DRIFT
    assert "sg-b" in found.message
    extra = drifted(FACTS, replace(WANTED, security_groups=frozenset({"sg-a", "sg-b"})))
    assert extra is not None
    assert extra.reason == SECURITY_GROUP_DRIFT


def test_pool_template_hash_changed() -> None:
    other = nodepool(edited(POOL_SPEC, ("template", "metadata", "labels"), {"intent": "batch"}))
    found = drifted(FACTS, replace(WANTED, nodepool_hash=nodepool_hash(other)))
    assert found is not None
    assert found.reason == NODEPOOL_DRIFTED


def test_nodeclass_hash_changed() -> None:
    found = drifted(
        FACTS, replace(WANTED, nodeclass_hash=nodeclass_hash(nodeclass({**CLASS_SPEC, "role": "r2"})))
    )
    assert found is not None
    assert found.reason == NODECLASS_DRIFT


def test_requirements_the_node_no_longer_satisfies() -> None:
    spot_only = Requirements.from_api([{"key": labels.CAPACITY_TYPE, "operator": "In", "values": ["spot"]}])
    found = drifted(FACTS, replace(WANTED, requirements=spot_only))
    assert found is not None
    assert found.reason == REQUIREMENTS_DRIFTED
    assert labels.CAPACITY_TYPE in found.message
    assert "on-demand" in found.message


def test_undefined_well_known_labels_are_not_drift_but_custom_ones_are() -> None:
    zone = Requirements.from_api([{"key": labels.ZONE, "operator": "In", "values": ["us-east-1a"]}])
    assert drifted(FACTS, replace(WANTED, requirements=zone)) is None  # node lacks the zone label
    team = Requirements.from_api([{"key": "team", "operator": "In", "values": ["a"]}])
    found = drifted(FACTS, replace(WANTED, requirements=team))
    assert found is not None
    assert found.reason == REQUIREMENTS_DRIFTED
    assert "absent" in found.message


def test_unknown_parts_are_not_drift() -> None:
    unknown = Wanted()
    assert drifted(ClaimFacts({}, {}, "ami-x", "subnet-x", ("sg-x",)), unknown) is None
    no_instance = ClaimFacts(STAMPED, LABELS)
    assert drifted(no_instance, replace(WANTED, amis=frozenset({"ami-new"}))) is None


def test_hashes_of_another_version_are_not_compared_but_restamped() -> None:
    old = {
        NODEPOOL_HASH_ANNOTATION: "0000",
        NODEPOOL_HASH_VERSION_ANNOTATION: "v0",
        NODECLASS_HASH_ANNOTATION: "1111",
        NODECLASS_HASH_VERSION_ANNOTATION: "v0",
    }
    assert drifted(replace(FACTS, annotations=old), WANTED) is None
    assert restamp(old, WANTED) == {
        NODEPOOL_HASH_ANNOTATION: WANTED.nodepool_hash,
        NODEPOOL_HASH_VERSION_ANNOTATION: HASH_VERSION,
        NODECLASS_HASH_ANNOTATION: WANTED.nodeclass_hash,
        NODECLASS_HASH_VERSION_ANNOTATION: HASH_VERSION,
    }
    assert restamp(STAMPED, WANTED) == {}
    assert restamp({}, Wanted()) == {}  # nothing to stamp with


def test_first_check_in_karpenters_order_wins() -> None:
    everything = Wanted(
        nodepool_hash="other",
        requirements=Requirements.from_api([{"key": "team", "operator": "In", "values": ["a"]}]),
        amis=frozenset({"ami-new"}),
        subnets=frozenset({"subnet-z"}),
        security_groups=frozenset({"sg-z"}),
        nodeclass_hash="other",
    )
    order = [
        NODEPOOL_DRIFTED,
        REQUIREMENTS_DRIFTED,
        AMI_DRIFT,
        SUBNET_DRIFT,
        SECURITY_GROUP_DRIFT,
        NODECLASS_DRIFT,
    ]
    fixes: list[dict[str, Any]] = [
        {"nodepool_hash": WANTED.nodepool_hash},
        {"requirements": WANTED.requirements},
        {"amis": WANTED.amis},
        {"subnets": WANTED.subnets},
        {"security_groups": WANTED.security_groups},
        {"nodeclass_hash": WANTED.nodeclass_hash},
    ]
    for reason, fix in zip(order, fixes, strict=True):
        found = drifted(FACTS, everything)
        assert found is not None
        assert found.reason == reason
        everything = replace(everything, **fix)
    assert drifted(FACTS, everything) is None


# Drifted nodes in decide() ------------------------------------------------------------------------

AMI = "AMIDrift: image ami-old is not among ami-new"


def test_drifted_node_whose_pods_fit_elsewhere_is_replaced_without_new_capacity() -> None:
    old = node("old", pod("p1"), drifted=AMI)
    roomy = node("roomy", pod("r1"))
    decisions = decide(snap(old, roomy, pools=[pool(policy="WhenEmpty")]))
    assert [(a.node, a.reason, a.replacements) for a in decisions.actions] == [("old", DRIFTED, ())]
    assert "AMIDrift" in decisions.actions[0].message


def test_drifted_node_gets_replacements_for_pods_with_nowhere_to_go() -> None:
    old = node("old", pod("p1", 3000), pod("p2", 3000), drifted=AMI)
    (action,) = decide(snap(old, pools=[pool(policy="WhenEmpty")])).actions
    assert action.reason == DRIFTED
    assert action.replacements
    assert {p for claim in action.replacements for p in claim.pods} == {"p1", "p2"}


def test_pods_do_not_move_onto_another_drifted_node() -> None:
    a = node("a", pod("pa", 3000), drifted=AMI)
    b = node("b", pod("pb", 500), drifted=AMI)  # room for pa, but it is going too
    all_at_once = pool(policy="WhenEmpty", budgets=[{"nodes": "100%"}])
    actions = {x.node: x for x in decide(snap(a, b, pools=[all_at_once])).actions}
    assert set(actions) == {"a", "b"}
    assert actions["a"].replacements  # pa got new capacity rather than a seat on b


def test_drift_respects_the_drifted_budget() -> None:
    nodes = [node(f"n{i}", pod(f"p{i}"), drifted=AMI) for i in range(4)]
    budget = pool(policy="WhenEmpty", budgets=[{"nodes": "1", "reasons": ["Drifted"]}])
    decisions = decide(snap(*nodes, pools=[budget]))
    assert [a.reason for a in decisions.actions] == [DRIFTED]
    assert sum("budget for Drifted is spent" in why for why in decisions.blocked.values()) == 3


def test_drift_counts_nodes_already_disrupting_against_the_budget() -> None:
    busy = node("busy", pod("b1"), mark=Mark(DRIFTED, NOW))
    waiting = node("waiting", pod("w1"), drifted=AMI)
    budget = pool(policy="WhenEmpty", budgets=[{"nodes": "1"}])
    assert decide(snap(busy, waiting, pools=[budget])).actions == ()


def test_a_zero_budget_for_other_reasons_does_not_stop_drift() -> None:
    only_empty = pool(policy="WhenEmpty", budgets=[{"nodes": "0", "reasons": ["Empty", "Underutilized"]}])
    actions = decide(snap(node("old", pod("p1"), drifted=AMI), pools=[only_empty])).actions
    assert [a.reason for a in actions] == [DRIFTED]


@pytest.mark.parametrize(
    ("old", "why"),
    [
        (node("old", pod("p1"), drifted=AMI, do_not_disrupt=True), "node is annotated do-not-disrupt"),
        (node("old", pod("p1", do_not_disrupt=True), drifted=AMI), "is annotated do-not-disrupt"),
    ],
)
def test_do_not_disrupt_holds_a_drifted_node(old: Any, why: str) -> None:
    decisions = decide(snap(old, pools=[pool(policy="WhenEmpty")]))
    assert decisions.actions == ()
    assert why in decisions.blocked["old"]


def test_a_do_not_disrupt_pod_does_not_hold_drift_when_the_claim_has_a_grace_period() -> None:
    bounded = node("old", pod("p1", do_not_disrupt=True), drifted=AMI, grace_period=timedelta(hours=1))
    assert [a.reason for a in decide(snap(bounded, pools=[pool(policy="WhenEmpty")])).actions] == [DRIFTED]
    pinned = replace(bounded, do_not_disrupt=True)  # the node's own annotation still holds it
    assert decide(snap(pinned, pools=[pool(policy="WhenEmpty")])).actions == ()


def test_expiry_wins_over_drift_and_emptiness_comes_first() -> None:
    expired_too = node("exp", pod("p1"), drifted=AMI, expire_after=timedelta(minutes=1))
    empty = node("empty", drifted=AMI)
    reasons = {a.node: a.reason for a in decide(snap(expired_too, empty)).actions}
    assert reasons == {"exp": EXPIRED, "empty": EMPTY}


def test_a_drifted_node_with_pods_nothing_can_run_waits() -> None:
    giant = node("old", pod("p1", 64_000), drifted=AMI, cpu=96)
    decisions = decide(snap(giant, pools=[pool(policy="WhenEmpty")]))
    assert decisions.actions == ()
    assert "no node to go to" in decisions.blocked["old"]


def test_nodes_not_drifted_or_already_disrupting_are_left_alone() -> None:
    fine = node("fine", pod("p1"))
    going = node("going", pod("p2"), drifted=AMI, mark=Mark(DRIFTED, NOW))
    assert decide(snap(fine, going, pools=[pool(policy="WhenEmpty")])).actions == ()


@settings(max_examples=150, deadline=None)
@given(
    specs=st.lists(st.tuples(st.integers(0, 3), st.booleans(), st.booleans()), min_size=1, max_size=8),
    budget=st.integers(0, 4),
)
def test_property_drift_within_budget_and_opt_outs(specs: list[tuple[int, bool, bool]], budget: int) -> None:
    nodes = [
        node(
            f"n{i}",
            *(pod(f"n{i}p{j}", 700) for j in range(count)),
            drifted=AMI if is_drifted else None,
            do_not_disrupt=dnd,
        )
        for i, (count, is_drifted, dnd) in enumerate(specs)
    ]
    s = snap(*nodes, pools=[pool(policy="WhenEmpty", budgets=[{"nodes": str(budget)}])])
    actions = decide(s).actions
    by_name = {n.name: n for n in nodes}
    drifted_actions = [a for a in actions if a.reason == DRIFTED]
    assert len(actions) <= budget
    for action in drifted_actions:
        chosen = by_name[action.node]
        assert chosen.drifted is not None
        assert not chosen.do_not_disrupt
        placed = {p for claim in action.replacements for p in claim.pods}
        assert placed <= {p.uid for p in chosen.pods}
    # Every empty node (step 1) and every loaded drifted one (step 3) goes, as the budget allows.
    eligible = [n for n in nodes if not n.do_not_disrupt and (n.empty or n.drifted)]
    assert len(actions) == min(budget, len(eligible))
