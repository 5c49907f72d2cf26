"""The pure status functions: every combination of the conditions they read."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from launcher.status import conditions as c
from launcher.status.nodeclaim import nodeclaim_conditions
from launcher.status.nodeclass import (
    AMIS_READY,
    INSTANCE_PROFILE_READY,
    SECURITY_GROUPS_READY,
    SUBNETS_READY,
    VALIDATION_SUCCEEDED,
    Lookup,
    NodeClassFindings,
    nodeclass_status,
)
from launcher.status.nodepool import NODECLASS_READY, NodeClassView, nodepool_status, resources_status
from launcher.status.patch import status_patch
from launcher.status.resources import Part, PoolResources
from shared.api.meta import Condition
from shared.api.nodeclaim import CONSOLIDATABLE, INITIALIZED, LAUNCHED, READY, REGISTERED
from shared.api.nodeclass import AMIStatus, SecurityGroupStatus, SubnetStatus
from shared.resources import Resources

NOW = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)
STATUSES = (c.TRUE, c.FALSE, c.UNKNOWN)


def by_type(raw: list[dict[str, object]]) -> dict[str, dict[str, object]]:
    return {str(x["type"]): x for x in raw}


# conditions -----------------------------------------------------------------------------------


@pytest.mark.parametrize("statuses", list(itertools.product((*STATUSES, None), repeat=3)))
def test_root_follows_operatorpkg(statuses: tuple[str | None, ...]) -> None:
    deps = [Condition(f"D{i}", s) for i, s in enumerate(statuses) if s is not None]
    deps += [Condition(f"D{i}", c.UNKNOWN) for i, s in enumerate(statuses) if s is None]
    root = c.root(deps)
    present = [s or c.UNKNOWN for s in statuses]
    if all(s == c.TRUE for s in present):
        assert (root.status, root.reason) == (c.TRUE, "Ready")
    elif c.FALSE in present:
        assert (root.status, root.reason) == (c.FALSE, c.UNHEALTHY_DEPENDENTS)
    else:
        assert (root.status, root.reason) == (c.UNKNOWN, c.RECONCILING_DEPENDENTS)
    for i, s in enumerate(present):
        assert (f"D{i}={s}" in root.message) == (s != c.TRUE)


def test_transition_time_moves_only_with_status() -> None:
    earlier = NOW - timedelta(hours=1)
    old = (
        Condition("A", c.TRUE, "x", "", earlier),
        Condition("B", c.TRUE, "x", "", earlier),
        Condition("Other", c.TRUE),
    )
    merged = c.merge(old, [c.true("A", "y", "new message"), c.false("B", "Broken", "why")], NOW, 3)
    got = {x.type: x for x in merged}
    assert got["A"].last_transition_time == earlier
    assert got["A"].message == "new message"
    assert got["B"].last_transition_time == NOW
    assert got["B"].observed_generation == 3
    assert got["Other"] == old[2]  # another writer's condition is left alone
    assert [x.type for x in c.merge(merged, [], NOW, remove=["B"])] == ["A", "Other"]


# EC2NodeClass ---------------------------------------------------------------------------------

FOUND: dict[str, Lookup[Any]] = {
    AMIS_READY: Lookup(found=(AMIStatus("ami-1", "al2023"),)),
    SUBNETS_READY: Lookup(found=(SubnetStatus("subnet-1", "us-east-1a", "use1-az1"),)),
    SECURITY_GROUPS_READY: Lookup(found=(SecurityGroupStatus("sg-1", "nodes"),)),
    INSTANCE_PROFILE_READY: Lookup(found=("profile",)),
}
MISSING: dict[str, Lookup[Any]] = {
    AMIS_READY: Lookup[AMIStatus](problem="amiSelectorTerms matched no AMI"),
    SUBNETS_READY: Lookup[SubnetStatus](problem="subnetSelectorTerms matched no subnet: [{tags}]"),
    SECURITY_GROUPS_READY: Lookup[SecurityGroupStatus](problem="no group"),
    INSTANCE_PROFILE_READY: Lookup[str](problem="AccessDenied"),
}
FAILED: dict[str, Lookup[Any]] = {k: Lookup[object](problem="throttled", failed=True) for k in FOUND}
KEYS = {
    AMIS_READY: "amis",
    SUBNETS_READY: "subnets",
    SECURITY_GROUPS_READY: "securityGroups",
    INSTANCE_PROFILE_READY: "instanceProfile",
}


def findings(outcome: dict[str, str], generation: int = 2) -> NodeClassFindings:
    table = {"found": FOUND, "missing": MISSING, "failed": FAILED}
    pick = {k: table[v][k] for k, v in outcome.items()}
    return NodeClassFindings(
        generation=generation,
        amis=pick[AMIS_READY],
        subnets=pick[SUBNETS_READY],
        security_groups=pick[SECURITY_GROUPS_READY],
        instance_profile=pick[INSTANCE_PROFILE_READY],
    )


PREVIOUS = {
    "subnets": [{"id": "subnet-old", "zone": "us-east-1b"}],
    "amis": [{"id": "ami-old", "requirements": []}],
    "securityGroups": [{"id": "sg-old"}],
    "instanceProfile": "old-profile",
}


@pytest.mark.parametrize("outcomes", list(itertools.product(("found", "missing", "failed"), repeat=4)))
def test_nodeclass_conditions_for_every_outcome(outcomes: tuple[str, ...]) -> None:
    outcome = dict(zip(FOUND, outcomes, strict=True))
    status = nodeclass_status(
        generation=2, previous=PREVIOUS, invalid=None, findings=findings(outcome), now=NOW
    )
    conds = by_type(status["conditions"])
    for type_, result in outcome.items():
        key = KEYS[type_]
        want = {"found": c.TRUE, "missing": c.FALSE, "failed": c.UNKNOWN}[result]
        assert conds[type_]["status"] == want
        assert conds[type_]["observedGeneration"] == 2
        if result == "found":
            assert status[key] != PREVIOUS[key]
        elif result == "missing":
            assert key not in status  # nothing matched: nothing to show
            assert conds[type_]["message"] == MISSING[type_].problem
        else:
            assert status[key] == PREVIOUS[key]  # a failed lookup keeps what we knew
    assert conds[VALIDATION_SUCCEEDED]["status"] == c.TRUE
    ready = conds["Ready"]["status"]
    if "missing" in outcomes:
        assert ready == c.FALSE
    elif "failed" in outcomes:
        assert ready == c.UNKNOWN
    else:
        assert ready == c.TRUE
        assert status["subnets"] == [{"id": "subnet-1", "zone": "us-east-1a", "zoneID": "use1-az1"}]
        assert status["securityGroups"] == [{"id": "sg-1", "name": "nodes"}]
        assert status["instanceProfile"] == "profile"
    assert list(conds)[-1] == "Ready"


def test_nodeclass_before_resolution_stale_findings_and_invalid_spec() -> None:
    everything = dict.fromkeys(FOUND, "found")
    for found in (None, findings(everything, generation=1)):  # never resolved, or for an older spec
        conds = by_type(
            nodeclass_status(generation=2, previous={}, invalid=None, findings=found, now=NOW)["conditions"]
        )
        assert {conds[t]["status"] for t in FOUND} == {c.UNKNOWN}
        assert conds["Ready"]["status"] == c.UNKNOWN
        assert conds["Ready"]["reason"] == c.RECONCILING_DEPENDENTS
    status = nodeclass_status(
        generation=2, previous={}, invalid="spec.role: required", findings=findings(everything), now=NOW
    )
    conds = by_type(status["conditions"])
    assert conds[VALIDATION_SUCCEEDED]["status"] == c.FALSE
    assert conds[VALIDATION_SUCCEEDED]["message"] == "spec.role: required"
    assert conds["Ready"]["status"] == c.FALSE


# NodePool ----------------------------------------------------------------------------------------

CLASS_STATES = {
    "missing": None,
    "terminating": NodeClassView("default", 4, deleting=True, conditions=(c.true("Ready"),)),
    "unresolved": NodeClassView("default", 4),
    "unknown": NodeClassView(
        "default", 4, conditions=(c.unknown(SUBNETS_READY), Condition("Ready", c.UNKNOWN))
    ),
    "not-ready": NodeClassView(
        "default",
        4,
        conditions=(
            c.false(SUBNETS_READY, "SubnetsNotFound", "no subnets matched selector [{tags}]"),
            c.true(AMIS_READY),
            c.false("Ready", c.UNHEALTHY_DEPENDENTS, "SubnetsReady=False"),
        ),
    ),
    "ready": NodeClassView("default", 4, conditions=(c.true(SUBNETS_READY), c.true("Ready"))),
}


@pytest.mark.parametrize(
    ("state", "invalid"), list(itertools.product(CLASS_STATES, (None, "spec.weight: too big")))
)
def test_nodepool_conditions(state: str, invalid: str | None) -> None:
    view = CLASS_STATES[state]
    status = nodepool_status(
        generation=7,
        previous={},
        invalid=invalid,
        nodeclass_name="default",
        nodeclass=view,
        capacity=Resources(),
        nodes=0,
        now=NOW,
    )
    conds = by_type(status["conditions"])
    assert conds["ValidationSucceeded"]["status"] == (c.TRUE if invalid is None else c.FALSE)
    nc = conds[NODECLASS_READY]
    assert nc["status"] == (c.TRUE if state == "ready" else c.FALSE)
    expected_reason = {
        "missing": "NodeClassNotFound",
        "terminating": "NodeClassTerminating",
        "unresolved": "NodeClassReadinessUnknown",
        "unknown": "NodeClassReadinessUnknown",
        "not-ready": c.UNHEALTHY_DEPENDENTS,
        "ready": NODECLASS_READY,
    }[state]
    assert nc["reason"] == expected_reason
    if state == "not-ready":
        assert (
            nc["message"]
            == "EC2NodeClass default not ready: SubnetsReady=False, no subnets matched selector [{tags}]"
        )
    assert conds["Ready"]["status"] == (c.TRUE if state == "ready" and invalid is None else c.FALSE)
    assert status.get("nodeClassObservedGeneration") == (None if view is None else 4)
    assert all(x["observedGeneration"] == 7 for x in status["conditions"])


def test_resources_show_zero_and_count() -> None:
    assert resources_status(Resources(), 0) == {
        "cpu": "0",
        "memory": "0",
        "pods": "0",
        "ephemeral-storage": "0",
        "nodes": "0",
    }
    got = resources_status(Resources(cpu=4000, memory=16 * 2**30, pods=58), 2)
    assert got == {"cpu": "4", "memory": "16Gi", "pods": "58", "ephemeral-storage": "0", "nodes": "2"}


def test_pool_resources_incremental() -> None:
    index = PoolResources()
    small = Resources(cpu=2000, memory=2**32)
    assert index.set_claim("aws:///i-1", Part("a", small)) == {"a"}
    assert index.totals("a") == (small, 1)
    big = Resources(cpu=2000, memory=2**32 - 2**28)
    assert index.set_node("aws:///i-1", Part("a", big)) == {"a"}  # the node's capacity wins
    assert index.totals("a") == (big, 1)
    assert index.set_claim("aws:///i-2", Part("b", small)) == {"b"}
    assert index.set_node("aws:///i-1", Part("a", big, deleting=True)) == {"a"}  # being deleted: gone
    assert index.totals("a") == (Resources(), 0)
    assert index.set_node("aws:///i-1", None) == {"a"}
    assert index.set_claim("aws:///i-1", None) == {"a"}
    assert index.totals("a") == (Resources(), 0)
    assert index.pools() == {"b"}
    assert index.set_node("aws:///i-3", Part(None, big)) == set()  # a foreign node counts nowhere


# NodeClaim ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("statuses", list(itertools.product((*STATUSES, None), repeat=3)))
def test_nodeclaim_ready_root(statuses: tuple[str | None, ...]) -> None:
    previous = tuple(
        Condition(t, s, t, "", NOW)
        for t, s in zip((LAUNCHED, REGISTERED, INITIALIZED), statuses, strict=True)
        if s
    )
    got = by_type(
        c.to_api(
            nodeclaim_conditions(
                previous, generation=1, consolidate_after=None, last_pod_event=None, now=NOW
            ).conditions
        )
    )
    present = [s or c.UNKNOWN for s in statuses]
    want = c.TRUE if all(s == c.TRUE for s in present) else c.FALSE if c.FALSE in present else c.UNKNOWN
    assert got[READY]["status"] == want
    for t in (LAUNCHED, REGISTERED, INITIALIZED):  # the lifecycle's conditions are not touched
        assert (t in got) == (statuses[(LAUNCHED, REGISTERED, INITIALIZED).index(t)] is not None)


@pytest.mark.parametrize("initialized", [True, False])
@pytest.mark.parametrize("after", [None, timedelta(0), timedelta(minutes=5)])
@pytest.mark.parametrize("pod_event_ago", [None, timedelta(minutes=1), timedelta(minutes=10)])
def test_nodeclaim_consolidatable(
    initialized: bool, after: timedelta | None, pod_event_ago: timedelta | None
) -> None:
    init_at = NOW - timedelta(minutes=3)
    previous = (
        Condition(LAUNCHED, c.TRUE, last_transition_time=init_at),
        Condition(INITIALIZED, c.TRUE if initialized else c.UNKNOWN, last_transition_time=init_at),
        Condition(CONSOLIDATABLE, c.TRUE, CONSOLIDATABLE, "", init_at),
    )
    last = NOW - pod_event_ago if pod_event_ago is not None else None
    result = nodeclaim_conditions(
        previous, generation=1, consolidate_after=after, last_pod_event=last, now=NOW
    )
    got = by_type(c.to_api(result.conditions))
    since = last or init_at
    eligible = initialized and after is not None and since + after <= NOW
    assert (CONSOLIDATABLE in got) == eligible
    if eligible:
        assert got[CONSOLIDATABLE]["status"] == c.TRUE
        assert result.recheck_at is None
    elif initialized and after is not None:
        assert result.recheck_at == since + after
    else:
        assert result.recheck_at is None


def test_status_patch_only_when_changed() -> None:
    current = {"resources": {"cpu": "1", "gpu": "1"}, "conditions": [{"type": "Ready"}], "providerID": "x"}
    assert status_patch(current, dict(current), ("resources", "conditions")) is None
    patch = status_patch(
        current, {"resources": {"cpu": "2"}, "conditions": [{"type": "Ready"}]}, ("resources", "conditions")
    )
    assert patch == {"resources": {"cpu": "2", "gpu": None}}
    assert status_patch({}, {"instanceProfile": "p"}, ("instanceProfile", "subnets")) == {
        "instanceProfile": "p"
    }
    assert status_patch({"subnets": [1]}, {}, ("subnets",)) == {"subnets": None}
