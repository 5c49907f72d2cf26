"""CreateFleet on the warm template: the request jitnode builds, and EC2's errors mapped.

moto ignores most of a CreateFleet request (it always takes the first override), so the shape
is asserted on the request itself, captured with a botocore ``provide-client-params`` hook.
Capacity faults are injected on moto's side by replacing its CreateFleet handler in this
process (the threaded server shares it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from moto.core.responses import ActionResult
from moto.ec2.responses.fleets import Fleets

from launcher.aws import testing
from launcher.aws.fleet import MAX_OVERRIDES, ON_DEMAND_STRATEGY, SPOT_STRATEGY, overrides
from launcher.aws.provider import AWSCloudProvider
from launcher.aws.session import AWSClients
from launcher.model import InsufficientCapacityError, LaunchError, LaunchRequest, ThrottledError
from localcluster.ec2 import ClusterNetwork, MotoEC2
from shared import labels

ROLE = testing.TEST_ROLE


@pytest.fixture
async def provider(ec2: MotoEC2, ec2_network: ClusterNetwork) -> AsyncIterator[AWSCloudProvider]:
    async with AWSClients(testing.moto_settings(ec2.endpoint)) as clients:
        aws = await testing.synced_provider(
            clients, ec2_network.cluster, [testing.nodepool(labels={"intent": "apps"})]
        )
        yield aws


def capture(aws: AWSCloudProvider) -> list[dict[str, Any]]:
    """Every CreateFleet request the client sends, as botocore is about to serialise it."""
    sent: list[dict[str, Any]] = []

    def hook(params: dict[str, Any], **_: Any) -> None:
        sent.append(dict(params))

    aws.clients.ec2.meta.events.register("provide-client-params.ec2.CreateFleet", hook)
    return sent


def request(**overrides: Any) -> LaunchRequest:
    fields: dict[str, Any] = {
        "nodeclaim": "default-abcde",
        "nodepool": "default",
        "nodeclass": "default",
        "client_token": "token-abcde",
        "instance_types": ("m5.large", "m5a.large", "c5.xlarge"),
        "zones": ("us-east-1a", "us-east-1b"),
        "capacity_types": ("on-demand",),
        "architecture": "amd64",
        **overrides,
    }
    return LaunchRequest(**fields)


async def test_on_demand_request_shape(provider: AWSCloudProvider, ec2_network: ClusterNetwork) -> None:
    sent = capture(provider)
    instance = await provider.create(request(tags={"team": "a"}))
    (params,) = sent
    template = provider.templates.get("default", "default", "amd64")
    assert template is not None
    assert params["Type"] == "instant"
    assert params["ClientToken"] == "token-abcde"
    assert params["TargetCapacitySpecification"] == {
        "TotalTargetCapacity": 1,
        "DefaultTargetCapacityType": "on-demand",
    }
    assert params["OnDemandOptions"] == {"AllocationStrategy": ON_DEMAND_STRATEGY}
    assert "SpotOptions" not in params
    (config,) = params["LaunchTemplateConfigs"]
    assert config["LaunchTemplateSpecification"]["LaunchTemplateId"] == template.id
    pairs = [(o["InstanceType"], o["SubnetId"]) for o in config["Overrides"]]
    subnets = ec2_network.subnets
    assert pairs == [
        (t, subnets[z]) for t in ("m5.large", "m5a.large", "c5.xlarge") for z in ("us-east-1a", "us-east-1b")
    ]
    (spec,) = params["TagSpecifications"]
    assert spec["ResourceType"] == "instance"
    tags = {t["Key"]: t["Value"] for t in spec["Tags"]}
    assert tags[labels.TAG_CLUSTER] == ec2_network.cluster
    assert tags[labels.TAG_NODEPOOL] == "default"
    assert tags[labels.TAG_NODECLAIM] == "default-abcde"
    assert tags[labels.TAG_MANAGED_BY] == "jitnode"
    assert tags["team"] == "a"
    # What moto launched agrees with what create() reports.
    seen = await provider.get(instance.id)
    assert seen is not None
    assert (seen.instance_type, seen.zone, seen.capacity_type) == ("m5.large", "us-east-1a", "on-demand")
    assert instance.zone == seen.zone
    assert instance.instance_type == seen.instance_type
    assert seen.tags[labels.TAG_NODECLAIM] == "default-abcde"
    assert seen.image_id == ec2_network.amis["x86_64"]
    assert instance.provider_id == f"aws:///us-east-1a/{instance.id}"


async def test_spot_uses_price_capacity_optimized(provider: AWSCloudProvider) -> None:
    sent = capture(provider)
    instance = await provider.create(
        request(capacity_types=("spot", "on-demand"), architecture="arm64", instance_types=("m6g.large",))
    )
    (params,) = sent
    assert params["SpotOptions"] == {"AllocationStrategy": SPOT_STRATEGY}
    assert params["TargetCapacitySpecification"]["DefaultTargetCapacityType"] == "spot"
    template = provider.templates.get("default", "default", "arm64")
    assert template is not None
    assert (
        params["LaunchTemplateConfigs"][0]["LaunchTemplateSpecification"]["LaunchTemplateId"] == template.id
    )
    assert instance.capacity_type == "spot"


async def test_overrides_are_capped_cheapest_first_across_zones(provider: AWSCloudProvider) -> None:
    template = provider.templates.get("default", "default", "amd64")
    assert template is not None
    names = tuple(f"m5.{size}" for size in ("large", "xlarge", "2xlarge", "4xlarge")) + tuple(
        f"type{i}.large" for i in range(40)
    )
    chosen = overrides(request(instance_types=names, zones=()), template.nodeclass)
    assert len(chosen) == MAX_OVERRIDES
    # Three zones per type, in the order given (cheapest first), so 20 types make the cut.
    assert [o["InstanceType"] for o in chosen[::3]] == list(names[:20])
    assert {o["AvailabilityZone"] for o in chosen[:3]} == {"us-east-1a", "us-east-1b", "us-east-1c"}


async def test_zones_without_subnets_cannot_launch(provider: AWSCloudProvider) -> None:
    with pytest.raises(LaunchError, match="no subnet"):
        await provider.create(request(zones=("us-east-1d",)))


async def test_missing_template_is_a_launch_error(provider: AWSCloudProvider) -> None:
    with pytest.raises(LaunchError, match="no warm launch template"):
        await provider.create(request(nodepool="other"))


async def test_a_launch_waits_out_the_sync_that_makes_its_template(provider: AWSCloudProvider) -> None:
    """A NodePool applied just before its first demand: the launch meets the sync under way."""
    pools = [testing.nodepool(labels={"intent": "apps"}), testing.nodepool(name="fresh")]
    sync = asyncio.create_task(provider.sync([testing.nodeclass(role=ROLE)], pools))
    await asyncio.sleep(0)  # the sync takes its lock, then waits on EC2
    assert provider.templates._lock.locked()
    assert provider.templates.get("default", "fresh", "amd64") is None
    instance = await provider.create(request(nodepool="fresh"))
    assert instance.id.startswith("i-")
    await sync


def _fleet_errors(errors: list[dict[str, Any]]) -> Any:
    def create_fleet(self: Fleets) -> ActionResult:
        return ActionResult(
            {"FleetId": "fleet-00000000-0000-0000-0000-000000000000", "Errors": errors, "Instances": []}
        )

    return create_fleet


def _error(code: str, instance_type: str, subnet: str, zone: str | None) -> dict[str, Any]:
    override: dict[str, Any] = {"InstanceType": instance_type, "SubnetId": subnet}
    if zone:
        override["AvailabilityZone"] = zone
    return {
        "LaunchTemplateAndOverrides": {
            "LaunchTemplateSpecification": {"LaunchTemplateId": "lt-0", "Version": "1"},
            "Overrides": override,
        },
        "Lifecycle": "on-demand",
        "ErrorCode": code,
        "ErrorMessage": f"{code} for {instance_type}",
    }


async def test_insufficient_capacity_names_the_offerings(
    provider: AWSCloudProvider, ec2_network: ClusterNetwork, monkeypatch: pytest.MonkeyPatch
) -> None:
    subnets = ec2_network.subnets
    monkeypatch.setattr(
        Fleets,
        "create_fleet",
        _fleet_errors(
            [
                _error("InsufficientInstanceCapacity", "m5.large", subnets["us-east-1a"], "us-east-1a"),
                # No zone in the error: found from the subnet of the override we sent.
                _error("UnfulfillableCapacity", "m5a.large", subnets["us-east-1b"], None),
            ]
        ),
    )
    with pytest.raises(InsufficientCapacityError) as caught:
        await provider.create(request())
    assert set(caught.value.offerings) == {
        ("m5.large", "us-east-1a", "on-demand"),
        ("m5a.large", "us-east-1b", "on-demand"),
    }
    assert await provider.list() == []


async def test_fleet_with_no_instance_and_no_error_marks_every_offering(
    provider: AWSCloudProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Fleets, "create_fleet", _fleet_errors([]))
    with pytest.raises(InsufficientCapacityError) as caught:
        await provider.create(request(instance_types=("m5.large",), zones=("us-east-1c",)))
    assert caught.value.offerings == (("m5.large", "us-east-1c", "on-demand"),)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("InsufficientInstanceCapacity", InsufficientCapacityError),
        ("RequestLimitExceeded", ThrottledError),
        ("InvalidLaunchTemplateId.NotFound", LaunchError),
    ],
)
async def test_refused_requests_map_to_launch_errors(
    provider: AWSCloudProvider, monkeypatch: pytest.MonkeyPatch, code: str, expected: type[LaunchError]
) -> None:
    from moto.ec2.exceptions import EC2ClientError

    def refuse(self: Fleets) -> ActionResult:
        raise EC2ClientError(code, f"injected {code}")

    monkeypatch.setattr(Fleets, "create_fleet", refuse)
    # The client retries throttling; keep the test fast by asking for one attempt.
    started = time.monotonic()
    with pytest.raises(LaunchError) as caught:
        await provider.create(request(instance_types=("m5.large",), zones=("us-east-1a",)))
    assert type(caught.value) is expected
    assert code in str(caught.value)
    if expected is InsufficientCapacityError:
        assert caught.value.offerings == (("m5.large", "us-east-1a", "on-demand"),)  # type: ignore[attr-defined]
    assert time.monotonic() - started < 5


async def test_partial_errors_with_an_instance_still_launch(
    provider: AWSCloudProvider, ec2_network: ClusterNetwork, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = Fleets.create_fleet

    def with_errors(self: Fleets) -> ActionResult:
        payload = original(self).result
        assert isinstance(payload, dict)
        error = _error(
            "InsufficientInstanceCapacity", "m5a.large", ec2_network.subnets["us-east-1a"], "us-east-1a"
        )
        return ActionResult({**payload, "Errors": [error]})

    monkeypatch.setattr(Fleets, "create_fleet", with_errors)
    instance = await provider.create(request())
    assert instance.id.startswith("i-")


async def test_overrides_skip_unavailable_offerings(provider: AWSCloudProvider) -> None:
    template = provider.templates.get("default", "default", "amd64")
    assert template is not None
    gone = frozenset({("m5.large", "us-east-1a", "spot"), ("c5.xlarge", "us-east-1b", "on-demand")})
    spot = overrides(request(capacity_types=("spot",), unavailable=gone), template.nodeclass)
    pairs = [(o["InstanceType"], o["AvailabilityZone"]) for o in spot]
    assert ("m5.large", "us-east-1a") not in pairs
    assert ("m5.large", "us-east-1b") in pairs
    assert ("c5.xlarge", "us-east-1b") in pairs  # on-demand's shortage is no reason to skip spot
    on_demand = overrides(request(unavailable=gone), template.nodeclass)
    pairs = [(o["InstanceType"], o["AvailabilityZone"]) for o in on_demand]
    assert ("c5.xlarge", "us-east-1b") not in pairs
    assert ("m5.large", "us-east-1a") in pairs
