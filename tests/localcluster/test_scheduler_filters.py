"""In-tree filters and pod/node facts: kube-scheduler's predicates and reason strings."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from localcluster.scheduler.cache import ClusterCache, NodeInfo, PodUsage
from localcluster.scheduler.filters import (
    REASON_NODE_AFFINITY,
    REASON_UNSCHEDULABLE,
    NodeStatus,
    run_filters,
)
from localcluster.scheduler.model import node_facts, nonzero_requests, pod_facts
from localcluster.scheduler.testing import node, pod
from shared.resources import Resources


def info_for(raw: dict[str, Any], *pods: dict[str, Any]) -> NodeInfo:
    cache = ClusterCache()
    cache.set_node(raw)
    for i, p in enumerate(pods):
        p.setdefault("metadata", {})["uid"] = f"uid-{i}"
        cache.add_pod(raw["metadata"]["name"], PodUsage.of(pod_facts(p)))
    found = cache.node(raw["metadata"]["name"])
    assert found is not None
    return found


def check(p: dict[str, Any], n: dict[str, Any], *existing: dict[str, Any]) -> NodeStatus | None:
    return run_filters(pod_facts(p), info_for(n, *existing))


def test_fits_and_insufficient_resources() -> None:
    assert check(pod("p", cpu="1", memory="1Gi"), node("n", cpu="2", memory="2Gi")) is None
    status = check(pod("p", cpu="3", memory="3Gi"), node("n", cpu="2", memory="2Gi"))
    assert status == NodeStatus(("Insufficient cpu", "Insufficient memory"), resolvable=True)
    # Requests of pods already on the node count.
    assert check(pod("p", cpu="1"), node("n", cpu="2"), pod("a", cpu="1500m")) == NodeStatus(
        ("Insufficient cpu",)
    )


def test_too_many_pods_and_extended_resources() -> None:
    status = check(pod("p"), node("n", pods="1"), pod("a", cpu="1m"))
    assert status is not None
    assert status.reasons == ("Too many pods",)
    gpu = pod("p", extra_requests={"nvidia.com/gpu": "1"})
    assert check(gpu, node("n")) == NodeStatus(("Insufficient nvidia.com/gpu",))
    assert check(gpu, node("n", extra_allocatable={"nvidia.com/gpu": "2"})) is None
    # A resource an extender manages with ignoredByScheduler is not checked.
    facts = pod_facts(pod("p", extra_requests={"example.com/widget": "1"}))
    assert run_filters(facts, info_for(node("n")), {"example.com/widget"}) is None


def test_unschedulable_node_unless_tolerated() -> None:
    cordoned = node("n", unschedulable=True)
    assert check(pod("p"), cordoned) == NodeStatus((REASON_UNSCHEDULABLE,), resolvable=False)
    tolerating = pod("p", tolerations=[{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}])
    tolerating["spec"]["tolerations"][0]["operator"] = "Exists"
    assert check(tolerating, cordoned) is None


def test_taints_no_schedule_and_no_execute_but_not_prefer() -> None:
    tainted = node("n", taints=[{"key": "jitnode.io/disrupted", "effect": "NoSchedule"}])
    status = check(pod("p"), tainted)
    assert status == NodeStatus(("node(s) had untolerated taint {jitnode.io/disrupted: }",), resolvable=False)
    execute = node("n", taints=[{"key": "gpu", "value": "yes", "effect": "NoExecute"}])
    assert check(pod("p"), execute) == NodeStatus(("node(s) had untolerated taint {gpu: yes}",), False)
    assert check(pod("p", tolerations=[{"key": "gpu", "value": "yes"}]), execute) is None
    assert check(pod("p", tolerations=[{"key": "gpu", "value": "no"}]), execute) is not None
    assert check(pod("p", tolerations=[{"operator": "Exists"}]), execute) is None
    assert check(pod("p"), node("n", taints=[{"key": "x", "effect": "PreferNoSchedule"}])) is None


def test_not_ready_node_reads_as_tainted() -> None:
    status = check(pod("p"), node("n", ready=False))
    assert status is not None
    assert status.reasons == ("node(s) had untolerated taint {node.kubernetes.io/not-ready: }",)
    # The usual NoExecute toleration every pod gets does not cover NoSchedule.
    usual = pod(
        "p",
        tolerations=[{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"}],
    )
    assert check(usual, node("n", ready=False)) is not None
    no_conditions = node("n")
    del no_conditions["status"]["conditions"]
    assert not node_facts(no_conditions).ready


def affinity(*terms: dict[str, Any]) -> dict[str, Any]:
    return {
        "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": list(terms)}}
    }


def expr(key: str, op: str, *values: str) -> dict[str, Any]:
    return {"key": key, "operator": op, "values": list(values)}


@pytest.mark.parametrize(
    ("labels", "terms", "fits"),
    [
        ({"zone": "a"}, [{"matchExpressions": [expr("zone", "In", "a", "b")]}], True),
        ({"zone": "c"}, [{"matchExpressions": [expr("zone", "In", "a", "b")]}], False),
        ({}, [{"matchExpressions": [expr("zone", "NotIn", "a")]}], True),
        ({"zone": "a"}, [{"matchExpressions": [expr("zone", "NotIn", "a")]}], False),
        ({"gpu": ""}, [{"matchExpressions": [expr("gpu", "Exists")]}], True),
        ({"gpu": ""}, [{"matchExpressions": [expr("gpu", "DoesNotExist")]}], False),
        ({"cpu": "8"}, [{"matchExpressions": [expr("cpu", "Gt", "4")]}], True),
        ({"cpu": "8"}, [{"matchExpressions": [expr("cpu", "Lt", "4")]}], False),
        ({"cpu": "x"}, [{"matchExpressions": [expr("cpu", "Gt", "4")]}], False),
        # Expressions within a term are ANDed, terms ORed.
        (
            {"zone": "a", "arch": "arm64"},
            [{"matchExpressions": [expr("zone", "In", "a"), expr("arch", "In", "amd64")]}],
            False,
        ),
        (
            {"zone": "a"},
            [
                {"matchExpressions": [expr("zone", "In", "b")]},
                {"matchExpressions": [expr("zone", "In", "a")]},
            ],
            True,
        ),
        # An empty term matches nothing.
        ({"zone": "a"}, [{}], False),
        ({}, [{"matchFields": [expr("metadata.name", "In", "n")]}], True),
        ({}, [{"matchFields": [expr("metadata.name", "NotIn", "n")]}], False),
    ],
)
def test_node_affinity(labels: dict[str, str], terms: list[dict[str, Any]], fits: bool) -> None:
    status = check(pod("p", affinity=affinity(*terms)), node("n", labels=labels))
    assert (status is None) == fits
    if not fits:
        assert status == NodeStatus((REASON_NODE_AFFINITY,), resolvable=False)


def test_node_selector_and_filter_order() -> None:
    assert check(pod("p", node_selector={"intent": "apps"}), node("n", labels={"intent": "apps"})) is None
    assert check(pod("p", node_selector={"intent": "apps"}), node("n")) == NodeStatus(
        (REASON_NODE_AFFINITY,), False
    )
    # TaintToleration runs before NodeAffinity and NodeResourcesFit: only its reason is reported.
    both = node("n", cpu="1", taints=[{"key": "k", "effect": "NoSchedule"}])
    status = check(pod("p", cpu="2", node_selector={"x": "y"}), both)
    assert status is not None
    assert status.reasons == ("node(s) had untolerated taint {k: }",)


def test_effective_requests_init_sidecars_overhead() -> None:
    spec = {
        "containers": [
            {"name": "a", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}},
            {"name": "b", "resources": {"limits": {"cpu": "500m"}}},
        ],
        "initContainers": [
            {"name": "big-init", "resources": {"requests": {"cpu": "3"}}},
            {
                "name": "sidecar",
                "restartPolicy": "Always",
                "resources": {"requests": {"cpu": "200m", "memory": "1Gi"}},
            },
            {"name": "late-init", "resources": {"requests": {"memory": "4Gi"}}},
        ],
        "overhead": {"cpu": "100m"},
    }
    # cpu: max(1 + 0.5 (limit as request) + 0.2 sidecar, 3 init) + 0.1 overhead
    # memory: max(1Gi + 1Gi sidecar, 4Gi late init + 1Gi sidecar running)
    assert pod_facts({"metadata": {"name": "p"}, "spec": spec}).requests == Resources.parse(
        {"cpu": "3100m", "memory": "5Gi"}
    )
    nonzero = nonzero_requests({"containers": [{"name": "a"}]})
    assert nonzero == Resources.parse({"cpu": "100m", "memory": "200Mi"})


millis = st.integers(min_value=0, max_value=8000)


@given(containers=st.lists(millis, max_size=4), inits=st.lists(st.tuples(millis, st.booleans()), max_size=4))
def test_effective_requests_bounds(containers: list[int], inits: list[tuple[int, bool]]) -> None:
    """Never less than the containers' and sidecars' sum, nor than any single init container."""
    spec = {
        "containers": [
            {"name": f"c{i}", "resources": {"requests": {"cpu": f"{m}m"}}} for i, m in enumerate(containers)
        ],
        "initContainers": [
            {
                "name": f"i{i}",
                "resources": {"requests": {"cpu": f"{m}m"}},
                **({"restartPolicy": "Always"} if s else {}),
            }
            for i, (m, s) in enumerate(inits)
        ],
    }
    cpu = pod_facts({"metadata": {"name": "p"}, "spec": spec}).requests.amount("cpu")
    sidecars = sum(m for m, s in inits if s)
    assert cpu >= sum(containers) + sidecars
    assert all(cpu >= m for m, _ in inits)
    assert cpu <= sum(containers) + sum(m for m, _ in inits)
