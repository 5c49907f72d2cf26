"""Drift and do-not-disrupt durations against the local API server, over real HTTP.

The drift shell stamps hashes, writes the ``Drifted`` condition and removes it; the disruption
controller replaces a drifted node; the drain evicts a pod whose do-not-disrupt duration is over
and keeps one whose duration runs; an unreadable value is reported as a Warning Event.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes_asyncio import client

from launcher.disruption.drain import DrainTarget
from launcher.disruption.drift import NODEPOOL_HASH_ANNOTATION, NODEPOOL_HASH_VERSION_ANNOTATION
from launcher.disruption.mark import DRIFTED, EXPIRED, Mark, node_mark
from launcher.kube import NodeClaimWriter, StatusWriter
from launcher.status.drift import DriftController, DriftSettings
from shared import labels
from shared.api._fields import format_time
from shared.api.group import API_GROUP, API_VERSION, NODECLAIM_PLURAL, NODEPOOL_PLURAL
from shared.events import EventRecorder
from tests.launcher.apiserver_state import launcher_state_on_apiserver
from tests.launcher.test_disruption_cluster import (
    Cluster,
    controller,
    drainer,
    eventually,
    ready_status,
    synced,
)


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    async with launcher_state_on_apiserver() as (api, state):
        yield Cluster(api, client.CoreV1Api(api), client.CustomObjectsApi(api), state)


def drift_controller(c: Cluster) -> DriftController:
    return DriftController(
        state=c.state,
        writer=StatusWriter(c.api),
        claims=NodeClaimWriter(c.api),
        events=EventRecorder(c.api, "jitnode-launcher"),
        resolved=lambda _: None,
        instance_of=lambda _: None,
        settings=DriftSettings(resync_seconds=0.2, min_interval_seconds=0.01, retry_seconds=0.1),
    )


async def _claim(c: Cluster, name: str) -> dict[str, Any]:
    obj: dict[str, Any] = await c.custom.get_cluster_custom_object(
        API_GROUP, API_VERSION, NODECLAIM_PLURAL, name
    )
    return obj


def _drifted(claim: dict[str, Any]) -> dict[str, Any]:
    return next((x for x in claim.get("status", {}).get("conditions", []) if x["type"] == "Drifted"), {})


async def _set_template_labels(c: Cluster, values: dict[str, str] | None) -> None:
    patch = {"spec": {"template": {"metadata": {"labels": values}}}}
    await c.custom.patch_cluster_custom_object(
        API_GROUP,
        API_VERSION,
        NODEPOOL_PLURAL,
        "default",
        patch,
        _content_type="application/merge-patch+json",  # type: ignore[call-arg]
    )


async def test_pool_template_change_drifts_the_claim_and_the_node_is_replaced(cluster: Cluster) -> None:
    await cluster.nodepool()
    await cluster.nodepool("other")
    await cluster.node("old")
    await cluster.node("spare")
    await cluster.node("fresh", pool="other")  # where old's pod goes: its pool does not change
    await cluster.pod("web-1", "old")
    await cluster.pod("web-2", "spare")
    await cluster.pod("web-3", "fresh")
    await synced(cluster, nodes=3, pods=3, claims=3)
    drift = drift_controller(cluster)
    task = asyncio.create_task(drift.run())
    try:
        # Claims made before hashes existed are stamped with the current hash, not drifted.
        async def stamped() -> bool:
            claim = await _claim(cluster, "claim-old")
            annotations = claim["metadata"].get("annotations") or {}
            return NODEPOOL_HASH_ANNOTATION in annotations and NODEPOOL_HASH_VERSION_ANNOTATION in annotations

        await eventually(stamped, what="hash stamped")
        await asyncio.sleep(0.3)
        assert not _drifted(await _claim(cluster, "claim-old"))

        await _set_template_labels(cluster, {"team": "a"})

        async def drifted() -> dict[str, Any]:
            return _drifted(await _claim(cluster, "claim-old"))

        condition = await eventually(drifted, what="Drifted condition")
        assert condition["status"] == "True"
        assert condition["reason"] == "NodePoolDrifted"
        assert "hash" in condition["message"]

        async def spare_drifted() -> dict[str, Any]:
            return _drifted(await _claim(cluster, "claim-spare"))

        assert (await eventually(spare_drifted, what="spare drifted"))["reason"] == "NodePoolDrifted"
        events = await cluster.core.list_namespaced_event("default")
        assert any(e.reason == "Drifted" and e.involved_object.name == "claim-old" for e in events.items)

        # Put back as it was: no longer drifted, the condition goes.
        await _set_template_labels(cluster, None)

        async def cleared() -> bool:
            return not _drifted(await _claim(cluster, "claim-old"))

        await eventually(cleared, what="Drifted removed")

        # Drifted again; the disruption controller replaces the loaded node (its pod fits on spare).
        await _set_template_labels(cluster, {"team": "b"})
        await eventually(drifted, what="Drifted again")
        await eventually(lambda: cluster.state.nodeclaims()["claim-old"].is_true("Drifted"), what="informer")
        await eventually(
            lambda: cluster.state.nodeclaims()["claim-spare"].is_true("Drifted"), what="informer"
        )
        ctl = controller(cluster)
        decisions = await ctl.reconcile_once()
        (action,) = decisions.actions
        assert (action.node, action.reason) == ("old", DRIFTED)
        assert action.replacements  # web-1 tolerates no other node's taint: new capacity first
        assert "budget for Drifted" in decisions.blocked["spare"]  # 10% of two nodes: one at a time
        assert not cluster.state.nodeclaims()["claim-fresh"].is_true("Drifted")
        mark = node_mark(await cluster.raw_node("old"), datetime.now(UTC))
        assert mark is not None
        assert mark.reason == DRIFTED
        (replacement,) = mark.replacements
        await eventually(lambda: cluster.claim_exists(replacement), what="replacement created")
        await asyncio.sleep(0.3)
        assert await cluster.pod_exists("web-1")  # nothing is evicted before the replacement is Ready
        await NodeClaimWriter(cluster.api).patch_status(
            replacement, ready_status("new-node", format_time(datetime.now(UTC)))
        )
        await eventually(lambda: _claim_gone(cluster, "claim-old"), what="old claim deleted")
        assert not await cluster.pod_exists("web-1")  # evicted, not left behind
        await ctl.stop()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _claim_gone(c: Cluster, name: str) -> bool:
    return not await c.claim_exists(name)


async def _started(c: Cluster, pod: str, at: datetime) -> None:
    await c.core.patch_namespaced_pod_status(
        pod,
        "default",
        {
            "status": {
                "phase": "Running",
                "startTime": format_time(at),
                "conditions": [{"type": "Ready", "status": "True"}],
            }
        },
    )


async def test_drain_evicts_a_pod_whose_do_not_disrupt_duration_is_over(cluster: Cluster) -> None:
    await cluster.nodepool()
    await cluster.node("n1")
    now = datetime.now(UTC)
    await cluster.pod("done", "n1", annotations={labels.DO_NOT_DISRUPT_ANNOTATION: "1h"})
    await _started(cluster, "done", now - timedelta(hours=2))
    await cluster.pod("running", "n1", annotations={labels.DO_NOT_DISRUPT_ANNOTATION: "1h"})
    await _started(cluster, "running", now - timedelta(minutes=5))

    def started() -> bool:
        pods = cluster.state.pods_by_node().get("n1", [])
        return len(pods) == 2 and all(p.get("status", {}).get("startTime") for p in pods)

    await synced(cluster, nodes=1, pods=2, claims=1)
    await eventually(started, what="start times in the informer")
    task = asyncio.create_task(
        drainer(cluster).drain(
            DrainTarget("n1", "claim-n1", "default", Mark(EXPIRED, now), timedelta(seconds=1))
        )
    )
    await eventually(lambda: _pod_gone(cluster, "done"), what="the pod past its duration evicted")
    assert await asyncio.wait_for(task, timeout=10) is False  # the grace period ended the wait
    assert await cluster.pod_exists("running")


async def _pod_gone(c: Cluster, pod: str) -> bool:
    return not await c.pod_exists(pod)


async def test_duration_blocks_voluntary_disruption_until_it_is_over(cluster: Cluster) -> None:
    await cluster.nodepool(consolidationPolicy="WhenEmptyOrUnderutilized")
    await cluster.node("a")
    await cluster.node("b")
    now = datetime.now(UTC)
    await cluster.pod("guarded", "a", annotations={labels.DO_NOT_DISRUPT_ANNOTATION: "30m"})
    await _started(cluster, "guarded", now - timedelta(minutes=10))
    await cluster.pod("web-1", "b")
    await synced(cluster, nodes=2, pods=2, claims=2)
    await eventually(
        lambda: all(p.get("status", {}).get("startTime") for p in cluster.state.pods_by_node().get("a", [])),
        what="start time in the informer",
    )
    ctl = controller(cluster, now=lambda: now)
    decisions = await ctl.reconcile_once()
    assert "a" not in {x.node for x in decisions.actions}
    assert "do-not-disrupt" in decisions.blocked["a"]
    later = controller(cluster, now=lambda: now + timedelta(minutes=25))
    decisions = await later.reconcile_once()
    assert "a" not in decisions.blocked or "do-not-disrupt" not in decisions.blocked["a"]
    await ctl.stop()
    await later.stop()


async def test_an_unreadable_value_is_reported_once_and_protects_nothing(cluster: Cluster) -> None:
    await cluster.nodepool()
    await cluster.node("n1", annotations={labels.DO_NOT_DISRUPT_ANNOTATION: "30m"})  # nodes: "true" only
    await cluster.node("n2")
    await cluster.pod("odd", "n2", annotations={labels.DO_NOT_DISRUPT_ANNOTATION: "soon"})
    await synced(cluster, nodes=2, pods=1, claims=2)
    ctl = controller(cluster)
    await ctl.reconcile_once()
    await ctl.reconcile_once()

    async def warnings() -> list[Any]:
        events = (await cluster.core.list_namespaced_event("default")).items
        return [e for e in events if e.reason == "InvalidDoNotDisruptAnnotation"]

    found = await eventually(lambda: _two(warnings), what="two warnings")
    assert {(e.involved_object.kind, e.involved_object.name) for e in found} == {
        ("Node", "n1"),
        ("Pod", "odd"),
    }
    assert all(e.type == "Warning" and e.count in (None, 1) for e in found)
    assert any("'soon'" in e.message for e in found)
    await ctl.stop()


async def _two(fetch: Any) -> list[Any] | None:
    found: list[Any] = await fetch()
    return found if len(found) == 2 else None
