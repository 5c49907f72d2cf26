"""The pod index against the full walks it replaces, after any sequence of informer events."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from launcher.disruption.inputs import starting_pods
from launcher.podindex import PodIndex
from launcher.provisioning.inputs import (
    daemonset_overhead,
    indexed_topology_view,
    node_rooms,
    occupied_zones,
    topology_view,
)
from launcher.state import _ByProviderId
from shared import pods
from shared.demand import PodDemand
from shared.informer import object_key
from shared.requirements import Requirements
from shared.resources import EMPTY, Resources
from shared.topologyspread import SpreadConstraint

Obj = dict[str, Any]
NODES = ("n1", "n2", "n3")


def node(name: str, zone: str) -> Obj:
    return {
        "metadata": {
            "name": name,
            "labels": {"topology.kubernetes.io/zone": zone, "jitnode.io/nodepool": "default"},
        },
        "spec": {},
        "status": {
            "allocatable": {"cpu": "4", "memory": "16Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


CLUSTER = {n: node(n, z) for n, z in zip(NODES, ("a", "b", "c"), strict=True)}
ANTI = {
    "podAntiAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [
            {"topologyKey": "topology.kubernetes.io/zone", "labelSelector": {"matchLabels": {"app": "db"}}}
        ]
    }
}


@st.composite
def pods_(draw: st.DrawFn) -> Obj:
    name = draw(st.sampled_from(["p1", "p2", "p3", "p4", "p5"]))
    pod: Obj = {
        "metadata": {
            "name": name,
            "namespace": "default",
            "uid": f"{name}-{draw(st.sampled_from(['a', 'b']))}",
            "labels": {"app": draw(st.sampled_from(["web", "db"]))},
        },
        "spec": {
            "containers": [
                {"name": "c", "resources": {"requests": {"cpu": draw(st.sampled_from(["100m", "1", "x"]))}}}
            ]
        },
        "status": {
            "phase": draw(st.sampled_from(["Pending", "Running", "Succeeded"])),
            "conditions": [{"type": "Ready", "status": draw(st.sampled_from(["True", "False"]))}],
        },
    }
    bound = draw(st.sampled_from([None, *NODES]))
    if bound:
        pod["spec"]["nodeName"] = bound
    if draw(st.booleans()):
        pod["spec"]["affinity"] = ANTI
    if draw(st.booleans()):
        pod["metadata"]["ownerReferences"] = [{"kind": "DaemonSet", "name": "ds", "controller": True}]
    if draw(st.booleans()):
        pod["metadata"]["deletionTimestamp"] = "2026-12-01T00:00:00Z"
    if draw(st.booleans()):
        pod["metadata"]["annotations"] = {
            "jitnode.io/do-not-disrupt": draw(st.sampled_from(["true", "5m", "x"]))
        }
    return pod


events = st.lists(st.tuples(st.sampled_from(["added", "modified", "deleted"]), pods_()), max_size=25)


def replay(sequence: list[tuple[str, Obj]]) -> tuple[PodIndex, dict[str, Obj]]:
    """The events applied to an index and to a plain store, as an informer delivers them."""
    index = PodIndex()
    store: dict[str, Obj] = {}
    for kind, pod in sequence:
        key = object_key(pod)
        previous = store.get(key)
        if kind == "deleted":
            if previous is not None:
                del store[key]
                index.on_deleted(pod)
        elif previous is None:
            store[key] = pod
            index.on_added(pod)
        else:
            store[key] = pod
            index.on_modified(previous, pod)
    return index, store


def walk_by_node(store: Mapping[str, Obj]) -> dict[str, list[Obj]]:
    """What ``LauncherState.pods_by_node`` computed before the index: a walk of every pod."""
    out: dict[str, list[Obj]] = {}
    for pod in store.values():
        bound = pod["spec"].get("nodeName")
        if bound:
            out.setdefault(bound, []).append(pod)
    return out


def _keys(by_node: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, set[str]]:
    return {n: {object_key(p) for p in here} for n, here in by_node.items() if here}


def _requests(pod: Obj) -> Resources:
    try:
        return pods.effective_requests(pod)
    except Exception:
        return EMPTY


def constrained(uid: str) -> PodDemand:
    spread = SpreadConstraint(
        "topology.kubernetes.io/zone", 1, True, Requirements.from_labels({"app": "web"})
    )
    return PodDemand(
        uid,
        "default",
        uid,
        Resources(cpu=100),
        (Requirements(),),
        (),
        0,
        None,
        None,
        0.0,
        "unschedulable",
        spread=(spread,),
    )


@settings(max_examples=200, deadline=None)
@given(events)
def test_views_equal_the_walks_they_replace(sequence: list[tuple[str, Obj]]) -> None:
    index, store = replay(sequence)
    walked = walk_by_node(store)
    assert set(index.pods()) == set(store)
    assert _keys(index.by_node()) == _keys(walked)
    for name in NODES:
        assert {object_key(p) for p in index.on_node(name)} == {object_key(p) for p in walked.get(name, [])}
        live = sum((_requests(p) for p in walked.get(name, []) if not pods.is_terminal(p)), EMPTY)
        assert index.requested(name) == live
    # Each pure function gives the same answer from the index's narrow view as from every pod.
    assert daemonset_overhead(CLUSTER, index.daemons_by_node()) == daemonset_overhead(CLUSTER, walked)
    assert occupied_zones(CLUSTER, index.repelling_by_node()) == occupied_zones(CLUSTER, walked)
    assert node_rooms(CLUSTER, index.by_node(), index.requested) == node_rooms(CLUSTER, walked)
    for demand in ({}, {"q": constrained("q")}):
        indexed_nodes, indexed_pods = indexed_topology_view(CLUSTER, index, demand)
        walked_nodes, walked_pods = topology_view(CLUSTER, walked, demand)
        assert indexed_nodes == walked_nodes
        assert Counter(map(repr, indexed_pods)) == Counter(map(repr, walked_pods))
    assert starting_pods(index.not_ready(), ["x"]) == starting_pods(store.values(), ["x"])
    annotated = {
        k for k, p in store.items() if "jitnode.io/do-not-disrupt" in p["metadata"].get("annotations", {})
    }
    assert {object_key(p) for p in index.opted_out()} == annotated
    bound = {
        p["metadata"]["uid"]: _requests(p)
        for here in walked.values()
        for p in here
        if not pods.is_terminal(p)
    }
    assert dict(index.bound_requests()) == bound
    for uid in {p["metadata"]["uid"] for _, p in sequence}:
        assert index.is_bound(uid) == any(
            p["metadata"]["uid"] == uid and p["spec"].get("nodeName") for p in store.values()
        )


@settings(max_examples=100, deadline=None)
@given(events, pods_())
def test_a_nodes_generation_changes_with_its_pods_only(sequence: list[tuple[str, Obj]], pod: Obj) -> None:
    index, store = replay(sequence)
    before = {n: index.generation(n) for n in NODES}
    key = object_key(pod)
    old = store.get(key)
    if old is None:
        index.on_added(pod)
    else:
        index.on_modified(old, pod)
    touched = {pod["spec"].get("nodeName"), (old or {}).get("spec", {}).get("nodeName")} - {None}
    for name in NODES:
        if name in touched:
            assert index.generation(name) not in (before[name],) or not index.on_node(name)
        else:
            assert index.generation(name) == before[name]


def test_a_plan_reads_no_bound_pod_when_no_pending_pod_has_constraints() -> None:
    """With 2,000 plain bound pods and one repelling pod, the topology view holds one pod."""
    index = PodIndex()
    for i in range(2000):
        index.on_added(
            {
                "metadata": {
                    "name": f"p{i}",
                    "namespace": "default",
                    "uid": f"u{i}",
                    "labels": {"app": "web"},
                },
                "spec": {"nodeName": NODES[i % 3], "containers": []},
                "status": {"phase": "Running"},
            }
        )
    index.on_added(
        {
            "metadata": {"name": "db", "namespace": "default", "uid": "db", "labels": {"app": "db"}},
            "spec": {"nodeName": "n1", "affinity": ANTI},
            "status": {"phase": "Running"},
        }
    )
    _, running = indexed_topology_view(CLUSTER, index, {})
    assert [p.labels for p in running] == [{"app": "db"}]
    assert len(index.running()) == 2001
    assert index.requested("n1") == Resources(pods=668)


@st.composite
def nodes_(draw: st.DrawFn) -> Obj:
    name = draw(st.sampled_from(["a", "b", "c"]))
    out: Obj = {"metadata": {"name": name}, "spec": {}}
    if draw(st.booleans()):  # an instance is one node's: its id names it
        out["spec"]["providerID"] = f"aws:///z/i-{name}-{draw(st.sampled_from(['1', '2']))}"
    return out


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), nodes_()), max_size=20))
def test_nodes_by_provider_id_equal_a_walk(sequence: list[tuple[bool, Obj]]) -> None:
    index = _ByProviderId()
    store: dict[str, Obj] = {}
    for delete, obj in sequence:
        key = object_key(obj)
        if delete:
            if key in store:
                index.on_deleted(store.pop(key))
        elif key in store:
            index.on_modified(store[key], obj)
            store[key] = obj
        else:
            index.on_added(obj)
            store[key] = obj
    walked = {n["spec"]["providerID"]: n for n in store.values() if n["spec"].get("providerID")}
    assert index.nodes == walked
