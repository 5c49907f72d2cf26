"""The scheduler end to end: API server on loopback, kubernetes-asyncio, real extenders."""

from __future__ import annotations

import functools
import random
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest
from kubernetes_asyncio import client

from localcluster.apiserver.testing import running_apiserver
from localcluster.scheduler import Scheduler, load_scheduler_config
from localcluster.scheduler.testing import RecordingExtender, node, pod, wait_for
from shared.resources import Resources

FAST = "podInitialBackoffSeconds: 0.05\npodMaxBackoffSeconds: 0.2\n"
HEADER = "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n"

Cluster = tuple[client.ApiClient, Any]
Start = Callable[..., AbstractAsyncContextManager[Scheduler]]


@pytest.fixture
async def kube() -> AsyncIterator[Cluster]:
    async with running_apiserver() as (_, api):
        yield api, client.CoreV1Api(api)


@pytest.fixture
def start(kube: Cluster) -> Start:
    @asynccontextmanager
    async def run(extra: str = "", **kwargs: Any) -> AsyncIterator[Scheduler]:
        config = load_scheduler_config(HEADER + FAST + extra)
        async with Scheduler(kube[0], config, rng=random.Random(0), **kwargs) as scheduler:
            yield scheduler

    return run


def extender_yaml(url: str, *, cache: bool = True, ignorable: bool = False, weight: int = 1) -> str:
    return (
        f"extenders:\n- urlPrefix: {url}\n  filterVerb: filter\n  prioritizeVerb: prioritize\n"
        f"  weight: {weight}\n  nodeCacheCapable: {str(cache).lower()}\n"
        f"  ignorable: {str(ignorable).lower()}\n"
        "  httpTimeout: 300ms\n"
    )


async def node_of(v1: Any, name: str) -> str | None:
    p = await v1.read_namespaced_pod(name, "default")
    return p.spec.node_name  # type: ignore[no-any-return]


async def condition(v1: Any, name: str) -> Any:
    p = await v1.read_namespaced_pod(name, "default")
    return next((c for c in p.status.conditions or [] if c.type == "PodScheduled"), None)


async def events(v1: Any, reason: str) -> list[Any]:
    return [e for e in (await v1.list_namespaced_event("default")).items if e.reason == reason]


async def test_pods_bind_to_fitting_nodes(kube: Cluster, start: Start) -> None:
    _, v1 = kube
    await v1.create_node(node("small", cpu="1"))
    await v1.create_node(node("apps", cpu="4", labels={"intent": "apps"}))
    await v1.create_node(
        node("tainted", cpu="8", taints=[{"key": "dedicated", "value": "db", "effect": "NoSchedule"}])
    )
    async with start():
        await v1.create_namespaced_pod(
            "default", pod("needs-apps", cpu="500m", node_selector={"intent": "apps"})
        )
        await v1.create_namespaced_pod("default", pod("big", cpu="3"))
        await v1.create_namespaced_pod(
            "default",
            pod("db", cpu="6", tolerations=[{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]),
        )
        assert await wait_for(lambda: node_of(v1, "needs-apps")) == "apps"
        assert await wait_for(lambda: node_of(v1, "big")) == "apps"
        assert await wait_for(lambda: node_of(v1, "db")) == "tainted"
        scheduled = await wait_for(lambda: events(v1, "Scheduled"))
        messages = {e.message for e in await wait_for(lambda: _at_least(v1, "Scheduled", 3))}
        assert "Successfully assigned default/db to tainted" in messages
        assert all(e.source.component == "default-scheduler" and e.type == "Normal" for e in scheduled)
        cond = await condition(v1, "db")
        assert cond.status == "True"  # set by the API server's binding


async def _at_least(v1: Any, reason: str, count: int) -> list[Any]:
    found = await events(v1, reason)
    return found if len(found) >= count else []


async def test_unschedulable_then_scheduled_when_node_added(kube: Cluster, start: Start) -> None:
    _, v1 = kube
    for name in ("a", "b", "c"):
        await v1.create_node(node(name, cpu="1"))
    async with start():
        await v1.create_namespaced_pod("default", pod("inflate", cpu="2"))
        cond = await wait_for(lambda: condition(v1, "inflate"))
        assert (cond.status, cond.reason) == ("False", "Unschedulable")
        expected = (
            "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: "
            "3 No preemption victims found for incoming pod."
        )
        assert cond.message == expected
        assert cond.last_transition_time is not None
        assert cond.last_probe_time is None
        (event,) = await wait_for(lambda: events(v1, "FailedScheduling"))
        assert (event.type, event.message, event.count) == ("Warning", expected, 1)
        assert (event.involved_object.kind, event.involved_object.name) == ("Pod", "inflate")
        assert event.source.component == "default-scheduler"
        assert event.first_timestamp is not None
        assert event.last_timestamp is not None
        await v1.create_node(node("d", cpu="4"))
        assert await wait_for(lambda: node_of(v1, "inflate")) == "d"


async def test_priority_order_when_room_for_one(kube: Cluster, start: Start) -> None:
    _, v1 = kube
    await v1.create_namespaced_pod("default", pod("low", cpu="1", priority=0))
    await v1.create_namespaced_pod("default", pod("high", cpu="1", priority=1000))
    async with start() as scheduler:
        await wait_for(lambda: condition(v1, "low"))
        assert (await condition(v1, "low")).message == "no nodes available to schedule pods"
        await v1.create_node(node("only", cpu="1"))
        assert await wait_for(lambda: node_of(v1, "high")) == "only"
        await scheduler.wait_idle()
        assert await node_of(v1, "low") is None


async def test_burst_never_overcommits(kube: Cluster, start: Start) -> None:
    _, v1 = kube
    for i in range(4):
        await v1.create_node(node(f"n{i}", cpu="2", memory="4Gi", pods="40"))
    async with start() as scheduler:
        for i in range(120):
            await v1.create_namespaced_pod("default", pod(f"p{i}", cpu="150m", memory="100Mi"))

        async def settled() -> list[Any]:
            pods = (await v1.list_namespaced_pod("default")).items
            unbound = [p for p in pods if not p.spec.node_name]
            done = len(pods) == 120 and all(
                any(c.type == "PodScheduled" and c.status == "False" for c in p.status.conditions or [])
                for p in unbound
            )
            return pods if done else []

        pods = await wait_for(settled, limit=15)
        used: dict[str, Resources] = {}
        for p in pods:
            if p.spec.node_name:
                req = Resources.parse(p.spec.containers[0].resources.requests)
                used[p.spec.node_name] = used.get(p.spec.node_name, Resources()) + req
        # 2 cpu / 150m = 13 per node, 52 in all; the rest are Unschedulable.
        assert sum(1 for p in pods if p.spec.node_name) == 52
        assert all(r.amount("cpu") <= 2000 for r in used.values())
        assert scheduler.scheduled == 52


async def test_not_ready_node_skipped_until_ready(kube: Cluster, start: Start) -> None:
    _, v1 = kube
    await v1.create_node(node("n", ready=False))
    async with start():
        await v1.create_namespaced_pod("default", pod("p"))
        cond = await wait_for(lambda: condition(v1, "p"))
        assert "1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }" in cond.message
        assert "1 Preemption is not helpful for scheduling" in cond.message
        await v1.patch_node_status("n", {"status": {"conditions": [{"type": "Ready", "status": "True"}]}})
        assert await wait_for(lambda: node_of(v1, "p")) == "n"


async def test_terminal_pods_free_their_node(kube: Cluster, start: Start) -> None:
    _, v1 = kube
    await v1.create_node(node("n", cpu="1"))
    done = pod("done", cpu="1")
    done["spec"]["nodeName"] = "n"
    await v1.create_namespaced_pod("default", done)
    await v1.patch_namespaced_pod_status("done", "default", {"status": {"phase": "Succeeded"}})
    other = pod("elsewhere", cpu="1", scheduler_name="someone-else")
    async with start():
        await v1.create_namespaced_pod("default", other)
        await v1.create_namespaced_pod("default", pod("next", cpu="1"))
        assert await wait_for(lambda: node_of(v1, "next")) == "n"
        assert await node_of(v1, "elsewhere") is None
        assert await condition(v1, "elsewhere") is None


async def test_extender_filter_is_respected(kube: Cluster, start: Start) -> None:
    _, v1 = kube
    for name in ("n0", "n1", "n2"):
        await v1.create_node(node(name))

    def only_n2(verb: str, args: dict[str, Any]) -> Any:
        if verb == "filter":
            names = args["NodeNames"]
            return {
                "NodeNames": [n for n in names if n == "n2"],
                "FailedNodes": {n: "not n2" for n in names if n != "n2"},
            }
        return []

    async with RecordingExtender(answer=only_n2) as ext, start(extender_yaml(ext.url)):
        for i in range(3):
            await v1.create_namespaced_pod("default", pod(f"p{i}", cpu="100m"))
        for i in range(3):
            assert await wait_for(functools.partial(node_of, v1, f"p{i}")) == "n2"
        # One node passed: prioritize is skipped.
        assert set(ext.verbs()) == {"filter"}


async def test_extender_rejecting_all_reports_its_reasons(kube: Cluster, start: Start) -> None:
    _, v1 = kube
    for name in ("n0", "n1"):
        await v1.create_node(node(name))
    await v1.create_node(node("small", cpu="100m"))

    def none(verb: str, args: dict[str, Any]) -> Any:
        return {"NodeNames": [], "FailedNodes": dict.fromkeys(args["NodeNames"], "node is disrupted")}

    async with RecordingExtender(answer=none) as ext, start(extender_yaml(ext.url)):
        await v1.create_namespaced_pod("default", pod("p", cpu="1"))
        cond = await wait_for(lambda: condition(v1, "p"))
        assert cond.message == (
            "0/3 nodes are available: 1 Insufficient cpu, 2 node is disrupted. preemption: 0/3 nodes are "
            "available: 3 No preemption victims found for incoming pod."
        )
        # The extender only saw the nodes that passed the in-tree filters.
        assert ext.calls[0].json["NodeNames"] == ["n0", "n1"]


async def test_extender_not_called_when_nothing_fits(kube: Cluster, start: Start) -> None:
    _, v1 = kube
    await v1.create_node(node("n0", cpu="1"))
    async with RecordingExtender() as ext, start(extender_yaml(ext.url)):
        await v1.create_namespaced_pod("default", pod("p", cpu="2"))
        cond = await wait_for(lambda: condition(v1, "p"))
        assert cond.reason == "Unschedulable"
    assert ext.calls == []


async def test_prioritize_picks_extender_favourite(kube: Cluster, start: Start) -> None:
    _, v1 = kube
    for name in ("n0", "n1", "n2"):
        await v1.create_node(node(name))

    def favour_n1(verb: str, args: dict[str, Any]) -> Any:
        names = args["NodeNames"]
        if verb == "filter":
            return {"NodeNames": names}
        return [{"Host": n, "Score": 10 if n == "n1" else 0} for n in names]

    async with RecordingExtender(answer=favour_n1) as ext, start(extender_yaml(ext.url, weight=2)):
        await v1.create_namespaced_pod("default", pod("p", cpu="100m"))
        assert await wait_for(lambda: node_of(v1, "p")) == "n1"
    assert ext.verbs() == ["filter", "prioritize"]
    assert ext.calls[0].body == ext.calls[1].body


async def test_ignorable_extender_down_scheduling_continues(kube: Cluster, start: Start) -> None:
    _, v1 = kube
    await v1.create_node(node("n0"))
    async with RecordingExtender() as ext:
        url = ext.url  # now closed: connection refused
    async with start(extender_yaml(url, ignorable=True)):
        await v1.create_namespaced_pod("default", pod("p"))
        assert await wait_for(lambda: node_of(v1, "p")) == "n0"


async def test_non_ignorable_extender_down_blocks_then_recovers(kube: Cluster, start: Start) -> None:
    _, v1 = kube
    await v1.create_node(node("n0"))
    await v1.create_node(node("n1"))
    ext = RecordingExtender(status=503)
    await ext.start()
    try:
        async with start(extender_yaml(ext.url)):
            await v1.create_namespaced_pod("default", pod("p"))
            cond = await wait_for(lambda: condition(v1, "p"))
            assert cond.reason == "SchedulerError"
            assert cond.message == f"failed filter with extender at URL {ext.url}/filter, code 503"
            assert await node_of(v1, "p") is None
            # Errors retry after backoff, without any cluster event.
            ext.status = 200
            assert await wait_for(lambda: node_of(v1, "p")) in ("n0", "n1")
            assert len([v for v in ext.verbs() if v == "filter"]) >= 2
    finally:
        await ext.stop()


async def test_extender_timeout_is_an_error(kube: Cluster, start: Start) -> None:
    _, v1 = kube
    await v1.create_node(node("n0"))
    async with RecordingExtender(delay=1.0) as ext, start(extender_yaml(ext.url)):
        await v1.create_namespaced_pod("default", pod("p"))
        cond = await wait_for(lambda: condition(v1, "p"))
        assert cond.reason == "SchedulerError"
        assert "deadline exceeded" in cond.message


def _required(kind: str, labels: dict[str, str], key: str = "kubernetes.io/hostname") -> dict[str, Any]:
    term = {"topologyKey": key, "labelSelector": {"matchLabels": labels}}
    return {kind: {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}


async def test_required_anti_affinity_keeps_replicas_apart(kube: Cluster, start: Start) -> None:
    _, v1 = kube
    for name in ("n0", "n1"):
        await v1.create_node(node(name))
    web = {"app": "web"}
    async with start():
        for i in range(3):
            replica = pod(f"web-{i}", labels=web, cpu="100m", affinity=_required("podAntiAffinity", web))
            await v1.create_namespaced_pod("default", replica)

        async def settled() -> tuple[list[Any], Any] | None:
            pods = (await v1.list_namespaced_pod("default")).items
            bound = [p for p in pods if p.spec.node_name]
            pending = [p for p in pods if not p.spec.node_name]
            if len(bound) != 2 or len(pending) != 1:
                return None
            cond = next((c for c in pending[0].status.conditions or [] if c.type == "PodScheduled"), None)
            return (bound, cond) if cond is not None else None

        bound, cond = await wait_for(settled)
        assert sorted(p.spec.node_name for p in bound) == ["n0", "n1"]
        assert (cond.status, cond.reason) == ("False", "Unschedulable")
        assert "didn't match pod anti-affinity rules" in cond.message
        assert cond.message == (
            "0/2 nodes are available: 2 node(s) didn't match pod anti-affinity rules. preemption: 0/2 "
            "nodes are available: 2 No preemption victims found for incoming pod."
        )


async def test_required_pod_affinity_waits_for_its_peer(kube: Cluster, start: Start) -> None:
    _, v1 = kube
    for name in ("n0", "n1"):
        await v1.create_node(node(name))
    async with start():
        follower = pod("web", labels={"app": "web"}, affinity=_required("podAffinity", {"app": "cache"}))
        await v1.create_namespaced_pod("default", follower)
        cond = await wait_for(lambda: condition(v1, "web"))
        assert cond.message == (
            "0/2 nodes are available: 2 node(s) didn't match pod affinity rules. preemption: 0/2 nodes "
            "are available: 2 Preemption is not helpful for scheduling."
        )
        # The peer's binding requeues the follower at once (not after the 5-minute timeout).
        await v1.create_namespaced_pod("default", pod("cache", labels={"app": "cache"}))
        peer = await wait_for(lambda: node_of(v1, "cache"))
        assert await wait_for(lambda: node_of(v1, "web")) == peer


async def test_pod_affinity_namespace_selector_reads_namespace_labels(kube: Cluster, start: Start) -> None:
    """The scheduler watches Namespaces: a follower whose term selects the cache's namespace by
    its ``kubernetes.io/metadata.name`` label joins it; one selecting another namespace waits."""
    _, v1 = kube
    for name in ("n0", "n1"):
        await v1.create_node(node(name))
    await v1.create_namespace(
        {"metadata": {"name": "caches", "labels": {"kubernetes.io/metadata.name": "caches"}}}
    )

    def follower(name: str, namespace: str) -> dict[str, Any]:
        term = {
            "topologyKey": "kubernetes.io/hostname",
            "labelSelector": {"matchLabels": {"app": "cache"}},
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
        }
        return pod(name, affinity={"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}})

    async with start():
        await v1.create_namespaced_pod("caches", pod("cache", namespace="caches", labels={"app": "cache"}))
        await v1.create_namespaced_pod("default", follower("joins", "caches"))
        await v1.create_namespaced_pod("default", follower("waits", "default"))

        async def cache_node() -> str | None:
            return (await v1.read_namespaced_pod("cache", "caches")).spec.node_name  # type: ignore[no-any-return]

        assert await wait_for(lambda: node_of(v1, "joins")) == await wait_for(cache_node)
        cond = await wait_for(lambda: condition(v1, "waits"))
        assert "didn't match pod affinity rules" in cond.message
