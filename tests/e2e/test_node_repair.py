"""End to end: node repair replaces a node that stays unhealthy, and holds back when many are.

The kubelet of a running node hangs (``Kubelets.stop_kubelet``): its heartbeats stop, the node
lifecycle controller's part of the emulation marks the Node Ready=Unknown and unreachable after
the monitor grace period, and once the repair toleration (seconds here, 30 minutes by default)
has passed the launcher replaces it: a replacement NodeClaim is launched and Ready before the
old NodeClaim is deleted, the pods run on the replacement, nothing leaks. With 2 of a pool's 5
nodes unhealthy (more than 20%) nothing is repaired, until one recovers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, Final

import pytest
from kubernetes_asyncio import client
from prometheus_client import REGISTRY

from launcher.config import RepairSettings
from launcher.disruption.replacement import REPLACES_ANNOTATION
from localcluster.demo.seed import load_seed
from localcluster.ec2 import MotoEC2
from localcluster.stack import JitnodeStack, StackSettings
from shared import labels
from shared.api._fields import parse_time
from shared.api.group import API_GROUP, API_VERSION, NODECLAIM_PLURAL

pytestmark = pytest.mark.slow

TOLERATION: Final = 2.0  # seconds Ready may be False or Unknown (30 min by default)
# Types of the seed pool's requirements, so the launcher's catalogue loads in a moment.
TYPES: Final = ("c5.xlarge", "m5.xlarge", "c5.2xlarge", "m5.2xlarge")
REPAIRED: Final = "jitnode_launcher_nodes_repaired_total"
BLOCKED: Final = "jitnode_launcher_repair_blocked_nodes"


def repair_settings(*, enabled: bool) -> RepairSettings:
    return RepairSettings(
        enabled=enabled,
        policies={"Ready:False": TOLERATION, "Ready:Unknown": TOLERATION},
        replacement_wait=120.0,  # replacements may take up to a minute (the last one drains)
    )


async def started_stack(
    moto_server: MotoEC2, *, globally: bool, pool_repair: str | None
) -> AsyncIterator[JitnodeStack]:
    settings = StackSettings(instance_types=TYPES, repair=repair_settings(enabled=globally))
    async with JitnodeStack(settings, ec2=moto_server) as running:
        seed = load_seed(running.cluster.network.cluster)
        pool = seed.nodepool
        # No consolidation during the test: only repair removes nodes.
        pool["spec"]["disruption"] = {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "Never"}
        if pool_repair is not None:
            pool["spec"]["disruption"]["repair"] = pool_repair
        await running.apply_nodeclass(seed.nodeclass)
        await running.apply_nodepool(pool)
        yield running


@pytest.fixture
async def pool_opted_in(moto_server: MotoEC2) -> AsyncIterator[JitnodeStack]:
    """Repair off in the launcher's config, on for the pool (spec.disruption.repair)."""
    async for running in started_stack(moto_server, globally=False, pool_repair="Enabled"):
        yield running


@pytest.fixture
async def globally_on(moto_server: MotoEC2) -> AsyncIterator[JitnodeStack]:
    """Repair on in the launcher's config; the pool says nothing."""
    async for running in started_stack(moto_server, globally=True, pool_repair=None):
        yield running


def deployment(name: str, replicas: int, *, apart: bool) -> dict[str, Any]:
    pod_labels = {"app": name}
    spec: dict[str, Any] = {
        "nodeSelector": {"intent": "apps"},
        "containers": [
            {
                "name": name,
                "image": "public.ecr.aws/eks-distro/kubernetes/pause:3.7",
                "resources": {"requests": {"cpu": "1", "memory": "1Gi"}},
            }
        ],
    }
    if apart:
        term = {"labelSelector": {"matchLabels": pod_labels}, "topologyKey": labels.HOSTNAME}
        spec["affinity"] = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}
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


async def run(stack: JitnodeStack, name: str, replicas: int, *, apart: bool = False) -> list[Any]:
    """Create the Deployment and wait until its pods run; returns them."""
    api = stack.api
    assert api is not None
    apps: Any = client.AppsV1Api(api)
    await apps.create_namespaced_deployment("default", deployment(name, replicas, apart=apart))
    return await running_pods(stack, name, replicas, timeout=60)


async def running_pods(
    stack: JitnodeStack,
    name: str,
    replicas: int,
    *,
    timeout: float,  # noqa: ASYNC109 - a deadline per wait keeps the test bounded
    avoid: str | None = None,
) -> list[Any]:
    core = client.CoreV1Api(stack.api)

    async def check() -> list[Any] | None:
        pods = (await core.list_namespaced_pod("default", label_selector=f"app={name}")).items
        live = [p for p in pods if p.metadata.deletion_timestamp is None]
        ok = [p for p in live if p.status.phase == "Running" and p.spec.node_name not in (None, avoid)]
        return ok if len(ok) == replicas == len(live) else None

    result = await stack.cluster.wait_for(check, timeout=timeout)
    assert result is not None
    return list(result)


async def claims(stack: JitnodeStack) -> list[dict[str, Any]]:
    custom = client.CustomObjectsApi(stack.api)
    items: list[dict[str, Any]] = (
        await custom.list_cluster_custom_object(API_GROUP, API_VERSION, NODECLAIM_PLURAL)
    )["items"]
    return items


async def node_events(stack: JitnodeStack, node: str) -> dict[str, Any]:
    core = client.CoreV1Api(stack.api)
    events = await core.list_namespaced_event("default", field_selector=f"involvedObject.name={node}")
    return {e.reason: e for e in events.items}


async def node_names(stack: JitnodeStack) -> list[str]:
    return sorted(n.metadata.name for n in (await client.CoreV1Api(stack.api).list_node()).items)


async def unknown(stack: JitnodeStack, names: list[str]) -> bool:
    core = client.CoreV1Api(stack.api)
    for name in names:
        node = await core.read_node(name)
        ready = next(c for c in node.status.conditions if c.type == "Ready")
        if ready.status != "Unknown":
            return False
    return True


async def live_instances(stack: JitnodeStack) -> dict[str, str]:
    """Instance id -> the NodeClaim its tags name, for every instance not terminated."""
    out: dict[str, str] = {}
    for instance in await asyncio.to_thread(stack.cluster.ec2.instances):
        if instance["State"]["Name"] in ("terminated", "shutting-down"):
            continue
        tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
        out[instance["InstanceId"]] = tags.get(labels.TAG_NODECLAIM, "")
    return out


def metric(name: str, **label_values: str) -> float:
    return REGISTRY.get_sample_value(name, label_values) or 0.0


def condition_time(claim: dict[str, Any], kind: str) -> datetime | None:
    for condition in (claim.get("status") or {}).get("conditions") or []:
        if condition["type"] == kind and condition["status"] == "True":
            return parse_time(condition["lastTransitionTime"])
    return None


async def test_a_node_not_ready_past_the_toleration_is_replaced(pool_opted_in: JitnodeStack) -> None:
    stack = pool_opted_in
    kubelets = stack.cluster.kubelets
    assert kubelets is not None
    pods = await run(stack, "inflate", 2)
    (old,) = {p.spec.node_name for p in pods}
    assert await node_names(stack) == [old]
    (old_claim,) = [c["metadata"]["name"] for c in await claims(stack)]
    before = metric(REPAIRED, condition="Ready", status="Unknown", nodepool="default")

    kubelets.stop_kubelet(old)
    # Unknown after the monitor grace period (4 s), repaired TOLERATION later; the replacement
    # launches and joins, then the old node goes and the pods run again on the new one.
    await running_pods(stack, "inflate", 2, timeout=120, avoid=old)

    async def old_gone() -> bool:
        return old not in await node_names(stack) and old_claim not in {
            c["metadata"]["name"] for c in await claims(stack)
        }

    await stack.cluster.wait_for(old_gone, timeout=60)
    events = await node_events(stack, old)
    assert events["NodeRepair"].type == "Warning"
    assert "Unhealthy: Ready has been Unknown since" in events["NodeRepair"].message
    assert "replacement(s) for 2 pods" in events["NodeRepair"].message
    deleted_at = events["NodeClaimDeleted"].first_timestamp
    # The replacement was launched for the old node and Ready before its claim was deleted.
    remaining = await claims(stack)
    (replacement,) = remaining
    assert replacement["metadata"]["annotations"][REPLACES_ANNOTATION] == old
    ready_at = condition_time(replacement, "Initialized")
    assert ready_at is not None
    assert ready_at.replace(microsecond=0) <= deleted_at
    assert metric(REPAIRED, condition="Ready", status="Unknown", nodepool="default") == before + 1

    # Nothing leaked: one live instance, the replacement's.
    async def settled() -> dict[str, str] | None:
        live = await live_instances(stack)
        return live if len(live) == 1 else None

    live = await stack.cluster.wait_for(settled, timeout=30)
    assert live is not None
    assert list(live.values()) == [replacement["metadata"]["name"]]


async def test_no_repair_with_2_of_5_nodes_unhealthy_until_one_recovers(globally_on: JitnodeStack) -> None:
    stack = globally_on
    kubelets = stack.cluster.kubelets
    assert kubelets is not None
    pods = await run(stack, "apart", 5, apart=True)
    nodes = sorted({p.spec.node_name for p in pods})
    assert len(nodes) == 5
    sick = nodes[:2]
    before = metric(REPAIRED, condition="Ready", status="Unknown", nodepool="default")

    for name in sick:
        kubelets.stop_kubelet(name)

    async def blocked() -> bool:
        if metric(BLOCKED, nodepool="default") != 2:
            return False
        reasons = [await node_events(stack, name) for name in sick]
        return all("NodeRepairBlocked" in r for r in reasons)

    await stack.cluster.wait_for(blocked, timeout=60)
    assert await unknown(stack, sick)
    message = (await node_events(stack, sick[0]))["NodeRepairBlocked"].message
    assert "2 of 5 nodes of nodepool default are unhealthy, more than 20% (1)" in message
    await asyncio.sleep(3 * TOLERATION)  # more rounds past the toleration: still nothing
    current = await claims(stack)
    assert len(current) == 5
    assert not [c for c in current if c["metadata"].get("deletionTimestamp")]
    core = client.CoreV1Api(stack.api)
    for name in sick:
        annotations = (await core.read_node(name)).metadata.annotations or {}
        assert labels.DISRUPTING_ANNOTATION not in annotations
    assert metric(REPAIRED, condition="Ready", status="Unknown", nodepool="default") == before

    # The control: one recovers, 1 of 5 is within 20%, and the other one is repaired.
    await kubelets.start_kubelet(sick[0])
    await running_pods(stack, "apart", 5, timeout=120, avoid=sick[1])

    async def repaired() -> bool:
        return sick[1] not in await node_names(stack)

    await stack.cluster.wait_for(repaired, timeout=60)
    assert sick[0] in await node_names(stack)
    assert metric(REPAIRED, condition="Ready", status="Unknown", nodepool="default") == before + 1
    assert metric(BLOCKED, nodepool="default") == 0
