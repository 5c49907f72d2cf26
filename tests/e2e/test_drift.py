"""End to end: a new AMI behind ``al2023@latest`` drifts every node, and jitnode replaces them.

The test publishes a newer EKS AMI the way AWS does, by moving the public SSM parameter behind
the alias to it. The launcher re-resolves the EC2NodeClass, marks both NodeClaims ``Drifted``
(``AMIDrift``) and replaces the nodes one at a time (the NodePool's budget allows one): each
replacement is launched and Ready before the old node's first eviction, and in the end every pod
runs on the new AMI, the old instances are terminated, and no instance is left without a claim.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime
from typing import Any, Final

import pytest
from kubernetes_asyncio import client

from launcher.config import DriftConfig, LauncherConfig
from launcher.disruption.replacement import REPLACES_ANNOTATION
from localcluster.ec2 import ACCOUNT_ID, KUBERNETES_VERSION, MotoEC2
from localcluster.stack import JitnodeStack, StackSettings
from shared import labels
from shared.api._fields import parse_time
from tests.e2e.test_provisioning import inflate
from tests.e2e.test_warm_pool import _ours, tear_down_and_check_nothing_left, warm_stack

pytestmark = pytest.mark.slow

PODS: Final = 6  # 1 CPU each: two full xlarge nodes, so each drifted node needs a replacement
TYPES: Final = ("c5.xlarge", "m5.xlarge", "c5.2xlarge", "m5.2xlarge", "r5.xlarge")
CUSTOM: Final = ("jitnode.io", "v1")


class FastDriftStack(JitnodeStack):
    """The stack with NodeClasses re-resolved every second (production: every 5 minutes)."""

    def launcher_config(self) -> LauncherConfig:
        fast = DriftConfig(nodeclass_refresh=1.0, resync=2.0)
        return dataclasses.replace(super().launcher_config(), drift=fast)


async def _claims(api: client.ApiClient) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (
        await client.CustomObjectsApi(api).list_cluster_custom_object(*CUSTOM, "nodeclaims")
    )["items"]
    return items


def _condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == type_), {})


def _register_ami(moto: MotoEC2, name: str) -> str:
    """A newer EKS AL2023 x86_64 image (blocking: run in a thread)."""
    import boto3
    from moto.ec2.models import ec2_backends

    ec2 = boto3.client("ec2", **moto.client_kwargs())
    image_id: str = ec2.register_image(
        Name=name,
        Architecture="x86_64",
        RootDeviceName="/dev/xvda",
        VirtualizationType="hvm",
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 20, "VolumeType": "gp3"}}],
    )["ImageId"]
    ec2_backends[ACCOUNT_ID][moto.region].amis[image_id].architecture = "x86_64"  # as seeding does
    return image_id


async def test_new_ami_behind_the_alias_replaces_every_node_within_budget(moto_server: MotoEC2) -> None:
    settings = StackSettings(instance_types=TYPES, leak_grace=5.0, leak_interval=2.0)
    async with FastDriftStack(settings, ec2=moto_server) as stack:
        api = stack.api
        assert api is not None
        network = stack.cluster.network
        await stack.apply_seed({"spec": {"disruption": {"budgets": [{"nodes": "1"}]}}})
        core = client.CoreV1Api(api)
        apps: Any = client.AppsV1Api(api)
        await apps.create_namespaced_deployment("default", inflate(PODS))

        async def settled() -> list[dict[str, Any]] | None:
            pods = (await core.list_namespaced_pod("default", label_selector="app=inflate")).items
            claims = await _claims(api)
            running = len(pods) == PODS and all(p.status.phase == "Running" for p in pods)
            ready = claims and all(_condition(c, "Initialized").get("status") == "True" for c in claims)
            return claims if running and ready else None

        old_claims = await stack.cluster.wait_for(settled, timeout=90)
        assert len(old_claims) >= 2, "the budget of one is only tested with two nodes or more"
        old_ami = network.amis["x86_64"]
        assert {c["status"]["imageID"] for c in old_claims} == {old_ami}
        old_nodes = {c["status"]["nodeName"]: c["metadata"]["name"] for c in old_claims}
        assert all(not _condition(c, "Drifted") for c in old_claims)

        # AWS publishes a new AMI: the parameter behind al2023@latest moves on.
        new_ami = await asyncio.to_thread(
            _register_ami,
            moto_server,
            f"amazon-eks-node-al2023-x86_64-standard-{KUBERNETES_VERSION}-v20261201",
        )
        await asyncio.to_thread(moto_server.put_reserved_parameter, network.ami_parameters["x86_64"], new_ami)

        # Watch until every old node is gone: at most one disrupting at a time (the budget).
        most_disrupting = 0
        drifted_seen: dict[str, dict[str, Any]] = {}

        async def replaced() -> bool:
            nonlocal most_disrupting
            nodes = {n.metadata.name: n for n in (await core.list_node()).items}
            disrupting = [
                name
                for name in old_nodes
                if name in nodes
                and (
                    labels.DISRUPTING_ANNOTATION in (nodes[name].metadata.annotations or {})
                    or any(t.key == labels.DISRUPTED_TAINT for t in nodes[name].spec.taints or [])
                )
            ]
            most_disrupting = max(most_disrupting, len(disrupting))
            claims = await _claims(api)
            for claim in claims:
                if claim["metadata"]["name"] in old_nodes.values() and _condition(claim, "Drifted"):
                    drifted_seen[claim["metadata"]["name"]] = _condition(claim, "Drifted")
            pods = (await core.list_namespaced_pod("default", label_selector="app=inflate")).items
            running = [p for p in pods if p.status.phase == "Running" and not p.metadata.deletion_timestamp]
            return (
                not set(old_nodes) & set(nodes)
                and len(running) == PODS
                and all(p.spec.node_name not in old_nodes for p in running)
            )

        await stack.cluster.wait_for(replaced, timeout=180, interval=0.2)
        assert most_disrupting == 1, "the budget allows one node at a time"

        # Both old claims were marked Drifted, naming the AMI change.
        assert set(drifted_seen) == set(old_nodes.values())
        for condition in drifted_seen.values():
            assert condition["status"] == "True"
            assert condition["reason"] == "AMIDrift"
            assert old_ami in condition["message"]
            assert new_ami in condition["message"]

        # Every replacement was Ready before the node it replaced saw its first eviction.
        claims = await _claims(api)
        events = (await core.list_namespaced_event("default")).items
        for old_node in old_nodes:
            replacements = [
                c for c in claims if c["metadata"].get("annotations", {}).get(REPLACES_ANNOTATION) == old_node
            ]
            assert replacements, f"no replacement was launched for {old_node}"
            ready_at = max(
                parse_time(_condition(c, "Initialized")["lastTransitionTime"]) for c in replacements
            )
            evictions = [
                _event_time(e)
                for e in events
                if e.involved_object.kind == "Node"
                and e.involved_object.name == old_node
                and e.reason == "Evicting"
            ]
            assert evictions, f"{old_node} was not drained through evictions"
            assert ready_at <= min(evictions), f"{old_node} was drained before its replacement was Ready"

        # Everything runs on the new AMI, nothing is drifted any more, and nothing leaked.
        assert claims
        assert {c["status"]["imageID"] for c in claims} == {new_ami}
        assert all(not _condition(c, "Drifted") for c in claims)

        async def no_leaks() -> bool:
            instances = await asyncio.to_thread(moto_server.instances)
            live = [i for i in instances if i["State"]["Name"] not in ("terminated", "shutting-down")]
            tags = [{t["Key"]: t["Value"] for t in i.get("Tags", [])} for i in live]
            current = {c["metadata"]["name"] for c in await _claims(api)}
            return sorted(t.get(labels.TAG_NODECLAIM, "") for t in tags) == sorted(current)

        await stack.cluster.wait_for(no_leaks, timeout=30, interval=0.5)
        instances = await asyncio.to_thread(moto_server.instances)
        by_claim = {
            {t["Key"]: t["Value"] for t in i.get("Tags", [])}.get(labels.TAG_NODECLAIM): i["State"]["Name"]
            for i in instances
        }
        for old_claim in old_nodes.values():
            assert by_claim.get(old_claim) in ("terminated", "shutting-down"), (
                f"{old_claim}'s instance leaked"
            )


def _event_time(event: Any) -> datetime:
    stamp = event.first_timestamp or event.event_time or event.last_timestamp
    assert stamp is not None
    return stamp if isinstance(stamp, datetime) else parse_time(stamp)


async def test_parked_warm_instances_are_rotated_when_the_ami_moves_on(moto_server: MotoEC2) -> None:
    """A warm pool's parked instances drift like nodes: they are replaced by fills on the new AMI
    (and the old ones terminated) before any scale-up could start them."""
    warm_pool = {"size": 2, "maxSize": 2, "state": "Stopped"}
    async with warm_stack(moto_server, warm_pool, stack_type=FastDriftStack) as (stack, _):
        api = stack.api
        assert api is not None
        network = stack.cluster.network

        async def parked_on(ami: str) -> set[str] | None:
            claims = [
                c
                for c in await _claims(api)
                if c["metadata"]["labels"].get(labels.WARM_LABEL) == "true"
                and _condition(c, "Warm").get("reason") == "Stopped"
                and c["status"].get("imageID") == ami
                and not c["metadata"].get("deletionTimestamp")
            ]
            stopped = {i["InstanceId"] for i in await _ours(stack) if i["State"]["Name"] == "stopped"}
            ids = {c["status"]["instanceID"] for c in claims}
            return ids if len(ids) == 2 and ids <= stopped else None

        old = await stack.cluster.wait_for(lambda: parked_on(network.amis["x86_64"]), timeout=60)
        assert old is not None
        new_ami = await asyncio.to_thread(
            _register_ami,
            moto_server,
            f"amazon-eks-node-al2023-x86_64-standard-{KUBERNETES_VERSION}-v20261202",
        )
        await asyncio.to_thread(moto_server.put_reserved_parameter, network.ami_parameters["x86_64"], new_ami)

        new = await stack.cluster.wait_for(lambda: parked_on(new_ami), timeout=60)
        assert new is not None
        assert not new & old

        async def old_gone() -> bool:
            return not {i["InstanceId"] for i in await _ours(stack)} & old

        await stack.cluster.wait_for(old_gone, timeout=60)
        await tear_down_and_check_nothing_left(stack)
