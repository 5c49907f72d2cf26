"""End to end: a NodePool's warm pool keeps stopped instances, and a scale-up starts one.

The seed's pool gets ``warmPool: {size: 2, state: ...}``. jitnode launches two warm claims
(CreateFleet, like any claim); each joins once, is cordoned, and (Stopped, Hibernated) its Node
is removed and its instance stopped, or (Running) it stays a cordoned Node. A launcher restarted
then keeps them as they are. The inflate Deployment scales to 2 pods: the planner covers them
with a warm instance, which is started (StartInstances, no CreateFleet before the pods run) and
rejoins after the kubelet's boot-from-stopped delay, or (Running) is uncordoned. The pool then
refills in the background. Teardown deletes the pool and every claim; no instance is left.

EC2 calls are observed with a botocore event hook on the launcher's own client, and moto's state.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from typing import Any, Final

import pytest
from kubernetes_asyncio import client

from localcluster.ec2 import MotoEC2
from localcluster.kubelet import KubeletConfig
from localcluster.stack import JitnodeStack, StackSettings
from shared import labels
from tests.e2e.test_provisioning import inflate

pytestmark = pytest.mark.slow

TYPES: Final = ("c5.xlarge", "m5.xlarge", "c5.2xlarge", "m5.2xlarge", "r5.xlarge")
CUSTOM: Final = ("jitnode.io", "v1")
BOOT_FROM_STOPPED: Final = 0.5


def _tags(instance: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in instance.get("Tags", [])}


async def _ours(stack: JitnodeStack) -> list[dict[str, Any]]:
    """The cluster's instances in moto, in any state but terminated."""
    every = await asyncio.to_thread(stack.cluster.ec2.instances)
    return [
        i
        for i in every
        if i["State"]["Name"] != "terminated" and _tags(i).get(labels.TAG_CLUSTER) == stack.settings.cluster
    ]


async def _claims(api: client.ApiClient) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (
        await client.CustomObjectsApi(api).list_cluster_custom_object(*CUSTOM, "nodeclaims")
    )["items"]
    return items


@contextlib.asynccontextmanager
async def warm_stack(
    moto_server: MotoEC2,
    warm_pool: dict[str, Any],
    consolidate_after: str | None = None,
    stack_type: type[JitnodeStack] = JitnodeStack,
) -> AsyncIterator[tuple[JitnodeStack, list[str]]]:
    """The stack with the seed's NodeClass and its pool given ``warm_pool`` (and a shorter
    ``consolidateAfter``), started from stopped in ``BOOT_FROM_STOPPED``; with the names of the EC2
    calls the launcher makes."""
    kubelet = dataclasses.replace(KubeletConfig.immediate(), boot_from_stopped_delay=BOOT_FROM_STOPPED)
    settings = StackSettings(instance_types=TYPES, kubelet=kubelet, leak_grace=5.0, leak_interval=2.0)
    async with stack_type(settings, ec2=moto_server) as stack:
        calls: list[str] = []
        _record_calls(stack, calls)
        spec: dict[str, Any] = {"warmPool": warm_pool}
        if consolidate_after is not None:
            spec["disruption"] = {"consolidateAfter": consolidate_after}
        await stack.apply_seed({"spec": spec})
        yield stack, calls


async def tear_down_and_check_nothing_left(stack: JitnodeStack) -> None:
    """Delete inflate (if any), the pool and every claim; then no instance may be left, running or
    stopped."""
    api = stack.api
    assert api is not None
    custom = client.CustomObjectsApi(api)
    apps: Any = client.AppsV1Api(api)
    if (await apps.list_namespaced_deployment("default")).items:
        await apps.delete_namespaced_deployment("inflate", "default")
    await custom.delete_cluster_custom_object(*CUSTOM, "nodepools", "default")
    for claim in await _claims(api):
        await custom.delete_cluster_custom_object(*CUSTOM, "nodeclaims", claim["metadata"]["name"])

    async def gone() -> bool:
        return not await _ours(stack) and not await _claims(api)

    await stack.cluster.wait_for(gone, timeout=60)


def _record_calls(stack: JitnodeStack, calls: list[str]) -> None:
    """Append the name of every EC2 call the (current) launcher makes to ``calls``."""
    assert stack.launcher is not None

    def record(**kwargs: Any) -> None:
        calls.append(kwargs["model"].name)

    stack.launcher.clients.ec2.meta.events.register("before-call.ec2", record)


@pytest.mark.parametrize("state", ["Stopped", "Hibernated", "Running"])
async def test_scale_up_is_served_by_a_warm_instance_and_nothing_leaks(
    moto_server: MotoEC2, state: str
) -> None:
    stops = state != "Running"
    parked_as = "stopped" if stops else "running"
    async with warm_stack(moto_server, {"size": 2, "maxSize": 2, "state": state}) as (stack, calls):
        api = stack.api
        assert api is not None
        custom = client.CustomObjectsApi(api)
        core = client.CoreV1Api(api)

        async def warm_status() -> dict[str, Any]:
            pool = await custom.get_cluster_custom_object(*CUSTOM, "nodepools", "default")
            result: dict[str, Any] = (pool.get("status") or {}).get("warmPool") or {}
            return result

        # (1) Two warm instances, joined once, then parked: stopped with no Node left behind, or
        # running as cordoned Nodes.
        async def parked() -> list[dict[str, Any]] | None:
            instances = await _ours(stack)
            waiting = [i for i in instances if i["State"]["Name"] == parked_as]
            if len(instances) != 2 or len(waiting) != 2 or (await warm_status()).get("warm") != 2:
                return None
            nodes = (await core.list_node()).items
            if stops:
                return waiting if not nodes else None
            cordoned = [
                n
                for n in nodes
                if n.spec.unschedulable and any(t.key == labels.WARM_TAINT for t in n.spec.taints or [])
            ]
            return waiting if len(cordoned) == 2 else None

        waiting = await stack.cluster.wait_for(parked, timeout=90)
        warm_ids = {i["InstanceId"] for i in waiting}
        claims = await _claims(api)
        assert {_tags(i)[labels.TAG_NODECLAIM] for i in waiting} == {c["metadata"]["name"] for c in claims}
        assert all(c["metadata"]["labels"].get(labels.WARM_LABEL) == "true" for c in claims)
        assert {_condition(c, "Warm").get("reason") for c in claims} == {state}
        assert calls.count("CreateFleet") == 2
        assert calls.count("StopInstances") == (2 if stops else 0)
        status = await warm_status()
        if stops:  # EBS only, far below the instances' price
            assert 0 < float(status["hourlyCost"]) < float(status["hourlyCostRunning"]) / 10
        else:
            assert float(status["hourlyCost"]) == float(status["hourlyCostRunning"]) > 0

        # (2) A restarted launcher reads the pool back from the claims: nothing launched or stopped.
        await stack.stop_launcher()
        await stack.start_launcher()
        assert stack.launcher is not None
        await asyncio.wait_for(stack.launcher.wait_ready(), 30)
        calls.clear()
        _record_calls(stack, calls)
        await asyncio.sleep(2.0)  # a few reconciles
        assert {i["InstanceId"] for i in await _ours(stack) if i["State"]["Name"] == parked_as} == warm_ids
        assert "CreateFleet" not in calls
        assert "TerminateInstances" not in calls

        # (3) Scale up: served by a warm instance (StartInstances when it was stopped), not by a
        # cold launch (CreateFleet only refills the pool).
        calls.clear()
        apps: Any = client.AppsV1Api(api)
        await apps.create_namespaced_deployment("default", inflate(2))

        async def running() -> list[Any] | None:
            pods = (await core.list_namespaced_pod("default", label_selector="app=inflate")).items
            ok = len(pods) == 2 and all(p.status.phase == "Running" and p.spec.node_name for p in pods)
            return pods if ok else None

        pods = await stack.cluster.wait_for(running, timeout=60)
        assert ("StartInstances" in calls) == stops
        served_by = {p.spec.node_name for p in pods}
        nodes = {n.metadata.name: n for n in (await core.list_node()).items}
        started = {nodes[name].spec.provider_id.rsplit("/", 1)[-1] for name in served_by}
        assert started <= warm_ids, "the pods run on a warm instance, not a new one"
        for name in served_by:
            assert not nodes[name].spec.unschedulable
            assert all(t.key != labels.WARM_TAINT for t in nodes[name].spec.taints or [])
        # Every CreateFleet so far refilled the pool: no claim but the warm ones (and the one
        # taken from them) exists, so none was launched cold for the pods.
        claims = await _claims(api)
        taken = [c for c in claims if c["metadata"]["labels"].get(labels.WARM_LABEL) != "true"]
        assert taken
        assert {c["status"]["instanceID"] for c in taken} <= warm_ids
        assert all(_condition(c, "Warm").get("reason") == "Activated" for c in taken)
        assert calls.count("CreateFleet") <= len(claims) - len(taken)

        # (4) The pool refills in the background: two parked again, beside the one in use.
        async def refilled() -> bool:
            instances = await _ours(stack)
            parked_now = sum(1 for i in instances if i["State"]["Name"] == parked_as)
            return len(instances) == 3 and parked_now >= 2 and (await warm_status()).get("warm") == 2

        await stack.cluster.wait_for(refilled, timeout=90)

        # (5) Teardown: the pool and every claim deleted; no instance left, running or stopped.
        await tear_down_and_check_nothing_left(stack)


def _condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == type_), {})
