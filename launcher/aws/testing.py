"""Helpers for tests and demos that drive the AWS provider against moto (no pytest import).

They build the same API objects a user would apply, so tests go through the real parsers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from launcher.aws.catalogue import CatalogueSettings, InstanceCatalogue
from launcher.aws.nodeclass import NodeClassResolver, ResolverSettings
from launcher.aws.provider import AWSCloudProvider
from launcher.aws.session import AWSClients, AWSSettings
from launcher.aws.templates import LaunchTemplates
from launcher.aws.userdata import ClusterInfo
from shared.api.nodeclass import EC2NodeClass
from shared.api.nodepool import NodePool

TEST_ROLE = "KarpenterNodeRole-test"
TEST_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def moto_settings(endpoint: str, region: str = "us-east-1") -> AWSSettings:
    """Settings for a moto server: fake credentials and few retries, so faults surface fast."""
    return AWSSettings(
        region=region,
        endpoint_url=endpoint,
        max_attempts=2,
        retry_mode="standard",
        connect_timeout=2.0,
        read_timeout=10.0,
        pricing_timeout=1.0,
        **TEST_CREDENTIALS,
    )


async def synced_provider(
    clients: AWSClients,
    cluster: str,
    nodepools: Sequence[NodePool],
    instance_types: Sequence[str] | None = None,
) -> AWSCloudProvider:
    """A provider against moto with ``TEST_ROLE`` created and its warm templates synced for the
    default NodeClass and ``nodepools`` (the catalogue limited to ``instance_types``, if given)."""
    await clients.iam.create_role(RoleName=TEST_ROLE, AssumeRolePolicyDocument="{}")
    resolver = NodeClassResolver(clients, ResolverSettings(cluster=cluster))
    templates = LaunchTemplates(clients, resolver, cluster_info(cluster))
    settings = (
        CatalogueSettings(instance_types=tuple(instance_types)) if instance_types else CatalogueSettings()
    )
    provider = AWSCloudProvider(InstanceCatalogue(clients, settings), templates)
    await provider.sync([nodeclass(role=TEST_ROLE)], nodepools)
    return provider


def cluster_info(name: str) -> ClusterInfo:
    return ClusterInfo(name=name, endpoint="https://127.0.0.1:6443", certificate_authority="Y2E=")


def nodeclass(
    name: str = "default",
    cluster: str = "jitnode-local",
    ami_terms: Sequence[Mapping[str, Any]] = ({"alias": "al2023@latest"},),
    subnet_terms: Sequence[Mapping[str, Any]] | None = None,
    security_group_terms: Sequence[Mapping[str, Any]] | None = None,
    **spec: Any,
) -> EC2NodeClass:
    """An EC2NodeClass selecting the eksctl-seeded network of ``cluster`` by tag, unless told."""
    selector = [{"tags": {"alpha.eksctl.io/cluster-name": cluster}}]
    body: dict[str, Any] = {
        "amiSelectorTerms": [dict(t) for t in ami_terms],
        "subnetSelectorTerms": [dict(t) for t in (subnet_terms or selector)],
        "securityGroupSelectorTerms": [dict(t) for t in (security_group_terms or selector)],
        **spec,
    }
    if "role" not in body and "instanceProfile" not in body:
        body["role"] = "KarpenterNodeRole-test"
    return EC2NodeClass.from_api(
        {"apiVersion": "jitnode.io/v1", "kind": "EC2NodeClass", "metadata": {"name": name}, "spec": body}
    )


def nodepool(
    name: str = "default",
    nodeclass_name: str = "default",
    labels: Mapping[str, str] | None = None,
    taints: Sequence[Mapping[str, str]] = (),
    warm_pool: Mapping[str, Any] | None = None,
) -> NodePool:
    template: dict[str, Any] = {
        "spec": {
            "nodeClassRef": {"group": "jitnode.io", "kind": "EC2NodeClass", "name": nodeclass_name},
            "requirements": [],
            "taints": [dict(t) for t in taints],
        }
    }
    if labels:
        template["metadata"] = {"labels": dict(labels)}
    spec: dict[str, Any] = {"template": template}
    if warm_pool is not None:
        spec["warmPool"] = dict(warm_pool)
    return NodePool.from_api(
        {"apiVersion": "jitnode.io/v1", "kind": "NodePool", "metadata": {"name": name}, "spec": spec}
    )
