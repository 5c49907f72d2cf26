"""The interruption controller against the local API server and a real SQS queue on moto.

Messages shaped like AWS's go on the queue; the controller receives them over HTTP and acts
through the API: nodes marked with the notice's deadline, Events recorded, claims without a
node deleted, the interrupted offering marked unavailable, and each message deleted only once
handled (an API server refusing the mark leaves it on the queue, to be handled when it returns).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from kubernetes_asyncio import client

from launcher.aws.queue import InterruptionQueue, QueueMessage
from launcher.aws.session import AWSClients, AWSSettings
from launcher.disruption.controller import DisruptionController, DisruptionSettings
from launcher.disruption.mark import INTERRUPTED, node_mark
from launcher.interruption.controller import InterruptionController
from launcher.interruption.decisions import Policy, RebalancePolicy
from launcher.interruption.instances import ClaimsByInstance
from launcher.kube import NodeClaimWriter, NodeWriter
from launcher.planner.offerings import UnavailableOfferings
from launcher.state import LauncherState
from localcluster.apiserver.app import APIServer
from localcluster.apiserver.testing import running_apiserver
from localcluster.ec2 import CREDENTIALS, MotoEC2
from shared import labels
from shared.events import EventRecorder
from tests.launcher.test_disruption_cluster import FAST_DRAIN, TYPES, Cluster, eventually

CRDS = Path(__file__).resolve().parents[2] / "manifests" / "crds"


@dataclass
class Setup:
    cluster: Cluster
    server: APIServer
    clients: AWSClients
    queue: InterruptionQueue
    url: str
    index: ClaimsByInstance
    unavailable: UnavailableOfferings
    disruption: DisruptionController

    def controller(self, policy: Policy) -> InterruptionController:
        return InterruptionController(
            queue=self.queue,
            state=self.cluster.state,
            index=self.index,
            disruption=self.disruption,
            claims=NodeClaimWriter(self.cluster.api),
            unavailable=self.unavailable,
            events=EventRecorder(self.cluster.api, "jitnode-launcher"),
            policy=policy,
        )

    async def send(self, *bodies: dict[str, Any] | str) -> None:
        for body in bodies:
            text = body if isinstance(body, str) else orjson.dumps(body).decode()
            await self.clients.sqs.send_message(QueueUrl=self.url, MessageBody=text)

    async def receive_all(self, count: int) -> list[QueueMessage]:
        messages: list[QueueMessage] = []
        while len(messages) < count:
            batch = await self.queue.receive(wait_seconds=2)
            assert batch, f"only {len(messages)} of {count} messages came back"
            messages.extend(batch)
        return messages

    async def queue_counts(self) -> tuple[int, int]:
        attributes = (await self.clients.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["All"]))[
            "Attributes"
        ]
        return int(attributes["ApproximateNumberOfMessages"]), int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )

    async def instance_node(self, name: str, instance: str, *, spot: bool = True, pods: int = 1) -> None:
        """A Ready node with its Initialized claim ``claim-<name>`` recording ``instance``."""
        await self.cluster.node(name)
        if spot:
            await self.cluster.core.patch_node(name, {"metadata": {"labels": {labels.CAPACITY_TYPE: "spot"}}})
        await NodeClaimWriter(self.cluster.api).patch_status(f"claim-{name}", {"instanceID": instance})
        for i in range(pods):
            await self.cluster.pod(f"{name}-pod-{i}", name, cpu="500m")


@pytest.fixture
async def setup(moto_server: MotoEC2) -> AsyncIterator[Setup]:
    async with running_apiserver() as (server, api):
        extensions = client.ApiextensionsV1Api(api)
        for path in sorted(CRDS.glob("*.yaml")):
            for document in yaml.safe_load_all(path.read_text()):
                if document:
                    await extensions.create_custom_resource_definition(document)
        state = LauncherState(api)
        index = ClaimsByInstance()
        state.listen("nodeclaim", index)
        state.start()
        await state.wait_synced()
        clients = AWSClients(
            AWSSettings(
                region=moto_server.region,
                endpoint_url=moto_server.endpoint,
                aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            )
        )
        await clients.open()
        name = f"interruption-{uuid.uuid4().hex[:8]}"
        url = (await clients.sqs.create_queue(QueueName=name))["QueueUrl"]
        disruption = DisruptionController(
            state=state,
            api=api,
            claims=NodeClaimWriter(api),
            nodes=NodeWriter(api),
            events=EventRecorder(api, "jitnode-launcher"),
            catalogue=lambda: TYPES,
            settings=DisruptionSettings(interval_seconds=0.1, min_interval_seconds=0.01, drain=FAST_DRAIN),
        )
        cluster = Cluster(api, client.CoreV1Api(api), client.CustomObjectsApi(api), state)
        try:
            yield Setup(
                cluster,
                server,
                clients,
                InterruptionQueue(clients, name, visibility_timeout=1),
                url,
                index,
                UnavailableOfferings(),
                disruption,
            )
        finally:
            await disruption.stop()
            await clients.sqs.delete_queue(QueueUrl=url)
            await clients.close()
            await state.stop()


def ec2_event(kind: str, instance: str, detail: dict[str, Any], at: datetime) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": kind,
        "source": "aws.ec2",
        "account": "123456789012",
        "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1",
        "resources": [f"arn:aws:ec2:us-east-1:123456789012:instance/{instance}"],
        "detail": {"instance-id": instance, **detail},
    }


def spot_warning(instance: str, at: datetime) -> dict[str, Any]:
    return ec2_event("EC2 Spot Instance Interruption Warning", instance, {"instance-action": "terminate"}, at)


def rebalance(instance: str, at: datetime) -> dict[str, Any]:
    return ec2_event("EC2 Instance Rebalance Recommendation", instance, {}, at)


def state_change(instance: str, state: str, at: datetime) -> dict[str, Any]:
    return ec2_event("EC2 Instance State-change Notification", instance, {"state": state}, at)


async def test_a_batch_of_notices_is_acted_on_and_deleted(setup: Setup) -> None:
    c = setup.cluster
    await c.nodepool()
    await setup.instance_node("n1", "i-0001")
    await setup.instance_node("n2", "i-0002")
    await setup.instance_node("n3", "i-0003", spot=False)
    # A claim whose instance has no node yet.
    await c.node("n4")
    await NodeClaimWriter(c.api).patch_status("claim-n4", {"instanceID": "i-0004", "nodeName": "gone"})
    await eventually(lambda: len(setup.index) == 4 and len(c.state.pods_by_node()) == 3, what="the index")
    now = datetime.now(UTC).replace(microsecond=0)
    await setup.send(
        spot_warning("i-0001", now),
        rebalance("i-0002", now),
        state_change("i-0003", "running", now),
        state_change("i-0004", "terminated", now),
        spot_warning("i-ffff", now),  # not ours
        "{garbled",
    )
    messages = await setup.receive_all(6)
    deleted = await setup.controller(Policy(RebalancePolicy.REPORT)).handle(messages)
    assert sorted(m.message_id for m in deleted) == sorted(m.message_id for m in messages)
    assert await setup.queue_counts() == (0, 0)

    n1 = await c.raw_node("n1")
    mark = node_mark(n1, now)
    assert mark is not None
    assert mark.reason == INTERRUPTED
    assert mark.deadline == now + timedelta(minutes=2)
    assert setup.unavailable.is_unavailable("big", "us-east-1a", "spot")
    assert "SpotInterrupted" in await c.event_reasons("n1")
    # The rebalance recommendation is only reported; a running instance is nothing to act on.
    assert node_mark(await c.raw_node("n2"), now) is None
    assert "SpotRebalanceRecommendation" in await c.event_reasons("n2")
    assert node_mark(await c.raw_node("n3"), now) is None
    assert await c.event_reasons("n3") == []
    assert not await c.claim_exists("claim-n4")


async def test_rebalance_acts_when_configured(setup: Setup) -> None:
    await setup.cluster.nodepool()
    await setup.instance_node("n1", "i-0001")
    await eventually(lambda: setup.index.claim("i-0001") is not None, what="the index")
    now = datetime.now(UTC)
    await setup.send(rebalance("i-0001", now))
    messages = await setup.receive_all(1)
    assert await setup.controller(Policy(RebalancePolicy.ACT)).handle(messages) == messages
    mark = node_mark(await setup.cluster.raw_node("n1"), now)
    assert mark is not None
    assert mark.deadline is None  # advisory: replacements Ready first, however long that takes
    assert not setup.unavailable.is_unavailable("big", "us-east-1a", "spot")


async def test_a_terminated_instance_is_drained_by_the_deadline_without_waiting(setup: Setup) -> None:
    """A replacement that never comes Ready does not hold the drain past the deadline."""
    c = setup.cluster
    await c.nodepool()
    await setup.instance_node("n1", "i-0001", pods=2)
    await eventually(lambda: setup.index.claim("i-0001") is not None, what="the index")
    await setup.send(state_change("i-0001", "shutting-down", datetime.now(UTC)))
    messages = await setup.receive_all(1)
    controller = setup.controller(Policy(min_drain=timedelta(seconds=2)))
    assert await controller.handle(messages) == messages
    mark = node_mark(await c.raw_node("n1"), datetime.now(UTC))
    assert mark is not None
    assert mark.replacements, "the pods had nowhere else to go: a replacement was created"
    assert await c.claim_exists(mark.replacements[0])
    # No lifecycle controller runs: the replacement never comes Ready, the drain goes ahead.
    await eventually(lambda: c.state.pods_by_node().get("n1", []) == [], within=10, what="pods evicted")

    async def claim_gone() -> bool:
        return not await c.claim_exists("claim-n1")

    await eventually(claim_gone, within=10, what="the claim deleted")
    assert "InstanceTerminating" in await c.event_reasons("n1")


async def test_a_message_stays_until_its_node_is_marked(setup: Setup) -> None:
    c = setup.cluster
    await c.nodepool()
    await setup.instance_node("n1", "i-0001")
    await eventually(lambda: setup.index.claim("i-0001") is not None, what="the index")
    now = datetime.now(UTC)
    await setup.send(spot_warning("i-0001", now))
    controller = setup.controller(Policy())
    setup.server.faults.failing_writes(500, count=100, resources=("nodes",))
    first = await setup.receive_all(1)
    assert await controller.handle(first) == []
    assert node_mark(await c.raw_node("n1"), now) is None
    assert await setup.queue_counts() == (0, 1)  # in flight, back after its visibility timeout
    setup.server.faults.clear()
    await asyncio.sleep(1.1)
    again = await setup.receive_all(1)
    assert again[0].message_id == first[0].message_id
    assert await controller.handle(again) == again
    assert node_mark(await c.raw_node("n1"), now) is not None
    assert await setup.queue_counts() == (0, 0)
