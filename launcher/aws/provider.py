"""``AWSCloudProvider``: the launcher's ``CloudProvider`` on EC2 (aioboto3).

Composes the catalogue (instance types with offerings and prices), the warm launch templates
(kept current by :meth:`AWSCloudProvider.sync`) and CreateFleet. ``list`` finds this cluster's
instances by tag, so a restarted launcher sees everything it launched; ``delete`` treats an
instance EC2 no longer knows as already deleted.

The warm pool tells it which NodeClaims are warm fills to hibernate
(:meth:`AWSCloudProvider.hibernate_fills`): those launch only on types EC2 can hibernate, from
the hibernation variant of their template (``launcher.aws.hibernation``); every other launch
uses the plain template.
"""

from __future__ import annotations

import builtins
import dataclasses
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import ClientError

from launcher.aws.catalogue import InstanceCatalogue
from launcher.aws.fleet import create_fleet_instance
from launcher.aws.hibernation import hibernation_ram_gib, is_configured
from launcher.aws.templates import LaunchTemplates, WarmTemplate
from launcher.model import ON_DEMAND, SPOT, Instance, InstanceType, LaunchError, LaunchRequest
from shared import labels
from shared.api.nodeclass import EC2NodeClass
from shared.api.nodepool import NodePool
from shared.api.warmpool import HIBERNATED, STOPPED
from shared.logs import get_logger

log = get_logger(__name__)

LIVE_STATES: Final = ("pending", "running", "shutting-down", "stopping", "stopped")
NOT_FOUND_CODES: Final = frozenset({"InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed"})
# StopInstances' answers to Hibernate=True for an instance that cannot hibernate.
HIBERNATION_REFUSED: Final = frozenset({"UnsupportedHibernationConfiguration", "UnsupportedOperation"})
# How long a launch waits for a template sync under way (a NodeClass resolves in well under this).
TEMPLATE_SYNC_WAIT: Final = 10.0


def instance_from_ec2(raw: Mapping[str, Any]) -> Instance:
    """An ``Instance`` from a DescribeInstances entry."""
    launch_time = raw.get("LaunchTime")
    if not isinstance(launch_time, datetime):
        launch_time = datetime.now(UTC)
    tags = {t["Key"]: t["Value"] for t in raw.get("Tags", [])}
    return Instance(
        id=str(raw["InstanceId"]),
        instance_type=str(raw.get("InstanceType", "")),
        zone=str(raw.get("Placement", {}).get("AvailabilityZone", "")),
        capacity_type=SPOT if raw.get("InstanceLifecycle") == "spot" else ON_DEMAND,
        state=str(raw.get("State", {}).get("Name", "pending")),
        launch_time=launch_time,
        private_dns_name=str(raw.get("PrivateDnsName", "")),
        image_id=str(raw.get("ImageId", "")),
        tags=tags,
        subnet_id=str(raw.get("SubnetId", "")),
        security_groups=tuple(
            sorted(str(g["GroupId"]) for g in raw.get("SecurityGroups", []) if "GroupId" in g)
        ),
        hibernation_configured=is_configured(tags, raw),
    )


def restrict_zones(types: Iterable[InstanceType], zones: frozenset[str]) -> list[InstanceType]:
    """The catalogue with only offerings in ``zones`` (where some NodeClass has a subnet)."""
    out: list[InstanceType] = []
    for instance_type in types:
        offerings = tuple(o for o in instance_type.offerings if o.zone in zones)
        if offerings:
            out.append(dataclasses.replace(instance_type, offerings=offerings))
    return out


class AWSCloudProvider:
    """Implements ``launcher.provider.CloudProvider`` (see the module docstring)."""

    def __init__(self, catalogue: InstanceCatalogue, templates: LaunchTemplates) -> None:
        self.catalogue = catalogue
        self.templates = templates
        self.clients = catalogue.clients
        self.cluster = templates.cluster.name
        self._restricted: tuple[float, frozenset[str], list[InstanceType]] | None = None
        self._hibernation_fill: Callable[[str], bool] = lambda nodeclaim: False

    def hibernate_fills(self, wanted: Callable[[str], bool]) -> None:
        """``wanted(nodeclaim)``: whether that claim is a warm fill to hibernate (the warm pool
        answers from its claims and pools, so a restarted launcher answers the same)."""
        self._hibernation_fill = wanted

    async def sync(
        self, nodeclasses: Iterable[EC2NodeClass], nodepools: Iterable[NodePool]
    ) -> list[WarmTemplate]:
        """Bring the warm templates in line with the current NodeClasses and NodePools."""
        return await self.templates.sync(nodeclasses, nodepools)

    async def create(self, request: LaunchRequest) -> Instance:
        template = await self.templates.get_or_await_sync(
            request.nodeclass, request.nodepool, request.architecture, TEMPLATE_SYNC_WAIT
        )
        if template is None:
            raise LaunchError(
                f"no warm launch template for nodeclass {request.nodeclass}, nodepool {request.nodepool}, "
                f"architecture {request.architecture}"
            )
        if self._hibernation_fill(request.nodeclaim):
            request, template = await self._for_hibernation(request, template)
        instance = await create_fleet_instance(self.clients.ec2, request, template, self.cluster)
        log.info(
            "instance launched",
            nodeclaim=request.nodeclaim,
            nodepool=request.nodepool,
            instance_id=instance.id,
            instance_type=instance.instance_type,
            zone=instance.zone,
            capacity_type=instance.capacity_type,
            hibernation_configured=instance.hibernation_configured,
        )
        return instance

    async def _for_hibernation(
        self, request: LaunchRequest, template: WarmTemplate
    ) -> tuple[LaunchRequest, WarmTemplate]:
        """A warm fill to hibernate: only the types EC2 can hibernate, from the variant of the
        template with room for the largest one's RAM. None of them: the plain template (the warm
        pool then stops the instance plainly)."""
        by_name = {t.name: t for t in self.catalogue.cached()}
        usable = tuple(n for n in request.instance_types if n in by_name and by_name[n].can_hibernate)
        ram_gib = hibernation_ram_gib(by_name[n].memory_mib for n in usable)
        if ram_gib is None:
            log.info("no instance type of the warm fill can hibernate", nodeclaim=request.nodeclaim)
            return request, template
        variant = await self.templates.hibernation_variant(template, ram_gib)
        return dataclasses.replace(request, instance_types=usable), variant

    async def delete(self, instance_id: str) -> None:
        try:
            await self.clients.ec2.terminate_instances(InstanceIds=[instance_id])
        except ClientError as exc:
            if _code(exc) not in NOT_FOUND_CODES:
                raise
            log.info("instance already gone", instance_id=instance_id)
            return
        log.info("instance terminating", instance_id=instance_id)

    async def stop(self, instance_id: str, *, hibernate: bool) -> str:
        """Park a warm instance: StopInstances (``Hibernate`` when asked). EC2 refuses to hibernate
        an instance not launched for it (or too big for it); that one is stopped plainly instead.
        Returns the state it was parked in."""
        if hibernate:
            try:
                await self.clients.ec2.stop_instances(InstanceIds=[instance_id], Hibernate=True)
                log.info("instance hibernating", instance_id=instance_id)
                return HIBERNATED
            except ClientError as exc:
                if _code(exc) not in HIBERNATION_REFUSED:
                    raise
                log.warning("hibernation refused; stopping instead", instance_id=instance_id, error=str(exc))
        await self.clients.ec2.stop_instances(InstanceIds=[instance_id])
        log.info("instance stopping", instance_id=instance_id)
        return STOPPED

    async def start(self, instance_id: str) -> None:
        """Start a parked warm instance (the caller checked it is ``stopped``)."""
        await self.clients.ec2.start_instances(InstanceIds=[instance_id])
        log.info("instance starting", instance_id=instance_id)

    async def get(self, instance_id: str) -> Instance | None:
        try:
            response = await self.clients.ec2.describe_instances(InstanceIds=[instance_id])
        except ClientError as exc:
            if _code(exc) in NOT_FOUND_CODES:
                return None
            raise
        found = [i for r in response.get("Reservations", []) for i in r.get("Instances", [])]
        return instance_from_ec2(found[0]) if found else None

    async def list(self) -> list[Instance]:
        filters = [
            {"Name": f"tag:{labels.TAG_CLUSTER}", "Values": [self.cluster]},
            {"Name": "instance-state-name", "Values": list(LIVE_STATES)},
        ]
        out: list[Instance] = []
        async for page in self.clients.ec2.get_paginator("describe_instances").paginate(Filters=filters):
            for reservation in page.get("Reservations", []):
                out.extend(instance_from_ec2(raw) for raw in reservation.get("Instances", []))
        return [i for i in out if i.state != "terminated"]

    async def instance_types(self) -> builtins.list[InstanceType]:
        """The catalogue, with offerings only in zones where a resolved NodeClass has subnets."""
        types = await self.catalogue.instance_types()
        zones = frozenset(
            zone for template in self.templates.templates() for zone in template.nodeclass.zones
        )
        if not zones:
            return types
        cached = self._restricted
        if cached is not None and cached[0] == self.catalogue.refreshed_at and cached[1] == zones:
            return cached[2]
        restricted = restrict_zones(types, zones)
        self._restricted = (self.catalogue.refreshed_at, zones, restricted)
        return restricted


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


if TYPE_CHECKING:
    from launcher.provider import CloudProvider

    def _implements(provider: AWSCloudProvider) -> CloudProvider:
        return provider
