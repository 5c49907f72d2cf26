"""End to end on the local cluster: scale-down stabilisation keeps the nodes a dip would remove.

The seed's pool gets ``stabilizationWindow: 15s`` and a ``consolidateAfter`` of 2 s (the seed's
30 s would hide the difference and make the test long). inflate runs 6 pods, drops to 0 for
longer than consolidateAfter, and comes back: its pods run on the nodes they left, with no new
NodeClaim (without the window, those empty nodes go 2 s into the dip). Dropped to 0 again, the
nodes go once the window has passed, not before.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from kubernetes_asyncio import client

from localcluster.stack import JitnodeStack
from shared.api.group import API_GROUP, API_VERSION
from tests.e2e.test_provisioning import inflate, patch_seed_pool

pytestmark = pytest.mark.slow

REPLICAS = 6
WINDOW_S = 15
DIP_S = 5.0  # longer than consolidateAfter (2 s) and a few disruption rounds


async def _claims(stack: JitnodeStack) -> set[str]:
    assert stack.api is not None
    listed = await client.CustomObjectsApi(stack.api).list_cluster_custom_object(
        API_GROUP, API_VERSION, "nodeclaims"
    )
    return {c["metadata"]["name"] for c in listed["items"] if not c["metadata"].get("deletionTimestamp")}


async def _scale(stack: JitnodeStack, replicas: int) -> None:
    apps: Any = client.AppsV1Api(stack.api)  # bodies as dicts, as the API takes them
    await apps.patch_namespaced_deployment_scale("inflate", "default", {"spec": {"replicas": replicas}})


async def _running_on(stack: JitnodeStack) -> set[str] | None:
    """The nodes inflate's pods run on once all ``REPLICAS`` are Running (None before)."""
    assert stack.api is not None
    got = await client.CoreV1Api(stack.api).list_namespaced_pod("default", label_selector="app=inflate")
    live = [p for p in got.items if p.metadata.deletion_timestamp is None]
    if len(live) != REPLICAS or any(p.status.phase != "Running" for p in live):
        return None
    return {p.spec.node_name for p in live}


async def _pods_gone(stack: JitnodeStack) -> bool:
    assert stack.api is not None
    got = await client.CoreV1Api(stack.api).list_namespaced_pod("default", label_selector="app=inflate")
    return not got.items


async def test_a_dip_within_the_window_keeps_the_nodes_and_they_go_after_it(stack: JitnodeStack) -> None:
    assert stack.api is not None
    window = {"consolidateAfter": "2s", "stabilizationWindow": f"{WINDOW_S}s"}
    await patch_seed_pool(stack, {"spec": {"disruption": window}})
    apps: Any = client.AppsV1Api(stack.api)
    await apps.create_namespaced_deployment("default", inflate(REPLICAS))
    await stack.cluster.wait_for(lambda: _running_on(stack), timeout=120, interval=0.3)
    claims = await _claims(stack)
    assert claims

    # The dip: every pod gone for longer than consolidateAfter, then back.
    await _scale(stack, 0)
    await stack.cluster.wait_for(lambda: _pods_gone(stack), timeout=30, interval=0.2)
    await asyncio.sleep(DIP_S)
    assert await _claims(stack) == claims, "a node was removed within the stabilization window"
    await _scale(stack, REPLICAS)
    await stack.cluster.wait_for(lambda: _running_on(stack), timeout=30, interval=0.2)
    assert await _claims(stack) == claims, "capacity was launched again for the pods of the dip"

    # Down for good: the nodes stay until the window has passed, then go.
    await _scale(stack, 0)
    down = time.monotonic()
    await stack.cluster.wait_for(lambda: _pods_gone(stack), timeout=30, interval=0.2)

    async def consolidated() -> bool:
        return not await _claims(stack) & claims

    await stack.cluster.wait_for(consolidated, timeout=WINDOW_S + 90, interval=0.5)
    assert time.monotonic() - down >= WINDOW_S - 2, "the nodes went before the window had passed"
