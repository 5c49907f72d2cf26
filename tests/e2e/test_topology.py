"""End to end: the planner places nodes where topology spread and pod affinity let pods run.

A zone-spread Deployment scaled from zero must get nodes in every zone its skew needs, in one
plan: the scheduler only sees the zones of nodes that exist, so nodes bought in one zone would
hold every replica there (issue 13). With the planner's topology support switched off that is
what happens, which shows the test can fail. A Deployment that must share a zone with a running
pod gets its node in that zone at once, not in the cheapest one the scheduler then refuses.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest
from kubernetes_asyncio import client

import launcher.provisioning.inputs
from launcher.planner import plan
from localcluster.stack import JitnodeStack
from shared import labels

pytestmark = pytest.mark.slow

IMAGE = "public.ecr.aws/eks-distro/kubernetes/pause:3.7"


def deployment(
    name: str,
    replicas: int,
    *,
    cpu: str = "1",
    spread: list[dict[str, Any]] | None = None,
    affinity: dict[str, Any] | None = None,
    node_selector: dict[str, str] | None = None,
) -> dict[str, Any]:
    pod_labels = {"app": name}
    spec: dict[str, Any] = {
        "nodeSelector": {"intent": "apps", **(node_selector or {})},
        "containers": [
            {"name": name, "image": IMAGE, "resources": {"requests": {"cpu": cpu, "memory": "1.5Gi"}}}
        ],
    }
    if spread:
        spec["topologySpreadConstraints"] = spread
    if affinity:
        spec["affinity"] = affinity
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": pod_labels},
            "template": {"metadata": {"labels": pod_labels}, "spec": spec},
        },
    }


async def running_zones(stack: JitnodeStack, app: str, replicas: int) -> list[str] | None:
    """The zone of each running replica of ``app``, once all ``replicas`` run."""
    assert stack.api is not None
    core = client.CoreV1Api(stack.api)
    pods = (await core.list_namespaced_pod("default", label_selector=f"app={app}")).items
    running = [p for p in pods if p.status.phase == "Running" and p.spec.node_name]
    if len(running) != replicas:
        return None
    zones = {n.metadata.name: n.metadata.labels[labels.ZONE] for n in (await core.list_node()).items}
    return [zones[p.spec.node_name] for p in running]


async def claims(stack: JitnodeStack) -> list[dict[str, Any]]:
    assert stack.api is not None
    custom = client.CustomObjectsApi(stack.api)
    items: list[dict[str, Any]] = (await custom.list_cluster_custom_object("jitnode.io", "v1", "nodeclaims"))[
        "items"
    ]
    return items


@pytest.mark.parametrize("topology_aware", [True, False], ids=["spread", "spread-off"])
async def test_a_zone_spread_deployment_scaled_from_zero_runs_in_every_zone(
    stack: JitnodeStack, monkeypatch: pytest.MonkeyPatch, topology_aware: bool
) -> None:
    monkeypatch.setattr(launcher.provisioning.inputs, "plan", partial(plan, topology_aware=topology_aware))
    api = stack.api
    assert api is not None
    apps: Any = client.AppsV1Api(api)
    zones = sorted(stack.cluster.network.subnets)  # the seed's three zones
    spread = [
        {
            "maxSkew": 1,
            "topologyKey": labels.ZONE,
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"app": "spread"}},
        }
    ]
    await apps.create_namespaced_deployment("default", deployment("spread", 0, spread=spread))
    await apps.patch_namespaced_deployment_scale("spread", "default", {"spec": {"replicas": 6}})

    placed = await stack.cluster.wait_for(lambda: running_zones(stack, "spread", 6), timeout=60)
    assert placed is not None
    if topology_aware:
        assert sorted(set(placed)) == zones
        # One plan bought a node per zone, no more: nothing was launched for a refused replica.
        assert sorted(c["metadata"]["labels"].get(labels.ZONE, "") for c in await claims(stack)) == zones
    else:
        # The failure issue 13 found: nodes bought where they are cheapest, all replicas there.
        assert len(set(placed)) < len(zones)


async def test_required_pod_affinity_with_a_running_pod_is_served_in_one_plan(stack: JitnodeStack) -> None:
    api = stack.api
    assert api is not None
    apps: Any = client.AppsV1Api(api)
    # The pod to join runs in the zone the planner would not pick by itself (it is not the
    # cheapest first), on a node it fills: the replicas need a node of their own in that zone.
    zone = sorted(stack.cluster.network.subnets)[1]
    await apps.create_namespaced_deployment(
        "default", deployment("db", 1, cpu="3", node_selector={labels.ZONE: zone})
    )
    assert await stack.cluster.wait_for(lambda: running_zones(stack, "db", 1), timeout=60) == [zone]
    before = {c["metadata"]["name"] for c in await claims(stack)}
    affinity = {
        "podAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": labels.ZONE}
            ]
        }
    }
    await apps.create_namespaced_deployment("default", deployment("app", 3, affinity=affinity))

    # Well inside the 30 s a refused replica would wait before its claim's room is given up.
    placed = await stack.cluster.wait_for(lambda: running_zones(stack, "app", 3), timeout=25)
    assert placed == [zone] * 3
    made = [c for c in await claims(stack) if c["metadata"]["name"] not in before]
    assert [c["metadata"]["labels"].get(labels.ZONE) for c in made] == [zone]
