"""End to end: ``reuseOnScaleIn`` returns a consolidated node to the warm pool, and the next
scale-up starts it instead of launching a new one.

The seed's pool gets ``warmPool: {size: 0, maxSize: 2, state: Stopped, reuseOnScaleIn: true}``
and a ``consolidateAfter`` of 2 s. inflate's two pods get a cold node (CreateFleet; with reuse the
pool launches no fill above its size of 0). Scaled to 0, the empty node is drained and, instead
of being terminated, goes back to the pool: its claim turns warm, its Node is removed and its
instance stopped. Scaled to 2 again, the pods run on that same instance, started with
StartInstances, and nothing is launched. Teardown leaves no instance.
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes_asyncio import client

from localcluster.ec2 import MotoEC2
from shared import labels
from tests.e2e.test_provisioning import inflate
from tests.e2e.test_warm_pool import (
    _claims,
    _condition,
    _ours,
    _tags,
    tear_down_and_check_nothing_left,
    warm_stack,
)

pytestmark = pytest.mark.slow


async def test_a_consolidated_node_goes_back_to_the_pool_and_serves_the_next_scale_up(
    moto_server: MotoEC2,
) -> None:
    warm_pool = {"size": 0, "maxSize": 2, "state": "Stopped", "reuseOnScaleIn": True}
    async with warm_stack(moto_server, warm_pool, consolidate_after="2s") as (stack, calls):
        api = stack.api
        assert api is not None
        core = client.CoreV1Api(api)
        apps: Any = client.AppsV1Api(api)

        async def running() -> list[Any] | None:
            pods = (await core.list_namespaced_pod("default", label_selector="app=inflate")).items
            ok = len(pods) == 2 and all(p.status.phase == "Running" and p.spec.node_name for p in pods)
            return pods if ok else None

        # (1) A cold node for the pods; no fill beside it.
        await apps.create_namespaced_deployment("default", inflate(2))
        await stack.cluster.wait_for(running, timeout=60)
        serving = await _ours(stack)
        assert serving
        assert all(i["State"]["Name"] == "running" for i in serving)
        assert not [c for c in await _claims(api) if c["metadata"]["labels"].get(labels.WARM_LABEL)]
        serving_ids = {i["InstanceId"] for i in serving}

        # (2) Scaled to 0: the node is drained and parked in the pool, not terminated.
        calls.clear()
        await apps.patch_namespaced_deployment_scale("inflate", "default", {"spec": {"replicas": 0}})

        async def parked() -> list[dict[str, Any]] | None:
            instances = await _ours(stack)
            claims = await _claims(api)
            warm = [
                c
                for c in claims
                if c["metadata"]["labels"].get(labels.WARM_LABEL) == "true"
                and _condition(c, "Warm").get("reason") == "Stopped"
            ]
            stopped = [i for i in instances if i["State"]["Name"] == "stopped"]
            return stopped if warm and stopped and not (await core.list_node()).items else None

        stopped = await stack.cluster.wait_for(parked, timeout=90)
        assert {i["InstanceId"] for i in stopped} <= serving_ids, "a new instance was parked, not the node"
        assert "TerminateInstances" not in calls
        assert "CreateFleet" not in calls
        reused = {i["InstanceId"] for i in stopped}
        reused_claims = {_tags(i)[labels.TAG_NODECLAIM] for i in stopped}
        assert reused_claims <= {c["metadata"]["name"] for c in await _claims(api)}

        # (3) Scaled up again: the reused instance starts; nothing is launched.
        calls.clear()
        await apps.patch_namespaced_deployment_scale("inflate", "default", {"spec": {"replicas": 2}})
        pods = await stack.cluster.wait_for(running, timeout=60)
        assert "StartInstances" in calls
        assert "CreateFleet" not in calls
        nodes = {n.metadata.name: n for n in (await core.list_node()).items}
        started = {nodes[p.spec.node_name].spec.provider_id.rsplit("/", 1)[-1] for p in pods}
        assert started <= reused

        # Teardown: nothing left, running or stopped.
        await tear_down_and_check_nothing_left(stack)
