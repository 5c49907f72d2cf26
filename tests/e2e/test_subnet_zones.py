"""End to end: a NodePool launches only in the zones its EC2NodeClass has subnets in.

Two NodeClasses split the cluster's three subnets: ``ab`` (zones a and b) serves the ``apps``
pool, ``c`` (zone c) serves a tainted ``other`` pool. The region's catalogue therefore sells
every zone, yet an ``apps`` pod pinned to zone c cannot be launched: it must get a
FailedProvisioning Event and no NodeClaim, while an ``apps`` pod pinned to zone a runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from kubernetes_asyncio import client

from localcluster.ec2 import MotoEC2
from localcluster.stack import JitnodeStack, StackSettings
from shared import labels

pytestmark = pytest.mark.slow


def nodeclass(name: str, subnet_ids: list[str], cluster: str, role: str) -> dict[str, Any]:
    return {
        "apiVersion": "jitnode.io/v1",
        "kind": "EC2NodeClass",
        "metadata": {"name": name},
        "spec": {
            "amiSelectorTerms": [{"alias": "al2023@latest"}],
            "subnetSelectorTerms": [{"id": subnet} for subnet in subnet_ids],
            "securityGroupSelectorTerms": [{"tags": {"alpha.eksctl.io/cluster-name": cluster}}],
            "role": role,
        },
    }


def nodepool(name: str, nodeclass_name: str, taints: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "jitnode.io/v1",
        "kind": "NodePool",
        "metadata": {"name": name},
        "spec": {
            "template": {
                "metadata": {"labels": {"intent": name}},
                "spec": {
                    "nodeClassRef": {"group": "jitnode.io", "kind": "EC2NodeClass", "name": nodeclass_name},
                    "requirements": [
                        {"key": labels.CAPACITY_TYPE, "operator": "In", "values": ["on-demand"]}
                    ],
                    "taints": taints or [],
                },
            },
        },
    }


def pinned_pod(name: str, zone: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "nodeSelector": {"intent": "apps", labels.ZONE: zone},
            "containers": [
                {"name": "c", "image": "pause", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}
            ],
        },
    }


@pytest.fixture
async def stack(moto_server: MotoEC2) -> AsyncIterator[JitnodeStack]:
    async with JitnodeStack(StackSettings(), ec2=moto_server) as running:
        network = running.cluster.network
        subnets = network.subnets
        for name, zones in (("ab", ("us-east-1a", "us-east-1b")), ("c", ("us-east-1c",))):
            ids = [subnets[z] for z in zones]
            await running.apply_nodeclass(nodeclass(name, ids, network.cluster, network.node_role))
        await running.apply_nodepool(nodepool("apps", "ab"))
        await running.apply_nodepool(nodepool("other", "c", [{"key": "other", "effect": "NoSchedule"}]))
        yield running


async def test_pod_pinned_to_a_zone_without_subnet_is_reported_not_launched(stack: JitnodeStack) -> None:
    api = stack.api
    assert api is not None
    core = client.CoreV1Api(api)
    custom = client.CustomObjectsApi(api)
    await core.create_namespaced_pod("default", pinned_pod("in-a", "us-east-1a"))  # type: ignore[arg-type]
    await core.create_namespaced_pod("default", pinned_pod("in-c", "us-east-1c"))  # type: ignore[arg-type]

    async def in_a_runs_and_in_c_reported() -> bool:
        # A plan made before NodeClass "c" resolved may first report another reason (its zone is
        # not known yet); a new reason is a new event, and the zone's must come.
        running = (await core.read_namespaced_pod("in-a", "default")).status.phase == "Running"
        events = (await core.list_namespaced_event("default")).items
        reported = any(
            e.reason == "FailedProvisioning"
            and e.involved_object.name == "in-c"
            and "us-east-1c" in e.message
            for e in events
        )
        return running and reported

    await stack.cluster.wait_for(in_a_runs_and_in_c_reported, timeout=60)
    in_c = await core.read_namespaced_pod("in-c", "default")
    assert not in_c.spec.node_name
    claims = (await custom.list_cluster_custom_object("jitnode.io", "v1", "nodeclaims"))["items"]
    planned = [uid for claim in claims for uid in claim["spec"].get("pods") or []]
    assert in_c.metadata.uid not in planned
    for claim in claims:
        assert claim["metadata"]["labels"][labels.NODEPOOL] == "apps"
        zones = [
            r["values"]
            for r in claim["spec"]["requirements"]
            if r["key"] == labels.ZONE and r["operator"] == "In"
        ]
        assert zones
        assert all(set(values) <= {"us-east-1a", "us-east-1b"} for values in zones)
