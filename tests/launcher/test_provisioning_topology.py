"""The shell's part of topology: nodes and running pods read for the planner (``topology_view``),
and ``build_plan`` handing them over so running pods count."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, cast

from launcher.planner.inputs import ClusterNode, RunningPod
from launcher.planner.offerings import UnavailableOfferings
from launcher.podindex import PodIndex
from launcher.provisioning.inputs import build_plan, topology_view
from launcher.state import LauncherState
from shared import labels
from shared.api.nodepool import NodePool
from shared.podaffinity import PodAffinityTerm
from shared.requirements import Requirements
from shared.taints import Taint
from shared.topologyspread import SpreadConstraint
from tests.launcher.planner_fixtures import plain_instance_type, pod

ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")
WEB = {"app": "web"}
ANTI = {
    "podAntiAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [
            {"topologyKey": labels.ZONE, "labelSelector": {"matchLabels": {"app": "web"}}}
        ]
    }
}


def api_node(name: str, zone: str, taints: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {labels.ZONE: zone, labels.HOSTNAME: name}},
        "spec": {"taints": taints or []},
        "status": {"allocatable": {"cpu": "4", "memory": "16Gi", "pods": "58"}},
    }


def api_pod(name: str, node: str, pod_labels: dict[str, str], **spec: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "default", "uid": name, "labels": pod_labels}
    phase = spec.pop("phase", "Running")
    if spec.pop("deleting", False):
        meta["deletionTimestamp"] = "2026-12-02T00:00:00Z"
    return {
        "metadata": meta,
        "spec": {"nodeName": node, "containers": [{"name": "c"}], **spec},
        "status": {"phase": phase},
    }


NODES = {
    "n-a": api_node("n-a", ZONES[0]),
    "n-b": api_node("n-b", ZONES[1], [{"key": "k", "effect": "NoSchedule"}]),
}
PODS = {
    "n-a": [
        api_pod("web-1", "n-a", WEB),
        api_pod("done", "n-a", WEB, phase="Succeeded"),
        api_pod("leaving", "n-a", WEB, deleting=True),
    ],
    "n-b": [api_pod("db-1", "n-b", {"app": "db"}, affinity=ANTI)],
}
SPREAD = SpreadConstraint(labels.ZONE, 1, True, Requirements.from_labels(WEB))


def constrained(uid: str) -> Any:
    return replace(pod(uid), labels=WEB, spread=(SPREAD,))


def test_every_node_is_read_with_its_labels_and_taints() -> None:
    nodes, _ = topology_view(NODES, PODS, {})
    assert nodes == [
        ClusterNode("n-a", {labels.ZONE: ZONES[0], labels.HOSTNAME: "n-a"}, ()),
        ClusterNode(
            "n-b", {labels.ZONE: ZONES[1], labels.HOSTNAME: "n-b"}, (Taint(key="k", effect="NoSchedule"),)
        ),
    ]


def test_all_live_pods_are_read_when_pending_pods_have_constraints() -> None:
    _, running = topology_view(NODES, PODS, {"p": constrained("p")})
    term = PodAffinityTerm(labels.ZONE, Requirements.from_labels(WEB), frozenset({"default"}))
    assert running == [
        RunningPod("default", WEB, "n-a"),
        RunningPod("default", {"app": "db"}, "n-b", (term,)),
    ]


def test_only_pods_that_repel_others_are_read_when_none_has_constraints() -> None:
    _, running = topology_view(NODES, PODS, {"p": pod("p")})
    assert [p.labels for p in running] == [{"app": "db"}]


class _State:
    """What build_plan reads of a LauncherState."""

    def __init__(self, nodes: dict[str, Any], pods_by_node: dict[str, list[Any]]) -> None:
        self._nodes = nodes
        self._pods = pods_by_node
        self.pod_index = PodIndex.of([p for here in pods_by_node.values() for p in here])
        pool = {
            "apiVersion": "jitnode.io/v1",
            "kind": "NodePool",
            "metadata": {"name": "default"},
            "spec": {
                "template": {
                    "spec": {
                        "nodeClassRef": {"group": "jitnode.io", "kind": "EC2NodeClass", "name": "default"}
                    }
                }
            },
        }
        self._pools = {"default": NodePool.from_api(pool)}

    def nodepools(self) -> dict[str, NodePool]:
        return self._pools

    def nodeclaims(self) -> dict[str, Any]:
        return {}

    def nodes(self) -> dict[str, Any]:
        return self._nodes

    def pods_by_node(self) -> dict[str, list[Any]]:
        return self._pods

    def pods(self) -> dict[str, Any]:
        return {}


def test_build_plan_counts_running_pods_for_a_spread() -> None:
    catalogue = {"m5.large": plain_instance_type("m5.large", 2, 8, 0.096, zones=ZONES)}
    nodes = {"n-a": api_node("n-a", ZONES[0]), "n-b": api_node("n-b", ZONES[1])}
    pods = {"n-a": [api_pod("web-1", "n-a", WEB)], "n-b": [api_pod("web-2", "n-b", WEB)]}
    demand = {"p": constrained("p")}
    result, _ = build_plan(
        demand=demand,
        state=cast(LauncherState, _State(nodes, pods)),
        catalogue=catalogue,
        unavailable=UnavailableOfferings(),
    )
    assert [c.zones for c in result.claims] == [(ZONES[2],)]  # a and b already hold one each
