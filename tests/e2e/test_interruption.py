"""End to end: a Spot interruption warning on the SQS queue moves a node's pods in time.

The launcher long-polls a real SQS queue on the moto server (created once the local cluster
has wiped moto, before the launcher starts). The test puts on it the EventBridge event AWS
sends two minutes before it reclaims a Spot instance, for an instance jitnode launched, plus
a garbled message. Then: the node is cordoned (tainted), a replacement NodeClaim is launched
and Ready before the first eviction, the pods (guarded by a PodDisruptionBudget) run on the
replacement, the old node and its instance are gone within the two minutes, both messages are
deleted, and the interrupted offering is in the unavailable-offerings cache.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from kubernetes_asyncio import client

from launcher.config import InterruptionConfig, LauncherConfig
from launcher.disruption.replacement import REPLACES_ANNOTATION
from localcluster.demo.seed import load_seed
from localcluster.ec2 import MotoEC2
from localcluster.stack import JitnodeStack, StackSettings
from shared import labels
from shared.api.group import API_GROUP, API_VERSION, NODECLAIM_PLURAL

pytestmark = pytest.mark.slow

QUEUE = "jitnode-interruption"
TYPES = ("c5.xlarge", "m5.xlarge", "c5.2xlarge", "m5.2xlarge")


class InterruptionStack(JitnodeStack):
    """The stack with an interruption queue: created after the cluster wiped moto."""

    queue_url = ""

    def launcher_config(self) -> LauncherConfig:
        return dataclasses.replace(super().launcher_config(), interruption=InterruptionConfig(queue=QUEUE))

    async def start_launcher(self) -> str:
        if not self.queue_url:
            self.queue_url = await asyncio.to_thread(self._create_queue)
        return await super().start_launcher()

    def _create_queue(self) -> str:
        import boto3

        sqs = boto3.client("sqs", **self.cluster.ec2.client_kwargs())
        return str(sqs.create_queue(QueueName=QUEUE)["QueueUrl"])

    def sqs(self) -> Any:
        import boto3

        return boto3.client("sqs", **self.cluster.ec2.client_kwargs())


def spot_interruption_warning(instance_id: str, zone: str, at: datetime) -> dict[str, Any]:
    """The event as the EC2 User Guide shows it (Spot interruption notices)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "EC2 Spot Instance Interruption Warning",
        "source": "aws.ec2",
        "account": "123456789012",
        "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1",
        "resources": [f"arn:aws:ec2:{zone}:instance/{instance_id}"],
        "detail": {"instance-id": instance_id, "instance-action": "terminate"},
    }


def inflate(replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "inflate", "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "inflate"}},
            "template": {
                "metadata": {"labels": {"app": "inflate"}},
                "spec": {
                    "nodeSelector": {"intent": "apps"},
                    "containers": [
                        {
                            "name": "inflate",
                            "image": "public.ecr.aws/eks-distro/kubernetes/pause:3.7",
                            "resources": {"requests": {"cpu": "1", "memory": "1Gi"}},
                        }
                    ],
                },
            },
        },
    }


def spot_pool(seed_pool: dict[str, Any]) -> dict[str, Any]:
    pool: dict[str, Any] = orjson.loads(orjson.dumps(seed_pool))
    requirements = pool["spec"]["template"]["spec"]["requirements"]
    for requirement in requirements:
        if requirement["key"] == labels.CAPACITY_TYPE:
            requirement["values"] = ["spot"]
    pool["spec"]["disruption"] = {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "10m"}
    return pool


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_spot_interruption_warning_replaces_the_node_in_time(moto_server: MotoEC2) -> None:
    stack = InterruptionStack(StackSettings(instance_types=TYPES), ec2=moto_server)
    async with stack:
        api = stack.api
        assert api is not None
        launcher = stack.launcher
        assert launcher is not None
        seed = load_seed(stack.cluster.network.cluster)
        await stack.apply_nodeclass(seed.nodeclass)
        await stack.apply_nodepool(spot_pool(seed.nodepool))
        core = client.CoreV1Api(api)
        custom = client.CustomObjectsApi(api)
        apps: Any = client.AppsV1Api(api)
        policy: Any = client.PolicyV1Api(api)
        await apps.create_namespaced_deployment("default", inflate(2))
        await policy.create_namespaced_pod_disruption_budget(
            "default",
            {
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": {"name": "inflate", "namespace": "default"},
                "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "inflate"}}},
            },
        )

        async def running() -> list[Any]:
            pods = (await core.list_namespaced_pod("default", label_selector="app=inflate")).items
            ok = len(pods) == 2 and all(p.status.phase == "Running" and p.spec.node_name for p in pods)
            return pods if ok else []

        pods = await stack.cluster.wait_for(running, timeout=90)
        victim = pods[0].spec.node_name
        assert all(p.spec.node_name == victim for p in pods), "the plan put the two pods on one node"
        node = await core.read_node(victim)
        offering = (
            node.metadata.labels[labels.INSTANCE_TYPE],
            node.metadata.labels[labels.ZONE],
            node.metadata.labels[labels.CAPACITY_TYPE],
        )
        assert offering[2] == "spot"
        claim_name = node.metadata.labels[labels.NODECLAIM]
        claim = await custom.get_cluster_custom_object(API_GROUP, API_VERSION, NODECLAIM_PLURAL, claim_name)
        instance_id = claim["status"]["instanceID"]
        assert not launcher.unavailable.is_unavailable(*offering)

        sqs = stack.sqs()
        warned_at = datetime.now(UTC).replace(microsecond=0)
        event = spot_interruption_warning(instance_id, offering[1], warned_at)
        await asyncio.to_thread(sqs.send_message, QueueUrl=stack.queue_url, MessageBody="{garbled")
        await asyncio.to_thread(
            sqs.send_message, QueueUrl=stack.queue_url, MessageBody=orjson.dumps(event).decode()
        )

        async def cordoned() -> bool:
            current = await core.read_node(victim)
            return any(t.key == labels.DISRUPTED_TAINT for t in current.spec.taints or [])

        await stack.cluster.wait_for(cordoned, timeout=30, interval=0.1)
        assert launcher.unavailable.is_unavailable(*offering), "the interrupted offering is not marked"

        async def moved() -> list[Any]:
            nodes = {n.metadata.name for n in (await core.list_node()).items}
            pods = (await core.list_namespaced_pod("default", label_selector="app=inflate")).items
            ok = (
                victim not in nodes
                and len(pods) == 2
                and all(p.status.phase == "Running" and p.spec.node_name in nodes for p in pods)
            )
            return pods if ok else []

        pods = await stack.cluster.wait_for(moved, timeout=110, interval=0.2)
        # Drained and gone within the two minutes the warning gives.
        assert datetime.now(UTC) < warned_at + timedelta(minutes=2)

        # The replacement: created for the victim, Ready before the first eviction, running the
        # pods, and not on the interrupted offering.
        claims = (await custom.list_cluster_custom_object(API_GROUP, API_VERSION, NODECLAIM_PLURAL))["items"]
        replacements = [
            c for c in claims if c["metadata"].get("annotations", {}).get(REPLACES_ANNOTATION) == victim
        ]
        assert replacements, "no replacement NodeClaim was created"
        ready_at = {
            c["status"]["nodeName"]: parse_time(
                next(x["lastTransitionTime"] for x in c["status"]["conditions"] if x["type"] == "Initialized")
            )
            for c in replacements
        }
        assert {p.spec.node_name for p in pods} <= set(ready_at)
        events = (
            await core.list_namespaced_event("default", field_selector=f"involvedObject.name={victim}")
        ).items
        evictions = sorted(e.first_timestamp for e in events if e.reason == "Evicting")
        assert len(evictions) == 2, [(e.reason, e.message) for e in events]
        assert max(ready_at.values()) <= evictions[0], "evicted before the replacement was Ready"
        assert any(e.reason == "SpotInterrupted" for e in events)
        for name in ready_at:
            new = await core.read_node(name)
            new_offering = tuple(
                new.metadata.labels[k] for k in (labels.INSTANCE_TYPE, labels.ZONE, labels.CAPACITY_TYPE)
            )
            assert new_offering != offering

        # Both messages deleted: none waiting, none in flight.
        attributes = (
            await asyncio.to_thread(
                sqs.get_queue_attributes, QueueUrl=stack.queue_url, AttributeNames=["All"]
            )
        )["Attributes"]
        assert attributes["ApproximateNumberOfMessages"] == "0"
        assert attributes["ApproximateNumberOfMessagesNotVisible"] == "0"

        # No leak: the victim's claim and instance are gone, one live instance per claim.
        async def no_leak() -> bool:
            claims = (await custom.list_cluster_custom_object(API_GROUP, API_VERSION, NODECLAIM_PLURAL))[
                "items"
            ]
            names = sorted(c["metadata"]["name"] for c in claims)
            instances = [
                i
                for i in await asyncio.to_thread(stack.cluster.ec2.instances)
                if i["State"]["Name"] not in ("terminated", "shutting-down")
            ]
            tagged = sorted(
                {t["Key"]: t["Value"] for t in i.get("Tags", [])}.get(labels.TAG_NODECLAIM, "")
                for i in instances
            )
            return claim_name not in names and tagged == names

        await stack.cluster.wait_for(no_leak, timeout=30, interval=0.2)
