"""The rollout drill (issue 7, Operations): replace an extender and the launcher leader under load.

Two extender and two launcher processes run as real children of the test, behind loopback
Services (:mod:`localcluster.service_proxy`): kube-scheduler reaches the extenders through one
(ready endpoints only, like a readiness probe), the extenders reach the launcher through
another (the leader only, like the ``jitnode.io/launcher-leader`` selector). While pods keep
arriving and needing new nodes, each tier is rolled the way a Deployment rollout does it:
start the replacement and wait until it is in rotation, take the old Pod's endpoint out, then
SIGTERM it and expect exit code 0. Afterwards:

* no scheduling attempt failed because of an extender (the scheduler counts failed calls);
* no demand was lost: every pod ends bound and Running within the deadline;
* nothing launched twice: one instance per NodeClaim, each claim's instance joined as a Node,
  no instance without a claim, and no more instances than the pods needed;
* the stopped processes logged their graceful shutdown (stream closed, Lease released).
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, cast

import aiohttp
import pytest
from kubernetes_asyncio import client

from extender.config import ExtenderConfig
from launcher.config import (
    LauncherConfig,
    LeaderSettings,
    ProvisioningSettings,
    ServerSettings,
)
from localcluster.cluster import LocalCluster
from localcluster.demo.seed import load_seed
from localcluster.ec2 import MotoEC2
from localcluster.kubelet import KubeletConfig
from localcluster.service_proxy import ServiceProxy, http_ok, json_flag
from localcluster.stack import (
    EXTENDER_PREFIX,
    aws_config,
    cluster_settings,
    free_port,
    scheduler_configuration,
)
from localcluster.stack import extender_config as local_extender_config
from shared import labels
from shared.api.group import API_GROUP, API_VERSION, NODECLAIM_PLURAL, NODECLASS_PLURAL, NODEPOOL_PLURAL
from shared.quantity import to_milli
from tests.e2e.processes import ServiceProcess

pytestmark = pytest.mark.slow

CLUSTER: Final = "jitnode-rollout"
NAMESPACE: Final = "default"
APP: Final = "drill"
POD_CPU_MILLIS: Final = 500
POD_INTERVAL: Final = 0.4  # a steady stream: one new pod every 400 ms
MIN_PODS: Final = 40  # keep creating until the rollout is over and at least this many exist
MAX_PODS: Final = 60
PROBE_PERIOD: Final = 0.1
# A readiness probe does not flip on one miss: periodSeconds x failureThreshold, scaled down.
EXTENDER_FAILURE_THRESHOLD: Final = 30
LAUNCHER_FAILURE_THRESHOLD: Final = 3
# A launcher is ready only with its instance catalogue warm (see CATALOGUE_TYPES).
STARTUP_TIMEOUT: Final = 60.0
# The types the seed NodePool's cheapest nodes come from, and some larger: each replica warms its
# catalogue from moto before it is ready, which for the whole region (~1,400 types) takes 15-60 s
# on a busy 2-core machine, three replicas over.
CATALOGUE_TYPES: Final = (
    "a1.xlarge",
    "t4g.xlarge",
    "c6g.xlarge",
    "c6gd.xlarge",
    "c6gn.xlarge",
    "m6g.xlarge",
    "c5.xlarge",
    "m5.xlarge",
    "a1.2xlarge",
    "c6g.2xlarge",
    "m5.2xlarge",
)
STOP_TIMEOUT: Final = 15.0
# After the last pod: a launch, plus the planner's BIND_GRACE (30 s), during which it still counts
# a Ready claim's pods as served by it (see the report on pods outbid for a claim's room).
SETTLE_TIMEOUT: Final = 50.0


def drill_pod(index: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"{APP}-{index:03d}", "namespace": NAMESPACE, "labels": {"app": APP}},
        "spec": {
            "nodeSelector": {"intent": "apps"},
            "containers": [
                {
                    "name": "pause",
                    "image": "public.ecr.aws/eks-distro/kubernetes/pause:3.7",
                    "resources": {"requests": {"cpu": f"{POD_CPU_MILLIS}m", "memory": "512Mi"}},
                }
            ],
        },
    }


@dataclass
class Drill:
    """The cluster, the two Services and every jitnode process started so far, by name."""

    cluster: LocalCluster
    api: client.ApiClient
    workdir: Path
    extenders: ServiceProxy
    launchers: ServiceProxy
    processes: dict[str, ServiceProcess] = field(default_factory=dict)

    # Configuration, as the Helm chart would render it for each replica ---------------------

    def launcher_config(self, name: str, port: int) -> LauncherConfig:
        return LauncherConfig(
            cluster=cluster_settings(self.cluster, CLUSTER),
            server=ServerSettings(host="127.0.0.1", port=port, shutdown_grace=2.0),
            aws=aws_config(self.cluster, CATALOGUE_TYPES),
            provisioning=ProvisioningSettings(resync=2.0),
            # Production Lease timings: a graceful stop releases the Lease, so the handover
            # takes one retry period, not a lease duration.
            leader=LeaderSettings(namespace=NAMESPACE, identity=name),
        )

    def extender_config(self, name: str, port: int) -> ExtenderConfig:
        stream_url = f"ws://127.0.0.1:{self.launchers.port}/v1/demand"
        return local_extender_config(
            self.cluster, port, stream_url, name, prediction=True, shutdown_grace=2.0
        )

    # Processes ------------------------------------------------------------------------------

    async def start_launcher(self, name: str) -> ServiceProcess:
        """Start a launcher replica; returns once it is ready (synced), leader or not."""
        port = free_port()
        process = ServiceProcess(
            name, "launcher", self.launcher_config(name, port), self.workdir, self.cluster.ec2.environment()
        )
        await self._start(process, port)
        self.launchers.add(name, port)
        return process

    async def start_extender(self, name: str) -> ServiceProcess:
        """Start an extender replica and wait until the Service routes to it."""
        port = free_port()
        process = ServiceProcess(name, "extender", self.extender_config(name, port), self.workdir)
        await self._start(process, port)
        self.extenders.add(name, port)
        await self._until_ready(process, lambda: self.extenders.wait_ready(name, timeout=STARTUP_TIMEOUT))
        return process

    async def _start(self, process: ServiceProcess, port: int) -> None:
        self.processes[process.name] = process
        await process.start()
        await self._until_ready(process, lambda: wait_http_ok(f"http://127.0.0.1:{port}/readyz"))

    async def _until_ready(self, process: ServiceProcess, ready: Callable[[], Awaitable[None]]) -> None:
        try:
            await ready()
        except TimeoutError:
            pytest.fail(
                f"{process.name} not ready in time (exit {process.returncode}):\n{await process.tail()}"
            )

    async def roll(self, service: ServiceProxy, name: str) -> int:
        """Stop a replica as Kubernetes does: endpoint out of the Service first, then SIGTERM."""
        service.remove(name)
        await asyncio.sleep(0.2)  # endpoints propagate; the preStop hook would sleep here
        process = self.processes[name]
        try:
            return await process.terminate(timeout=STOP_TIMEOUT)
        except TimeoutError:
            pytest.fail(f"{name} did not exit within {STOP_TIMEOUT} s of SIGTERM:\n{await process.tail()}")

    async def leader(self) -> str:
        """The launcher the Service routes to (the Lease holder), once there is exactly one."""

        async def one() -> str | None:
            ready = self.launchers.ready()
            return ready[0] if len(ready) == 1 else None

        name = await self.cluster.wait_for(one, timeout=STARTUP_TIMEOUT, interval=PROBE_PERIOD)
        assert name is not None  # wait_for returns only a truthy value
        return name


async def wait_http_ok(url: str, timeout: float = STARTUP_TIMEOUT) -> None:  # noqa: ASYNC109
    """Poll ``url`` until it answers 200 (a startup probe)."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1.0)) as session:
        async with asyncio.timeout(timeout):
            while True:
                try:
                    async with session.get(url) as response:
                        if response.status == 200:
                            return
                except (aiohttp.ClientError, TimeoutError):
                    pass
                await asyncio.sleep(0.1)


@pytest.fixture
async def drill(moto_server: MotoEC2, tmp_path: Path) -> AsyncIterator[Drill]:
    extenders = ServiceProxy(
        http_ok("/readyz"),
        name="extender",
        period=PROBE_PERIOD,
        failure_threshold=EXTENDER_FAILURE_THRESHOLD,
    )
    launchers = ServiceProxy(
        json_flag("/readyz", "leader"),
        name="launcher",
        period=PROBE_PERIOD,
        failure_threshold=LAUNCHER_FAILURE_THRESHOLD,
    )
    await extenders.start()
    await launchers.start()
    cluster = LocalCluster(
        cluster=CLUSTER,
        kubelet_config=dataclasses.replace(KubeletConfig.immediate(), boot_delay=1.0),
        scheduler_config=scheduler_configuration(f"{extenders.url}{EXTENDER_PREFIX}"),
        ec2=moto_server,
        seed=0,
    )
    running: Drill | None = None
    try:
        await cluster.start()
        api = await cluster.api_client()
        running = Drill(cluster, api, tmp_path, extenders, launchers)
        custom = client.CustomObjectsApi(api)
        seed = load_seed(cluster.network.cluster)
        await custom.create_cluster_custom_object(API_GROUP, API_VERSION, NODECLASS_PLURAL, seed.nodeclass)
        await custom.create_cluster_custom_object(API_GROUP, API_VERSION, NODEPOOL_PLURAL, seed.nodepool)
        yield running
    finally:
        if running is not None:
            await asyncio.gather(*(p.kill() for p in running.processes.values()))
            await running.api.close()
        await extenders.stop()
        await launchers.stop()
        await cluster.stop()


# Observations ---------------------------------------------------------------------------------


async def drill_pods(api: client.ApiClient) -> list[Any]:
    return (await client.CoreV1Api(api).list_namespaced_pod(NAMESPACE, label_selector=f"app={APP}")).items


async def nodeclaims(api: client.ApiClient) -> list[dict[str, Any]]:
    listed = await client.CustomObjectsApi(api).list_cluster_custom_object(
        API_GROUP, API_VERSION, NODECLAIM_PLURAL
    )
    items: list[dict[str, Any]] = listed["items"]
    return items


def events(records: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [r for r in records if r.get("event") == name]


async def feed_pods(api: client.ApiClient, rollout_done: asyncio.Event) -> int:
    """Create a pod every POD_INTERVAL until the rollout is over and MIN_PODS exist (MAX_PODS cap)."""
    core = client.CoreV1Api(api)
    created = 0
    while created < MAX_PODS and not (rollout_done.is_set() and created >= MIN_PODS):
        # The client serialises plain manifests as well as models.
        await core.create_namespaced_pod(NAMESPACE, cast(client.V1Pod, drill_pod(created)))
        created += 1
        await asyncio.sleep(POD_INTERVAL)
    return created


@pytest.mark.timeout(180)
async def test_rolling_extenders_and_the_launcher_leader_loses_nothing(drill: Drill) -> None:
    async with asyncio.timeout(170):  # ~80 s on an idle machine; bounded under pytest-timeout's 180 s
        await _run_drill(drill)


async def _run_drill(drill: Drill) -> None:
    api = drill.api
    scheduler = drill.cluster.scheduler
    assert scheduler is not None
    # Launchers first: the extenders only turn ready once their stream reaches a leader.
    await asyncio.gather(drill.start_launcher("launcher-a"), drill.start_launcher("launcher-b"))
    first_leader = await drill.leader()
    await asyncio.gather(drill.start_extender("extender-a"), drill.start_extender("extender-b"))

    rollout_done = asyncio.Event()
    feeder = asyncio.create_task(feed_pods(api, rollout_done), name="pod-feeder")
    try:
        # Roll only once the leader is at work: NodeClaims exist and pods keep arriving.
        async def claimed() -> bool:
            return bool(await nodeclaims(api))

        await drill.cluster.wait_for(claimed, timeout=STARTUP_TIMEOUT, interval=0.25)
        # Extender rollout: surge one, then retire one.
        await drill.start_extender("extender-c")
        extender_exit = await drill.roll(drill.extenders, "extender-a")
        # Launcher rollout: the replacement comes up as a follower; then the leader goes.
        await drill.start_launcher("launcher-c")
        launcher_exit = await drill.roll(drill.launchers, first_leader)
        second_leader = await drill.leader()
        rollout_done.set()
        pod_count = await asyncio.wait_for(feeder, timeout=MAX_PODS * POD_INTERVAL + 30)
    finally:
        rollout_done.set()
        feeder.cancel()
        await asyncio.gather(feeder, return_exceptions=True)

    # (3) No demand lost: every pod, including those pending across both handovers, runs.
    async def all_running() -> bool:
        pods = await drill_pods(api)
        return len(pods) == pod_count and all(p.status.phase == "Running" and p.spec.node_name for p in pods)

    try:
        await drill.cluster.wait_for(all_running, timeout=SETTLE_TIMEOUT, interval=0.25)
    except TimeoutError:
        pending = [p.metadata.name for p in await drill_pods(api) if p.status.phase != "Running"]
        tails = [f"--- {n}\n{await p.tail(15)}" for n, p in drill.processes.items()]
        pytest.fail(f"pods not running after the rollout: {pending}\n" + "\n".join(tails))

    # The graceful stops: exit 0, and the shutdown each service promises.
    assert extender_exit == 0, await drill.processes["extender-a"].tail()
    assert launcher_exit == 0, await drill.processes[first_leader].tail()
    assert second_leader != first_leader
    extender_log = await drill.processes["extender-a"].records()
    assert events(extender_log, "extender.stopping")
    assert events(extender_log, "extender.stopped")
    leader_log = await drill.processes[first_leader].records()
    assert [r["identity"] for r in events(leader_log, "lease released")] == [first_leader]
    assert events(leader_log, "launcher stopped")
    new_leader_log = await drill.processes[second_leader].records()
    assert [r["identity"] for r in events(new_leader_log, "leader elected")] == [second_leader]
    # extender-a closed its demand stream, and the leader of the time saw it go at once.
    assert events(extender_log, "demand_stream.closed")
    assert "extender-a" in [r.get("source") for r in events(leader_log, "demand.source_disconnected")]

    # (2) No scheduling attempt failed because of an extender, and they were really called.
    assert scheduler.extender_errors == Counter(), scheduler.extender_errors
    assert sum(drill.extenders.routed.values()) > 0
    assert drill.extenders.rejected == 0

    # (4) Nothing launched twice, nothing leaked.
    claims = await nodeclaims(api)
    claim_names = sorted(c["metadata"]["name"] for c in claims)
    instances = await asyncio.to_thread(drill.cluster.ec2.instances)
    ours = [
        i
        for i in instances
        if any(t["Key"] == labels.TAG_CLUSTER and t["Value"] == CLUSTER for t in i.get("Tags", []))
    ]
    tagged = sorted(next(t["Value"] for t in i["Tags"] if t["Key"] == labels.TAG_NODECLAIM) for i in ours)
    # One CreateFleet instance per NodeClaim, ever (terminated ones included): no double launch.
    assert tagged == claim_names
    assert all(i["State"]["Name"] == "running" for i in ours), [i["State"]["Name"] for i in ours]
    nodes = (await client.CoreV1Api(api).list_node()).items
    provider_ids = {n.spec.provider_id for n in nodes}
    for claim in claims:
        assert claim["status"].get("providerID") in provider_ids, claim["metadata"]["name"]
    # No more capacity than the pods needed. Planning in waves may leave each wave's last node
    # part-full, hence a little slack; a second launch for demand already claimed would show as
    # extra nodes and as nodes no pod ever used (one is allowed: predicted demand may not come).
    pods_by_node = Counter(p.spec.node_name for p in await drill_pods(api))
    slots = [to_milli(n.status.allocatable["cpu"]) // POD_CPU_MILLIS for n in nodes]
    launcher_logs = [await p.records() for n, p in drill.processes.items() if n.startswith("launcher")]
    plans = sum(len([r for r in events(log, "plan") if r.get("claims")]) for log in launcher_logs)
    bound = math.ceil(pod_count / min(slots)) + plans
    assert len(nodes) <= bound, (len(nodes), bound, slots, dict(pods_by_node))
    empty = [n.metadata.name for n in nodes if pods_by_node[n.metadata.name] == 0]
    assert len(empty) <= 1, empty
