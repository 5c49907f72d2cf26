"""End to end: replicas that repel each other (required pod anti-affinity) get a node each at once.

Without the exclusive key on their demand the planner would pack them onto one node, the
scheduler would bind one of them there and refuse the rest, and each refusal would cost
another launch; with it, one plan launches one node per replica. Replicas kept a zone apart
get a node in a zone of their own each; one more replica than zones is reported, not launched
for again and again into a zone the scheduler will never accept.
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes_asyncio import client

from localcluster.stack import JitnodeStack
from shared import labels

pytestmark = pytest.mark.slow

REPLICAS = 4


def web(replicas: int, topology_key: str = labels.HOSTNAME, name: str = "web") -> dict[str, Any]:
    pod_labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": pod_labels},
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {
                    "nodeSelector": {"intent": "apps"},
                    "affinity": {
                        "podAntiAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": [
                                {"labelSelector": {"matchLabels": pod_labels}, "topologyKey": topology_key}
                            ]
                        }
                    },
                    "containers": [
                        {
                            "name": "web",
                            "image": "public.ecr.aws/eks-distro/kubernetes/pause:3.7",
                            "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}},
                        }
                    ],
                },
            },
        },
    }


async def test_replicas_with_hostname_anti_affinity_get_a_node_each_in_one_plan(stack: JitnodeStack) -> None:
    api = stack.api
    assert api is not None
    core = client.CoreV1Api(api)
    apps: Any = client.AppsV1Api(api)
    await apps.create_namespaced_deployment("default", web(REPLICAS))

    async def all_running() -> list[Any] | None:
        pods = (await core.list_namespaced_pod("default", label_selector="app=web")).items
        running = [p for p in pods if p.status.phase == "Running" and p.spec.node_name]
        return running if len(running) == REPLICAS else None

    # Well inside the 30 s a refused pod would wait before its claim's room is given up.
    running = await stack.cluster.wait_for(all_running, timeout=25)
    assert len({p.spec.node_name for p in running}) == REPLICAS

    custom = client.CustomObjectsApi(api)
    claims = (await custom.list_cluster_custom_object("jitnode.io", "v1", "nodeclaims"))["items"]
    # One claim per replica, no more: nothing was launched for a pod the scheduler refused.
    assert len(claims) == REPLICAS


async def test_replicas_kept_a_zone_apart_get_a_zone_each_and_the_extra_one_is_reported(
    stack: JitnodeStack,
) -> None:
    api = stack.api
    assert api is not None
    core = client.CoreV1Api(api)
    apps: Any = client.AppsV1Api(api)
    zones = sorted(stack.cluster.network.subnets)  # the seed's three zones
    await apps.create_namespaced_deployment("default", web(len(zones) + 1, labels.ZONE, name="zonal"))

    async def settled() -> tuple[list[Any], list[Any]] | None:
        pods = (await core.list_namespaced_pod("default", label_selector="app=zonal")).items
        running = [p for p in pods if p.status.phase == "Running" and p.spec.node_name]
        pending = [p for p in pods if not p.spec.node_name]
        # The launcher reports the replica it could not place; the scheduler may then bind that
        # one and leave another pending, so the report is looked for on any replica.
        reported = [
            e
            for p in pods
            for e in await _events_of(core, p.metadata.name)
            if "zone apart" in (e.message or "")
        ]
        return (running, pending) if len(running) == len(zones) and len(pending) == 1 and reported else None

    running, _ = await stack.cluster.wait_for(settled, timeout=25)
    node_zones = {n.metadata.name: n.metadata.labels[labels.ZONE] for n in (await core.list_node()).items}
    assert sorted(node_zones[p.spec.node_name] for p in running) == zones
    custom = client.CustomObjectsApi(api)
    claims = (await custom.list_cluster_custom_object("jitnode.io", "v1", "nodeclaims"))["items"]
    assert len(claims) == len(zones)  # nothing launched for the replica no zone can take


async def _events_of(core: Any, pod_name: str) -> list[Any]:
    events = await core.list_namespaced_event("default", field_selector=f"involvedObject.name={pod_name}")
    return list(events.items)
