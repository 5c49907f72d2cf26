"""The CapacityBuffer controller against the local API server: chunks into the book, status out."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from kubernetes_asyncio import client

from launcher.buffers.controller import BUFFER_SOURCE, BufferController, BufferSettings
from launcher.buffers.decisions import chunk_uid
from launcher.demand.book import DemandBook
from launcher.planner.inputs import Plan
from shared.api.capacitybuffer import BUFFER_GROUP, BUFFER_PLURAL, BUFFER_VERSION
from tests.launcher.apiserver_state import launcher_state_on_apiserver

TEMPLATE: dict[str, Any] = {
    "metadata": {"labels": {"app": "web"}},
    "spec": {
        "containers": [{"name": "c", "image": "i", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}]
    },
}


@pytest.fixture
async def running() -> AsyncIterator[tuple[client.ApiClient, DemandBook, BufferController]]:
    async with launcher_state_on_apiserver() as (api, state):
        book = DemandBook()
        controller = BufferController(api, book, BufferSettings(resync=0.2), nodes=state.nodes)
        task = asyncio.create_task(controller.run())
        try:
            yield api, book, controller
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def create_buffer(api: client.ApiClient, name: str, spec: dict[str, Any]) -> None:
    await client.CustomObjectsApi(api).create_namespaced_custom_object(
        BUFFER_GROUP,
        BUFFER_VERSION,
        "default",
        BUFFER_PLURAL,
        {
            "apiVersion": f"{BUFFER_GROUP}/{BUFFER_VERSION}",
            "kind": "CapacityBuffer",
            "metadata": {"name": name},
            "spec": spec,
        },
    )


async def status_of(api: client.ApiClient, name: str) -> dict[str, Any]:
    got = await client.CustomObjectsApi(api).get_namespaced_custom_object(
        BUFFER_GROUP, BUFFER_VERSION, "default", BUFFER_PLURAL, name
    )
    status: dict[str, Any] = got.get("status") or {}
    return status


def conditions(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in status.get("conditions") or []}


async def until(predicate: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    """Poll ``predicate`` (it reads the API, which has no event to wait on) until it holds."""
    deadline = time.monotonic() + within
    while not await predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {predicate.__name__}"
        await asyncio.sleep(0.05)


async def test_a_pod_template_buffer_puts_its_chunks_in_the_book_and_reports_them(
    running: tuple[client.ApiClient, DemandBook, BufferController],
) -> None:
    api, book, controller = running
    core: Any = client.CoreV1Api(api)
    await core.create_namespaced_pod_template("default", {"metadata": {"name": "t"}, "template": TEMPLATE})
    await create_buffer(api, "web", {"podTemplateRef": {"name": "t"}, "replicas": 2})

    async def two_chunks() -> bool:
        return set(book.current()) == {chunk_uid("default", "web", 0), chunk_uid("default", "web", 1)}

    await until(two_chunks)
    assert {book.origin(uid) for uid in book.current()} == {BUFFER_SOURCE}

    async def ready() -> bool:
        return conditions(await status_of(api, "web")).get("ReadyForProvisioning", {}).get("status") == "True"

    await until(ready)
    status = await status_of(api, "web")
    assert status["replicas"] == 2
    assert status["podTemplateRef"] == {"name": "t"}
    assert status["podTemplateGeneration"] == 1

    # The provisioner reports a plan that holds one chunk on a node and launches for the other.
    uids = sorted(book.current())
    controller.observe_plan(Plan(covered={uids[0]: "claim-x", uids[1]: "claim-y"}))

    async def scaling_up() -> bool:
        return conditions(await status_of(api, "web")).get("Provisioning", {}).get("reason") == "ScalingUp"

    await until(scaling_up)

    # Scaling the buffer down withdraws a chunk; deleting its template withdraws them all.
    await client.CustomObjectsApi(api).patch_namespaced_custom_object(
        BUFFER_GROUP,
        BUFFER_VERSION,
        "default",
        BUFFER_PLURAL,
        "web",
        {"spec": {"replicas": 1}},
        _content_type="application/merge-patch+json",
    )  # type: ignore[call-arg]

    async def one_chunk() -> bool:
        return set(book.current()) == {chunk_uid("default", "web", 0)}

    await until(one_chunk)
    await core.delete_namespaced_pod_template("t", "default")

    async def not_found() -> bool:
        ready = conditions(await status_of(api, "web")).get("ReadyForProvisioning", {})
        return ready.get("reason") == "PodTemplateNotFound" and not book.current()

    await until(not_found)
    assert "Provisioning" not in conditions(await status_of(api, "web"))


async def test_a_deployment_buffer_follows_the_workload_by_percentage(
    running: tuple[client.ApiClient, DemandBook, BufferController],
) -> None:
    api, book, _ = running
    apps: Any = client.AppsV1Api(api)
    deployment = {
        "metadata": {"name": "web"},
        "spec": {"replicas": 10, "selector": {"matchLabels": {"app": "web"}}, "template": TEMPLATE},
    }
    await apps.create_namespaced_deployment("default", deployment)
    await create_buffer(
        api,
        "web",
        {"scalableRef": {"apiGroup": "apps", "kind": "Deployment", "name": "web"}, "percentage": 25},
    )

    def chunks(n: int) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return len(book.current()) == n

        return check

    await until(chunks(3))  # 25% of 10, rounded up
    await apps.patch_namespaced_deployment_scale("web", "default", {"spec": {"replicas": 20}})
    await until(chunks(5))  # the resync re-reads the workload
    assert (await status_of(api, "web")).get("podTemplateRef") is None


async def test_an_invalid_buffer_is_told_why_and_other_strategies_are_left_alone(
    running: tuple[client.ApiClient, DemandBook, BufferController],
) -> None:
    api, book, _ = running
    # Valid for the CRD (its rules are upstream's), refused by jitnode: percentage needs a workload.
    await create_buffer(api, "bad", {"podTemplateRef": {"name": "t"}, "replicas": 1, "percentage": 5})
    await create_buffer(
        api,
        "theirs",
        {"podTemplateRef": {"name": "t"}, "replicas": 1, "provisioningStrategy": "example.com/other"},
    )

    async def told() -> bool:
        ready = conditions(await status_of(api, "bad")).get("ReadyForProvisioning", {})
        return ready.get("status") == "False" and ready.get("reason") == "InvalidSpec"

    await until(told)
    ready = conditions(await status_of(api, "bad"))["ReadyForProvisioning"]
    assert "spec.percentage" in ready["message"]
    await asyncio.sleep(0.5)  # a few resyncs
    assert await status_of(api, "theirs") == {}
    assert not book.current()
