"""The moto-side EC2 faults, seen through a real botocore client as jitnode's launcher sees them."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ReadTimeoutError

from localcluster.chaos.ec2 import EC2Faults
from localcluster.ec2 import ClusterNetwork, MotoEC2

TYPES = ("m5.xlarge", "c5.xlarge")


@pytest.fixture
def faults(ec2: MotoEC2) -> Iterator[EC2Faults]:
    with EC2Faults() as installed:
        yield installed


def _client(ec2: MotoEC2, *, attempts: int = 1, read_timeout: float = 10.0) -> Any:
    config = Config(retries={"total_max_attempts": attempts, "mode": "standard"}, read_timeout=read_timeout)
    return boto3.client("ec2", config=config, **ec2.client_kwargs())


def _fleet_params(client: Any, network: ClusterNetwork, token: str | None = None) -> dict[str, Any]:
    template = client.create_launch_template(
        LaunchTemplateName=f"lt-{uuid.uuid4().hex[:8]}",
        LaunchTemplateData={"ImageId": network.amis["x86_64"]},
    )["LaunchTemplate"]["LaunchTemplateId"]
    overrides = [
        {"InstanceType": t, "SubnetId": network.subnets[z], "AvailabilityZone": z}
        for t in TYPES
        for z in sorted(network.subnets)
    ]
    return {
        "Type": "instant",
        "ClientToken": token or uuid.uuid4().hex,
        "LaunchTemplateConfigs": [
            {
                "LaunchTemplateSpecification": {"LaunchTemplateId": template, "Version": "$Latest"},
                "Overrides": overrides,
            }
        ],
        "TargetCapacitySpecification": {"TotalTargetCapacity": 1, "DefaultTargetCapacityType": "on-demand"},
    }


def _instances(response: dict[str, Any]) -> list[str]:
    return [i for launched in response.get("Instances", []) for i in launched.get("InstanceIds", [])]


def _state(client: Any, instance_id: str) -> str:
    described = client.describe_instances(InstanceIds=[instance_id])
    return str(described["Reservations"][0]["Instances"][0]["State"]["Name"])


@pytest.mark.parametrize(
    ("arm", "code", "status"),
    [
        (lambda f: f.throttle(count=1), "RequestLimitExceeded", 503),
        (lambda f: f.server_errors(count=1, status=500), "InternalError", 500),
        (lambda f: f.server_errors(count=1, status=503), "Unavailable", 503),
    ],
    ids=["throttle", "500", "503"],
)
def test_refusals_are_ec2_errors_and_stop_after_their_count(
    ec2: MotoEC2, ec2_network: ClusterNetwork, faults: EC2Faults, arm: Any, code: str, status: int
) -> None:
    client = _client(ec2)
    params = _fleet_params(client, ec2_network)
    arm(faults)
    client.describe_instances()  # another action is untouched
    with pytest.raises(ClientError) as refused:
        client.create_fleet(**params)
    assert refused.value.response["Error"]["Code"] == code
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert faults.pending == 0
    assert len(_instances(client.create_fleet(**params))) == 1


def test_a_slow_answer_is_retried_and_the_token_makes_the_retry_idempotent(
    ec2: MotoEC2, ec2_network: ClusterNetwork, faults: EC2Faults
) -> None:
    client = _client(ec2, attempts=2, read_timeout=0.5)
    params = _fleet_params(client, ec2_network)
    faults.slow(1.0)
    response = client.create_fleet(**params)  # the first attempt times out; the retry is answered
    assert faults.fired == {"slow": 1, "idempotent_replay": 1}
    launched = _instances(response)
    assert len(launched) == 1
    ours = [i for r in client.describe_instances()["Reservations"] for i in r["Instances"]]
    assert [i["InstanceId"] for i in ours] == launched  # launched once, not once per attempt


def test_without_retries_a_slow_answer_times_out_after_taking_effect(
    ec2: MotoEC2, ec2_network: ClusterNetwork, faults: EC2Faults
) -> None:
    client = _client(ec2, read_timeout=0.3)
    params = _fleet_params(client, ec2_network)
    faults.slow(0.6)
    with pytest.raises(ReadTimeoutError):
        client.create_fleet(**params)
    assert len(client.describe_instances()["Reservations"]) == 1  # launched before the answer was held


def test_a_token_reused_with_other_parameters_is_refused(
    ec2: MotoEC2, ec2_network: ClusterNetwork, faults: EC2Faults
) -> None:
    client = _client(ec2)
    params = _fleet_params(client, ec2_network)
    first = client.create_fleet(**params)
    assert client.create_fleet(**params)["FleetId"] == first["FleetId"]
    params["LaunchTemplateConfigs"][0]["Overrides"] = params["LaunchTemplateConfigs"][0]["Overrides"][1:]
    with pytest.raises(ClientError) as refused:
        client.create_fleet(**params)
    assert refused.value.response["Error"]["Code"] == "IdempotentParameterMismatch"


def test_insufficient_capacity_skips_refused_offerings_or_launches_nothing(
    ec2: MotoEC2, ec2_network: ClusterNetwork, faults: EC2Faults
) -> None:
    client = _client(ec2)
    faults.insufficient_capacity(types=["m5.xlarge"], zones=["us-east-1a", "us-east-1b"], count=1)
    response = client.create_fleet(**_fleet_params(client, ec2_network))
    refused = {
        (
            e["LaunchTemplateAndOverrides"]["Overrides"]["InstanceType"],
            e["LaunchTemplateAndOverrides"]["Overrides"]["AvailabilityZone"],
        )
        for e in response["Errors"]
    }
    assert refused == {("m5.xlarge", "us-east-1a"), ("m5.xlarge", "us-east-1b")}
    assert {e["ErrorCode"] for e in response["Errors"]} == {"InsufficientInstanceCapacity"}
    (launched,) = response["Instances"]
    assert launched["LaunchTemplateAndOverrides"]["Overrides"]["AvailabilityZone"] == "us-east-1c"
    assert launched["InstanceType"] == "m5.xlarge"

    faults.insufficient_capacity(count=1)  # every type in every zone
    dry = client.create_fleet(**_fleet_params(client, ec2_network))
    assert dry["Instances"] == []
    assert len(dry["Errors"]) == len(TYPES) * 3
    assert faults.fired == {"insufficient_capacity": 2}


def test_partial_fleet_errors_launch_from_a_later_override(
    ec2: MotoEC2, ec2_network: ClusterNetwork, faults: EC2Faults
) -> None:
    client = _client(ec2)
    faults.partial_fleet_errors(count=1, skip=2)
    response = client.create_fleet(**_fleet_params(client, ec2_network))
    assert [e["LaunchTemplateAndOverrides"]["Overrides"]["AvailabilityZone"] for e in response["Errors"]] == [
        "us-east-1a",
        "us-east-1b",
    ]
    (launched,) = response["Instances"]
    assert launched["LaunchTemplateAndOverrides"]["Overrides"]["AvailabilityZone"] == "us-east-1c"


def test_an_instance_that_never_runs_and_one_that_dies(
    ec2: MotoEC2, ec2_network: ClusterNetwork, faults: EC2Faults
) -> None:
    client = _client(ec2)
    faults.never_running(count=1)
    # Long enough to see it running first even on a loaded machine (0.1 s was not, in CI's way).
    faults.dies_after_launch(count=1, after=1.0)
    (stuck,) = _instances(client.create_fleet(**_fleet_params(client, ec2_network)))
    (dying,) = _instances(client.create_fleet(**_fleet_params(client, ec2_network)))
    (healthy,) = _instances(client.create_fleet(**_fleet_params(client, ec2_network)))
    assert _state(client, stuck) == "pending"
    deadline = time.monotonic() + 5
    seen: list[str] = []
    while time.monotonic() < deadline and (not seen or seen[-1] != "terminated"):
        state = _state(client, dying)
        if not seen or seen[-1] != state:
            seen.append(state)
        time.sleep(0.02)
    assert seen == ["running", "shutting-down", "terminated"]
    described = client.describe_instances(InstanceIds=[dying])["Reservations"][0]["Instances"][0]
    assert described["StateReason"]["Code"] == "Server.InternalError"
    assert _state(client, stuck) == "pending"
    assert _state(client, healthy) == "running"
    assert faults.fired == {"never_running": 1, "dies_after_launch": 1, "died": 1}


def test_uninstalling_restores_moto(ec2: MotoEC2) -> None:
    from moto.ec2.responses import EC2Response

    before = (EC2Response.call_action, EC2Response.create_fleet)
    with EC2Faults():
        assert "create_fleet" in EC2Response.__dict__
    assert "create_fleet" not in EC2Response.__dict__
    assert (EC2Response.call_action, EC2Response.create_fleet) == before
