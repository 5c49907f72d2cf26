"""Warm launch templates: built before demand, idempotent, renewed on change, collected when unused."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import pytest

from launcher.aws import testing
from launcher.aws.nodeclass import NodeClassResolver, ResolverSettings
from launcher.aws.session import AWSClients
from launcher.aws.templates import LaunchTemplates
from localcluster.ec2 import ClusterNetwork, MotoEC2
from localcluster.userdata import parse_user_data
from shared import labels

ROLE = "KarpenterNodeRole-test"


@pytest.fixture
async def templates(ec2: MotoEC2, ec2_network: ClusterNetwork) -> AsyncIterator[LaunchTemplates]:
    async with AWSClients(testing.moto_settings(ec2.endpoint)) as clients:
        await clients.iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument="{}")
        resolver = NodeClassResolver(clients, ResolverSettings(cluster=ec2_network.cluster))
        yield LaunchTemplates(clients, resolver, testing.cluster_info(ec2_network.cluster))


def count_creates(templates: LaunchTemplates) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    templates.clients.ec2.meta.events.register(
        "provide-client-params.ec2.CreateLaunchTemplate", lambda params, **_: sent.append(dict(params))
    )
    return sent


async def cluster_templates(templates: LaunchTemplates) -> dict[str, str]:
    response = await templates.clients.ec2.describe_launch_templates(
        Filters=[{"Name": f"tag:{labels.TAG_CLUSTER}", "Values": [templates.cluster.name]}]
    )
    return {t["LaunchTemplateName"]: t["LaunchTemplateId"] for t in response["LaunchTemplates"]}


async def template_data(templates: LaunchTemplates, template_id: str) -> dict[str, Any]:
    versions = await templates.clients.ec2.describe_launch_template_versions(LaunchTemplateId=template_id)
    data: dict[str, Any] = versions["LaunchTemplateVersions"][0]["LaunchTemplateData"]
    return data


async def test_templates_per_architecture_hold_everything_a_launch_needs(
    templates: LaunchTemplates, ec2_network: ClusterNetwork
) -> None:
    pool = testing.nodepool(
        labels={"intent": "apps"}, taints=[{"key": "dedicated", "value": "apps", "effect": "NoSchedule"}]
    )
    made = await templates.sync([testing.nodeclass(role=ROLE, tags={"team": "web"})], [pool])
    assert sorted(t.architecture for t in made) == ["amd64", "arm64"]
    amd64 = templates.get("default", "default", "amd64")
    assert amd64 is not None
    assert amd64.name.startswith(f"jitnode/{ec2_network.cluster}/")
    data = await template_data(templates, amd64.id)
    assert data["ImageId"] == ec2_network.amis["x86_64"]
    assert data["SecurityGroupIds"] == [ec2_network.security_group_id]
    assert data["IamInstanceProfile"]["Name"] == amd64.nodeclass.instance_profile
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert data["MetadataOptions"]["HttpPutResponseHopLimit"] == 1
    assert data["BlockDeviceMappings"][0]["DeviceName"] == "/dev/xvda"
    specs = {spec["ResourceType"]: spec["Tags"] for spec in data["TagSpecifications"]}
    # moto also lists the template's own tags here; EC2 does not.
    assert {"instance", "volume", "network-interface"} <= set(specs)
    assert specs["instance"] == specs["volume"] == specs["network-interface"]
    tags = {t["Key"]: t["Value"] for t in specs["instance"]}
    assert tags[labels.TAG_CLUSTER] == ec2_network.cluster
    assert tags[labels.TAG_NODECLASS] == "default"
    assert tags[labels.TAG_MANAGED_BY] == "jitnode"
    assert tags["team"] == "web"
    boot = parse_user_data(base64.b64decode(data["UserData"]).decode())
    assert boot.cluster == ec2_network.cluster
    assert dict(boot.labels) == {"intent": "apps", labels.NODEPOOL: "default"}
    assert [(t.key, t.value, t.effect) for t in boot.taints] == [("dedicated", "apps", "NoSchedule")]
    arm64 = templates.get("default", "default", "arm64")
    assert arm64 is not None
    assert (await template_data(templates, arm64.id))["ImageId"] == ec2_network.amis["arm64"]


async def test_sync_is_idempotent(templates: LaunchTemplates) -> None:
    created = count_creates(templates)
    first = await templates.sync([testing.nodeclass(role=ROLE)], [testing.nodepool()])
    assert len(created) == 2
    # A new process (empty index) finds the same templates by name and creates nothing.
    again = LaunchTemplates(templates.clients, templates.resolver, templates.cluster)
    again.clients.ec2.meta.events.register(
        "provide-client-params.ec2.CreateLaunchTemplate", lambda params, **_: created.append(params)
    )
    second = await again.sync([testing.nodeclass(role=ROLE)], [testing.nodepool()])
    assert len(created) == 2
    assert {(t.name, t.id) for t in second} == {(t.name, t.id) for t in first}
    assert len(await cluster_templates(templates)) == 2


async def test_a_changed_nodeclass_gets_a_new_template_and_the_old_one_goes(
    templates: LaunchTemplates,
) -> None:
    await templates.sync([testing.nodeclass(role=ROLE)], [testing.nodepool()])
    before = templates.get("default", "default", "amd64")
    changed = testing.nodeclass(role=ROLE, metadataOptions={"httpTokens": "optional"})
    await templates.sync([changed], [testing.nodepool()])
    after = templates.get("default", "default", "amd64")
    assert before is not None
    assert after is not None
    assert after.name != before.name
    names = await cluster_templates(templates)
    assert after.name in names
    assert before.name not in names
    assert (await template_data(templates, after.id))["MetadataOptions"]["HttpTokens"] == "optional"


async def test_a_new_ami_gets_a_new_template(
    templates: LaunchTemplates, ec2: MotoEC2, ec2_network: ClusterNetwork
) -> None:
    await templates.sync([testing.nodeclass(role=ROLE)], [testing.nodepool()])
    before = templates.get("default", "default", "amd64")
    image = await templates.clients.ec2.register_image(
        Name="amazon-eks-node-al2023-x86_64-standard-1.31-v20261201",
        Architecture="x86_64",
        RootDeviceName="/dev/xvda",
    )
    ec2.put_reserved_parameter(ec2_network.ami_parameters["x86_64"], image["ImageId"])
    await templates.sync([testing.nodeclass(role=ROLE)], [testing.nodepool()])
    after = templates.get("default", "default", "amd64")
    assert before is not None
    assert after is not None
    assert after.image_id == image["ImageId"] != before.image_id
    assert templates.get("default", "default", "arm64") is not None


async def test_unused_templates_are_deleted(templates: LaunchTemplates) -> None:
    nodeclass = testing.nodeclass(role=ROLE)
    await templates.sync([nodeclass], [testing.nodepool("a"), testing.nodepool("b")])
    assert len(await cluster_templates(templates)) == 4
    await templates.sync([nodeclass], [testing.nodepool("a")])
    assert templates.get("default", "b", "amd64") is None
    assert templates.get("default", "a", "amd64") is not None
    assert len(await cluster_templates(templates)) == 2
    await templates.sync([], [testing.nodepool("a")])  # its NodeClass is gone
    assert templates.templates() == []
    assert await cluster_templates(templates) == {}


async def test_other_clusters_templates_are_left_alone(templates: LaunchTemplates) -> None:
    other = await templates.clients.ec2.create_launch_template(
        LaunchTemplateName="someone-else",
        LaunchTemplateData={"ImageId": "ami-12345678"},
        TagSpecifications=[
            {
                "ResourceType": "launch-template",
                "Tags": [{"Key": labels.TAG_CLUSTER, "Value": "other-cluster"}],
            }
        ],
    )
    await templates.sync([], [])
    described = await templates.clients.ec2.describe_launch_templates(
        LaunchTemplateIds=[other["LaunchTemplate"]["LaunchTemplateId"]]
    )
    assert len(described["LaunchTemplates"]) == 1
