"""Node repair in the disruption controller, against the local API server over real HTTP.

As in ``test_disruption_cluster``, no lifecycle controller runs: the tests play its part (a
replacement claim becoming Ready) and read what repair did through the API: the mark, the
replacement, Events, a pod a PodDisruptionBudget protects left in place, the NodeClaim deleted.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes_asyncio import client

from launcher.disruption.controller import DisruptionController
from launcher.disruption.mark import EXPIRED, Mark, node_mark
from launcher.disruption.repair import UNHEALTHY
from launcher.disruption.repairer import NodeRepairSettings
from launcher.disruption.repairpolicy import parse_policies
from launcher.disruption.replacement import REPLACES_ANNOTATION, ClaimReplacer
from launcher.kube import NodeClaimWriter
from shared.api._fields import format_time
from shared.api.group import API_GROUP, API_VERSION, NODECLAIM_PLURAL
from tests.launcher.apiserver_state import launcher_state_on_apiserver
from tests.launcher.test_disruption_cluster import (
    Cluster,
    controller,
    drainer,
    eventually,
    ready_status,
    synced,
)

REPAIR = NodeRepairSettings(
    enabled=True,
    policies=parse_policies({"Ready:Unknown": 600.0, "Ready:False": 600.0}, "policies"),
    replacement_wait=timedelta(minutes=5),
)


@pytest.fixture
async def c() -> AsyncIterator[Cluster]:
    async with launcher_state_on_apiserver() as (api, state):
        yield Cluster(api, client.CoreV1Api(api), client.CustomObjectsApi(api), state)


def repairing(c: Cluster, **kwargs: Any) -> DisruptionController:
    ctl = controller(c, **kwargs)
    ctl.settings = replace(ctl.settings, repair=REPAIR)
    ctl.repairer.settings = REPAIR
    return ctl


async def sick(c: Cluster, name: str, status: str = "Unknown", ago: timedelta = timedelta(hours=1)) -> None:
    since = format_time(datetime.now(UTC) - ago)
    condition = {
        "type": "Ready",
        "status": status,
        "reason": "NodeStatusUnknown",
        "lastTransitionTime": since,
    }
    await c.core.patch_node_status(name, {"status": {"conditions": [condition]}})


def unhealthy_seen(c: Cluster, *names: str) -> bool:
    nodes = c.state.nodes()
    return all(
        any(x.get("type") == "Ready" and x.get("status") != "True" for x in nodes[n]["status"]["conditions"])
        for n in names
        if n in nodes
    ) and all(n in nodes for n in names)


async def events(c: Cluster, node: str) -> list[Any]:
    found = await c.core.list_namespaced_event("default")
    return [e for e in found.items if e.involved_object.name == node]


async def test_a_repair_launches_its_replacement_then_deletes_the_node_past_its_pdb(c: Cluster) -> None:
    await c.nodepool()
    await c.node("old")
    await c.pod("web-1", "old", cpu="6")  # fits on no other node: it needs a replacement
    await c.pdb("web", "web", min_available=1)
    await synced(c, nodes=1, pods=1, claims=1)
    await sick(c, "old")
    await eventually(lambda: unhealthy_seen(c, "old"), what="the informer to see Ready=Unknown")
    writer = NodeClaimWriter(c.api)
    created: list[str] = []
    ctl = repairing(c, replacer=ClaimReplacer(writer, on_created=lambda claim: created.append(claim.name)))
    await ctl.reconcile_once()
    await eventually(lambda: len(created) == 1, what="replacement created")
    mark = node_mark(await c.raw_node("old"), datetime.now(UTC))
    assert mark is not None
    assert mark.reason == UNHEALTHY
    assert mark.replacements == (created[0],)
    assert mark.deadline is not None
    assert timedelta(minutes=4) < mark.deadline - mark.since <= timedelta(minutes=5)
    replacement = await c.custom.get_cluster_custom_object(
        API_GROUP, API_VERSION, NODECLAIM_PLURAL, created[0]
    )
    assert replacement["metadata"]["annotations"][REPLACES_ANNOTATION] == "old"
    (repair_event,) = [e for e in await events(c, "old") if e.reason == "NodeRepair"]
    assert repair_event.type == "Warning"
    assert repair_event.message.startswith("Unhealthy: Ready has been Unknown since")
    assert await c.claim_exists("claim-old")  # not before the replacement is Ready
    # The lifecycle controller's part: the replacement's node joins and is Ready.
    await c.node("new")
    await writer.patch_status(created[0], ready_status("new", format_time(datetime.now(UTC))))
    await eventually(lambda: _gone(c, "claim-old"), what="the repaired node's claim deleted")
    # Nothing was evicted: the PDB did not hold the repair, and the pod goes with the Node.
    assert await c.pod_exists("web-1")
    reasons = {e.reason for e in await events(c, "old")}
    assert "Evicting" not in reasons
    assert "EvictionBlocked" not in reasons
    await ctl.stop()


async def test_a_restarted_launcher_finishes_a_repair_from_the_mark(c: Cluster) -> None:
    await c.nodepool()
    await c.node("n1")
    await c.node("n2")
    await c.pod("web-1", "n1")
    now = datetime.now(UTC)
    assert await drainer(c).mark("n1", Mark(UNHEALTHY, now, (), now + timedelta(minutes=5)))  # then it died
    await synced(c, nodes=2, pods=1, claims=2)
    await eventually(lambda: node_mark(c.state.nodes()["n1"], datetime.now(UTC)), what="mark seen")
    ctl = repairing(c)
    await ctl.reconcile_once()
    await eventually(lambda: _gone(c, "claim-n1"), what="the resumed repair deleted the claim")
    assert await c.pod_exists("web-1")  # not evicted
    assert await c.claim_exists("claim-n2")
    await ctl.stop()


async def test_too_many_unhealthy_nodes_block_repair_with_one_event_per_reason(c: Cluster) -> None:
    await c.nodepool()
    for name in ("n1", "n2"):
        await c.node(name)
        await c.pod(f"web-{name}", name)
    await synced(c, nodes=2, pods=2, claims=2)
    for name in ("n1", "n2"):
        await sick(c, name, status="False")
    await eventually(lambda: unhealthy_seen(c, "n1", "n2"), what="the informer to see both NotReady")
    ctl = repairing(c)
    for _ in range(3):
        await ctl.reconcile_once()
    for name in ("n1", "n2"):
        blocked = [e for e in await events(c, name) if e.reason == "NodeRepairBlocked"]
        assert [(e.count, e.type) for e in blocked] == [(1, "Warning")]
        assert "2 of 2 nodes of nodepool default are unhealthy, more than 20% (1)" in blocked[0].message
        assert node_mark(await c.raw_node(name), datetime.now(UTC)) is None
    assert await c.claim_exists("claim-n1")
    assert await c.claim_exists("claim-n2")
    await ctl.stop()


async def test_a_stuck_disruption_gains_the_repairs_deadline(c: Cluster) -> None:
    await c.nodepool()
    for name in ("n1", "n2", "n3", "n4", "n5"):
        await c.node(name)
    await c.pod("web-1", "n1")
    await c.pdb("web", "web", min_available=1)  # its drain is stuck on the PDB
    await synced(c, nodes=5, pods=1, claims=5)
    ctl = repairing(c)
    since = datetime.now(UTC) - timedelta(hours=3)
    assert await ctl.drainer.mark("n1", Mark(EXPIRED, since))  # as a previous launcher left it
    await sick(c, "n1")
    await eventually(lambda: unhealthy_seen(c, "n1"), what="the informer to see Ready=Unknown")
    await eventually(
        lambda: (
            (m := node_mark(c.state.nodes()["n1"], datetime.now(UTC))) is not None and m.reason == EXPIRED
        ),
        what="the mark seen",
    )
    await ctl.reconcile_once()
    mark = node_mark(await c.raw_node("n1"), datetime.now(UTC))
    assert mark is not None
    assert mark.reason == EXPIRED  # the disruption it was, with the replacements it had
    assert mark.deadline is not None
    assert mark.deadline > datetime.now(UTC)
    await ctl.stop()


async def _gone(c: Cluster, claim: str) -> bool:
    return not await c.claim_exists(claim)
