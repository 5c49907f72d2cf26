"""End to end on the local cluster: a CapacityBuffer keeps headroom that a scale-up runs on at once.

A buffer of four chunks shaped like the seed's inflate pods is applied; jitnode launches capacity
for it. Scaling inflate to three then runs every pod on nodes that were already there, and no
NodeClaim is ever planned for an inflate pod (the fourth chunk's room also keeps the extender's
prediction headroom, so it predicts nothing). Afterwards the chunks the pods took are launched
again: the buffer is refilled, with no node disrupted under it. Scaled back to zero, inflate
leaves room for twice the buffer, and the pool (its consolidateAfter cut from the seed's 30 s to
5 s, to keep the test short) removes the spare node: the buffer pins no more than its own room.
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes_asyncio import client

from launcher.buffers.decisions import is_buffer_uid
from localcluster.stack import JitnodeStack
from shared import pods
from shared.api.capacitybuffer import BUFFER_GROUP, BUFFER_PLURAL, BUFFER_VERSION
from shared.resources import Resources
from tests.e2e.test_provisioning import inflate, patch_seed_pool

pytestmark = pytest.mark.slow

CHUNKS = 4
SCALE = 3


def pod_template() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PodTemplate",
        "metadata": {"name": "inflate-chunk", "namespace": "default"},
        "template": inflate(0)["spec"]["template"],
    }


def capacity_buffer(replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{BUFFER_GROUP}/{BUFFER_VERSION}",
        "kind": "CapacityBuffer",
        "metadata": {"name": "inflate", "namespace": "default"},
        "spec": {"podTemplateRef": {"name": "inflate-chunk"}, "replicas": replicas},
    }


async def _buffer(stack: JitnodeStack) -> dict[str, Any]:
    assert stack.api is not None
    got: dict[str, Any] = await client.CustomObjectsApi(stack.api).get_namespaced_custom_object(
        BUFFER_GROUP, BUFFER_VERSION, "default", BUFFER_PLURAL, "inflate"
    )
    return got


def _condition(buffer: dict[str, Any], type_: str) -> dict[str, Any]:
    conditions = (buffer.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == type_), {})


async def _claims(stack: JitnodeStack) -> dict[str, dict[str, Any]]:
    assert stack.api is not None
    listed = await client.CustomObjectsApi(stack.api).list_cluster_custom_object(
        "jitnode.io", "v1", "nodeclaims"
    )
    return {c["metadata"]["name"]: c for c in listed["items"]}


async def _held(stack: JitnodeStack) -> bool:
    """The buffer is Provisioned: every chunk is held by free room on a node."""
    condition = _condition(await _buffer(stack), "Provisioning")
    return condition.get("status") == "True" and condition.get("reason") == "Provisioned"


async def _chunks_of_free_room(stack: JitnodeStack) -> int:
    """How many inflate pods the nodes' free room holds, node by node (as the scheduler would)."""
    assert stack.api is not None
    core = client.CoreV1Api(stack.api)
    nodes = (await core.list_node()).items
    bound = (await core.list_pod_for_all_namespaces()).items
    chunk = pods.effective_requests({"spec": inflate(0)["spec"]["template"]["spec"]})
    total = 0
    for node in nodes:
        if node.spec.unschedulable:
            continue
        used = Resources()
        for pod in bound:
            if pod.spec.node_name == node.metadata.name and pod.status.phase not in ("Succeeded", "Failed"):
                used = used + pods.effective_requests(stack.api.sanitize_for_serialization(pod))
        free = (Resources.parse(node.status.allocatable, "allocatable") - used).clamp_zero()
        while chunk.fits_in(free):
            free = free - chunk
            total += 1
    return total


async def _scale_into_the_buffer(stack: JitnodeStack) -> tuple[set[str], dict[str, dict[str, Any]]]:
    """Apply the buffer, wait until it is held, scale inflate into it; the nodes and claims before."""
    assert stack.api is not None
    core: Any = client.CoreV1Api(stack.api)  # bodies as dicts, as the API takes them
    await core.create_namespaced_pod_template("default", pod_template())
    await client.CustomObjectsApi(stack.api).create_namespaced_custom_object(
        BUFFER_GROUP, BUFFER_VERSION, "default", BUFFER_PLURAL, capacity_buffer(CHUNKS)
    )
    await stack.cluster.wait_for(lambda: _held(stack), timeout=120, interval=0.5)
    buffer = await _buffer(stack)
    assert buffer["status"]["replicas"] == CHUNKS
    assert buffer["status"]["podTemplateRef"] == {"name": "inflate-chunk"}
    assert buffer["status"]["podTemplateGeneration"] == 1
    assert _condition(buffer, "ReadyForProvisioning")["status"] == "True"
    claims = await _claims(stack)
    assert claims, "no capacity was launched for the buffer"
    assert all(is_buffer_uid(uid) for c in claims.values() for uid in c["spec"].get("pods", []))
    assert await _chunks_of_free_room(stack) >= CHUNKS
    nodes = {n.metadata.name for n in (await client.CoreV1Api(stack.api).list_node()).items}

    apps: Any = client.AppsV1Api(stack.api)  # bodies as dicts, as the API takes them
    await apps.create_namespaced_deployment("default", inflate(SCALE))
    return nodes, claims


async def _inflate_pods(stack: JitnodeStack) -> list[Any]:
    assert stack.api is not None
    core = client.CoreV1Api(stack.api)
    return list((await core.list_namespaced_pod("default", label_selector="app=inflate")).items)


async def test_a_scale_up_into_a_capacity_buffer_runs_without_a_launch(stack: JitnodeStack) -> None:
    nodes, _ = await _scale_into_the_buffer(stack)

    async def all_running() -> bool:
        running = await _inflate_pods(stack)
        return len(running) == SCALE and all(p.status.phase == "Running" for p in running)

    await stack.cluster.wait_for(all_running, timeout=60, interval=0.2)
    inflate_pods = await _inflate_pods(stack)
    assert {p.spec.node_name for p in inflate_pods} <= nodes, "a pod ran on a node launched after the scale"
    uids = {p.metadata.uid for p in inflate_pods}
    planned = {uid for c in (await _claims(stack)).values() for uid in c["spec"].get("pods", [])}
    assert not planned & uids, "a NodeClaim was planned for an inflate pod"


async def _wait_refilled(stack: JitnodeStack, before: dict[str, dict[str, Any]]) -> None:
    async def refilled() -> bool:
        claims = await _claims(stack)
        return len(claims) > len(before) and await _chunks_of_free_room(stack) >= CHUNKS

    await stack.cluster.wait_for(refilled, timeout=120, interval=0.5)
    await stack.cluster.wait_for(lambda: _held(stack), timeout=30, interval=0.5)


async def test_a_capacity_buffer_is_refilled_after_pods_take_its_room(stack: JitnodeStack) -> None:
    _, before = await _scale_into_the_buffer(stack)
    await _wait_refilled(stack, before)
    claims = await _claims(stack)
    new = [c for name, c in claims.items() if name not in before]
    chunks = [uid for c in new for uid in c["spec"].get("pods", [])]
    assert chunks, "no refill claim lists a chunk"
    assert all(is_buffer_uid(uid) for uid in chunks), "a refill claim was planned for a pod"
    assert set(before) <= set(claims), "a node held by the buffer was disrupted"
    running = await _inflate_pods(stack)
    assert len(running) == SCALE
    assert all(p.status.phase == "Running" for p in running)


async def test_a_capacity_buffer_keeps_no_more_than_its_own_room_when_pods_leave(stack: JitnodeStack) -> None:
    """Scaled back to zero, inflate leaves room for twice the buffer: the spare node goes (empty
    nodes go after the pool's consolidateAfter), and the buffer is still held by what stays."""
    assert stack.api is not None
    _, before = await _scale_into_the_buffer(stack)
    await _wait_refilled(stack, before)
    full = await _claims(stack)
    await patch_seed_pool(stack, {"spec": {"disruption": {"consolidateAfter": "5s"}}})
    apps: Any = client.AppsV1Api(stack.api)
    await apps.patch_namespaced_deployment_scale("inflate", "default", {"spec": {"replicas": 0}})

    async def consolidated() -> bool:
        return len(await _claims(stack)) < len(full)

    await stack.cluster.wait_for(consolidated, timeout=120, interval=1.0)
    await stack.cluster.wait_for(lambda: _held(stack), timeout=30, interval=0.5)
    assert await _chunks_of_free_room(stack) >= CHUNKS
