"""Resolve an EC2NodeClass into concrete AWS ids: AMIs per architecture, subnets, SGs, profile.

Everything here happens ahead of demand (the warm templates are built from the result), so a
launch never waits on SSM, DescribeImages or IAM. AMI aliases (``al2023@latest``) are read from
the public SSM parameters EKS publishes; the parameter path templates are configurable so that
tests and other partitions can point elsewhere. Selector terms are ORed, the fields of one term
ANDed; a tag value ``*`` means "the tag exists, any value", as in Karpenter.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from botocore.exceptions import ClientError

from launcher.aws.session import AWSClients
from launcher.model import LaunchError
from shared import labels
from shared.api.nodeclass import EC2NodeClass, SelectorTerm
from shared.logs import get_logger

log = get_logger(__name__)

# Kubernetes architecture -> EC2's name for it.
EC2_ARCHITECTURES: Final = {"amd64": "x86_64", "arm64": "arm64"}
KUBERNETES_ARCHITECTURES: Final = {v: k for k, v in EC2_ARCHITECTURES.items()}

# SSM parameter paths per alias family. Placeholders: {k8s_version}, {arch} (x86_64/arm64),
# {arch_suffix} ("" or "-arm64", AL2's spelling) and {version} (an alias's pinned version).
DEFAULT_ALIAS_PARAMETERS: Final[Mapping[str, str]] = {
    "al2023": (
        "/aws/service/eks/optimized-ami/{k8s_version}/amazon-linux-2023/{arch}/standard/recommended/image_id"
    ),
    "al2": "/aws/service/eks/optimized-ami/{k8s_version}/amazon-linux-2{arch_suffix}/recommended/image_id",
    "bottlerocket": "/aws/service/bottlerocket/aws-k8s-{k8s_version}/{arch}/latest/image_id",
}
DEFAULT_PINNED_ALIAS_PARAMETERS: Final[Mapping[str, str]] = {
    "al2023": (
        "/aws/service/eks/optimized-ami/{k8s_version}/amazon-linux-2023/{arch}/standard/"
        "amazon-eks-node-al2023-{arch}-standard-{k8s_version}-{version}/image_id"
    ),
    "al2": (
        "/aws/service/eks/optimized-ami/{k8s_version}/amazon-linux-2{arch_suffix}/"
        "amazon-eks-node-{k8s_version}-{version}/image_id"
    ),
    "bottlerocket": "/aws/service/bottlerocket/aws-k8s-{k8s_version}/{arch}/{version}/image_id",
}
INSTANCE_PROFILE_PATH: Final = "/jitnode/"


class NodeClassNotReady(LaunchError):
    """The NodeClass does not resolve (no AMI, subnet or security group matched, IAM failed)."""


@dataclass(frozen=True)
class AMI:
    id: str
    architecture: str  # Kubernetes spelling
    name: str = ""
    creation_date: str = ""


@dataclass(frozen=True)
class Subnet:
    id: str
    zone: str
    available_ips: int = 0
    zone_id: str = ""  # use1-az1: the same physical zone in every account, unlike the name


@dataclass(frozen=True)
class ResolvedNodeClass:
    """An EC2NodeClass with every selector turned into ids, ready to render launch templates."""

    nodeclass: EC2NodeClass
    ami_family: str
    amis: Mapping[str, AMI]  # Kubernetes architecture -> newest matching AMI
    subnets: tuple[Subnet, ...]
    security_groups: tuple[str, ...]
    instance_profile: str

    @property
    def name(self) -> str:
        return self.nodeclass.name

    @property
    def zones(self) -> frozenset[str]:
        return frozenset(s.zone for s in self.subnets)

    def subnets_in(self, zones: Iterable[str] | None = None) -> list[Subnet]:
        """Subnets in ``zones`` (all when None), the one with the most free IPs per zone."""
        wanted = None if zones is None else set(zones)
        best: dict[str, Subnet] = {}
        for subnet in self.subnets:
            if wanted is not None and subnet.zone not in wanted:
                continue
            current = best.get(subnet.zone)
            if current is None or subnet.available_ips > current.available_ips:
                best[subnet.zone] = subnet
        return [best[z] for z in sorted(best)]


@dataclass(frozen=True)
class ResolverSettings:
    cluster: str
    kubernetes_version: str = "1.31"
    alias_parameters: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_ALIAS_PARAMETERS))
    pinned_alias_parameters: Mapping[str, str] = field(
        default_factory=lambda: dict(DEFAULT_PINNED_ALIAS_PARAMETERS)
    )
    architectures: tuple[str, ...] = ("amd64", "arm64")


def alias_parameter(settings: ResolverSettings, family: str, version: str, architecture: str) -> str:
    """The SSM parameter name holding the AMI for an alias (``al2023@latest``) and architecture."""
    templates = settings.alias_parameters if version == "latest" else settings.pinned_alias_parameters
    template = templates.get(family)
    if template is None:
        raise NodeClassNotReady(f"AMI alias family {family!r} is not supported")
    ec2_arch = EC2_ARCHITECTURES[architecture]
    return template.format(
        k8s_version=settings.kubernetes_version,
        arch=ec2_arch,
        arch_suffix="" if ec2_arch == "x86_64" else f"-{ec2_arch}",
        version=version,
    )


def tag_filters(tags: Mapping[str, str]) -> list[dict[str, Any]]:
    """EC2 ``Filters`` for selector tags; ``*`` matches any value (the tag must exist)."""
    return [
        {"Name": "tag-key", "Values": [key]} if value == "*" else {"Name": f"tag:{key}", "Values": [value]}
        for key, value in sorted(tags.items())
    ]


def term_filters(term: SelectorTerm, id_filter: str, name_filter: str | None = None) -> list[dict[str, Any]]:
    """All the filters of one selector term (ANDed by EC2)."""
    filters = tag_filters(term.tags)
    if term.id:
        filters.append({"Name": id_filter, "Values": [term.id]})
    if term.name and name_filter:
        filters.append({"Name": name_filter, "Values": [term.name]})
    return filters


def instance_profile_name(cluster: str, role: str) -> str:
    """A stable, cluster-scoped profile name for a role (IAM names are at most 128 characters)."""
    digest = hashlib.sha256(f"{cluster}/{role}".encode()).hexdigest()[:16]
    return f"jitnode_{cluster[:80]}_{digest}"


def newest_per_architecture(images: Iterable[Mapping[str, Any]]) -> dict[str, AMI]:
    """The newest image of each Kubernetes architecture (by CreationDate, then id)."""
    best: dict[str, AMI] = {}
    for image in images:
        arch = KUBERNETES_ARCHITECTURES.get(str(image.get("Architecture", "")))
        if arch is None:
            continue
        ami = AMI(
            id=str(image["ImageId"]),
            architecture=arch,
            name=str(image.get("Name", "")),
            creation_date=str(image.get("CreationDate", "")),
        )
        current = best.get(arch)
        if current is None or (ami.creation_date, ami.id) > (current.creation_date, current.id):
            best[arch] = ami
    return best


class NodeClassResolver:
    """Resolves EC2NodeClasses against EC2, SSM and IAM (see the module docstring)."""

    def __init__(self, clients: AWSClients, settings: ResolverSettings) -> None:
        self.clients = clients
        self.settings = settings

    async def resolve(self, nodeclass: EC2NodeClass) -> ResolvedNodeClass:
        amis = await self.amis(nodeclass)
        subnets = await self.subnets(nodeclass.subnet_selector_terms)
        groups = await self.security_groups(nodeclass.security_group_selector_terms)
        profile = nodeclass.instance_profile or await self.ensure_instance_profile(nodeclass)
        resolved = ResolvedNodeClass(
            nodeclass=nodeclass,
            ami_family=nodeclass.effective_ami_family,
            amis=amis,
            subnets=subnets,
            security_groups=groups,
            instance_profile=profile,
        )
        log.info(
            "nodeclass resolved",
            nodeclass=nodeclass.name,
            amis={a: ami.id for a, ami in amis.items()},
            subnets=[s.id for s in subnets],
            security_groups=list(groups),
            instance_profile=profile,
        )
        return resolved

    # --- AMIs -----------------------------------------------------------------------------

    async def amis(self, nodeclass: EC2NodeClass) -> dict[str, AMI]:
        aliases = [t for t in nodeclass.ami_selector_terms if t.alias]
        if aliases:
            return await self._alias_amis(aliases[0])
        images: dict[str, Mapping[str, Any]] = {}
        for term in nodeclass.ami_selector_terms:
            kwargs: dict[str, Any] = {}
            filters = term_filters(term, "image-id", "name")
            if filters:
                kwargs["Filters"] = filters
            if term.owner:
                kwargs["Owners"] = [term.owner]
            for image in (await self.clients.ec2.describe_images(**kwargs))["Images"]:
                images[image["ImageId"]] = image
        found = newest_per_architecture(images.values())
        if not found:
            raise NodeClassNotReady(f"EC2NodeClass {nodeclass.name}: no AMI matches amiSelectorTerms")
        return found

    async def _alias_amis(self, term: SelectorTerm) -> dict[str, AMI]:
        family, version = term.alias_family or "", term.alias_version or "latest"
        names = {
            alias_parameter(self.settings, family, version, arch): arch
            for arch in self.settings.architectures
        }
        try:
            response = await self.clients.ssm.get_parameters(Names=sorted(names))
        except ClientError as exc:
            raise NodeClassNotReady(f"AMI alias {term.alias}: {exc}") from exc
        ids = {names[p["Name"]]: str(p["Value"]) for p in response.get("Parameters", [])}
        if not ids:
            raise NodeClassNotReady(f"AMI alias {term.alias}: no SSM parameter found among {sorted(names)}")
        described = (await self.clients.ec2.describe_images(ImageIds=sorted(set(ids.values()))))["Images"]
        by_id = {i["ImageId"]: i for i in described}
        return {
            arch: AMI(
                id=image_id,
                architecture=arch,
                name=str(by_id.get(image_id, {}).get("Name", "")),
                creation_date=str(by_id.get(image_id, {}).get("CreationDate", "")),
            )
            for arch, image_id in sorted(ids.items())
        }

    # --- subnets and security groups ------------------------------------------------------

    async def subnets(self, terms: Iterable[SelectorTerm]) -> tuple[Subnet, ...]:
        found: dict[str, Subnet] = {}
        for term in terms:
            response = await self.clients.ec2.describe_subnets(Filters=term_filters(term, "subnet-id"))
            for raw in response["Subnets"]:
                found[raw["SubnetId"]] = Subnet(
                    id=raw["SubnetId"],
                    zone=raw["AvailabilityZone"],
                    available_ips=int(raw.get("AvailableIpAddressCount", 0)),
                    zone_id=str(raw.get("AvailabilityZoneId", "")),
                )
        if not found:
            raise NodeClassNotReady("no subnet matches subnetSelectorTerms")
        return tuple(sorted(found.values(), key=lambda s: (s.zone, s.id)))

    async def security_groups(self, terms: Iterable[SelectorTerm]) -> tuple[str, ...]:
        return tuple(sorted(await self.security_group_names(terms)))

    async def security_group_names(self, terms: Iterable[SelectorTerm]) -> dict[str, str]:
        """Matching group id -> name (the EC2NodeClass status shows both)."""
        found: dict[str, str] = {}
        for term in terms:
            filters = term_filters(term, "group-id", "group-name")
            response = await self.clients.ec2.describe_security_groups(Filters=filters)
            found.update({g["GroupId"]: str(g.get("GroupName", "")) for g in response["SecurityGroups"]})
        if not found:
            raise NodeClassNotReady("no security group matches securityGroupSelectorTerms")
        return found

    # --- instance profile -----------------------------------------------------------------

    async def ensure_instance_profile(self, nodeclass: EC2NodeClass) -> str:
        """The profile for ``spec.role``: created on first use, its role kept in step."""
        role = nodeclass.role
        if not role:
            raise NodeClassNotReady(f"EC2NodeClass {nodeclass.name}: neither role nor instanceProfile set")
        role_name = role.rsplit("/", 1)[-1]  # an ARN or a bare name
        name = instance_profile_name(self.settings.cluster, role_name)
        iam = self.clients.iam
        try:
            try:
                profile = (await iam.get_instance_profile(InstanceProfileName=name))["InstanceProfile"]
            except ClientError as exc:
                if _code(exc) != "NoSuchEntity":
                    raise
                profile = await self._create_profile(name)
            roles = [r["RoleName"] for r in profile.get("Roles", [])]
            if roles == [role_name]:
                return name
            for other in roles:
                await iam.remove_role_from_instance_profile(InstanceProfileName=name, RoleName=other)
            await iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=role_name)
            log.info("instance profile role set", instance_profile=name, role=role_name)
            return name
        except ClientError as exc:
            raise NodeClassNotReady(f"EC2NodeClass {nodeclass.name}: instance profile {name}: {exc}") from exc

    async def _create_profile(self, name: str) -> Mapping[str, Any]:
        iam = self.clients.iam
        tags = [
            {"Key": labels.TAG_CLUSTER, "Value": self.settings.cluster},
            {"Key": labels.TAG_MANAGED_BY, "Value": "jitnode"},
        ]
        try:
            created = await iam.create_instance_profile(
                InstanceProfileName=name, Path=INSTANCE_PROFILE_PATH, Tags=tags
            )
            log.info("instance profile created", instance_profile=name)
            profile: Mapping[str, Any] = created["InstanceProfile"]
            return profile
        except ClientError as exc:
            if _code(exc) != "EntityAlreadyExists":
                raise
            existing: Mapping[str, Any] = (await iam.get_instance_profile(InstanceProfileName=name))[
                "InstanceProfile"
            ]
            return existing


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
