"""Warm launch templates: one per (EC2NodeClass, NodePool, architecture), made before demand.

Everything a launch needs except the instance type and subnet goes into the template: AMI,
instance profile, security groups, user data with the NodePool's labels and taints, block
devices, IMDS options and tags for the instance, its volumes and its network interfaces. The
template's name carries a hash of its content (``jitnode/<cluster>/<hash>``), so creating it is
idempotent and any change (a new AMI, an edited NodeClass or NodePool) yields a new template;
templates that no (NodeClass, NodePool) pair needs any more are deleted by their cluster tag.
The hot path then does a dict lookup and one CreateFleet call.

A pool whose warm pool is Hibernated also has *hibernation variants* of its templates (see
``launcher.aws.hibernation``), one per RAM size its warm fills needed: made at the first such
fill, kept by the sync while the pool stays Hibernated and its template current.

:func:`template_data` is pure; :class:`LaunchTemplates` creates, indexes and deletes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson
from botocore.exceptions import ClientError

from launcher.aws.hibernation import RAM_BUCKETS, hibernation_variant
from launcher.aws.nodeclass import EC2_ARCHITECTURES, NodeClassResolver, ResolvedNodeClass
from launcher.aws.session import AWSClients
from launcher.aws.userdata import ClusterInfo, NodeSettings, render_user_data
from launcher.model import LaunchError
from shared import labels
from shared.api.nodeclass import BlockDeviceMapping, EC2NodeClass
from shared.api.nodepool import NodePool
from shared.logs import get_logger

log = get_logger(__name__)

MANAGED_BY: Final = "jitnode"
TEMPLATE_RESOURCE_TYPES: Final = ("instance", "volume", "network-interface")
NAME_PREFIX: Final = "jitnode"
GIB: Final = 2**30
# Root volumes when the NodeClass names none: what the EKS AMIs ship with.
DEFAULT_BLOCK_DEVICES: Final[Mapping[str, tuple[dict[str, Any], ...]]] = {
    "bottlerocket": (
        {"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 4, "VolumeType": "gp3", "Encrypted": True}},
        {"DeviceName": "/dev/xvdb", "Ebs": {"VolumeSize": 20, "VolumeType": "gp3", "Encrypted": True}},
    ),
    "default": (
        {"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 20, "VolumeType": "gp3", "Encrypted": True}},
    ),
}

TemplateKey = tuple[str, str, str]  # (nodeclass, nodepool, architecture)


@dataclass(frozen=True)
class WarmTemplate:
    """A launch template ready for CreateFleet, with the resolved NodeClass it was built from."""

    name: str
    id: str
    nodeclass: ResolvedNodeClass
    nodepool: str
    architecture: str
    image_id: str
    # A hibernation variant for up to this much RAM (GiB); 0: the plain template.
    hibernation_gib: int = 0

    @property
    def key(self) -> TemplateKey:
        return (self.nodeclass.name, self.nodepool, self.architecture)


def cluster_tags(cluster: str) -> dict[str, str]:
    """Tags on everything jitnode creates for ``cluster``; also what ``list`` and cleanup filter by."""
    return {
        labels.TAG_CLUSTER: cluster,
        labels.TAG_MANAGED_BY: MANAGED_BY,
        f"kubernetes.io/cluster/{cluster}": "owned",
    }


def tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


def block_device_mappings(nodeclass: EC2NodeClass, ami_family: str) -> list[dict[str, Any]]:
    """The NodeClass's block devices in EC2's form, or the AMI family's defaults."""
    if not nodeclass.block_device_mappings:
        defaults = DEFAULT_BLOCK_DEVICES.get(ami_family.lower(), DEFAULT_BLOCK_DEVICES["default"])
        return [orjson.loads(orjson.dumps(d)) for d in defaults]
    return [_block_device(b) for b in nodeclass.block_device_mappings]


def _block_device(mapping: BlockDeviceMapping) -> dict[str, Any]:
    out: dict[str, Any] = {"DeviceName": mapping.device_name or "/dev/xvda"}
    if mapping.ebs is not None:
        ebs = mapping.ebs
        fields: dict[str, Any] = {
            "VolumeSize": math.ceil(ebs.volume_size / GIB) if ebs.volume_size is not None else None,
            "VolumeType": ebs.volume_type,
            "Iops": ebs.iops,
            "Throughput": ebs.throughput,
            "Encrypted": ebs.encrypted,
            "DeleteOnTermination": ebs.delete_on_termination,
            "KmsKeyId": ebs.kms_key_id,
            "SnapshotId": ebs.snapshot_id,
        }
        out["Ebs"] = {k: v for k, v in fields.items() if v is not None}
    return out


def node_settings(nodeclass: EC2NodeClass, nodepool: NodePool) -> NodeSettings:
    """The kubelet settings of the pool's nodes: its labels, taints and startup taints."""
    kubelet = nodeclass.kubelet
    return NodeSettings(
        labels=nodepool.labels(),
        taints=(*nodepool.taints(), *nodepool.startup_taints()),
        max_pods=kubelet.max_pods if kubelet else None,
        kube_reserved=kubelet.kube_reserved if kubelet else NodeSettings().kube_reserved,
        system_reserved=kubelet.system_reserved if kubelet else NodeSettings().system_reserved,
        eviction_hard=dict(kubelet.eviction_hard) if kubelet else {},
    )


def template_data(
    resolved: ResolvedNodeClass, nodepool: NodePool, architecture: str, cluster: ClusterInfo
) -> dict[str, Any]:
    """The ``LaunchTemplateData`` for one (NodeClass, NodePool, architecture)."""
    nodeclass = resolved.nodeclass
    user_data = render_user_data(
        resolved.ami_family, cluster, node_settings(nodeclass, nodepool), nodeclass.user_data
    )
    tags = {
        **nodeclass.tags,
        **cluster_tags(cluster.name),
        labels.TAG_NODECLASS: nodeclass.name,
        labels.TAG_NODEPOOL: nodepool.name,
    }
    metadata = nodeclass.metadata_options
    data: dict[str, Any] = {
        "ImageId": resolved.amis[architecture].id,
        "IamInstanceProfile": {"Name": resolved.instance_profile},
        "UserData": base64.b64encode(user_data.encode()).decode(),
        "BlockDeviceMappings": block_device_mappings(nodeclass, resolved.ami_family),
        "MetadataOptions": {
            "HttpEndpoint": metadata.http_endpoint,
            "HttpTokens": metadata.http_tokens,
            "HttpPutResponseHopLimit": metadata.http_put_response_hop_limit,
            "HttpProtocolIpv6": metadata.http_protocol_ipv6,
        },
        "Monitoring": {"Enabled": bool(nodeclass.detailed_monitoring)},
        "TagSpecifications": [{"ResourceType": rt, "Tags": tag_list(tags)} for rt in TEMPLATE_RESOURCE_TYPES],
    }
    if nodeclass.associate_public_ip_address is not None:
        data["NetworkInterfaces"] = [
            {
                "DeviceIndex": 0,
                "AssociatePublicIpAddress": nodeclass.associate_public_ip_address,
                "Groups": list(resolved.security_groups),
            }
        ]
    else:
        data["SecurityGroupIds"] = list(resolved.security_groups)
    return data


def template_name(cluster: str, data: Mapping[str, Any]) -> str:
    """``jitnode/<cluster>/<content hash>``: equal content, equal name (launch template names: 128)."""
    digest = hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]
    return f"{NAME_PREFIX}/{cluster[:80]}/{digest}"


class LaunchTemplates:
    """Creates, indexes and garbage-collects the warm launch templates of one cluster."""

    def __init__(self, clients: AWSClients, resolver: NodeClassResolver, cluster: ClusterInfo) -> None:
        self.clients = clients
        self.resolver = resolver
        self.cluster = cluster
        self._index: dict[TemplateKey, WarmTemplate] = {}
        self._data: dict[str, dict[str, Any]] = {}  # template name -> its LaunchTemplateData
        self._variants: dict[tuple[str, int], WarmTemplate] = {}  # (template name, RAM GiB)
        self._resolved: dict[str, ResolvedNodeClass] = {}
        self._lock = asyncio.Lock()

    # --- the hot path -----------------------------------------------------------------------

    def get(self, nodeclass: str, nodepool: str, architecture: str) -> WarmTemplate | None:
        """The warm template for a launch: a dict lookup."""
        return self._index.get((nodeclass, nodepool, architecture))

    async def get_or_await_sync(
        self, nodeclass: str, nodepool: str, architecture: str, wait: float
    ) -> WarmTemplate | None:
        """:meth:`get`, but a sync under way is waited out first (at most ``wait`` seconds).

        A NodePool applied just before its first demand has its template made by the sync its
        own watch event started; the launch waits those few hundred milliseconds instead of
        failing and backing off for seconds. No sync under way: the answer is immediate.
        """
        found = self.get(nodeclass, nodepool, architecture)
        if found is None and self.syncing:
            await self.sync_settled(wait)
            found = self.get(nodeclass, nodepool, architecture)
        return found

    @property
    def syncing(self) -> bool:
        """A sync is under way."""
        return self._lock.locked()

    async def sync_settled(self, wait: float) -> None:
        """Return once no sync is under way (at most ``wait`` seconds; at once when none is).

        The provisioner plans after this: a NodeClass being resolved right now (a NodePool applied
        just before its first demand) then has its subnet zones known to the plan.
        """
        if self.syncing:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait), self._lock:
                    pass

    def templates(self) -> list[WarmTemplate]:
        return list(self._index.values())

    async def hibernation_variant(self, template: WarmTemplate, ram_gib: int) -> WarmTemplate:
        """The variant of ``template`` that hibernates up to ``ram_gib`` of RAM, created at its
        first use (warm fills are not on the hot path). Two launches creating it at once meet at
        the same name: the second finds the first's template."""
        found = self._variants.get((template.name, ram_gib))
        if found is not None:
            return found
        data = self._data.get(template.name)
        if data is None:  # a sync replaced the template meanwhile: the next launch uses the new one
            raise LaunchError(f"launch template {template.name} is no longer current")
        variant_data = hibernation_variant(data, template.nodeclass.nodeclass, ram_gib)
        name = template_name(self.cluster.name, variant_data)
        template_id = await self._create(name, variant_data, template.nodeclass.name, template.nodepool)
        variant = dataclasses.replace(template, name=name, id=template_id, hibernation_gib=ram_gib)
        self._variants[(template.name, ram_gib)] = variant
        return variant

    def resolved(self, nodeclass: str) -> ResolvedNodeClass | None:
        return self._resolved.get(nodeclass)

    # --- keeping them current ---------------------------------------------------------------

    async def sync(
        self, nodeclasses: Iterable[EC2NodeClass], nodepools: Iterable[NodePool]
    ) -> list[WarmTemplate]:
        """Resolve every NodeClass a NodePool uses, ensure its templates, delete the rest.

        A NodeClass that does not resolve keeps no templates (its pools cannot launch) and is
        logged; the others are unaffected.
        """
        async with self._lock:
            classes = {c.name: c for c in nodeclasses}
            existing = await self._existing()
            index: dict[TemplateKey, WarmTemplate] = {}
            data_now: dict[str, dict[str, Any]] = {}
            variants: dict[tuple[str, int], WarmTemplate] = {}
            resolved_now: dict[str, ResolvedNodeClass] = {}
            for pool in nodepools:
                nodeclass = classes.get(pool.node_class_ref.name)
                if nodeclass is None:
                    log.warning(
                        "nodepool references a missing nodeclass",
                        nodepool=pool.name,
                        nodeclass=pool.node_class_ref.name,
                    )
                    continue
                if nodeclass.name not in resolved_now:
                    try:
                        resolved_now[nodeclass.name] = await self.resolver.resolve(nodeclass)
                    except Exception as exc:
                        log.warning("nodeclass does not resolve", nodeclass=nodeclass.name, error=str(exc))
                        continue
                for template, data in await self._ensure(resolved_now[nodeclass.name], pool, existing):
                    index[template.key] = template
                    data_now[template.name] = data
                    if pool.warm_pool is not None and pool.warm_pool.hibernate:
                        variants.update(self._kept_variants(template, data, existing))
            self._index, self._data, self._variants = index, data_now, variants
            self._resolved = resolved_now
            keep = {t.name for t in index.values()} | {v.name for v in variants.values()}
            await self._delete_unused(keep, existing)
            return list(index.values())

    def _kept_variants(
        self, template: WarmTemplate, data: Mapping[str, Any], existing: Mapping[str, str]
    ) -> dict[tuple[str, int], WarmTemplate]:
        """The hibernation variants of ``template`` that exist already (made by earlier fills)."""
        out: dict[tuple[str, int], WarmTemplate] = {}
        for ram_gib in RAM_BUCKETS:
            variant_data = hibernation_variant(data, template.nodeclass.nodeclass, ram_gib)
            name = template_name(self.cluster.name, variant_data)
            if name in existing:
                out[(template.name, ram_gib)] = dataclasses.replace(
                    template, name=name, id=existing[name], hibernation_gib=ram_gib
                )
        return out

    async def _ensure(
        self, resolved: ResolvedNodeClass, pool: NodePool, existing: dict[str, str]
    ) -> list[tuple[WarmTemplate, dict[str, Any]]]:
        out: list[tuple[WarmTemplate, dict[str, Any]]] = []
        for arch in sorted(resolved.amis):
            if arch not in EC2_ARCHITECTURES:
                continue
            data = template_data(resolved, pool, arch, self.cluster)
            name = template_name(self.cluster.name, data)
            template_id = existing.get(name) or await self._create(name, data, resolved.name, pool.name)
            existing[name] = template_id
            template = WarmTemplate(
                name=name,
                id=template_id,
                nodeclass=resolved,
                nodepool=pool.name,
                architecture=arch,
                image_id=data["ImageId"],
            )
            out.append((template, data))
        return out

    async def _create(self, name: str, data: Mapping[str, Any], nodeclass: str, nodepool: str) -> str:
        tags = {
            **cluster_tags(self.cluster.name),
            labels.TAG_NODECLASS: nodeclass,
            labels.TAG_NODEPOOL: nodepool,
        }
        try:
            response = await self.clients.ec2.create_launch_template(
                LaunchTemplateName=name,
                LaunchTemplateData=dict(data),
                TagSpecifications=[{"ResourceType": "launch-template", "Tags": tag_list(tags)}],
            )
        except ClientError as exc:
            if "AlreadyExists" not in _code(exc):
                raise
            # Another replica (or a previous run) made it between our listing and now.
            described = await self.clients.ec2.describe_launch_templates(LaunchTemplateNames=[name])
            return str(described["LaunchTemplates"][0]["LaunchTemplateId"])
        template_id = str(response["LaunchTemplate"]["LaunchTemplateId"])
        log.info(
            "launch template created",
            template=name,
            template_id=template_id,
            nodeclass=nodeclass,
            nodepool=nodepool,
            image_id=data.get("ImageId"),
        )
        return template_id

    async def _existing(self) -> dict[str, str]:
        """Name -> id of every launch template tagged with this cluster."""
        out: dict[str, str] = {}
        paginator = self.clients.ec2.get_paginator("describe_launch_templates")
        filters = [{"Name": f"tag:{labels.TAG_CLUSTER}", "Values": [self.cluster.name]}]
        async for page in paginator.paginate(Filters=filters):
            for template in page.get("LaunchTemplates", []):
                out[template["LaunchTemplateName"]] = template["LaunchTemplateId"]
        return out

    async def _delete_unused(self, keep: set[str], existing: Mapping[str, str]) -> None:
        for name, template_id in sorted(existing.items()):
            if name in keep:
                continue
            try:
                await self.clients.ec2.delete_launch_template(LaunchTemplateId=template_id)
                log.info("launch template deleted", template=name, template_id=template_id)
            except ClientError as exc:
                if "NotFound" not in _code(exc):
                    raise


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
