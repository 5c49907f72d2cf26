"""Process faults (issue 12, item 2): jitnode's services killed with SIGKILL at the worst moments.

The launcher and the extender run as real child processes (``python -m launcher|extender``)
behind loopback Services (:mod:`localcluster.service_proxy`), against the local cluster and
moto in this process. A fault is a crash point (:mod:`shared.crashpoints`) armed through
``JITNODE_CRASH_AT``, or, for "during CreateFleet", moto's own handler holding the request
while the test SIGKILLs the launcher. Each test starts a process armed, drives the cluster to
the step, checks that the process died by signal 9 at that very point, restarts it unarmed
(the same Pod name, as a container restart keeps it) and runs the invariant check.

Launcher faults run without an extender: the launcher's own pod watch is the demand source
(the extender fault, on the contrary, switches that watch off so that only the stream can
deliver the demand). The catalogue is four xlarge types (4 vCPU): three seed pods fit a node,
so plan sizes are known, and each replica warms its catalogue in a fraction of a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast

import aiohttp
import pytest
from kubernetes_asyncio import client
from moto.core.responses import ActionResult
from moto.ec2.responses.fleets import Fleets

from extender.config import ExtenderConfig
from launcher.config import (
    LauncherConfig,
    LeaderSettings,
    ProvisioningSettings,
    ServerSettings,
)
from localcluster.chaos.invariants import RunObserver, check_invariants
from localcluster.cluster import LocalCluster
from localcluster.demo.seed import Seed, load_seed
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
from shared import crashpoints, labels
from shared.api.group import API_GROUP, API_VERSION, NODECLAIM_PLURAL, NODECLASS_PLURAL, NODEPOOL_PLURAL
from tests.e2e.processes import ServiceProcess

if TYPE_CHECKING:
    from tests.chaos.conftest import ChaosReport

pytestmark = pytest.mark.slow

CLUSTER: Final = "jitnode-chaos"
NAMESPACE: Final = "default"
INSTANCE_TYPES: Final = ("c5.xlarge", "m5.xlarge", "c6i.xlarge", "m6i.xlarge")
PODS_PER_NODE: Final = 3  # seed pods (1 CPU, 1.5 GiB) on a 4-vCPU type
STARTUP_TIMEOUT: Final = 30.0
CRASH_TIMEOUT: Final = 30.0
SETTLE_TIMEOUT: Final = 30.0
# The invariant check: pods pending at the check run within this; instances and claims agree
# within INSTANCE_SETTLE (more than a leak-collection round: LEAK_INTERVAL + LEAK_GRACE).
PENDING_BOUND: Final = 30.0
LEAK_GRACE: Final = 2.0
LEAK_INTERVAL: Final = 1.0
INSTANCE_SETTLE: Final = 10.0
PROBE_PERIOD: Final = 0.05


# The rig ----------------------------------------------------------------------------------------


@dataclass
class Rig:
    """The cluster, the Services, and every jitnode process started in this test, by name."""

    cluster: LocalCluster
    api: client.ApiClient
    seed: Seed
    workdir: Path
    launchers: ServiceProxy
    extenders: ServiceProxy | None
    observer: RunObserver
    report: ChaosReport
    processes: dict[str, ServiceProcess] = field(default_factory=dict)

    def launcher_config(self, name: str, port: int, *, watch_pods: bool) -> LauncherConfig:
        return LauncherConfig(
            cluster=cluster_settings(self.cluster, CLUSTER),
            server=ServerSettings(host="127.0.0.1", port=port, shutdown_grace=1.0),
            aws=aws_config(self.cluster, INSTANCE_TYPES),
            # Leak collection every second: the invariant check (which cannot call a child
            # process's collector) waits for a round after the fault instead of a minute.
            provisioning=ProvisioningSettings(
                resync=1.0, leak_grace=LEAK_GRACE, leak_interval=LEAK_INTERVAL, watch_pods=watch_pods
            ),
            # A dead leader's Lease runs out in 2 s (a restart under the same name takes it at once).
            leader=LeaderSettings(
                namespace=NAMESPACE,
                identity=name,
                lease_duration=2.0,
                renew_deadline=1.5,
                retry_period=0.25,
            ),
        )

    def extender_config(self, name: str, port: int) -> ExtenderConfig:
        stream_url = f"ws://127.0.0.1:{self.launchers.port}/v1/demand"
        return local_extender_config(
            self.cluster, port, stream_url, name, prediction=False, shutdown_grace=1.0
        )

    async def start_launcher(
        self, name: str, *, crash_at: str | None = None, watch_pods: bool = True, lead: bool = True
    ) -> ServiceProcess:
        """Start (or restart) launcher ``name``; returns once ready and, with ``lead``, leading."""
        port = free_port()
        env = {**self.cluster.ec2.environment(), **_crash_env(crash_at)}
        process = ServiceProcess(
            name, "launcher", self.launcher_config(name, port, watch_pods=watch_pods), self.workdir, env
        )
        await self._start(process, port)
        self.launchers.remove(name)
        self.launchers.add(name, port)
        if lead:
            await self._until(process, self.launchers.wait_ready(name, timeout=STARTUP_TIMEOUT))
        return process

    async def start_extender(self, name: str, *, crash_at: str | None = None) -> ServiceProcess:
        """Start (or restart) extender ``name``; returns once the scheduler's Service routes to it."""
        assert self.extenders is not None, "this rig has no extender Service"
        port = free_port()
        process = ServiceProcess(
            name, "extender", self.extender_config(name, port), self.workdir, _crash_env(crash_at)
        )
        await self._start(process, port)
        self.extenders.remove(name)
        self.extenders.add(name, port)
        await self._until(process, self.extenders.wait_ready(name, timeout=STARTUP_TIMEOUT))
        return process

    async def _start(self, process: ServiceProcess, port: int) -> None:
        self.processes[process.name] = process
        await process.start()
        await self._until(process, wait_http_ok(f"http://127.0.0.1:{port}/readyz"))

    async def _until(self, process: ServiceProcess, ready: Awaitable[object]) -> None:
        """Await ``ready``, failing at once (with the log) if the process dies first."""
        assert process.process is not None
        waiter = asyncio.ensure_future(ready)
        died = asyncio.ensure_future(process.process.wait())
        try:
            async with asyncio.timeout(STARTUP_TIMEOUT):
                await asyncio.wait({waiter, died}, return_when=asyncio.FIRST_COMPLETED)
        except TimeoutError:
            pytest.fail(f"{process.name} not ready in {STARTUP_TIMEOUT} s:\n{await process.tail()}")
        finally:
            for task in (waiter, died):
                task.cancel()
            await asyncio.gather(waiter, died, return_exceptions=True)
        if not waiter.done() or waiter.cancelled() or waiter.exception() is not None:
            pytest.fail(f"{process.name} exited {process.returncode} before ready:\n{await process.tail()}")

    async def crashed(self, name: str, point: str | None) -> None:
        """Wait for ``name`` to die by SIGKILL; with ``point``, at that crash point."""
        process = self.processes[name]
        assert process.process is not None
        try:
            async with asyncio.timeout(CRASH_TIMEOUT):
                code = await process.process.wait()
        except TimeoutError:
            pytest.fail(f"{name} did not reach {point} in {CRASH_TIMEOUT} s:\n{await process.tail()}")
        assert code == -9, f"{name} exited {code}, not by SIGKILL:\n{await process.tail()}"
        if point is not None:
            reached = [r for r in await process.records() if r.get("event") == "crash point reached"]
            assert [r.get("crash_point") for r in reached] == [point], await process.tail()

    # Workload ----------------------------------------------------------------------------------

    async def scale(self, replicas: int) -> None:
        await client.AppsV1Api(self.api).patch_namespaced_deployment_scale(
            self.seed.deployment["metadata"]["name"], NAMESPACE, {"spec": {"replicas": replicas}}
        )

    async def patch_nodepool(self, patch: dict[str, Any]) -> None:
        await client.CustomObjectsApi(self.api).patch_cluster_custom_object(
            API_GROUP,
            API_VERSION,
            NODEPOOL_PLURAL,
            self.seed.nodepool["metadata"]["name"],
            patch,
            _content_type="application/merge-patch+json",
        )  # type: ignore[call-arg]  # the bundled stubs omit _content_type; the client accepts it

    async def wait(self, predicate: Callable[[], Any], timeout: float = SETTLE_TIMEOUT) -> Any:  # noqa: ASYNC109
        try:
            return await self.cluster.wait_for(predicate, timeout=timeout, interval=0.1)
        except TimeoutError as error:
            tails = [f"--- {n}\n{await p.tail(20)}" for n, p in self.processes.items()]
            pytest.fail(f"{error}\n" + "\n".join(tails))

    # Observations ------------------------------------------------------------------------------

    async def pods(self) -> list[Any]:
        key, value = self.seed.app_label
        listed = await client.CoreV1Api(self.api).list_namespaced_pod(
            NAMESPACE, label_selector=f"{key}={value}"
        )
        return cast(list[Any], listed.items)

    async def running(self, count: int) -> bool:
        pods = await self.pods()
        return len(pods) == count and all(p.status.phase == "Running" for p in pods)

    async def claims(self) -> list[dict[str, Any]]:
        listed = await client.CustomObjectsApi(self.api).list_cluster_custom_object(
            API_GROUP, API_VERSION, NODECLAIM_PLURAL
        )
        return cast(list[dict[str, Any]], listed["items"])

    async def instances(self) -> list[dict[str, Any]]:
        """This cluster's live instances in moto (neither shutting down nor terminated)."""
        every = await asyncio.to_thread(self.cluster.ec2.instances)
        return [
            i
            for i in every
            if {t["Key"]: t["Value"] for t in i.get("Tags", [])}.get(labels.TAG_CLUSTER) == CLUSTER
            and i["State"]["Name"] not in ("shutting-down", "terminated")
        ]

    async def plans(self, name: str) -> list[dict[str, Any]]:
        """The ``plan`` log lines with claims that process ``name`` wrote."""
        records = await self.processes[name].records()
        return [r for r in records if r.get("event") == "plan" and r.get("claims")]

    async def check(self, fault: str) -> None:
        """The invariant check after ``fault``, recorded for the chaos summary table."""
        violations = await check_invariants(
            self.api,
            self.cluster.ec2,
            CLUSTER,
            self.observer,
            pending_bound=PENDING_BOUND,
            collect_leaks=None,  # the child launcher collects every LEAK_INTERVAL
            instance_settle=INSTANCE_SETTLE,
        )
        self.report.record(fault, violations)
        assert violations == []


def _crash_env(crash_at: str | None) -> dict[str, str]:
    return {crashpoints.ENV_VAR: crash_at} if crash_at else {}


async def wait_http_ok(url: str) -> None:
    """Poll ``url`` until it answers 200 (a startup probe)."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1.0)) as session:
        while True:
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(PROBE_PERIOD)


@contextlib.asynccontextmanager
async def running_rig(
    moto: MotoEC2, workdir: Path, report: ChaosReport, *, extender: bool
) -> AsyncIterator[Rig]:
    launchers = ServiceProxy(json_flag("/readyz", "leader"), name="launcher", period=PROBE_PERIOD)
    extenders = ServiceProxy(http_ok("/readyz"), name="extender", period=PROBE_PERIOD) if extender else None
    await launchers.start()
    if extenders is not None:
        await extenders.start()
    cluster = LocalCluster(
        cluster=CLUSTER,
        kubelet_config=KubeletConfig.immediate(),
        scheduler_config=scheduler_configuration(f"{extenders.url}{EXTENDER_PREFIX}") if extenders else None,
        ec2=moto,
        seed=0,
    )
    api: client.ApiClient | None = None
    try:
        await cluster.start()
        seed = await asyncio.to_thread(load_seed, cluster.network.cluster)
        api = await cluster.api_client()
        custom = client.CustomObjectsApi(api)
        await custom.create_cluster_custom_object(API_GROUP, API_VERSION, NODECLASS_PLURAL, seed.nodeclass)
        await custom.create_cluster_custom_object(API_GROUP, API_VERSION, NODEPOOL_PLURAL, seed.nodepool)
        await client.AppsV1Api(api).create_namespaced_deployment(NAMESPACE, cast(Any, seed.deployment))
        async with RunObserver(api, NAMESPACE) as observer:
            rig = Rig(cluster, api, seed, workdir, launchers, extenders, observer, report)
            try:
                yield rig
            finally:
                await asyncio.gather(*(p.kill() for p in rig.processes.values()))
    finally:
        if api is not None:
            await api.close()
        if extenders is not None:
            await extenders.stop()
        await launchers.stop()
        await cluster.stop()


@pytest.fixture
async def rig(moto_server: MotoEC2, tmp_path: Path, chaos_report: ChaosReport) -> AsyncIterator[Rig]:
    """The local cluster with the seed applied, no jitnode process yet, no extender in the scheduler."""
    async with running_rig(moto_server, tmp_path, chaos_report, extender=False) as running:
        yield running


@pytest.fixture
async def rig_with_extender(
    moto_server: MotoEC2, tmp_path: Path, chaos_report: ChaosReport
) -> AsyncIterator[Rig]:
    """As ``rig``, with kube-scheduler calling the extenders through their Service."""
    async with running_rig(moto_server, tmp_path, chaos_report, extender=True) as running:
        yield running


# Launch ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("point", [crashpoints.CLAIM_CREATED, crashpoints.FLEET_RETURNED])
async def test_launcher_killed_during_a_launch(rig: Rig, point: str) -> None:
    """After the NodeClaim is created (before CreateFleet), or after CreateFleet (before the
    claim records its instance): the restarted launcher launches, or adopts, exactly once."""
    await rig.start_launcher("launcher-a", crash_at=point)
    await rig.scale(2)
    await rig.crashed("launcher-a", point)
    before = await rig.instances()
    claims = await rig.claims()
    assert len(claims) == 1
    assert not claims[0].get("status", {}).get("instanceID")
    assert len(before) == (1 if point == crashpoints.FLEET_RETURNED else 0)

    await rig.start_launcher("launcher-a")
    await rig.wait(lambda: rig.running(2))
    after = await rig.instances()
    assert len(after) == 1
    assert [i["InstanceId"] for i in before] in ([], [after[0]["InstanceId"]])  # adopted, not relaunched
    await rig.check(f"launcher SIGKILL at {point}")


async def test_launcher_killed_while_create_fleet_is_in_flight(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """moto holds the first CreateFleet until the launcher is dead, then launches: the answer goes
    nowhere, and the restarted launcher must find the instance by its tag, not launch another."""
    loop = asyncio.get_running_loop()
    in_flight = asyncio.Event()
    release = threading.Event()
    original = Fleets.create_fleet
    calls: list[int] = []

    def create_fleet(self: Fleets) -> ActionResult:  # runs on moto's server thread
        calls.append(1)
        if len(calls) == 1:
            loop.call_soon_threadsafe(in_flight.set)
            release.wait(CRASH_TIMEOUT)
        return original(self)

    monkeypatch.setattr(Fleets, "create_fleet", create_fleet)
    try:
        launcher = await rig.start_launcher("launcher-a")
        await rig.scale(2)
        async with asyncio.timeout(CRASH_TIMEOUT):
            await in_flight.wait()
        await launcher.kill()
        await rig.crashed("launcher-a", None)
    finally:
        release.set()
    orphan = await rig.wait(rig.instances)  # moto finishes the launch nobody hears about
    assert len(orphan) == 1
    assert not (await rig.claims())[0].get("status", {}).get("instanceID")

    await rig.start_launcher("launcher-a")
    await rig.wait(lambda: rig.running(2))
    assert [i["InstanceId"] for i in await rig.instances()] == [orphan[0]["InstanceId"]]
    assert len(calls) == 1
    await rig.check("launcher SIGKILL during CreateFleet")


# Termination -----------------------------------------------------------------------------------


async def test_launcher_killed_during_a_drain(rig: Rig) -> None:
    """The node expires; its replacement is Ready; the drain evicts one of two pods that a
    PodDisruptionBudget lets go one at a time, and the launcher dies. The restarted launcher must
    resume the drain from the node's mark, evict the other pod only once the budget allows, and
    terminate the node."""
    app = dict([rig.seed.app_label])
    await client.PolicyV1Api(rig.api).create_namespaced_pod_disruption_budget(
        NAMESPACE,
        cast(
            client.V1PodDisruptionBudget,
            {
                "metadata": {"name": "inflate"},
                "spec": {"maxUnavailable": 1, "selector": {"matchLabels": app}},
            },
        ),
    )
    await rig.patch_nodepool({"spec": {"template": {"spec": {"expireAfter": "3s"}}}})
    await rig.start_launcher("launcher-a", crash_at=crashpoints.DRAIN_EVICTED)
    await rig.scale(2)
    first = await rig.wait(rig.claims)
    # Only the first node expires so soon: its replacement lives as long as the seed's.
    await rig.patch_nodepool({"spec": {"template": {"spec": {"expireAfter": "720h"}}}})
    await rig.crashed("launcher-a", crashpoints.DRAIN_EVICTED)
    expired = first[0]["metadata"]["name"]
    assert {c["metadata"]["name"] for c in await rig.claims()} > {expired}  # a replacement exists
    assert len(await rig.instances()) == 2

    await rig.start_launcher("launcher-a")

    async def expired_node_gone() -> bool:
        names = {c["metadata"]["name"] for c in await rig.claims()}
        return expired not in names and len(await rig.instances()) == 1 and await rig.running(2)

    await rig.wait(expired_node_gone)
    await rig.check(f"launcher SIGKILL at {crashpoints.DRAIN_EVICTED}")


async def test_launcher_killed_after_terminate_instances(rig: Rig) -> None:
    """The emptied node's instance is terminated and the launcher dies before the claim's
    finalizer comes off: the restarted launcher must finish, not hang on, the deletion."""
    await rig.patch_nodepool(
        {"spec": {"disruption": {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "0s"}}}
    )
    await rig.start_launcher("launcher-a", crash_at=crashpoints.INSTANCE_TERMINATED)
    await rig.scale(1)
    await rig.wait(lambda: rig.running(1))
    rig.observer.expect_fewer(NAMESPACE, dict([rig.seed.app_label]), 1)
    await rig.scale(0)
    await rig.crashed("launcher-a", crashpoints.INSTANCE_TERMINATED)
    claims = await rig.claims()
    assert len(claims) == 1
    assert claims[0]["metadata"].get("deletionTimestamp")
    assert labels.TERMINATION_FINALIZER in claims[0]["metadata"]["finalizers"]
    assert await rig.instances() == []

    await rig.start_launcher("launcher-a")

    async def terminated() -> bool:
        nodes = (await client.CoreV1Api(rig.api).list_node()).items
        return not await rig.claims() and not nodes

    await rig.wait(terminated)
    await rig.check(f"launcher SIGKILL at {crashpoints.INSTANCE_TERMINATED}")


# Extender --------------------------------------------------------------------------------------


async def test_extender_killed_mid_message(rig_with_extender: Rig) -> None:
    """The extender dies halfway through writing a demand delta. The launcher's own pod watch is
    off, so the demand reaches it only if the restarted extender's stream delivers it."""
    rig = rig_with_extender
    launcher = await rig.start_launcher("launcher-a", watch_pods=False)
    await rig.start_extender("extender-a", crash_at=crashpoints.STREAM_PARTIAL_FRAME)
    await rig.scale(2)
    await rig.crashed("extender-a", crashpoints.STREAM_PARTIAL_FRAME)
    # The launcher saw the stream drop, and nothing of the torn message was acted on.
    await rig.wait(
        lambda: _logged(launcher, "demand.source_disconnected", source="extender-a"), timeout=CRASH_TIMEOUT
    )
    assert await rig.claims() == []

    await rig.start_extender("extender-a")
    await rig.wait(lambda: rig.running(2))
    await rig.check(f"extender SIGKILL at {crashpoints.STREAM_PARTIAL_FRAME}")


async def _logged(process: ServiceProcess, event: str, **fields: object) -> bool:
    return any(
        r.get("event") == event and all(r.get(k) == v for k, v in fields.items())
        for r in await process.records()
    )


# Leader handover -------------------------------------------------------------------------------


async def test_leader_killed_in_the_middle_of_a_plan(rig: Rig) -> None:
    """The leader creates the first claim of a two-claim plan and dies. The follower takes over
    and creates the second, only the second: no pod is left without a node, none gets two."""
    pods = 2 * PODS_PER_NODE
    # launcher-a held the Lease a moment ago: launcher-b comes up as a follower and stays one
    # until launcher-a (same identity) renews it and then dies.
    await client.CoordinationV1Api(rig.api).create_namespaced_lease(
        NAMESPACE,
        cast(
            client.V1Lease,
            {
                "metadata": {"name": LeaderSettings().name},
                "spec": {
                    "holderIdentity": "launcher-a",
                    "leaseDurationSeconds": 60,
                    "renewTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                },
            },
        ),
    )
    follower = await rig.start_launcher("launcher-b", lead=False)
    # All the demand is pending before the leader starts, so its first plan holds all of it.
    await rig.scale(pods)

    async def all_unschedulable() -> bool:
        listed = await rig.pods()
        return len(listed) == pods and all(
            any(c.type == "PodScheduled" and c.reason == "Unschedulable" for c in p.status.conditions or [])
            for p in listed
        )

    await rig.wait(all_unschedulable)
    await rig.start_launcher("launcher-a", crash_at=crashpoints.PLAN_PARTLY_CREATED, lead=False)
    await rig.crashed("launcher-a", crashpoints.PLAN_PARTLY_CREATED)
    [plan] = await rig.plans("launcher-a")
    assert plan["claims"] == 2, plan
    assert len(await rig.claims()) == 1  # the leader died with half its plan done

    await rig.wait(lambda: rig.running(pods))
    assert await _logged(follower, "leader elected", identity="launcher-b")
    assert len(await rig.claims()) == plan["claims"]  # the rest of the plan, not a second plan
    assert len(await rig.instances()) == plan["claims"]
    await rig.check(f"leader SIGKILL at {crashpoints.PLAN_PARTLY_CREATED}")
