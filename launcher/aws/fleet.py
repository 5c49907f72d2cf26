"""One CreateFleet ``instant`` call per NodeClaim, on the warm template, and its errors mapped.

The request lists an override for each (instance type, subnet) pair, cheapest types first and
every allowed zone for each (but the offerings marked unavailable: ``LaunchRequest.unavailable``),
capped at 60 (EC2's useful limit, as Karpenter caps it), so EC2 picks the cheapest offering with
capacity in a single round trip. On-demand uses
``lowest-price``, spot ``price-capacity-optimized``. Capacity errors become
``InsufficientCapacityError`` naming the (type, zone, capacity type) offerings to avoid,
throttling ``ThrottledError``, anything else ``LaunchError``.

Request building and response mapping are pure; :func:`create_fleet_instance` is the I/O shell.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from launcher.aws.hibernation import CONFIGURED, HIBERNATION_TAG, is_configured
from launcher.aws.nodeclass import ResolvedNodeClass
from launcher.aws.templates import MANAGED_BY, WarmTemplate, cluster_tags, tag_list
from launcher.model import (
    ON_DEMAND,
    SPOT,
    Instance,
    InsufficientCapacityError,
    LaunchError,
    LaunchRequest,
    ThrottledError,
)
from shared import labels
from shared.logs import get_logger

log = get_logger(__name__)

MAX_OVERRIDES: Final = 60
ON_DEMAND_STRATEGY: Final = "lowest-price"
SPOT_STRATEGY: Final = "price-capacity-optimized"
CAPACITY_ERROR_CODES: Final = frozenset(
    {
        "InsufficientInstanceCapacity",
        "InsufficientCapacity",
        "InsufficientHostCapacity",
        "Unsupported",
        "MaxSpotInstanceCountExceeded",
        "UnfulfillableCapacity",
        "SpotMaxPriceTooLow",
    }
)
THROTTLING_CODES: Final = frozenset({"RequestLimitExceeded", "Throttling", "ThrottlingException"})

Offering = tuple[str, str, str]  # (instance type, zone, capacity type)


def capacity_type(request: LaunchRequest) -> str:
    """Spot when the claim allows it (cheaper), else on-demand."""
    return SPOT if SPOT in request.capacity_types else ON_DEMAND


def overrides(
    request: LaunchRequest, nodeclass: ResolvedNodeClass, limit: int = MAX_OVERRIDES
) -> list[dict[str, Any]]:
    """(type, subnet) overrides: cheapest type first, each in every allowed zone, at most ``limit``.

    ``Priority`` follows the order so that a ``prioritized`` strategy would honour it too.
    """
    subnets = nodeclass.subnets_in(request.zones or None)
    kind = capacity_type(request)
    out: list[dict[str, Any]] = []
    for instance_type in dict.fromkeys(request.instance_types):
        for subnet in subnets:
            if len(out) >= limit:
                return out
            if (instance_type, subnet.zone, kind) in request.unavailable:
                continue  # that offering ran out of capacity (or was interrupted) lately
            out.append(
                {
                    "InstanceType": instance_type,
                    "SubnetId": subnet.id,
                    "AvailabilityZone": subnet.zone,
                    "Priority": float(len(out)),
                }
            )
    return out


def instance_tags(request: LaunchRequest, cluster: str) -> dict[str, str]:
    return {
        **request.tags,
        **cluster_tags(cluster),
        labels.TAG_NODEPOOL: request.nodepool,
        labels.TAG_NODECLAIM: request.nodeclaim,
        labels.TAG_NODECLASS: request.nodeclass,
        labels.TAG_MANAGED_BY: MANAGED_BY,
        "Name": f"{request.nodepool}/{request.nodeclaim}",
    }


def fleet_request(request: LaunchRequest, template: WarmTemplate, cluster: str) -> dict[str, Any]:
    """The CreateFleet parameters for one NodeClaim (see the module docstring)."""
    chosen = overrides(request, template.nodeclass)
    if not chosen:
        raise LaunchError(
            f"nodeclaim {request.nodeclaim}: no subnet of nodeclass {request.nodeclass} in zones "
            f"{list(request.zones)} for types {list(request.instance_types)[:5]}"
        )
    kind = capacity_type(request)
    tags = instance_tags(request, cluster)
    if template.hibernation_gib:
        tags[HIBERNATION_TAG] = CONFIGURED  # it can hibernate: see launcher.aws.hibernation
    params: dict[str, Any] = {
        "Type": "instant",
        "ClientToken": request.client_token,
        "LaunchTemplateConfigs": [
            {
                "LaunchTemplateSpecification": {"LaunchTemplateId": template.id, "Version": "$Latest"},
                "Overrides": chosen,
            }
        ],
        "TargetCapacitySpecification": {"TotalTargetCapacity": 1, "DefaultTargetCapacityType": kind},
        "TagSpecifications": [{"ResourceType": "instance", "Tags": tag_list(tags)}],
    }
    if kind == SPOT:
        params["SpotOptions"] = {"AllocationStrategy": SPOT_STRATEGY}
    else:
        params["OnDemandOptions"] = {"AllocationStrategy": ON_DEMAND_STRATEGY}
    return params


def requested_offerings(params: Mapping[str, Any]) -> tuple[Offering, ...]:
    kind = params["TargetCapacitySpecification"]["DefaultTargetCapacityType"]
    return tuple(
        dict.fromkeys(
            (o["InstanceType"], o["AvailabilityZone"], kind)
            for config in params["LaunchTemplateConfigs"]
            for o in config["Overrides"]
        )
    )


def _error_offering(error: Mapping[str, Any], params: Mapping[str, Any]) -> Offering | None:
    override = error.get("LaunchTemplateAndOverrides", {}).get("Overrides", {})
    instance_type = override.get("InstanceType")
    zone = override.get("AvailabilityZone")
    if instance_type and not zone and override.get("SubnetId"):
        zone = next(
            (
                o["AvailabilityZone"]
                for c in params["LaunchTemplateConfigs"]
                for o in c["Overrides"]
                if o["SubnetId"] == override["SubnetId"]
            ),
            None,
        )
    if not instance_type or not zone:
        return None
    kind = error.get("Lifecycle") or params["TargetCapacitySpecification"]["DefaultTargetCapacityType"]
    return (str(instance_type), str(zone), str(kind))


def fleet_error(errors: Sequence[Mapping[str, Any]], params: Mapping[str, Any]) -> LaunchError:
    """The exception for a fleet that launched nothing, from its ``Errors``."""
    codes = {str(e.get("ErrorCode", "")) for e in errors}
    message = "; ".join(f"{e.get('ErrorCode')}: {e.get('ErrorMessage', '')}" for e in errors) or "no instance"
    if codes & THROTTLING_CODES:
        return ThrottledError(message)
    capacity = [e for e in errors if e.get("ErrorCode") in CAPACITY_ERROR_CODES]
    if capacity or not errors:
        named = tuple(dict.fromkeys(o for e in capacity if (o := _error_offering(e, params)) is not None))
        return InsufficientCapacityError(message, named or requested_offerings(params))
    return LaunchError(message)


def client_error(exc: ClientError, params: Mapping[str, Any]) -> LaunchError:
    """The exception for a CreateFleet call EC2 refused as a whole."""
    code = str(exc.response.get("Error", {}).get("Code", ""))
    message = f"{code}: {exc.response.get('Error', {}).get('Message', str(exc))}"
    if code in THROTTLING_CODES:
        return ThrottledError(message)
    if code in CAPACITY_ERROR_CODES:
        return InsufficientCapacityError(message, requested_offerings(params))
    return LaunchError(message)


def instance_from_response(
    response: Mapping[str, Any], params: Mapping[str, Any], template: WarmTemplate, now: datetime
) -> Instance | None:
    """The launched instance as CreateFleet reports it, or None when it launched none.

    Built from the response (the zone from the chosen override) rather than a DescribeInstances
    call, which EC2 answers with "not found" for a moment after launch (eventual consistency).
    """
    for launched in response.get("Instances", []):
        ids = launched.get("InstanceIds") or []
        if not ids:
            continue
        override = launched.get("LaunchTemplateAndOverrides", {}).get("Overrides", {})
        zone = override.get("AvailabilityZone") or next(
            (s.zone for s in template.nodeclass.subnets if s.id == override.get("SubnetId")), ""
        )
        tags = {t["Key"]: t["Value"] for spec in params["TagSpecifications"] for t in spec["Tags"]}
        kind = launched.get("Lifecycle") or params["TargetCapacitySpecification"]["DefaultTargetCapacityType"]
        return Instance(
            id=str(ids[0]),
            instance_type=str(launched.get("InstanceType") or override.get("InstanceType", "")),
            zone=str(zone),
            capacity_type=SPOT if kind == SPOT else ON_DEMAND,
            state="pending",
            launch_time=now,
            private_dns_name="",
            image_id=template.image_id,
            tags=tags,
            hibernation_configured=is_configured(tags),
        )
    return None


async def create_fleet_instance(
    ec2: Any, request: LaunchRequest, template: WarmTemplate, cluster: str
) -> Instance:
    """Launch one instance for ``request`` with CreateFleet (raises ``LaunchError`` subclasses)."""
    params = fleet_request(request, template, cluster)
    try:
        response = await ec2.create_fleet(**params)
    except ClientError as exc:
        raise client_error(exc, params) from exc
    except BotoCoreError as exc:
        raise LaunchError(f"CreateFleet failed: {exc}") from exc
    errors: list[Mapping[str, Any]] = response.get("Errors", [])
    instance = instance_from_response(response, params, template, datetime.now(UTC))
    if instance is None:
        raise fleet_error(errors, params)
    if errors:
        log.info("createfleet skipped offerings", nodeclaim=request.nodeclaim, errors=_summary(errors))
    return instance


def _summary(errors: Iterable[Mapping[str, Any]]) -> list[str]:
    return [str(e.get("ErrorCode")) for e in errors]
