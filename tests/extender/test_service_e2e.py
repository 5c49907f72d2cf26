"""The whole extender on the local cluster: API server, emulated kube-scheduler, demand stream.

The scheduler calls the extender (filter + prioritize) and pods bind; a pod that fits no node
becomes Unschedulable and its demand reaches a launcher-side DemandServer; the demand survives
stream cuts and restarts of either side, and is withdrawn when the pod goes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from kubernetes_asyncio import client

from extender.config import ExtenderConfig, ServerConfig, StreamConfig
from extender.service import ExtenderService
from launcher.demand import DemandBook, DemandServer
from localcluster.apiserver.testing import running_apiserver
from localcluster.scheduler import Scheduler, parse_scheduler_config
from localcluster.scheduler.testing import node, pod
from shared import labels
from tests.extender.helpers import eventually, eventually_async

TOKEN = "e2e-token"


class LauncherSide:
    def __init__(self) -> None:
        self.book = DemandBook(grace_period=30)
        self.server = DemandServer(self.book, token=TOKEN, heartbeat_interval=0.2)
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> None:
        self.book = DemandBook(grace_period=30)
        self.server = DemandServer(self.book, token=TOKEN, heartbeat_interval=0.2)
        app = web.Application()
        self.server.add_routes(app)
        self.server.start()
        self.runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port, reuse_address=True).start()
        self.port = self.runner.addresses[0][1]

    async def stop(self) -> None:
        assert self.runner is not None
        await self.server.stop()
        await self.runner.cleanup()


@pytest.fixture
async def cluster(
    tmp_path: Path,
) -> AsyncIterator[tuple[Any, client.ApiClient, LauncherSide, ExtenderConfig]]:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    launcher = LauncherSide()
    await launcher.start()
    config = ExtenderConfig(
        server=ServerConfig(host="127.0.0.1", port=0, prefix="/jitnode", shutdown_grace=1.0),
        stream=StreamConfig(
            url=f"ws://127.0.0.1:{launcher.port}/v1/demand",
            token_file=str(token_file),
            heartbeat=0.2,
            source="ext-0",
        ),
        watch_timeout=30,
    )
    async with running_apiserver() as (server, api_client):
        yield server, api_client, launcher, config
    await launcher.stop()


def scheduler_config(port: int) -> Any:
    return parse_scheduler_config(
        {
            "apiVersion": "kubescheduler.config.k8s.io/v1",
            "kind": "KubeSchedulerConfiguration",
            "profiles": [{"schedulerName": "default-scheduler"}],
            "extenders": [
                {
                    "urlPrefix": f"http://127.0.0.1:{port}/jitnode",
                    "filterVerb": "filter",
                    "prioritizeVerb": "prioritize",
                    "weight": 1,
                    "nodeCacheCapable": True,
                    "ignorable": True,
                    "httpTimeout": "5s",
                }
            ],
        }
    )


async def test_schedules_through_extender_and_streams_demand(
    cluster: tuple[Any, client.ApiClient, LauncherSide, ExtenderConfig],
) -> None:
    _, api_client, launcher, config = cluster
    core: Any = client.CoreV1Api(api_client)
    for name in ("n0", "n1"):
        await core.create_node(body=node(name, cpu="4", memory="16Gi"))
    service = ExtenderService(config, api_client)
    await service.start()
    await eventually(service.ready)
    port = service.port
    async with Scheduler(api_client, scheduler_config(port)):
        for i in range(3):
            await core.create_namespaced_pod("default", body=pod(f"small-{i}", cpu="1", memory="1Gi"))

        async def bound() -> set[str]:
            pods = (await core.list_namespaced_pod("default")).items
            return {p.metadata.name for p in pods if p.spec.node_name}

        async def three_bound() -> bool:
            return len(await bound()) == 3

        await eventually_async(three_bound)
        filtered = service.metrics.requests_by["filter", "ok"]._value.get()
        prioritized = service.metrics.requests_by["prioritize", "ok"]._value.get()
        assert filtered >= 3
        assert prioritized >= 1

        # A pod that fits nowhere: Unschedulable in the API, demand on the stream.
        await core.create_namespaced_pod("default", body=pod("huge", cpu="6", memory="1Gi"))
        await eventually(lambda: any(d.name == "huge" for d in launcher.book.current().values()))
        huge = next(d for d in launcher.book.current().values() if d.name == "huge")
        assert huge.reason == "unschedulable"
        assert huge.requests.amount("cpu") == 6000

        # Cut the stream from the launcher side: demand is still there after the reconnect.
        for ws in list(launcher.server._sockets):
            await ws.close()
        await eventually(lambda: service.stream is not None and service.stream.connects >= 2)
        assert huge.uid in launcher.book.current()

        # Restart the launcher (empty book): the snapshot restores it.
        await launcher.stop()
        await launcher.start()
        await eventually(lambda: huge.uid in launcher.book.current())

        # Restart the extender: the new process relists and re-reports.
        await service.stop()
        service = ExtenderService(config, api_client)
        await service.start()
        await eventually(service.ready)
        # Ready means listed and connected; the re-reported upsert may still be on the wire.
        await eventually(lambda: huge.uid in launcher.book.current())

        # The pod goes: its demand is withdrawn.
        await core.delete_namespaced_pod("huge", "default")
        await eventually(lambda: huge.uid not in launcher.book.current())
    await service.stop()


async def test_disrupted_node_gets_no_pods(
    cluster: tuple[Any, client.ApiClient, LauncherSide, ExtenderConfig],
) -> None:
    _, api_client, _, config = cluster
    core: Any = client.CoreV1Api(api_client)
    going = node("going", cpu="8", memory="32Gi")
    going["metadata"]["annotations"] = {labels.DISRUPTING_ANNOTATION: "consolidation"}
    await core.create_node(body=going)
    await core.create_node(body=node("staying", cpu="2", memory="8Gi"))
    service = ExtenderService(config, api_client)
    await service.start()
    await eventually(service.ready)
    async with Scheduler(api_client, scheduler_config(service.port)):
        for i in range(2):
            await core.create_namespaced_pod("default", body=pod(f"p{i}", cpu="500m", memory="1Gi"))
        pods: list[Any] = []

        async def all_bound() -> bool:
            nonlocal pods
            pods = (await core.list_namespaced_pod("default")).items
            return all(p.spec.node_name for p in pods)

        await eventually_async(all_bound)
        assert {p.spec.node_name for p in pods} == {"staying"}
    await service.stop()
