"""Pod needs as kube-scheduler computes them: requests, node affinity, tolerations, classification."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared import pods
from shared.errors import ValidationError
from shared.requirements import Requirements
from shared.resources import Resources
from shared.taints import Toleration

GI = 2**30
MI = 2**20


def container(name: str, cpu: str | None = None, memory: str | None = None, **extra: Any) -> dict[str, Any]:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    return {"name": name, "image": "pause", "resources": {"requests": requests}, **extra}


def pod(**spec: Any) -> dict[str, Any]:
    spec.setdefault("containers", [container("app", "100m")])
    return {
        "metadata": {"name": "p", "namespace": "ns", "uid": "u"},
        "spec": spec,
        "status": {"phase": "Pending"},
    }


def node(name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels}}


# Requests.


def test_sums_containers_and_counts_one_pod() -> None:
    p = pod(containers=[container("a", "500m", "1Gi"), container("b", "250m", "512Mi")])
    assert pods.effective_requests(p) == Resources(cpu=750, memory=GI + 512 * MI, pods=1)


def test_init_containers_take_the_max() -> None:
    p = pod(
        containers=[container("a", "500m", "1Gi")],
        initContainers=[container("i1", "2", "100Mi"), container("i2", "100m", "3Gi")],
    )
    assert pods.effective_requests(p) == Resources(cpu=2000, memory=3 * GI, pods=1)


def test_sidecars_accumulate_in_order() -> None:
    always = {"restartPolicy": "Always"}
    p = pod(
        containers=[container("app", "1")],
        initContainers=[
            container("before", "2500m"),  # runs alone: 2.5
            container("sidecar1", "500m", **always),  # running from here on
            container("after", "2"),  # 2 + 0.5 sidecar = 2.5
            container("sidecar2", "300m", **always),
            container("late", "2300m"),  # 2.3 + 0.8 sidecars = 3.1
        ],
    )
    # Steady state: 1 + 0.5 + 0.3 = 1.8; peak during init: 3.1.
    assert pods.effective_requests(p).amount("cpu") == 3100
    p["spec"]["initContainers"][4] = container("late", "1")
    assert pods.effective_requests(p).amount("cpu") == 2500
    p["spec"]["initContainers"] = [container("s", "4", **always)]
    assert pods.effective_requests(p).amount("cpu") == 5000


def test_limits_default_requests_per_resource() -> None:
    c = {"name": "a", "resources": {"requests": {"cpu": "100m"}, "limits": {"cpu": "2", "memory": "1Gi"}}}
    assert pods.effective_requests(pod(containers=[c])) == Resources(cpu=100, memory=GI, pods=1)
    c = {"name": "a", "resources": {"limits": {"cpu": "2", "nvidia.com/gpu": "1"}}}
    assert pods.effective_requests(pod(containers=[c])) == Resources(
        cpu=2000, pods=1, **{"nvidia.com/gpu": 1}
    )


def test_overhead_and_pod_level_requests() -> None:
    p = pod(containers=[container("a", "1", "1Gi")], overhead={"cpu": "250m", "memory": "120Mi"})
    assert pods.effective_requests(p) == Resources(cpu=1250, memory=GI + 120 * MI, pods=1)
    p["spec"]["resources"] = {"requests": {"cpu": "3"}, "limits": {"memory": "2Gi"}}
    assert pods.effective_requests(p) == Resources(cpu=3250, memory=2 * GI + 120 * MI, pods=1)


def test_in_place_resize_counts_the_larger_of_spec_and_status() -> None:
    p = pod(containers=[container("a", "1", "1Gi")])
    p["status"]["containerStatuses"] = [
        {"name": "a", "resources": {"requests": {"cpu": "2", "memory": "512Mi"}}}
    ]
    assert pods.effective_requests(p) == Resources(cpu=2000, memory=GI, pods=1)
    p["status"]["resize"] = "Infeasible"
    assert pods.effective_requests(p) == Resources(cpu=2000, memory=512 * MI, pods=1)


@given(
    st.lists(st.integers(0, 4000), min_size=1, max_size=4),
    st.lists(st.tuples(st.integers(0, 4000), st.booleans()), max_size=5),
)
def test_requests_match_reference_formula(regular: list[int], inits: list[tuple[int, bool]]) -> None:
    p = pod(
        containers=[container(f"c{i}", f"{m}m") for i, m in enumerate(regular)],
        initContainers=[
            container(f"i{i}", f"{m}m", **({"restartPolicy": "Always"} if side else {}))
            for i, (m, side) in enumerate(inits)
        ],
    )
    sidecars = 0
    peak = 0
    for m, side in inits:
        if side:
            sidecars += m
            peak = max(peak, sidecars)
        else:
            peak = max(peak, m + sidecars)
    expected = max(sum(regular) + sidecars, peak)
    assert pods.effective_requests(p).amount("cpu") == expected


def test_bad_quantities_are_reported_with_paths() -> None:
    p = pod(
        containers=[
            container("a", "1x"),
            {"name": "b", "resources": {"limits": {"memory": "lots"}}},
        ],
        initContainers=[container("i", "-1")],
    )
    with pytest.raises(ValidationError) as err:
        pods.effective_requests(p)
    assert [e.path for e in err.value.errors] == [
        "spec.containers[0].resources.requests.cpu",
        "spec.containers[1].resources.limits.memory",
        "spec.initContainers[0].resources.requests.cpu",
    ]
    assert "spec.containers[0].resources.requests.cpu: '1x' is not a quantity" in str(err.value)


def test_wrong_shapes_raise_validation_errors_not_type_errors() -> None:
    bad: dict[str, Any]
    for bad in (
        {"spec": "nope"},
        {"spec": {"containers": "nope"}},
        {"spec": {"containers": ["nope"]}},
        {"spec": {"containers": [{"resources": []}]}},
        {"spec": {"containers": [{"resources": {"requests": ["cpu"]}}]}},
    ):
        with pytest.raises(ValidationError):
            pods.effective_requests(bad)


# Node affinity.

ARCH = "kubernetes.io/arch"


def affinity(*terms: dict[str, Any]) -> dict[str, Any]:
    return {
        "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": list(terms)}}
    }


def expr(key: str, op: str, *values: str) -> dict[str, Any]:
    return {"key": key, "operator": op, "values": list(values)} if values else {"key": key, "operator": op}


def test_no_affinity_yields_node_selector_alone() -> None:
    assert pods.node_selector_terms(pod()) == (Requirements(),)
    p = pod(nodeSelector={"intent": "apps"})
    assert pods.node_selector_terms(p) == (Requirements.from_labels({"intent": "apps"}),)
    assert pods.node_matches(p, node("n1", intent="apps", other="x"))
    assert not pods.node_matches(p, node("n1"))


def test_terms_are_ored_and_each_anded_with_node_selector() -> None:
    p = pod(
        nodeSelector={"intent": "apps"},
        affinity=affinity(
            {"matchExpressions": [expr(ARCH, "In", "arm64")]},
            {"matchExpressions": [expr("gpu", "Exists")]},
        ),
    )
    terms = pods.node_selector_terms(p)
    assert len(terms) == 2
    assert all(t.allowed_values("intent") == frozenset({"apps"}) for t in terms)
    assert pods.node_matches(p, node("a", intent="apps", **{ARCH: "arm64"}))
    assert pods.node_matches(p, node("b", intent="apps", gpu="1"))
    assert not pods.node_matches(p, node("c", intent="apps", **{ARCH: "amd64"}))
    assert not pods.node_matches(p, node("d", gpu="1", **{ARCH: "arm64"}))


def test_empty_terms_match_nothing() -> None:
    assert pods.node_selector_terms(pod(affinity=affinity())) == ()
    p = pod(affinity=affinity({}, {"matchExpressions": []}))
    assert pods.node_selector_terms(p) == ()
    assert not pods.node_matches(p, node("n"))
    # A usable term next to an empty one still counts.
    p = pod(affinity=affinity({}, {"matchExpressions": [expr("k", "DoesNotExist")]}))
    assert pods.node_matches(p, node("n"))
    # No required affinity at all (only preferred) constrains nothing.
    p = pod(affinity={"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}})
    assert pods.node_selector_terms(p) == (Requirements(),)


def test_match_fields_on_node_name() -> None:
    p = pod(affinity=affinity({"matchFields": [expr(pods.NODE_NAME_FIELD, "In", "n1")]}))
    (term,) = pods.node_selector_terms(p)
    assert term.allowed_values(pods.NODE_NAME_FIELD) == frozenset({"n1"})
    assert pods.node_matches(p, node("n1"))
    assert not pods.node_matches(p, node("n2"))
    p = pod(affinity=affinity({"matchFields": [expr(pods.NODE_NAME_FIELD, "NotIn", "n1")]}))
    assert pods.node_matches(p, node("n2"))
    assert not pods.node_matches(p, node("n1"))


@pytest.mark.parametrize(
    ("field", "path"),
    [
        (expr("metadata.uid", "In", "x"), "matchFields[0].key"),
        (expr(pods.NODE_NAME_FIELD, "Exists"), "matchFields[0].operator"),
        (expr(pods.NODE_NAME_FIELD, "In", "a", "b"), "matchFields[0].values"),
    ],
)
def test_bad_match_fields(field: dict[str, Any], path: str) -> None:
    with pytest.raises(ValidationError) as err:
        pods.node_selector_terms(pod(affinity=affinity({"matchFields": [field]})))
    assert err.value.errors[0].path.endswith(f"nodeSelectorTerms[0].{path}")


def test_bad_expressions_are_reported_with_paths() -> None:
    p = pod(
        nodeSelector={"ok": 1},
        affinity=affinity({"matchExpressions": [expr("k", "In")]}),
    )
    with pytest.raises(ValidationError) as err:
        pods.node_selector_terms(p)
    assert [e.path for e in err.value.errors] == [
        "spec.nodeSelector.ok",
        "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
        ".nodeSelectorTerms[0].matchExpressions[0].values",
    ]


# Needs, tolerations, classification.


def test_scheduling_needs_collects_everything() -> None:
    p = pod(
        containers=[container("a", "1", "1Gi")],
        nodeSelector={"intent": "apps"},
        tolerations=[{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
        priority=1000,
    )
    needs = pods.scheduling_needs(p)
    assert needs.requests == Resources(cpu=1000, memory=GI, pods=1)
    assert needs.requirements == (Requirements.from_labels({"intent": "apps"}),)
    assert needs.tolerations == (Toleration("dedicated", "Exists", effect="NoSchedule"),)
    assert needs.priority == 1000


def test_scheduling_needs_reports_all_errors_at_once() -> None:
    p = pod(
        containers=[container("a", "1x")],
        tolerations=[{"operator": "Equal", "value": "v"}],
        priority="high",
    )
    with pytest.raises(ValidationError) as err:
        pods.scheduling_needs(p)
    assert [e.path for e in err.value.errors] == [
        "spec.containers[0].resources.requests.cpu",
        "spec.tolerations[0].operator",
        "spec.priority",
    ]


def test_classification() -> None:
    p = pod()
    assert pods.pod_key(p) == "ns/p"
    assert pods.pod_uid(p) == "u"
    assert not pods.is_bound(p)
    assert not pods.is_terminal(p)
    assert pods.owner(p) is None
    assert not pods.is_daemonset_pod(p)
    assert not pods.is_mirror_pod(p)
    assert pods.unschedulable_condition(p) is None

    bound = copy.deepcopy(p)
    bound["spec"]["nodeName"] = "n1"
    bound["status"]["phase"] = "Succeeded"
    assert pods.is_bound(bound)
    assert pods.is_terminal(bound)

    ds = copy.deepcopy(p)
    ds["metadata"]["ownerReferences"] = [
        {"kind": "Node", "name": "n1", "controller": False},
        {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "fluentd", "controller": True},
    ]
    ds["metadata"]["annotations"] = {pods.MIRROR_ANNOTATION: "abc"}
    assert pods.owner(ds) == ("DaemonSet", "fluentd")
    assert pods.is_daemonset_pod(ds)
    assert pods.is_mirror_pod(ds)

    pending = copy.deepcopy(p)
    condition = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/3 nodes"}
    pending["status"]["conditions"] = [{"type": "Ready", "status": "False"}, condition]
    assert pods.unschedulable_condition(pending) == condition
    condition["reason"] = "SchedulerError"
    assert pods.unschedulable_condition(pending) is None
    assert pods.pod_key({"metadata": {"name": "x"}}) == "default/x"


def test_captured_kube_scheduler_pod(kube_scheduler_fixtures: Path) -> None:
    body = orjson.loads((kube_scheduler_fixtures / "v1.24-filter-fullnodes-request.json").read_bytes())
    p = body["Pod"]
    needs = pods.scheduling_needs(p)
    assert needs.requests == Resources(cpu=1000, memory=1536 * MI, pods=1)
    assert needs.requirements == (Requirements.from_labels({"intent": "apps"}),)
    assert {t.key for t in needs.tolerations} == {
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    }
    assert all(pods.node_matches(p, n) for n in body["Nodes"]["items"])
    assert pods.owner(p) is not None


def test_needs_are_memoised_across_replicas_and_follow_every_input() -> None:
    replica_a = pod(containers=[container("app", "300m")], nodeName="node-a")
    replica_b = pod(containers=[container("app", "300m")], nodeName="node-b")
    needs = pods.scheduling_needs(replica_a)
    assert pods.scheduling_needs(replica_b) is needs  # nodeName is not an input
    assert pods.effective_requests(replica_b) is pods.effective_requests(replica_a)

    bigger = pod(containers=[container("app", "400m")], nodeName="node-a")
    assert pods.scheduling_needs(bigger).requests.amount("cpu") == 400
    resized = copy.deepcopy(replica_a)
    resized["status"]["containerStatuses"] = [{"name": "app", "resources": {"requests": {"cpu": "500m"}}}]
    assert pods.effective_requests(resized).amount("cpu") == 500  # the status is an input
    assert pods.scheduling_needs(replica_a).requests.amount("cpu") == 300

    bad = pod(containers=[container("app", "lots")])
    for _ in range(2):  # a failure is not memoised: it is reported every time
        with pytest.raises(ValidationError, match="lots"):
            pods.scheduling_needs(bad)
