"""Hibernated warm fills against moto (server mode): launched from the hibernation variant of the
pool's template, and hibernated; every other launch from the plain template, and only stopped.

moto refuses ``Hibernate`` for an instance not launched for it, as EC2 does
(``localcluster.motohibernation``), so these tests see what a launcher on AWS would see.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from launcher.aws import testing
from launcher.aws.hibernation import HIBERNATION_TAG
from launcher.aws.provider import AWSCloudProvider
from launcher.aws.session import AWSClients
from launcher.model import Instance, LaunchRequest
from localcluster.ec2 import ClusterNetwork, MotoEC2
from shared import labels
from shared.api.warmpool import HIBERNATED, STOPPED

ROLE = testing.TEST_ROLE
TYPES = ("m5.large", "m5.xlarge", "r5.8xlarge", "m6g.large")
HIBERNATED_POOL = {"size": 1, "state": "Hibernated"}
FILLS = ("warm-a", "warm-b")  # the claims the warm pool would call hibernation fills


@pytest.fixture
async def provider(ec2: MotoEC2, ec2_network: ClusterNetwork) -> AsyncIterator[AWSCloudProvider]:
    async with AWSClients(testing.moto_settings(ec2.endpoint)) as clients:
        aws = await testing.synced_provider(
            clients, ec2_network.cluster, [testing.nodepool(warm_pool=HIBERNATED_POOL)], TYPES
        )
        await aws.instance_types()
        aws.hibernate_fills(lambda nodeclaim: nodeclaim in FILLS)
        yield aws


def _request(nodeclaim: str, *types: str) -> LaunchRequest:
    return LaunchRequest(
        nodeclaim=nodeclaim,
        nodepool="default",
        nodeclass="default",
        client_token=f"token-{nodeclaim}",
        instance_types=types or ("m5.large",),
        zones=("us-east-1b",),
        capacity_types=("on-demand",),
        architecture="amd64",
    )


async def _templates(provider: AWSCloudProvider) -> dict[str, dict[str, Any]]:
    """Name -> LaunchTemplateData of every template of the cluster, as EC2 holds them."""
    ec2 = provider.clients.ec2
    described = await ec2.describe_launch_templates(
        Filters=[{"Name": f"tag:{labels.TAG_CLUSTER}", "Values": [provider.cluster]}]
    )
    out: dict[str, dict[str, Any]] = {}
    for template in described["LaunchTemplates"]:
        versions = await ec2.describe_launch_template_versions(LaunchTemplateId=template["LaunchTemplateId"])
        out[template["LaunchTemplateName"]] = versions["LaunchTemplateVersions"][0]["LaunchTemplateData"]
    return out


def _root(data: dict[str, Any]) -> dict[str, Any]:
    return next(m["Ebs"] for m in data["BlockDeviceMappings"] if m["DeviceName"] == "/dev/xvda")


async def _described(provider: AWSCloudProvider, instance: Instance) -> Instance:
    got = await provider.get(instance.id)
    assert got is not None
    return got


async def test_a_hibernated_warm_fill_launches_from_the_variant_and_a_normal_launch_does_not(
    provider: AWSCloudProvider,
) -> None:
    plain_names = set(await _templates(provider))
    assert len(plain_names) == 2  # amd64 and arm64; no variant before a fill needs one

    normal = await provider.create(_request("serving", "m5.large", "m5.xlarge"))
    assert set(await _templates(provider)) == plain_names
    # r5.8xlarge (256 GiB) cannot hibernate: the fill is offered only what can.
    fill = await provider.create(_request("warm-a", "m5.large", "m5.xlarge", "r5.8xlarge"))
    assert fill.instance_type in {"m5.large", "m5.xlarge"}

    templates = await _templates(provider)
    variants = {n: d for n, d in templates.items() if n not in plain_names}
    assert len(variants) == 1
    variant = next(iter(variants.values()))
    assert variant["HibernationOptions"] == {"Configured": True}
    assert _root(variant)["Encrypted"] is True
    assert _root(variant)["VolumeSize"] == 20 + 16  # the root plus m5.xlarge's 16 GiB, the largest
    for name in plain_names:
        assert not templates[name].get("HibernationOptions", {}).get("Configured")
        assert _root(templates[name])["VolumeSize"] == 20

    assert fill.hibernation_configured
    assert fill.tags[HIBERNATION_TAG] == "configured"
    assert not normal.hibernation_configured
    assert HIBERNATION_TAG not in normal.tags
    assert (await _described(provider, fill)).hibernation_configured
    assert not (await _described(provider, normal)).hibernation_configured

    # A second fill of the same size shares the variant.
    await provider.create(_request("warm-b", "m5.xlarge"))
    assert set(await _templates(provider)) == set(templates)


async def test_the_sync_keeps_variants_while_the_pool_is_hibernated(provider: AWSCloudProvider) -> None:
    await provider.create(_request("warm-a", "m5.large"))
    with_variant = set(await _templates(provider))
    assert len(with_variant) == 3
    nodeclass = testing.nodeclass(role=ROLE)
    await provider.sync([nodeclass], [testing.nodepool(warm_pool=HIBERNATED_POOL)])
    assert set(await _templates(provider)) == with_variant  # a restarted launcher keeps it too
    await provider.sync([nodeclass], [testing.nodepool(warm_pool={"size": 1, "state": "Stopped"})])
    assert len(await _templates(provider)) == 2


async def test_a_fill_with_no_type_that_can_hibernate_uses_the_plain_template(
    provider: AWSCloudProvider,
) -> None:
    plain = set(await _templates(provider))
    fill = await provider.create(_request("warm-a", "r5.8xlarge"))
    assert set(await _templates(provider)) == plain
    assert not fill.hibernation_configured


async def test_ec2_hibernates_a_fill_and_refuses_any_other_which_is_stopped_instead(
    provider: AWSCloudProvider,
) -> None:
    fill = await provider.create(_request("warm-a", "m5.large"))
    serving = await provider.create(_request("serving", "m5.large"))
    with pytest.raises(ClientError) as refused:
        await provider.clients.ec2.stop_instances(InstanceIds=[serving.id], Hibernate=True)
    assert refused.value.response["Error"]["Code"] == "UnsupportedHibernationConfiguration"
    assert (await _described(provider, serving)).state == "running"

    assert await provider.stop(fill.id, hibernate=True) == HIBERNATED
    assert await provider.stop(serving.id, hibernate=True) == STOPPED  # refused, then stopped plainly
    for instance in (fill, serving):
        assert (await _described(provider, instance)).state == "stopped"
