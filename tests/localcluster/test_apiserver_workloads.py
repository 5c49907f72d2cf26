# mypy: disable-error-code="arg-type, call-arg"
"""Controllers over HTTP: Deployment -> ReplicaSet -> Pods, scale, GC, PDB status and eviction."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from localcluster.apiserver import APIServer
from localcluster.apiserver.testing import running_apiserver


@pytest.fixture
async def kube() -> AsyncIterator[tuple[APIServer, client.ApiClient]]:
    async with running_apiserver() as pair:
        yield pair


async def eventually(check: Callable[[], Awaitable[bool]], limit: float = 3.0) -> None:
    """Poll the server (over HTTP, as a client would) until ``check`` holds."""
    async with asyncio.timeout(limit):
        while not await check():  # noqa: ASYNC110 - polling a remote server, not a local flag
            await asyncio.sleep(0.02)


def deployment(name: str, replicas: int) -> dict[str, object]:
    return {
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "i"}]},
            },
        },
    }


async def make_ready(v1: client.CoreV1Api, name: str, node: str = "n1") -> None:
    await v1.patch_namespaced_pod_status(
        name, "default", {"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}
    )
    del node


async def test_deployment_scale_ownership_and_gc(kube: tuple[APIServer, client.ApiClient]) -> None:
    _, api = kube
    v1, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    await apps.create_namespaced_deployment("default", deployment("web", 3))

    async def pods() -> list[client.V1Pod]:
        return list((await v1.list_namespaced_pod("default", label_selector="app=web")).items)

    async def count_is(n: int) -> bool:
        return len(await pods()) == n

    await eventually(lambda: count_is(3))
    rs_list = (await apps.list_namespaced_replica_set("default")).items
    assert len(rs_list) == 1
    rs = rs_list[0]
    pod_hash = rs.metadata.labels["pod-template-hash"]
    assert rs.metadata.name == f"web-{pod_hash}"
    assert rs.metadata.owner_references[0].kind == "Deployment"
    assert rs.metadata.owner_references[0].controller
    for pod in await pods():
        assert pod.metadata.name.startswith(f"{rs.metadata.name}-")
        ref = pod.metadata.owner_references[0]
        assert (ref.kind, ref.name, ref.uid, ref.controller) == (
            "ReplicaSet",
            rs.metadata.name,
            rs.metadata.uid,
            True,
        )
        assert pod.metadata.labels["pod-template-hash"] == pod_hash

    scale = await apps.read_namespaced_deployment_scale("web", "default")
    assert scale.spec.replicas == 3
    assert "app=web" in scale.status.selector
    await apps.replace_namespaced_deployment_scale(
        "web", "default", {"metadata": {"name": "web"}, "spec": {"replicas": 5}}
    )
    await eventually(lambda: count_is(5))

    # Bind and ready two pods: scaling down must delete the unscheduled ones first.
    first_two = sorted(p.metadata.name for p in await pods())[:2]
    for name in first_two:
        await v1.patch_namespaced_pod(name, "default", {"spec": {"nodeName": "n1"}})
        await make_ready(v1, name)
    await apps.patch_namespaced_deployment_scale("web", "default", {"spec": {"replicas": 2}})
    await eventually(lambda: count_is(2))
    assert sorted(p.metadata.name for p in await pods()) == first_two

    async def rolled_out() -> bool:
        d = await apps.read_namespaced_deployment_status("web", "default")
        s = d.status
        return bool(
            s.observed_generation == d.metadata.generation
            and s.replicas == 2
            and s.updated_replicas == 2
            and s.ready_replicas == 2
            and s.available_replicas == 2
        )

    await eventually(rolled_out)
    await apps.delete_namespaced_deployment("web", "default")
    await eventually(lambda: count_is(0))
    assert (await apps.list_namespaced_replica_set("default")).items == []


async def test_orphan_propagation_keeps_dependents(kube: tuple[APIServer, client.ApiClient]) -> None:
    _, api = kube
    v1, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    rs_body = deployment("solo", 2)
    await apps.create_namespaced_replica_set("default", rs_body)

    async def two() -> bool:
        return len((await v1.list_namespaced_pod("default")).items) == 2

    await eventually(two)
    await apps.delete_namespaced_replica_set("solo", "default", propagation_policy="Orphan")
    await asyncio.sleep(0.1)
    left = (await v1.list_namespaced_pod("default")).items
    assert len(left) == 2
    assert all(not p.metadata.owner_references for p in left)


def pdb(name: str, **spec: object) -> dict[str, object]:
    return {"metadata": {"name": name}, "spec": {"selector": {"matchLabels": {"app": "db"}}, **spec}}


async def test_pdb_status_and_eviction(kube: tuple[APIServer, client.ApiClient]) -> None:
    _, api = kube
    v1, policy = client.CoreV1Api(api), client.PolicyV1Api(api)
    for n in range(3):
        await v1.create_namespaced_pod(
            "default",
            {
                "metadata": {"name": f"db{n}", "labels": {"app": "db"}},
                "spec": {"containers": [{"name": "c"}]},
            },
        )
    await policy.create_namespaced_pod_disruption_budget("default", pdb("db", minAvailable=2))

    async def status() -> client.V1PodDisruptionBudgetStatus:
        return (await policy.read_namespaced_pod_disruption_budget_status("db", "default")).status

    async def numbers(healthy: int, allowed: int) -> bool:
        s = await status()
        return bool(
            s is not None
            and s.current_healthy == healthy
            and s.disruptions_allowed == allowed
            and s.expected_pods >= healthy
            and s.desired_healthy == 2
            and s.observed_generation == 1
        )

    await eventually(lambda: numbers(0, 0))  # none Ready yet
    for n in range(3):
        await v1.patch_namespaced_pod(f"db{n}", "default", {"spec": {"nodeName": "n1"}})
        await make_ready(v1, f"db{n}")
    await eventually(lambda: numbers(3, 1))

    eviction = {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": "db0", "namespace": "default"},
    }
    await v1.create_namespaced_pod_eviction("db0", "default", eviction)
    await eventually(lambda: numbers(2, 0))
    with pytest.raises(ApiException) as refused:
        await v1.create_namespaced_pod_eviction("db1", "default", {**eviction, "metadata": {"name": "db1"}})
    assert refused.value.status == 429
    body = orjson.loads(refused.value.body)
    assert body["reason"] == "TooManyRequests"
    assert body["message"] == "Cannot evict pod as it would violate the pod's disruption budget."
    assert body["details"]["causes"][0]["reason"] == "DisruptionBudget"

    # A replacement becomes Ready: the budget allows one more eviction.
    await v1.create_namespaced_pod(
        "default",
        {
            "metadata": {"name": "db3", "labels": {"app": "db"}},
            "spec": {"containers": [{"name": "c"}], "nodeName": "n1"},
        },
    )
    await make_ready(v1, "db3")
    await eventually(lambda: numbers(3, 1))
    await v1.create_namespaced_pod_eviction("db1", "default", {**eviction, "metadata": {"name": "db1"}})
    names = sorted(p.metadata.name for p in (await v1.list_namespaced_pod("default")).items)
    assert names == ["db2", "db3"]


async def test_pdb_percent_and_max_unavailable_use_controller_scale(
    kube: tuple[APIServer, client.ApiClient],
) -> None:
    _, api = kube
    v1, apps, policy = client.CoreV1Api(api), client.AppsV1Api(api), client.PolicyV1Api(api)
    await apps.create_namespaced_deployment("default", deployment("db", 4))
    await policy.create_namespaced_pod_disruption_budget("default", pdb("half", maxUnavailable="50%"))

    async def four_pods() -> bool:
        return len((await v1.list_namespaced_pod("default")).items) == 4

    await eventually(four_pods)
    for p in (await v1.list_namespaced_pod("default")).items:
        await v1.patch_namespaced_pod(p.metadata.name, "default", {"spec": {"nodeName": "n1"}})
        await make_ready(v1, p.metadata.name)

    async def settled() -> bool:
        s = (await policy.read_namespaced_pod_disruption_budget("half", "default")).status
        return bool(
            s
            and s.expected_pods == 4
            and s.desired_healthy == 2
            and s.current_healthy == 4
            and s.disruptions_allowed == 2
        )

    await eventually(settled)
