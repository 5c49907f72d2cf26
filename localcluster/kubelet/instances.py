"""The EC2 side of the local kubelets: the cluster's instances, their types and user data.

Everything goes through aioboto3 to the EC2 endpoint (moto in tests), as a node's own agents would
learn it from the instance metadata service. Instances belong to the cluster when tagged
``jitnode.io/cluster=<name>`` or carry the ``kubernetes.io/cluster/<name>`` tag key.

What moto 5.2.5 does with user data (measured with CreateFleet ``Type=instant`` and RunInstances,
both from a launch template whose version holds ``UserData``): it copies the template's user data
onto the instance, so ``DescribeInstanceAttribute(Attribute="userData")`` returns the same base64
string the template holds (an instance without user data answers ``UserData: {}``).
RunInstances tags the instance ``aws:ec2launchtemplate:id`` / ``aws:ec2launchtemplate:version``;
CreateFleet does not, and neither fills DescribeInstances' ``LaunchTemplate`` field. When the
attribute is empty and the template is known, the template version's ``UserData`` is read
instead (what AWS itself would have copied), so an EC2 double that behaves otherwise still works.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from botocore.exceptions import ClientError

from shared.labels import TAG_CLUSTER
from shared.logs import get_logger

LAUNCH_TEMPLATE_ID_TAG: Final = "aws:ec2launchtemplate:id"
LAUNCH_TEMPLATE_VERSION_TAG: Final = "aws:ec2launchtemplate:version"
# EC2 states in which the instance's kubelet is (or will be) running.
LIVE_STATES: Final = frozenset({"pending", "running"})
# EC2 states of an instance that may be started again (StartInstances).
STOPPED_STATES: Final = frozenset({"stopping", "stopped"})

_log = get_logger(__name__)


@dataclass(frozen=True)
class Instance:
    """The facts about one EC2 instance that its kubelet reports."""

    instance_id: str
    instance_type: str
    zone: str
    state: str
    private_dns_name: str
    private_ip: str
    architecture: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    launch_template_id: str | None = None
    launch_template_version: str | None = None

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def live(self) -> bool:
        return self.state in LIVE_STATES

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> Instance:
        """Build from one DescribeInstances ``Instances[]`` entry."""
        tags = {t["Key"]: t.get("Value", "") for t in raw.get("Tags") or []}
        template = raw.get("LaunchTemplate") or {}
        return cls(
            instance_id=raw["InstanceId"],
            instance_type=raw["InstanceType"],
            zone=(raw.get("Placement") or {}).get("AvailabilityZone", ""),
            state=(raw.get("State") or {}).get("Name", ""),
            private_dns_name=raw.get("PrivateDnsName") or "",
            private_ip=raw.get("PrivateIpAddress") or "",
            architecture=raw.get("Architecture") or "",
            tags=tags,
            launch_template_id=template.get("LaunchTemplateId") or tags.get(LAUNCH_TEMPLATE_ID_TAG),
            launch_template_version=(
                str(template["Version"]) if template.get("Version") else tags.get(LAUNCH_TEMPLATE_VERSION_TAG)
            ),
        )


@dataclass(frozen=True)
class InstanceTypeInfo:
    """What a kubelet derives capacity from (DescribeInstanceTypes)."""

    name: str
    vcpus: int
    memory_mib: int
    enis: int
    ipv4_per_eni: int
    architectures: tuple[str, ...]
    nvidia_gpus: int = 0

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> InstanceTypeInfo:
        network = raw.get("NetworkInfo") or {}
        gpus = (raw.get("GpuInfo") or {}).get("Gpus") or []
        return cls(
            name=raw["InstanceType"],
            vcpus=int(raw["VCpuInfo"]["DefaultVCpus"]),
            memory_mib=int(raw["MemoryInfo"]["SizeInMiB"]),
            enis=int(network.get("MaximumNetworkInterfaces") or 1),
            ipv4_per_eni=int(network.get("Ipv4AddressesPerInterface") or 1),
            architectures=tuple((raw.get("ProcessorInfo") or {}).get("SupportedArchitectures") or ()),
            nvidia_gpus=sum(int(g.get("Count") or 0) for g in gpus if g.get("Manufacturer") == "NVIDIA"),
        )


class EC2Inventory:
    """Reads a cluster's instances through an aioboto3 EC2 client the caller owns."""

    def __init__(self, client: Any, cluster: str) -> None:
        self._ec2 = client
        self.cluster = cluster
        self._types: dict[str, InstanceTypeInfo] = {}

    async def instances(self) -> list[Instance]:
        """Every instance of the cluster, in any state, by either cluster tag.

        One DescribeInstances (``tag-key`` values are OR-ed), narrowed here by tag value: moto
        answers in time proportional to the instances it holds, and this runs every poll.
        """
        legacy_tag = f"kubernetes.io/cluster/{self.cluster}"
        found: list[Instance] = []
        paginator = self._ec2.get_paginator("describe_instances")
        query = [{"Name": "tag-key", "Values": [TAG_CLUSTER, legacy_tag]}]
        async for page in paginator.paginate(Filters=query):
            for reservation in page.get("Reservations") or []:
                for raw in reservation.get("Instances") or []:
                    instance = Instance.from_api(raw)
                    if instance.tags.get(TAG_CLUSTER) == self.cluster or legacy_tag in instance.tags:
                        found.append(instance)
        return found

    async def instance_type(self, name: str) -> InstanceTypeInfo:
        """The type's facts, cached (they never change)."""
        cached = self._types.get(name)
        if cached is None:
            response = await self._ec2.describe_instance_types(InstanceTypes=[name])
            cached = InstanceTypeInfo.from_api(response["InstanceTypes"][0])
            self._types[name] = cached
        return cached

    async def user_data(self, instance: Instance) -> str | None:
        """The instance's base64 user data, or None when it has none (see the module docstring)."""
        response = await self._ec2.describe_instance_attribute(
            InstanceId=instance.instance_id, Attribute="userData"
        )
        value: str | None = (response.get("UserData") or {}).get("Value")
        if value:
            return value
        if not instance.launch_template_id:
            return None
        try:
            versions = await self._ec2.describe_launch_template_versions(
                LaunchTemplateId=instance.launch_template_id,
                Versions=[instance.launch_template_version or "$Default"],
            )
        except ClientError as exc:
            _log.warning(
                "kubelet.launch_template_unreadable",
                instance=instance.instance_id,
                launch_template=instance.launch_template_id,
                error=str(exc),
            )
            return None
        for version in versions.get("LaunchTemplateVersions") or []:
            data: str | None = (version.get("LaunchTemplateData") or {}).get("UserData")
            if data:
                return data
        return None
