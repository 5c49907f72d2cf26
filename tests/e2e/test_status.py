"""End to end: NodePool, EC2NodeClass and NodeClaim status during a provisioning run, and the
columns ``kubectl get`` prints from them (server-side Table output of the local API server).
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import aiohttp
import pytest
from kubernetes_asyncio import client

from localcluster.demo.seed import load_seed
from localcluster.stack import JitnodeStack
from shared import labels
from shared.resources import Resources
from tests.e2e.test_provisioning import inflate

pytestmark = pytest.mark.slow
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


async def _custom(api: client.ApiClient, plural: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (
        await client.CustomObjectsApi(api).list_cluster_custom_object("jitnode.io", "v1", plural)
    )["items"]
    return items


def _conditions(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in (obj.get("status") or {}).get("conditions") or []}


async def _table(stack: JitnodeStack, plural: str) -> dict[str, Any]:
    url = f"{stack.cluster.api_url}/apis/jitnode.io/v1/{plural}"
    async with aiohttp.ClientSession() as session, session.get(url, headers={"Accept": TABLE}) as resp:
        assert resp.status == 200
        body: dict[str, Any] = await resp.json()
        return body


def _rows(table: dict[str, Any]) -> dict[str, dict[str, Any]]:
    names = [c["name"] for c in table["columnDefinitions"]]
    return {row["cells"][0]: dict(zip(names, row["cells"], strict=True)) for row in table["rows"]}


async def test_status_follows_a_provisioning_run(stack: JitnodeStack) -> None:
    api = stack.api
    assert api is not None
    apps: Any = client.AppsV1Api(api)
    await apps.create_namespaced_deployment("default", inflate(6))

    async def settled() -> bool:
        pods = (
            await client.CoreV1Api(api).list_namespaced_pod("default", label_selector="app=inflate")
        ).items
        if len(pods) != 6 or not all(p.status.phase == "Running" for p in pods):
            return False
        nodes = (await client.CoreV1Api(api).list_node()).items
        pool = (await _custom(api, "nodepools"))[0]
        claims = await _custom(api, "nodeclaims")
        resources = (pool.get("status") or {}).get("resources") or {}
        return resources.get("nodes") == str(len(nodes)) and all(
            _conditions(c).get("Ready", {}).get("status") == "True" for c in claims
        )

    await stack.cluster.wait_for(settled, timeout=60)

    nodeclass = (await _custom(api, "ec2nodeclasses"))[0]
    conds = _conditions(nodeclass)
    for type_ in ("AMIsReady", "SubnetsReady", "SecurityGroupsReady", "InstanceProfileReady", "Ready"):
        assert conds[type_]["status"] == "True", conds[type_]
        assert conds[type_]["observedGeneration"] == nodeclass["metadata"]["generation"]
        assert conds[type_]["lastTransitionTime"]
    status = nodeclass["status"]
    assert status["subnets"]
    assert all(s["id"].startswith("subnet-") and s["zone"] for s in status["subnets"])
    assert all(g["id"].startswith("sg-") for g in status["securityGroups"])
    assert {r["values"][0] for a in status["amis"] for r in a["requirements"]} <= {"amd64", "arm64"}
    assert status["instanceProfile"]

    pool = (await _custom(api, "nodepools"))[0]
    conds = _conditions(pool)
    assert {t: conds[t]["status"] for t in ("ValidationSucceeded", "NodeClassReady", "Ready")} == {
        "ValidationSucceeded": "True",
        "NodeClassReady": "True",
        "Ready": "True",
    }
    assert pool["status"]["nodeClassObservedGeneration"] == nodeclass["metadata"]["generation"]
    nodes = (await client.CoreV1Api(api).list_node()).items
    pool_nodes = [n for n in nodes if n.metadata.labels.get(labels.NODEPOOL) == pool["metadata"]["name"]]
    total = sum((Resources.parse(n.status.capacity) for n in pool_nodes), Resources())
    got = Resources.parse({k: v for k, v in pool["status"]["resources"].items() if k != "nodes"})
    assert pool["status"]["resources"]["nodes"] == str(len(pool_nodes))
    assert got == total

    claims = await _custom(api, "nodeclaims")
    for claim in claims:
        conds = _conditions(claim)
        assert {
            t: conds[t]["status"] for t in ("Launched", "Registered", "Initialized", "Ready")
        } == dict.fromkeys(("Launched", "Registered", "Initialized", "Ready"), "True")

    # kubectl get nodepools,ec2nodeclasses,nodeclaims: the columns are filled.
    rows = _rows(await _table(stack, "nodepools"))[pool["metadata"]["name"]]
    assert rows["Ready"] == "True"
    assert rows["Nodes"] == str(len(pool_nodes))
    assert rows["CPU"] == pool["status"]["resources"]["cpu"]
    assert rows["Memory"] == pool["status"]["resources"]["memory"]
    assert rows["NodeClass"] == nodeclass["metadata"]["name"]
    assert rows["Age"].endswith("s")
    assert _rows(await _table(stack, "ec2nodeclasses"))[nodeclass["metadata"]["name"]]["Ready"] == "True"
    claim_rows = _rows(await _table(stack, "nodeclaims"))
    for claim in claims:
        row = claim_rows[claim["metadata"]["name"]]
        assert row["Ready"] == "True"
        assert row["Node"] == claim["status"]["nodeName"]
        assert row["Type"] == claim["metadata"]["labels"][labels.INSTANCE_TYPE]
        assert row["Zone"] == claim["metadata"]["labels"][labels.ZONE]


async def test_status_says_why_a_pool_cannot_launch(stack: JitnodeStack) -> None:
    """A pool whose class is missing, then one whose subnets match nothing: the message says so."""
    api = stack.api
    assert api is not None
    seed = load_seed(stack.cluster.network.cluster)
    orphan = copy.deepcopy(seed.nodepool)
    orphan["metadata"] = {"name": "orphan"}
    orphan["spec"]["template"]["spec"]["nodeClassRef"]["name"] = "nowhere"
    await stack.apply_nodepool(orphan)
    custom = client.CustomObjectsApi(api)

    async def pool_condition(name: str) -> dict[str, Any]:
        pool = await custom.get_cluster_custom_object("jitnode.io", "v1", "nodepools", name)
        return _conditions(pool).get("NodeClassReady", {})

    async def not_found() -> bool:
        return (await pool_condition("orphan")).get("reason") == "NodeClassNotFound"

    await stack.cluster.wait_for(not_found, timeout=20)

    broken = copy.deepcopy(seed.nodeclass)
    broken["metadata"] = {"name": "nowhere"}
    broken["spec"]["subnetSelectorTerms"] = [{"tags": {"jitnode.io/test": "matches-nothing"}}]
    await stack.apply_nodeclass(broken)

    async def explained() -> dict[str, Any] | None:
        condition = await pool_condition("orphan")
        return condition if "SubnetsReady=False" in condition.get("message", "") else None

    condition = await stack.cluster.wait_for(explained, timeout=30)
    assert condition is not None
    assert condition["status"] == "False"
    assert condition["message"].startswith("EC2NodeClass nowhere not ready: ")
    assert "matches-nothing" in condition["message"]
    nodeclass = await custom.get_cluster_custom_object("jitnode.io", "v1", "ec2nodeclasses", "nowhere")
    conds = _conditions(nodeclass)
    assert conds["SubnetsReady"]["reason"] == "SubnetsNotFound"
    assert conds["Ready"]["status"] == "False"
    assert "subnets" not in nodeclass["status"]
    # No write storm: with nothing changing, the objects stay at their resourceVersion.
    before = nodeclass["metadata"]["resourceVersion"]
    await asyncio.sleep(1.5)
    again = await custom.get_cluster_custom_object("jitnode.io", "v1", "ec2nodeclasses", "nowhere")
    assert again["metadata"]["resourceVersion"] == before
