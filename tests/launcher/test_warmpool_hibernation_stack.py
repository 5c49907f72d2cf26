"""Hibernated warm pools on the whole stack (local cluster, moto refusing hibernation as EC2 does).

Two Hibernated pools: one allows types that can hibernate and some that cannot; its warm
instance is launched on one that can, from the hibernation variant of its template, and parks
Hibernated. The other allows only types that cannot; its warm instance is launched from the plain
template, stopped without asking EC2 to hibernate it, and parks Stopped, its Warm condition
saying why.
"""

from __future__ import annotations

import copy
from typing import Any, Final

import pytest
from kubernetes_asyncio import client

from localcluster.demo.seed import load_seed
from localcluster.ec2 import MotoEC2
from localcluster.stack import JitnodeStack, StackSettings
from shared import labels

pytestmark = pytest.mark.slow

CAN_HIBERNATE: Final = ("c5.xlarge", "m5.xlarge")
CANNOT: Final = ("c5a.xlarge", "c5n.xlarge")  # HibernationSupported: false
CUSTOM: Final = ("jitnode.io", "v1")


def _pool(seed: dict[str, Any], name: str, types: tuple[str, ...]) -> dict[str, Any]:
    pool = copy.deepcopy(seed)
    pool["metadata"] = {"name": name}
    pool["spec"]["template"]["spec"]["requirements"].append(
        {"key": labels.INSTANCE_TYPE, "operator": "In", "values": list(types)}
    )
    pool["spec"]["warmPool"] = {"size": 1, "state": "Hibernated"}
    return pool


def _warm(claim: dict[str, Any]) -> dict[str, Any]:
    conditions = (claim.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == "Warm"), {})


async def test_a_hibernated_pool_hibernates_what_can_and_stops_the_rest_saying_why(
    moto_server: MotoEC2,
) -> None:
    settings = StackSettings(instance_types=CAN_HIBERNATE + CANNOT)
    async with JitnodeStack(settings, ec2=moto_server) as stack:
        api = stack.api
        assert api is not None
        assert stack.launcher is not None
        hibernate_flags: list[str | None] = []

        def record(params: dict[str, Any], **_: Any) -> None:
            hibernate_flags.append(params["body"].get("Hibernate"))

        stack.launcher.clients.ec2.meta.events.register("before-call.ec2.StopInstances", record)
        seed = load_seed(stack.cluster.network.cluster)
        await stack.apply_nodeclass(seed.nodeclass)
        await stack.apply_nodepool(_pool(seed.nodepool, "mixed", CAN_HIBERNATE + CANNOT))
        await stack.apply_nodepool(_pool(seed.nodepool, "cannot", CANNOT))
        custom = client.CustomObjectsApi(api)

        async def parked() -> dict[str, dict[str, Any]] | None:
            claims = (await custom.list_cluster_custom_object(*CUSTOM, "nodeclaims"))["items"]
            by_pool = {c["metadata"]["labels"].get(labels.NODEPOOL): c for c in claims}
            done = len(claims) == 2 and all(_warm(c).get("status") == "True" for c in claims)
            return by_pool if done else None

        claims = await stack.cluster.wait_for(parked, timeout=90)
        mixed, cannot = claims["mixed"], claims["cannot"]
        assert _warm(mixed)["reason"] == "Hibernated"
        assert mixed["metadata"]["labels"][labels.INSTANCE_TYPE] in CAN_HIBERNATE
        offered = [
            set(r["values"]) for r in mixed["spec"]["requirements"] if r["key"] == labels.INSTANCE_TYPE
        ]
        assert set.intersection(*offered) <= set(CAN_HIBERNATE)  # the pool's types, narrowed by the fill
        assert _warm(cannot)["reason"] == "Stopped"
        assert "not launched for hibernation" in _warm(cannot)["message"]
        assert sorted(hibernate_flags, key=str) == [None, "true"]  # asked only for the one that can

        ec2 = stack.launcher.clients.ec2
        names = [t["LaunchTemplateName"] for t in (await ec2.describe_launch_templates())["LaunchTemplates"]]
        variants = []
        for name in names:
            versions = await ec2.describe_launch_template_versions(LaunchTemplateName=name)
            data = versions["LaunchTemplateVersions"][0]["LaunchTemplateData"]
            if data.get("HibernationOptions", {}).get("Configured"):
                variants.append(data)
        assert len(variants) == 1  # the mixed pool's, for m5.xlarge's 16 GiB at most
        root = variants[0]["BlockDeviceMappings"][0]["Ebs"]
        assert root["Encrypted"] is True
        assert root["VolumeSize"] in (20 + 8, 20 + 16)
