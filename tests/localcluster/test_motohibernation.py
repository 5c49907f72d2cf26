"""moto refuses to hibernate an instance not launched for it, as EC2 does (motohibernation)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from localcluster.ec2 import ClusterNetwork, MotoEC2
from localcluster.motohibernation import REFUSED, launch_problem

M5_LARGE = {"InstanceType": "m5.large", "HibernationSupported": True, "MemoryInfo": {"SizeInMiB": 8192}}


def _root(size: int, encrypted: bool) -> dict[str, Any]:
    return {
        "BlockDeviceMappings": [
            {"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": size, "Encrypted": encrypted}}
        ]
    }


@pytest.mark.parametrize(
    ("data", "instance_type", "problem"),
    [
        (_root(28, True), M5_LARGE, None),
        (_root(28, False), M5_LARGE, "the root volume is not encrypted"),
        (_root(8, True), M5_LARGE, "the root volume (8 GiB) has no room for 8 GiB of RAM"),
        ({}, M5_LARGE, "the root volume is not encrypted"),
        (_root(28, True), {**M5_LARGE, "HibernationSupported": False}, "does not support hibernation"),
        (_root(300, True), {**M5_LARGE, "MemoryInfo": {"SizeInMiB": 262144}}, "more than hibernation allows"),
    ],
)
def test_what_ec2_requires_of_a_launch_for_hibernation(
    data: dict[str, Any], instance_type: dict[str, Any], problem: str | None
) -> None:
    found = launch_problem(data, instance_type)
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found


def _client(ec2: MotoEC2) -> Any:
    return boto3.client("ec2", **ec2.client_kwargs())


def _fleet_instance(client: Any, network: ClusterNetwork, data: dict[str, Any], instance_type: str) -> str:
    """One instance from a CreateFleet (instant) on a new template with ``data``."""
    template = client.create_launch_template(
        LaunchTemplateName=f"hibernation-{len(client.describe_launch_templates()['LaunchTemplates'])}",
        LaunchTemplateData={"ImageId": network.amis["x86_64"], **data},
    )["LaunchTemplate"]["LaunchTemplateId"]
    fleet = client.create_fleet(
        Type="instant",
        LaunchTemplateConfigs=[
            {
                "LaunchTemplateSpecification": {"LaunchTemplateId": template, "Version": "$Latest"},
                "Overrides": [
                    {"InstanceType": instance_type, "SubnetId": next(iter(network.subnets.values()))}
                ],
            }
        ],
        TargetCapacitySpecification={"TotalTargetCapacity": 1, "DefaultTargetCapacityType": "on-demand"},
    )
    instance_id: str = fleet["Instances"][0]["InstanceIds"][0]
    return instance_id


def _hibernate(client: Any, instance_id: str) -> str | None:
    """Ask to hibernate: None when accepted, else the error code and message."""
    try:
        client.stop_instances(InstanceIds=[instance_id], Hibernate=True)
    except ClientError as error:
        return f"{error.response['Error']['Code']}: {error.response['Error']['Message']}"
    return None


def _state(client: Any, instance_id: str) -> str:
    described = client.describe_instances(InstanceIds=[instance_id])
    state: str = described["Reservations"][0]["Instances"][0]["State"]["Name"]
    return state


def test_an_instance_launched_without_hibernation_is_refused_and_can_still_be_stopped(
    ec2: MotoEC2, ec2_network: ClusterNetwork
) -> None:
    client = _client(ec2)
    plain = client.run_instances(
        ImageId=ec2_network.amis["x86_64"], InstanceType="m5.large", MinCount=1, MaxCount=1
    )
    instance_id = plain["Instances"][0]["InstanceId"]
    refused = _hibernate(client, instance_id)
    assert refused is not None
    assert refused.startswith(f"{REFUSED}: ")
    assert "not enabled for hibernation" in refused
    assert _state(client, instance_id) == "running"
    client.stop_instances(InstanceIds=[instance_id])  # a plain stop is fine
    assert _state(client, instance_id) == "stopped"
    fleet_plain = _fleet_instance(client, ec2_network, _root(20, True), "m5.large")
    assert _hibernate(client, fleet_plain) is not None


def test_an_instance_launched_for_hibernation_hibernates(ec2: MotoEC2, ec2_network: ClusterNetwork) -> None:
    client = _client(ec2)
    configured = {**_root(28, True), "HibernationOptions": {"Configured": True}}
    instance_id = _fleet_instance(client, ec2_network, configured, "m5.large")
    described = client.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    assert described["HibernationOptions"] == {"Configured": True}
    assert _hibernate(client, instance_id) is None
    assert _state(client, instance_id) == "stopped"
    run = client.run_instances(
        ImageId=ec2_network.amis["x86_64"],
        InstanceType="m5.large",
        MinCount=1,
        MaxCount=1,
        HibernationOptions={"Configured": True},
    )
    assert _hibernate(client, run["Instances"][0]["InstanceId"]) is None


def test_a_launch_configured_wrongly_for_hibernation_is_refused(
    ec2: MotoEC2, ec2_network: ClusterNetwork
) -> None:
    client = _client(ec2)
    small = _fleet_instance(
        client, ec2_network, {**_root(8, True), "HibernationOptions": {"Configured": True}}, "m5.large"
    )
    refused = _hibernate(client, small)
    assert refused is not None
    assert "no room for 8 GiB" in refused
