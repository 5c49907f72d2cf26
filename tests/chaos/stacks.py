"""The stack the API-server and EC2 fault tests run on: the harness's, with a small catalogue.

Four xlarge types (4 vCPU, three seed pods each) as the process-kill tests use: plan sizes are
known, and the launcher warms its catalogue in a fraction of a second instead of ~5 s, which a
dozen fault tests would otherwise pay each.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final

from kubernetes_asyncio import client

from localcluster.demo.seed import load_seed
from localcluster.ec2 import MotoEC2
from localcluster.stack import JitnodeStack, StackSettings
from tests.chaos.conftest import LEAK_GRACE, LEAK_INTERVAL
from tests.e2e.test_provisioning import inflate

INSTANCE_TYPES: Final = ("c5.xlarge", "m5.xlarge", "c6i.xlarge", "m6i.xlarge")
NAMESPACE: Final = "default"
# Seven seed pods: three nodes (3 + 3 + 1), so several launches run at once under each fault.
REPLICAS: Final = 7
APP: Final = {"app": "inflate"}


def settings(**overrides: Any) -> StackSettings:
    base = StackSettings(leak_grace=LEAK_GRACE, leak_interval=LEAK_INTERVAL, instance_types=INSTANCE_TYPES)
    return dataclasses.replace(base, **overrides)


@asynccontextmanager
async def seeded_stack(moto: MotoEC2, stack_settings: StackSettings) -> AsyncIterator[JitnodeStack]:
    """jitnode on the local cluster with the seed's EC2NodeClass and NodePool applied."""
    async with JitnodeStack(stack_settings, ec2=moto) as running:
        seed = load_seed(running.cluster.network.cluster)
        await running.apply_nodeclass(seed.nodeclass)
        await running.apply_nodepool(seed.nodepool)
        yield running


async def scale_up(stack: JitnodeStack, replicas: int = REPLICAS) -> None:
    """Create the seed's inflate Deployment and wait until its pods exist (pending or better)."""
    assert stack.api is not None
    apps: Any = client.AppsV1Api(stack.api)
    await apps.create_namespaced_deployment(NAMESPACE, inflate(replicas))
    await stack.cluster.wait_for(lambda: _pods_exist(stack, replicas), timeout=30)


async def claims(stack: JitnodeStack) -> list[dict[str, Any]]:
    assert stack.api is not None
    listed = await client.CustomObjectsApi(stack.api).list_cluster_custom_object(
        "jitnode.io", "v1", "nodeclaims"
    )
    items: list[dict[str, Any]] = listed["items"]
    return items


async def _pods_exist(stack: JitnodeStack, replicas: int) -> bool:
    assert stack.api is not None
    selector = ",".join(f"{k}={v}" for k, v in APP.items())
    pods = await client.CoreV1Api(stack.api).list_namespaced_pod(NAMESPACE, label_selector=selector)
    return len(pods.items) >= replicas
