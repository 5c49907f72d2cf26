"""moto's static catalogue answers are rendered once and served again; faults still reach them."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from localcluster import motocache
from localcluster.chaos.ec2 import EC2Faults
from localcluster.ec2 import MotoEC2


def client(ec2: MotoEC2) -> Any:
    kwargs = ec2.client_kwargs()
    return boto3.client("ec2", config=Config(retries={"total_max_attempts": 1}), **kwargs)


def test_a_repeated_catalogue_call_is_answered_alike_from_what_was_kept(ec2: MotoEC2) -> None:
    c = client(ec2)
    first = c.describe_instance_types(InstanceTypes=["m5.large", "c5.xlarge"])
    kept = motocache.remembered()
    again = c.describe_instance_types(InstanceTypes=["m5.large", "c5.xlarge"])
    assert motocache.remembered() == kept  # the second answer was a kept one
    assert first["InstanceTypes"] == again["InstanceTypes"]
    assert {t["InstanceType"] for t in again["InstanceTypes"]} == {"m5.large", "c5.xlarge"}
    other = c.describe_instance_types(InstanceTypes=["r5.large"])
    assert [t["InstanceType"] for t in other["InstanceTypes"]] == ["r5.large"]  # its own parameters


def test_state_is_never_kept_and_injected_faults_still_fire(ec2: MotoEC2) -> None:
    c = client(ec2)
    c.describe_instance_types(InstanceTypes=["m5.large"])
    before = len(c.describe_instances()["Reservations"])
    c.create_tags(Resources=[c.describe_vpcs()["Vpcs"][0]["VpcId"]], Tags=[{"Key": "k", "Value": "v"}])
    vpc_tags = c.describe_vpcs()["Vpcs"][0].get("Tags", [])
    assert {"Key": "k", "Value": "v"} in vpc_tags  # a state read sees the write
    assert len(c.describe_instances()["Reservations"]) == before
    with EC2Faults() as faults:
        faults.server_errors(actions=("DescribeInstanceTypes",), status=503)
        with pytest.raises(ClientError) as caught:
            c.describe_instance_types(InstanceTypes=["m5.large"])
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert c.describe_instance_types(InstanceTypes=["m5.large"])["InstanceTypes"]
