"""Demand reaches the launcher with every extender gone: its own pod watch is the second source."""

from __future__ import annotations

import time
from typing import Any

import pytest
from kubernetes_asyncio import client

from launcher import metrics
from localcluster.stack import JitnodeStack
from tests.e2e.test_provisioning import inflate

pytestmark = pytest.mark.slow


def _planned(source: str) -> float:
    value = metrics.PLANNED_PODS.labels(source)._value.get()
    return float(value)


async def test_pods_run_with_every_extender_stopped(stack: JitnodeStack) -> None:
    assert stack.api is not None
    assert stack.extender is not None
    await stack.extender.stop()  # the scheduler's extender is ignorable: scheduling goes on
    stack.extender = None
    before = _planned("pod-watch")
    apps: Any = client.AppsV1Api(stack.api)
    core = client.CoreV1Api(stack.api)
    custom = client.CustomObjectsApi(stack.api)
    await apps.create_namespaced_deployment("default", inflate(4))

    async def unschedulable() -> bool:
        pods = (await core.list_namespaced_pod("default", label_selector="app=inflate")).items
        return any(
            c.type == "PodScheduled" and c.reason == "Unschedulable"
            for p in pods
            for c in (p.status.conditions or [])
        )

    async def claimed() -> bool:
        listed = await custom.list_cluster_custom_object("jitnode.io", "v1", "nodeclaims")
        return bool(listed["items"])

    await stack.cluster.wait_for(unschedulable, timeout=30, interval=0.05)
    verdict = time.monotonic()
    await stack.cluster.wait_for(claimed, timeout=30, interval=0.05)
    # The scheduler's verdict to a NodeClaim, through the launcher's watch alone.
    assert time.monotonic() - verdict < 2.0

    async def running() -> bool:
        pods = (
            await client.CoreV1Api(stack.api).list_namespaced_pod("default", label_selector="app=inflate")
        ).items
        return len(pods) == 4 and all(p.status.phase == "Running" for p in pods)

    await stack.cluster.wait_for(running, timeout=60)
    assert _planned("pod-watch") - before == 4, "the launcher's own watch fed the plan"
