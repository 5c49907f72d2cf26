"""EC2NodeClass resolution against moto: AMI aliases via SSM, selector terms, instance profiles."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from moto.ec2.models import ec2_backends

from launcher.aws import testing
from launcher.aws.nodeclass import (
    NodeClassNotReady,
    NodeClassResolver,
    ResolverSettings,
    alias_parameter,
    instance_profile_name,
    tag_filters,
)
from launcher.aws.session import AWSClients
from localcluster.ec2 import ACCOUNT_ID, DEFAULT_REGION, ClusterNetwork, MotoEC2, eks_ami_parameter

ROLE = "KarpenterNodeRole-test"


@pytest.fixture
async def resolver(ec2: MotoEC2, ec2_network: ClusterNetwork) -> AsyncIterator[NodeClassResolver]:
    async with AWSClients(testing.moto_settings(ec2.endpoint)) as clients:
        await clients.iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument="{}")
        yield NodeClassResolver(clients, ResolverSettings(cluster=ec2_network.cluster))


def test_alias_parameters_follow_the_eks_names() -> None:
    settings = ResolverSettings(cluster="c", kubernetes_version="1.31")
    for arch, ec2_arch in (("amd64", "x86_64"), ("arm64", "arm64")):
        assert alias_parameter(settings, "al2023", "latest", arch) == eks_ami_parameter(ec2_arch, "1.31")
    assert alias_parameter(settings, "al2", "latest", "arm64") == (
        "/aws/service/eks/optimized-ami/1.31/amazon-linux-2-arm64/recommended/image_id"
    )
    assert alias_parameter(settings, "al2023", "v20240807", "amd64").endswith(
        "/amazon-eks-node-al2023-x86_64-standard-1.31-v20240807/image_id"
    )
    assert alias_parameter(settings, "bottlerocket", "latest", "amd64") == (
        "/aws/service/bottlerocket/aws-k8s-1.31/x86_64/latest/image_id"
    )
    custom = ResolverSettings(cluster="c", alias_parameters={"al2023": "/mine/{arch}/{k8s_version}"})
    assert alias_parameter(custom, "al2023", "latest", "arm64") == "/mine/arm64/1.31"


def test_wildcard_tag_values_mean_the_tag_exists() -> None:
    assert tag_filters({"a": "*", "b": "x"}) == [
        {"Name": "tag-key", "Values": ["a"]},
        {"Name": "tag:b", "Values": ["x"]},
    ]


def test_instance_profile_names_are_stable_and_short() -> None:
    name = instance_profile_name("c" * 200, "role")
    assert name == instance_profile_name("c" * 200, "role") != instance_profile_name("c" * 200, "other")
    assert len(name) <= 128


async def test_alias_and_tags_resolve_to_the_seeded_network(
    resolver: NodeClassResolver, ec2_network: ClusterNetwork
) -> None:
    resolved = await resolver.resolve(testing.nodeclass(role=ROLE))
    assert {arch: ami.id for arch, ami in resolved.amis.items()} == {
        "amd64": ec2_network.amis["x86_64"],
        "arm64": ec2_network.amis["arm64"],
    }
    assert resolved.ami_family == "AL2023"
    assert {s.zone: s.id for s in resolved.subnets} == ec2_network.subnets
    assert resolved.security_groups == (ec2_network.security_group_id,)
    assert resolved.zones == frozenset(ec2_network.subnets)
    assert [s.zone for s in resolved.subnets_in(["us-east-1b"])] == ["us-east-1b"]


async def test_ids_and_wildcards_resolve(resolver: NodeClassResolver, ec2_network: ClusterNetwork) -> None:
    subnet_a = ec2_network.subnets["us-east-1a"]
    nodeclass = testing.nodeclass(
        role=ROLE,
        amiFamily="AL2023",
        ami_terms=[{"id": ec2_network.amis["arm64"]}],
        subnet_terms=[
            {"id": subnet_a},
            {
                "tags": {
                    f"kubernetes.io/cluster/{ec2_network.cluster}": "*",
                    "kubernetes.io/role/internal-elb": "1",
                }
            },
        ],
        security_group_terms=[{"id": ec2_network.security_group_id}],
    )
    resolved = await resolver.resolve(nodeclass)
    assert list(resolved.amis) == ["arm64"]
    assert resolved.amis["arm64"].id == ec2_network.amis["arm64"]
    assert {s.id for s in resolved.subnets} == set(ec2_network.subnets.values())


async def test_ami_tags_pick_the_newest_per_architecture(resolver: NodeClassResolver) -> None:
    ec2 = resolver.clients.ec2
    ids = []
    for name in ("team-ami-1", "team-ami-2"):
        image = await ec2.register_image(Name=name, Architecture="x86_64", RootDeviceName="/dev/xvda")
        await ec2.create_tags(Resources=[image["ImageId"]], Tags=[{"Key": "team", "Value": "web"}])
        # moto's RegisterImage drops the architecture; set it as EC2 would keep it.
        ec2_backends[ACCOUNT_ID][DEFAULT_REGION].amis[image["ImageId"]].architecture = "x86_64"
        ids.append(image["ImageId"])
    nodeclass = testing.nodeclass(role=ROLE, amiFamily="AL2023", ami_terms=[{"tags": {"team": "web"}}])
    amis = await resolver.amis(nodeclass)
    assert set(amis) == {"amd64"}
    assert amis["amd64"].id in ids


async def test_nothing_matching_is_not_ready(resolver: NodeClassResolver) -> None:
    with pytest.raises(NodeClassNotReady, match="subnet"):
        await resolver.resolve(testing.nodeclass(role=ROLE, subnet_terms=[{"tags": {"missing": "*"}}]))
    with pytest.raises(NodeClassNotReady, match="alias"):
        await resolver.resolve(testing.nodeclass(role=ROLE, ami_terms=[{"alias": "bottlerocket@latest"}]))


async def test_instance_profile_is_created_once_for_the_role(resolver: NodeClassResolver) -> None:
    first = await resolver.resolve(testing.nodeclass(role=ROLE))
    second = await resolver.resolve(testing.nodeclass(role=ROLE))
    assert first.instance_profile == second.instance_profile
    profile = await resolver.clients.iam.get_instance_profile(InstanceProfileName=first.instance_profile)
    assert [r["RoleName"] for r in profile["InstanceProfile"]["Roles"]] == [ROLE]
    given = await resolver.resolve(testing.nodeclass(instanceProfile="existing-profile"))
    assert given.instance_profile == "existing-profile"
