"""Drain and the disruption controller against the local API server, over real HTTP.

No lifecycle controller runs here: the tests play its part (a replacement claim becoming Ready)
and check what the disruption code did through the API: taints, annotations, evictions refused
by a PodDisruptionBudget, pods left alone, NodeClaims deleted, Events recorded.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from launcher.disruption.controller import ROUND_PACING, DisruptionController, DisruptionSettings
from launcher.disruption.decisions import Decisions
from launcher.disruption.drain import Drainer, DrainSettings, DrainTarget
from launcher.disruption.mark import EMPTY, EXPIRED, Mark, node_mark
from launcher.disruption.replacement import REPLACES_ANNOTATION, ClaimReplacer
from launcher.kube import NodeClaimWriter, NodeWriter
from launcher.state import LauncherState
from localcluster.scheduler import Scheduler, load_scheduler_config
from localcluster.scheduler.testing import pod as scheduler_pod
from shared import labels
from shared.api._fields import format_time
from shared.api.group import API_GROUP, API_VERSION, NODECLAIM_PLURAL, NODEPOOL_PLURAL
from shared.events import EventRecorder
from tests.launcher.apiserver_state import launcher_state_on_apiserver
from tests.launcher.planner_fixtures import plain_instance_type

REPO = Path(__file__).resolve().parents[2]
LONG_AGO = datetime.now(UTC) - timedelta(hours=2)
FAST_DRAIN = DrainSettings(poll_seconds=0.05, eviction_backoff_base=0.05, eviction_backoff_cap=0.2)


itype = plain_instance_type


TYPES = {t.name: t for t in (itype("small", 2, 4, 0.1), itype("big", 8, 32, 0.4))}


async def eventually(check: Callable[[], Any], within: float = 5.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + within
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@dataclass
class Cluster:
    api: client.ApiClient
    core: client.CoreV1Api
    custom: client.CustomObjectsApi
    state: LauncherState

    async def nodepool(self, name: str = "default", **disruption: Any) -> None:
        body = {
            "apiVersion": "jitnode.io/v1",
            "kind": "NodePool",
            "metadata": {"name": name},
            "spec": {
                "template": {
                    "spec": {
                        "nodeClassRef": {"group": "jitnode.io", "kind": "EC2NodeClass", "name": "default"}
                    }
                },
                "disruption": {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "0s", **disruption},
            },
        }
        await self.custom.create_cluster_custom_object(API_GROUP, API_VERSION, NODEPOOL_PLURAL, body)

    async def node(
        self,
        name: str,
        *,
        pool: str = "default",
        expire_after: str = "720h",
        annotations: dict[str, str] | None = None,
        finalizer: bool = False,
    ) -> None:
        """A Ready node of ``pool`` with its Initialized NodeClaim ``claim-<name>``."""
        claim = f"claim-{name}"
        node_labels = {
            labels.NODEPOOL: pool,
            labels.NODECLAIM: claim,
            labels.INSTANCE_TYPE: "big",
            labels.ZONE: "us-east-1a",
            labels.CAPACITY_TYPE: "on-demand",
            labels.HOSTNAME: name,
        }
        await self.core.create_node(
            {  # type: ignore[arg-type]
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {"name": name, "labels": node_labels, "annotations": annotations or {}},
                "spec": {
                    "providerID": f"aws:///us-east-1a/i-{name}",
                    "taints": [{"key": "keep", "effect": "NoSchedule"}],
                },
            }
        )
        await self.core.patch_node_status(
            name,
            {
                "status": {
                    "allocatable": {"cpu": "8", "memory": "32Gi", "pods": "110"},
                    "conditions": [{"type": "Ready", "status": "True"}],
                }
            },
        )
        writer = NodeClaimWriter(self.api)
        await writer.create(
            {
                "apiVersion": "jitnode.io/v1",
                "kind": "NodeClaim",
                "metadata": {
                    "name": claim,
                    "labels": {labels.NODEPOOL: pool},
                    "finalizers": [labels.TERMINATION_FINALIZER] if finalizer else [],
                },
                "spec": {
                    "nodeClassRef": {"group": "jitnode.io", "kind": "EC2NodeClass", "name": "default"},
                    "requirements": [],
                    "expireAfter": expire_after,
                },
            }
        )
        stamp = format_time(LONG_AGO)
        await writer.patch_status(claim, ready_status(name, stamp))

    async def pod(
        self,
        name: str,
        node: str | None,
        *,
        cpu: str = "500m",
        app: str = "web",
        annotations: dict[str, str] | None = None,
        daemonset: bool = False,
    ) -> None:
        meta: dict[str, Any] = {"name": name, "namespace": "default", "labels": {"app": app}}
        if annotations:
            meta["annotations"] = annotations
        if daemonset:
            meta["ownerReferences"] = [
                {
                    "apiVersion": "apps/v1",
                    "kind": "DaemonSet",
                    "name": "ds",
                    "uid": "ds-uid",
                    "controller": True,
                }
            ]
        spec: dict[str, Any] = {
            "containers": [{"name": "c", "image": "pause", "resources": {"requests": {"cpu": cpu}}}]
        }
        if node:
            spec["nodeName"] = node
        await self.core.create_namespaced_pod("default", {"metadata": meta, "spec": spec})  # type: ignore[arg-type]
        if node:
            await self.core.patch_namespaced_pod_status(
                name,
                "default",
                {"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}},
            )

    async def pdb(self, name: str, app: str, min_available: int) -> None:
        body = {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"minAvailable": min_available, "selector": {"matchLabels": {"app": app}}},
        }
        await client.PolicyV1Api(self.api).create_namespaced_pod_disruption_budget("default", body)  # type: ignore[arg-type]

    async def pod_exists(self, name: str) -> bool:
        try:
            await self.core.read_namespaced_pod(name, "default")
        except ApiException as error:
            if error.status == 404:
                return False
            raise
        return True

    async def claim_exists(self, name: str) -> bool:
        try:
            await self.custom.get_cluster_custom_object(API_GROUP, API_VERSION, NODECLAIM_PLURAL, name)
        except ApiException as error:
            if error.status == 404:
                return False
            raise
        return True

    async def raw_node(self, name: str) -> dict[str, Any]:
        return dict(self.api.sanitize_for_serialization(await self.core.read_node(name)))

    async def event_reasons(self, node: str) -> list[str]:
        events = await self.core.list_namespaced_event("default")
        return [e.reason for e in events.items if e.involved_object.name == node]


def ready_status(node: str, stamp: str) -> dict[str, Any]:
    return {
        "nodeName": node,
        "conditions": [
            {"type": t, "status": "True", "reason": t, "message": "", "lastTransitionTime": stamp}
            for t in ("Launched", "Registered", "Initialized", "Ready")
        ],
    }


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    async with launcher_state_on_apiserver() as (api, state):
        yield Cluster(api, client.CoreV1Api(api), client.CustomObjectsApi(api), state)


def drainer(c: Cluster) -> Drainer:
    return Drainer(
        api=c.api,
        nodes=NodeWriter(c.api),
        claims=NodeClaimWriter(c.api),
        events=EventRecorder(c.api, "jitnode-launcher"),
        pods_on_node=lambda name: c.state.pods_by_node().get(name, []),
        settings=FAST_DRAIN,
    )


def controller(c: Cluster, **kwargs: Any) -> DisruptionController:
    return DisruptionController(
        state=c.state,
        api=c.api,
        claims=NodeClaimWriter(c.api),
        nodes=NodeWriter(c.api),
        events=EventRecorder(c.api, "jitnode-launcher"),
        catalogue=lambda: TYPES,
        settings=DisruptionSettings(interval_seconds=0.1, min_interval_seconds=0.01, drain=FAST_DRAIN),
        **kwargs,
    )


async def synced(c: Cluster, nodes: int, pods: int, claims: int) -> None:
    """Wait until the informers show the counts, the NodePool and every claim Initialized."""

    def caught_up() -> bool:
        found = c.state.nodeclaims()
        return (
            bool(c.state.nodepools())
            and len(c.state.nodes()) == nodes
            and sum(len(v) for v in c.state.pods_by_node().values()) == pods
            and len(found) == claims
            and all(claim.is_true("Initialized") for claim in found.values())
        )

    await eventually(caught_up, what="informers to catch up")


# Drain --------------------------------------------------------------------------------------------


async def test_mark_taints_with_the_whole_list_and_unmark_restores_it(cluster: Cluster) -> None:
    await cluster.nodepool()
    await cluster.node("n1")
    d = drainer(cluster)
    assert await d.mark("n1", Mark(EMPTY, datetime.now(UTC)))
    raw = await cluster.raw_node("n1")
    keys = [t["key"] for t in raw["spec"]["taints"]]
    assert keys == ["keep", labels.DISRUPTED_TAINT]
    mark = node_mark(raw, datetime.now(UTC))
    assert mark is not None
    assert mark.reason == EMPTY
    await d.unmark("n1")
    raw = await cluster.raw_node("n1")
    assert [t["key"] for t in raw["spec"]["taints"]] == ["keep"]
    assert labels.DISRUPTING_ANNOTATION not in (raw["metadata"].get("annotations") or {})
    assert not await d.mark("missing", Mark(EMPTY, datetime.now(UTC)))


async def test_pdb_blocks_eviction_until_it_allows_it(cluster: Cluster) -> None:
    await cluster.nodepool()
    await cluster.node("n1")
    await cluster.pod("web-1", "n1", app="web")
    await cluster.pod("agent", "n1", app="agent", daemonset=True)
    await cluster.pdb("web", "web", min_available=1)
    await synced(cluster, nodes=1, pods=2, claims=1)
    d = drainer(cluster)
    assert await d.mark("n1", Mark(EMPTY, datetime.now(UTC)))
    task = asyncio.create_task(
        d.drain(DrainTarget("n1", "claim-n1", "default", Mark(EMPTY, datetime.now(UTC)), None))
    )
    await eventually(lambda: cluster.event_reasons("n1"), what="events")
    await eventually(
        lambda: _has(cluster.event_reasons("n1"), "EvictionBlocked"), what="an EvictionBlocked event"
    )
    await asyncio.sleep(0.3)  # several retries later, the PDB still holds
    assert not task.done()
    assert await cluster.pod_exists("web-1"), "a pod protected by a PDB was removed"
    assert await cluster.claim_exists("claim-n1")
    await client.PolicyV1Api(cluster.api).delete_namespaced_pod_disruption_budget("web", "default")
    assert await asyncio.wait_for(task, timeout=5) is True
    assert not await cluster.pod_exists("web-1")
    assert await cluster.pod_exists("agent"), "DaemonSet pods are not evicted"
    assert not await cluster.claim_exists("claim-n1")
    reasons = await cluster.event_reasons("n1")
    assert {"EvictionBlocked", "Evicting", "Drained", "NodeClaimDeleted"} <= set(reasons)


async def _has(reasons: Any, reason: str) -> bool:
    return reason in await reasons


async def test_grace_period_ends_a_blocked_drain_without_deleting_the_pod(cluster: Cluster) -> None:
    await cluster.nodepool()
    await cluster.node("n1")
    await cluster.pod("web-1", "n1", app="web")
    await cluster.pdb("web", "web", min_available=1)
    await synced(cluster, nodes=1, pods=1, claims=1)
    d = drainer(cluster)
    mark = Mark(EXPIRED, datetime.now(UTC))
    drained = await asyncio.wait_for(
        d.drain(DrainTarget("n1", "claim-n1", "default", mark, timedelta(seconds=0.4))), timeout=5
    )
    assert drained is False
    assert await cluster.pod_exists("web-1"), "the drain must never delete a pod itself"
    assert not await cluster.claim_exists("claim-n1")
    assert "GracePeriodElapsed" in await cluster.event_reasons("n1")


async def test_do_not_disrupt_pod_is_not_evicted_during_a_drain(cluster: Cluster) -> None:
    await cluster.nodepool()
    await cluster.node("n1")
    await cluster.pod("keep-me", "n1", annotations={labels.DO_NOT_DISRUPT_ANNOTATION: "true"})
    await cluster.pod("web-1", "n1")
    await synced(cluster, nodes=1, pods=2, claims=1)
    d = drainer(cluster)
    mark = Mark(EXPIRED, datetime.now(UTC))
    task = asyncio.create_task(
        d.drain(DrainTarget("n1", "claim-n1", "default", mark, timedelta(seconds=0.5)))
    )
    await eventually(lambda: _gone(cluster, "web-1"), what="web-1 evicted")
    assert await cluster.pod_exists("keep-me")
    assert await asyncio.wait_for(task, timeout=5) is False
    assert await cluster.pod_exists("keep-me")


async def _gone(c: Cluster, pod: str) -> bool:
    return not await c.pod_exists(pod)


# Controller ------------------------------------------------------------------------------------


async def test_empty_node_is_drained_and_its_claim_deleted(cluster: Cluster) -> None:
    await cluster.nodepool()
    await cluster.node("empty")
    await cluster.node("busy")
    await cluster.pod("web-1", "busy")
    await cluster.pod("agent", "empty", daemonset=True)
    await synced(cluster, nodes=2, pods=2, claims=2)
    ctl = controller(cluster)
    decisions = await ctl.reconcile_once()
    assert [(a.node, a.reason) for a in decisions.actions] == [("empty", EMPTY)]
    await eventually(lambda: _claim_gone(cluster, "claim-empty"), what="claim deleted")
    assert await cluster.claim_exists("claim-busy")
    assert "DisruptionStarted" in await cluster.event_reasons("empty")
    await ctl.stop()


async def _claim_gone(c: Cluster, name: str) -> bool:
    return not await c.claim_exists(name)


async def test_do_not_disrupt_blocks_empty_removal_on_the_cluster(cluster: Cluster) -> None:
    await cluster.nodepool()
    await cluster.node("pinned", annotations={labels.DO_NOT_DISRUPT_ANNOTATION: "true"})
    await synced(cluster, nodes=1, pods=0, claims=1)
    ctl = controller(cluster)
    decisions = await ctl.reconcile_once()
    assert decisions.actions == ()
    assert "do-not-disrupt" in decisions.blocked["pinned"]
    raw = await cluster.raw_node("pinned")
    assert node_mark(raw, datetime.now(UTC)) is None


async def test_do_not_disrupt_pod_blocks_consolidation_on_the_cluster(cluster: Cluster) -> None:
    await cluster.nodepool(consolidationPolicy="WhenEmptyOrUnderutilized")
    await cluster.node("a")
    await cluster.node("b")
    await cluster.pod("pinned", "a", annotations={labels.DO_NOT_DISRUPT_ANNOTATION: "true"})
    await cluster.pod("web-1", "b")
    await cluster.pod("web-2", "b")
    await synced(cluster, nodes=2, pods=3, claims=2)
    decisions = await controller(cluster).reconcile_once()
    assert "a" not in {x.node for x in decisions.actions}
    assert "do-not-disrupt" in decisions.blocked["a"]


async def test_budget_of_one_disrupts_one_node_at_a_time(cluster: Cluster) -> None:
    await cluster.nodepool(budgets=[{"nodes": "1"}])
    names = ("e1", "e2", "e3")
    for name in names:
        await cluster.node(name, finalizer=True)  # claims stay Terminating: no lifecycle runs here
    await synced(cluster, nodes=3, pods=0, claims=3)
    ctl = controller(cluster)
    first = await ctl.reconcile_once()
    assert len(first.actions) == 1
    victim = first.actions[0].node

    def terminating() -> bool:
        claim = cluster.state.nodeclaims().get(f"claim-{victim}")
        return claim is not None and claim.metadata.deletion_timestamp is not None

    await eventually(terminating, what="the first claim terminating")
    for _ in range(3):
        again = await ctl.reconcile_once()
        assert again.actions == ()
        assert all("budget" in why for why in again.blocked.values())
    # The lifecycle controller finishes the first node; the budget frees one slot.
    await cluster.core.delete_node(victim)
    await NodeClaimWriter(cluster.api).patch(f"claim-{victim}", {"metadata": {"finalizers": []}})
    await synced(cluster, nodes=2, pods=0, claims=2)
    second = await ctl.reconcile_once()
    assert len(second.actions) == 1
    assert second.actions[0].node != victim
    await ctl.stop()


async def test_expiry_launches_replacement_first_then_drains(cluster: Cluster) -> None:
    await cluster.nodepool()
    await cluster.node("old", expire_after="1s")  # expiry counts from the claim's creation
    await cluster.pod("web-1", "old", cpu="6")
    await synced(cluster, nodes=1, pods=1, claims=1)
    await asyncio.sleep(1.1)
    writer = NodeClaimWriter(cluster.api)
    created: list[str] = []
    replacer = ClaimReplacer(writer, on_created=lambda claim: created.append(claim.name))
    ctl = controller(cluster, replacer=replacer)
    decisions = await ctl.reconcile_once()
    (action,) = decisions.actions
    assert action.reason == EXPIRED
    assert len(action.replacements) == 1
    await eventually(lambda: len(created) == 1, what="replacement created")
    replacement = await cluster.custom.get_cluster_custom_object(
        API_GROUP, API_VERSION, NODECLAIM_PLURAL, created[0]
    )
    assert replacement["metadata"]["annotations"][REPLACES_ANNOTATION] == "old"
    type_req = next(r for r in replacement["spec"]["requirements"] if r["key"] == labels.INSTANCE_TYPE)
    assert type_req["values"] == ["big"]
    # While the replacement is not Ready, nothing is evicted.
    await asyncio.sleep(0.3)
    assert await cluster.pod_exists("web-1")
    raw = await cluster.raw_node("old")
    mark = node_mark(raw, datetime.now(UTC))
    assert mark is not None
    assert mark.replacements == (created[0],)
    # The lifecycle controller's part: the replacement's node joins and is Ready.
    await cluster.node("new")
    await writer.patch_status(created[0], ready_status("new", format_time(datetime.now(UTC))))
    await eventually(lambda: _gone(cluster, "web-1"), what="web-1 evicted after the replacement is Ready")
    await eventually(lambda: _claim_gone(cluster, "claim-old"), what="expired claim deleted")
    await ctl.stop()


async def test_restarted_controller_resumes_a_marked_node(cluster: Cluster) -> None:
    await cluster.nodepool()
    await cluster.node("n1")
    await cluster.node("n2")
    await cluster.pod("web-1", "n1")
    await cluster.pod("web-2", "n2")
    mark = Mark(EXPIRED, datetime.now(UTC))
    assert await drainer(cluster).mark("n1", mark)  # as if a previous launcher died here
    await synced(cluster, nodes=2, pods=2, claims=2)
    await eventually(lambda: node_mark(cluster.state.nodes()["n1"], datetime.now(UTC)), what="mark seen")
    ctl = controller(cluster)
    decisions = await ctl.reconcile_once()
    assert "n1" not in {a.node for a in decisions.actions}
    await eventually(lambda: _claim_gone(cluster, "claim-n1"), what="resumed drain finished")
    assert not await cluster.pod_exists("web-1")
    assert await cluster.pod_exists("web-2")
    await ctl.stop()


async def test_last_pod_event_time_is_recorded_when_pods_change(cluster: Cluster) -> None:
    await cluster.nodepool(consolidateAfter="Never")
    await cluster.node("n1")
    await synced(cluster, nodes=1, pods=0, claims=1)
    ctl = controller(cluster)
    await ctl.reconcile_once()
    assert cluster.state.nodeclaims()["claim-n1"].status.last_pod_event_time is None
    before = datetime.now(UTC).replace(microsecond=0)
    await cluster.pod("web-1", "n1")
    await synced(cluster, nodes=1, pods=1, claims=1)
    await ctl.reconcile_once()

    def stamped() -> bool:
        when = cluster.state.nodeclaims()["claim-n1"].status.last_pod_event_time
        return when is not None and when >= before

    await eventually(stamped, what="lastPodEventTime")


async def test_terminating_pod_keeps_its_node_until_it_is_gone(cluster: Cluster) -> None:
    """A deleted pod still runs until its kubelet stops it: the node is not empty before that."""
    await cluster.nodepool()  # WhenEmpty, consolidateAfter 0s
    await cluster.node("n1")
    await cluster.pod("web-1", "n1")
    await cluster.core.patch_namespaced_pod("web-1", "default", {"metadata": {"finalizers": ["test/hold"]}})
    await synced(cluster, nodes=1, pods=1, claims=1)
    ctl = controller(cluster)
    assert (await ctl.reconcile_once()).actions == ()
    await cluster.core.delete_namespaced_pod("web-1", "default", grace_period_seconds=30)

    def terminating() -> bool:
        pods = cluster.state.pods_by_node().get("n1", [])
        return bool(pods) and bool(pods[0]["metadata"].get("deletionTimestamp"))

    await eventually(terminating, what="web-1 terminating")
    for _ in range(3):
        assert (await ctl.reconcile_once()).actions == ()
    await cluster.core.patch_namespaced_pod("web-1", "default", {"metadata": {"finalizers": None}})
    await synced(cluster, nodes=1, pods=0, claims=1)
    decisions = await ctl.reconcile_once()
    assert [(a.node, a.reason) for a in decisions.actions] == [("n1", EMPTY)]
    await ctl.stop()


# Disruption-candidate taint ----------------------------------------------------------------------


def _taints(raw: dict[str, Any]) -> list[tuple[str, str]]:
    return [(t["key"], t["effect"]) for t in raw["spec"].get("taints") or []]


async def test_candidate_taint_comes_and_goes_and_new_pods_prefer_other_nodes(cluster: Cluster) -> None:
    await cluster.nodepool(consolidationPolicy="WhenEmpty", consolidateAfter="Never")
    await cluster.node("expiring", expire_after="5m")
    await cluster.node("steady")
    await cluster.pod("web-1", "expiring", cpu="4")  # fuller: MostAllocated alone would pick it
    await synced(cluster, nodes=2, pods=1, claims=2)
    ctl = controller(cluster)
    await ctl.reconcile_once()
    candidate = (labels.DISRUPTION_CANDIDATE_TAINT, "PreferNoSchedule")
    raw = await cluster.raw_node("expiring")
    assert _taints(raw) == [("keep", "NoSchedule"), candidate]  # the whole list kept
    assert candidate not in _taints(await cluster.raw_node("steady"))

    # A new pod, scheduled by the shipped profile (no extender: in-tree scoring alone), prefers
    # the node that is not about to go although the candidate is the fuller one.
    shipped = load_scheduler_config(REPO / "manifests" / "scheduler" / "config.yaml")
    config = replace(shipped, extenders=(), profiles=(replace(shipped.profiles[0], scheduler_name="s"),))
    async with Scheduler(cluster.api, config, rng=random.Random(0)):
        body = scheduler_pod("new", cpu="500m", scheduler_name="s", tolerations=[{"key": "keep"}])
        await cluster.core.create_namespaced_pod("default", body)  # type: ignore[arg-type]

        async def placed() -> str | None:
            return (await cluster.core.read_namespaced_pod("new", "default")).spec.node_name

        assert await eventually(placed, what="the new pod bound") == "steady"

    # It stops being a candidate (a shorter window: it no longer expires within it).
    await eventually(lambda: candidate in _taints(cluster.state.nodes()["expiring"]), what="informer")
    narrow = controller(cluster)
    narrow.settings = replace(narrow.settings, candidate_window=timedelta(minutes=1))
    await narrow.reconcile_once()
    assert _taints(await cluster.raw_node("expiring")) == [("keep", "NoSchedule")]
    await ctl.stop()
    await narrow.stop()


async def test_the_pause_after_a_round_grows_with_the_rounds_length(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slow round (as at 5,000 nodes) is followed by ROUND_PACING times its length of pause."""
    disruption = controller(cluster)
    starts: list[float] = []

    async def slow_round() -> Decisions:
        starts.append(time.monotonic())
        busy_until = time.monotonic() + 0.1
        while time.monotonic() < busy_until:  # CPU, like a round over many nodes
            pass
        return Decisions()

    monkeypatch.setattr(disruption, "reconcile_once", slow_round)
    task = asyncio.create_task(disruption.run())
    try:
        await eventually(lambda: len(starts) >= 3, what="three rounds")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    # Each gap is the round (0.1 s) plus at least ROUND_PACING times it, not the 0.01 s minimum.
    assert min(gaps) >= 0.1 * (1 + ROUND_PACING) - 0.02, gaps
