"""NodePool parsing: every field validated, all problems reported by path, round trip."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared import labels
from shared.api.nodepool import Budget, Disruption, NodePool
from shared.errors import ValidationError
from shared.resources import Resources


def minimal(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "apiVersion": "jitnode.io/v1",
        "kind": "NodePool",
        "metadata": {"name": "default"},
        "spec": {
            "template": {
                "spec": {"nodeClassRef": {"group": "jitnode.io", "kind": "EC2NodeClass", "name": "nc"}}
            }
        },
    }
    base["spec"].update(spec)
    return base


FULL: dict[str, Any] = {
    "apiVersion": "jitnode.io/v1",
    "kind": "NodePool",
    "metadata": {
        "name": "gpu",
        "uid": "u-1",
        "resourceVersion": "42",
        "generation": 3,
        "labels": {"env": "prod"},
        "annotations": {"note": "x"},
        "creationTimestamp": "2024-05-01T10:00:00Z",
    },
    "spec": {
        "template": {
            "metadata": {"labels": {"team": "ml"}, "annotations": {"a": "b"}},
            "spec": {
                "nodeClassRef": {"group": "jitnode.io", "kind": "EC2NodeClass", "name": "gpu"},
                "requirements": [
                    {
                        "key": labels.INSTANCE_TYPE,
                        "operator": "In",
                        "values": ["p3.2xlarge", "g5.xlarge"],
                        "minValues": 2,
                    },
                    {"key": labels.CAPACITY_TYPE, "operator": "In", "values": ["spot"]},
                    {"key": labels.INSTANCE_CPU, "operator": "Gt", "values": ["3"]},
                ],
                "taints": [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}],
                "startupTaints": [{"key": "node.cilium.io/agent-not-ready", "effect": "NoExecute"}],
                "expireAfter": "Never",
                "terminationGracePeriod": "48h",
            },
        },
        "disruption": {
            "consolidationPolicy": "WhenEmpty",
            "consolidateAfter": "5m",
            "budgets": [
                {"nodes": "20%"},
                {"nodes": "0", "schedule": "0 9 * * mon-fri", "duration": "8h", "reasons": ["Underutilized"]},
            ],
        },
        "limits": {"cpu": "1000", "memory": "4000Gi", "nvidia.com/gpu": "16"},
        "weight": 50,
        "warmPool": {
            "size": 1,
            "maxSize": 3,
            "state": "Hibernated",
            "reuseOnScaleIn": True,
            "hedgedStarts": 1,
        },
    },
    "status": {
        "resources": {"cpu": "96", "nodes": "3"},
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Ready",
                "lastTransitionTime": "2024-05-01T10:01:00Z",
            }
        ],
        "nodeClassObservedGeneration": 2,
        "warmPool": {
            "warm": 1,
            "filling": 0,
            "desired": 1,
            "hourlyCost": "0.0022",
            "hourlyCostRunning": "0.192",
        },
    },
}


def test_full_object_parses_and_round_trips() -> None:
    pool = NodePool.from_api(FULL)
    assert pool.name == "gpu"
    assert pool.metadata.resource_version == "42"
    assert pool.metadata.creation_timestamp == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert pool.expire_after is None
    assert pool.termination_grace_period == timedelta(hours=48)
    assert pool.disruption.consolidate_after == timedelta(minutes=5)
    assert pool.limits == Resources({"cpu": 1_000_000, "memory": 4000 * 2**30, "nvidia.com/gpu": 16})
    assert pool.weight == 50
    assert pool.status.resources.amount("nodes") == 3
    assert pool.condition("Ready") is not None
    assert pool.template_requirements[0].min_values == 2
    assert [t.key for t in pool.taints()] == ["nvidia.com/gpu"]
    assert [t.effect for t in pool.startup_taints()] == ["NoExecute"]
    api = pool.to_api()
    assert api == FULL
    assert NodePool.from_api(api) == pool


def test_defaults_like_karpenter() -> None:
    pool = NodePool.from_api(minimal())
    assert pool.expire_after == timedelta(hours=720)
    assert pool.disruption == Disruption()
    assert pool.disruption.consolidation_policy == "WhenEmptyOrUnderutilized"
    assert pool.disruption.budgets == (Budget(nodes="10%"),)
    assert pool.limits.is_zero()
    assert pool.weight is None
    spec = pool.to_api()["spec"]
    assert spec["disruption"] == {
        "consolidationPolicy": "WhenEmptyOrUnderutilized",
        "consolidateAfter": "0s",
        "budgets": [{"nodes": "10%"}],
    }
    assert spec["template"]["spec"]["expireAfter"] == "720h"
    assert NodePool.from_api(minimal(disruption={"budgets": []})).disruption.budgets == ()


def test_requirements_include_labels_and_pool_name() -> None:
    pool = NodePool.from_api(FULL)
    reqs = pool.requirements()
    assert reqs.allowed_values(labels.NODEPOOL) == frozenset({"gpu"})
    assert reqs.allowed_values("team") == frozenset({"ml"})
    assert reqs.allows(labels.INSTANCE_TYPE, "g5.xlarge")
    assert not reqs.allows(labels.INSTANCE_TYPE, "m5.large")
    assert pool.labels() == {"team": "ml", labels.NODEPOOL: "gpu"}
    node = {
        "team": "ml",
        labels.NODEPOOL: "gpu",
        labels.INSTANCE_TYPE: "g5.xlarge",
        labels.CAPACITY_TYPE: "spot",
        labels.INSTANCE_CPU: "4",
    }
    assert reqs.matches(node)
    assert not reqs.matches({**node, labels.NODEPOOL: "other"})


def test_every_problem_reported_by_path() -> None:
    bad = minimal(
        limits={"cpu": "1x", "memory": "1Gi"},
        weight=101,
        disruption={
            "consolidationPolicy": "Sometimes",
            "consolidateAfter": "1d",
            "budgets": [{"nodes": "200%"}, {"nodes": "1", "schedule": "0 9 * * *"}, {"reasons": ["Bored"]}],
        },
        bogus=True,
    )
    bad["spec"]["template"]["metadata"] = {"labels": {labels.NODEPOOL: "x", "ok": "bad value!"}}
    bad["spec"]["template"]["spec"].update(
        requirements=[{"key": "a", "operator": "Foo"}, {"key": "b", "operator": "In", "values": []}],
        taints=[{"key": "t", "effect": "Never"}],
        expireAfter="30d",
        terminationGracePeriod="Never",
    )
    bad["spec"]["template"]["spec"]["nodeClassRef"] = {"group": "other.io", "kind": "EC2NodeClass"}
    with pytest.raises(ValidationError) as info:
        NodePool.from_api(bad)
    paths = {e.path for e in info.value.errors}
    assert paths == {
        "spec.bogus",
        "spec.limits.cpu",
        "spec.weight",
        "spec.disruption.consolidationPolicy",
        "spec.disruption.consolidateAfter",
        "spec.disruption.budgets[0].nodes",
        "spec.disruption.budgets[1]",
        "spec.disruption.budgets[2].reasons[0]",
        "spec.template.metadata.labels.jitnode.io/nodepool",
        "spec.template.metadata.labels.ok",
        "spec.template.spec.requirements[0].operator",
        "spec.template.spec.requirements[1].values",
        "spec.template.spec.taints[0].effect",
        "spec.template.spec.expireAfter",
        "spec.template.spec.terminationGracePeriod",
        "spec.template.spec.nodeClassRef.group",
        "spec.template.spec.nodeClassRef.name",
    }
    text = str(info.value)
    assert "spec.limits.cpu: '1x' is not a quantity" in text
    assert "spec.disruption.consolidationPolicy: must be one of WhenEmpty, WhenEmptyOrUnderutilized" in text


def test_structural_errors() -> None:
    with pytest.raises(ValidationError, match=r"metadata\.name: required"):
        NodePool.from_api({"spec": minimal()["spec"]})
    with pytest.raises(ValidationError, match=r"spec\.template: required"):
        NodePool.from_api({"metadata": {"name": "x"}, "spec": {}})
    obj = minimal()
    obj["spec"]["template"]["spec"]["requirements"] = {"key": "a"}
    with pytest.raises(ValidationError, match=r"spec\.template\.spec\.requirements: expected a list"):
        NodePool.from_api(obj)
    obj["spec"]["template"]["spec"]["requirements"] = [{"keys": "a", "key": "b", "operator": "Exists"}]
    with pytest.raises(
        ValidationError, match=r"spec\.template\.spec\.requirements\[0\]\.keys: unknown field"
    ):
        NodePool.from_api(obj)


def test_input_not_mutated() -> None:
    obj = minimal()
    before = copy.deepcopy(obj)
    NodePool.from_api(obj)
    assert obj == before


NOW = datetime(2024, 5, 6, 10, 0, tzinfo=UTC)  # a Monday


@pytest.mark.parametrize(
    ("budgets", "total", "reason", "expected"),
    [
        ([{"nodes": "10%"}], 0, None, 0),
        ([{"nodes": "10%"}], 1, None, 1),  # rounds up
        ([{"nodes": "10%"}], 25, None, 3),
        ([{"nodes": "5"}], 3, None, 3),  # never more than exist
        ([{"nodes": "50%"}, {"nodes": "2"}], 10, None, 2),  # the smallest applies
        ([{"nodes": "0", "schedule": "0 9 * * mon-fri", "duration": "8h"}, {"nodes": "100%"}], 10, None, 0),
        ([{"nodes": "0", "schedule": "0 9 * * sat", "duration": "8h"}, {"nodes": "100%"}], 10, None, 10),
        ([{"nodes": "0", "reasons": ["Drifted"]}, {"nodes": "4"}], 10, "Underutilized", 4),
        ([{"nodes": "0", "reasons": ["Drifted"]}, {"nodes": "4"}], 10, "Drifted", 0),
        ([{"nodes": "0", "schedule": "0 0 * * sun", "duration": "1h"}], 7, None, 7),  # none active
    ],
)
def test_budget_nodes_allowed(
    budgets: list[dict[str, Any]], total: int, reason: str | None, expected: int
) -> None:
    pool = NodePool.from_api(minimal(disruption={"budgets": budgets}))
    assert pool.budget_nodes_allowed(total, NOW, reason) == expected


@given(st.integers(min_value=0, max_value=100), st.integers(min_value=0, max_value=5000))
def test_percent_budget_rounds_up(percent: int, total: int) -> None:
    allowed = Budget(nodes=f"{percent}%").allowed(total)
    assert allowed * 100 >= percent * total
    assert (allowed - 1) * 100 < percent * total or allowed == 0


def test_invalid_cron_schedule_is_a_field_error() -> None:
    obj = minimal(disruption={"budgets": [{"nodes": "1", "schedule": "61 * * * *", "duration": "1h"}]})
    with pytest.raises(ValidationError) as info:
        NodePool.from_api(obj)
    assert [e.path for e in info.value.errors] == ["spec.disruption.budgets[0].schedule"]
