"""End to end: replicas that repel each other (required pod anti-affinity) get a node each at once.

Without the exclusive key on their demand the planner would pack them onto one node, the
scheduler would bind one of them there and refuse the rest, and each refusal would cost
another launch; with it, one plan launches one node per replica.
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes_asyncio import client

from localcluster.stack import JitnodeStack
from shared import labels

pytestmark = pytest.mark.slow

REPLICAS = 4


def web(replicas: int) -> dict[str, Any]:
    pod_labels = {"app": "web"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
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
                                {"labelSelector": {"matchLabels": pod_labels}, "topologyKey": labels.HOSTNAME}
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
