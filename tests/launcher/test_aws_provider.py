"""AWSCloudProvider list/get/delete against moto, and the catalogue it shows the planner."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from launcher.aws import testing
from launcher.aws.provider import AWSCloudProvider
from launcher.aws.session import AWSClients
from launcher.model import LaunchRequest
from localcluster.ec2 import ClusterNetwork, MotoEC2
from shared import labels


@pytest.fixture
async def provider(ec2: MotoEC2, ec2_network: ClusterNetwork) -> AsyncIterator[AWSCloudProvider]:
    async with AWSClients(testing.moto_settings(ec2.endpoint)) as clients:
        aws = await testing.synced_provider(
            clients, ec2_network.cluster, [testing.nodepool()], ("m5.large", "m6g.large")
        )
        yield aws


def _request(nodeclaim: str) -> LaunchRequest:
    return LaunchRequest(
        nodeclaim=nodeclaim,
        nodepool="default",
        nodeclass="default",
        client_token=f"token-{nodeclaim}",
        instance_types=("m5.large",),
        zones=("us-east-1b",),
        capacity_types=("on-demand",),
        architecture="amd64",
    )


async def test_list_get_delete(provider: AWSCloudProvider, ec2_network: ClusterNetwork) -> None:
    first = await provider.create(_request("a"))
    second = await provider.create(_request("b"))
    # An instance of another cluster, and one without tags, are not ours.
    await provider.clients.ec2.run_instances(
        ImageId=ec2_network.amis["x86_64"],
        InstanceType="t3.micro",
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": labels.TAG_CLUSTER, "Value": "other-cluster"}]}
        ],
    )
    await provider.clients.ec2.run_instances(
        ImageId=ec2_network.amis["x86_64"], InstanceType="t3.micro", MinCount=1, MaxCount=1
    )
    listed = {i.id: i for i in await provider.list()}
    assert set(listed) == {first.id, second.id}
    assert listed[first.id].tags[labels.TAG_NODECLAIM] == "a"
    assert listed[first.id].zone == "us-east-1b"
    assert listed[first.id].provider_id == f"aws:///us-east-1b/{first.id}"

    got = await provider.get(second.id)
    assert got is not None
    assert got.tags[labels.TAG_NODECLAIM] == "b"
    assert got.private_dns_name

    await provider.delete(first.id)
    assert {i.id for i in await provider.list()} == {second.id}
    gone = await provider.get(first.id)
    assert gone is None or gone.state in {"shutting-down", "terminated"}
    # Deleting twice, or an instance EC2 never knew, is not an error.
    await provider.delete(first.id)
    await provider.delete("i-0123456789abcdef0")
    assert await provider.get("i-0123456789abcdef0") is None


async def test_instance_types_offer_only_zones_with_subnets(
    provider: AWSCloudProvider, ec2_network: ClusterNetwork
) -> None:
    types = await provider.instance_types()
    assert {t.name for t in types} == {"m5.large", "m6g.large"}
    zones = {o.zone for t in types for o in t.offerings}
    assert zones == set(ec2_network.subnets)
    assert await provider.instance_types() is types  # cached until the catalogue or the zones change


async def test_warm_instances_stop_and_start(provider: AWSCloudProvider) -> None:
    """StopInstances, StartInstances. Asked to hibernate an instance not launched for it, EC2 (moto,
    as EC2: ``localcluster.motohibernation``) refuses and it is stopped plainly; one launched for it
    hibernates (``test_aws_hibernation.py``)."""
    first = await provider.create(_request("warm-a"))
    second = await provider.create(_request("warm-b"))
    assert await provider.stop(first.id, hibernate=True) == "Stopped"
    assert await provider.stop(second.id, hibernate=False) == "Stopped"
    for instance_id in (first.id, second.id):
        stopped = await provider.get(instance_id)
        assert stopped is not None
        assert stopped.state == "stopped"
    assert {i.id for i in await provider.list()} == {first.id, second.id}  # stopped ones are listed
    await provider.start(first.id)
    started = await provider.get(first.id)
    assert started is not None
    assert started.state in {"pending", "running"}
