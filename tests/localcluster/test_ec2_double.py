"""The EC2 double is seeded like an eksctl cluster and reachable over HTTP with aioboto3."""

from __future__ import annotations

import aioboto3

from localcluster.ec2 import ESKCTL_CLUSTER_TAG, ZONES, ClusterNetwork, MotoEC2


async def test_selectors_by_tag_find_the_seeded_network(ec2: MotoEC2, ec2_network: ClusterNetwork) -> None:
    session = aioboto3.Session()
    async with session.client("ec2", **ec2.client_kwargs()) as client:
        tag_filter = [{"Name": f"tag:{ESKCTL_CLUSTER_TAG}", "Values": [ec2_network.cluster]}]
        subnets = (await client.describe_subnets(Filters=tag_filter))["Subnets"]
        groups = (await client.describe_security_groups(Filters=tag_filter))["SecurityGroups"]
    assert {s["AvailabilityZone"]: s["SubnetId"] for s in subnets} == ec2_network.subnets
    assert sorted(ec2_network.subnets) == list(ZONES)
    assert [g["GroupId"] for g in groups] == [ec2_network.security_group_id]


async def test_eks_ami_parameters_resolve_to_images_of_their_architecture(
    ec2: MotoEC2, ec2_network: ClusterNetwork
) -> None:
    session = aioboto3.Session()
    async with (
        session.client("ssm", **ec2.client_kwargs()) as ssm,
        session.client("ec2", **ec2.client_kwargs()) as client,
    ):
        for arch, name in ec2_network.ami_parameters.items():
            image_id = (await ssm.get_parameter(Name=name))["Parameter"]["Value"]
            assert image_id == ec2_network.amis[arch]
            image = (await client.describe_images(ImageIds=[image_id]))["Images"][0]
            assert image["Architecture"] == arch


async def test_reset_wipes_instances(ec2: MotoEC2, ec2_network: ClusterNetwork) -> None:
    session = aioboto3.Session()
    async with session.client("ec2", **ec2.client_kwargs()) as client:
        await client.run_instances(
            ImageId=ec2_network.amis["x86_64"], InstanceType="m5.large", MinCount=1, MaxCount=1
        )
        ec2.reset()
        reservations = (await client.describe_instances())["Reservations"]
    assert reservations == []
