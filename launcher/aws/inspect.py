"""Resolve an EC2NodeClass part by part, for its status (``launcher.status.nodeclass``).

The resolver stops at the first part that fails, which is right for launching but hides the
rest; here each part is looked up on its own, with the same resolver calls the warm templates
use, so the status can say which selector matched nothing. A selector that matches nothing (or
an instance profile that cannot be set up) is a finding; any other error means the lookup failed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

import orjson

from launcher.aws.nodeclass import NodeClassNotReady, NodeClassResolver
from launcher.status.nodeclass import Lookup, NodeClassFindings
from shared import labels
from shared.api.nodeclass import AMIStatus, EC2NodeClass, SecurityGroupStatus, SelectorTerm, SubnetStatus
from shared.logs import get_logger
from shared.requirements import Requirement

log = get_logger(__name__)
T = TypeVar("T")


def _terms(terms: Iterable[SelectorTerm]) -> str:
    return orjson.dumps([t.to_api() for t in terms]).decode()


async def _lookup(
    part: str, call: Callable[[], Awaitable[tuple[T, ...]]], not_found: str, *, detail: bool = False
) -> Lookup[T]:
    """``detail``: the resolver's message says more than ``not_found`` (an IAM error)."""
    try:
        found = await call()
    except NodeClassNotReady as exc:
        return Lookup(problem=f"{not_found}: {exc}" if detail else not_found)
    except Exception as exc:
        log.warning("nodeclass part lookup failed", part=part, error=str(exc))
        return Lookup(problem=f"{part}: {exc}", failed=True)
    return Lookup(found=found) if found else Lookup(problem=not_found)


async def inspect_nodeclass(resolver: NodeClassResolver, nodeclass: EC2NodeClass) -> NodeClassFindings:
    """What each of the class's selectors resolves to now."""

    async def amis() -> tuple[AMIStatus, ...]:
        found = await resolver.amis(nodeclass)
        return tuple(
            AMIStatus(id=ami.id, name=ami.name, requirements=(Requirement(labels.ARCH, "In", (arch,)),))
            for arch, ami in sorted(found.items())
        )

    async def subnets() -> tuple[SubnetStatus, ...]:
        found = await resolver.subnets(nodeclass.subnet_selector_terms)
        return tuple(SubnetStatus(id=s.id, zone=s.zone, zone_id=s.zone_id) for s in found)

    async def security_groups() -> tuple[SecurityGroupStatus, ...]:
        found = await resolver.security_group_names(nodeclass.security_group_selector_terms)
        return tuple(SecurityGroupStatus(id=i, name=n) for i, n in sorted(found.items()))

    async def instance_profile() -> tuple[str, ...]:
        if nodeclass.instance_profile:
            return (nodeclass.instance_profile,)
        return (await resolver.ensure_instance_profile(nodeclass),)

    alias = next((t for t in nodeclass.ami_selector_terms if t.alias), None)
    supported = resolver.settings.alias_parameters.keys() | resolver.settings.pinned_alias_parameters.keys()
    if alias is not None and alias.alias_family not in supported:
        ami_lookup: Lookup[AMIStatus] = Lookup(
            problem=f"AMI alias {alias.alias} is not supported", reason="UnsupportedAlias"
        )
    else:
        ami_lookup = await _lookup(
            "amis", amis, f"amiSelectorTerms matched no AMI: {_terms(nodeclass.ami_selector_terms)}"
        )
    return NodeClassFindings(
        generation=nodeclass.metadata.generation,
        amis=ami_lookup,
        subnets=await _lookup(
            "subnets",
            subnets,
            f"subnetSelectorTerms matched no subnet: {_terms(nodeclass.subnet_selector_terms)}",
        ),
        security_groups=await _lookup(
            "securityGroups",
            security_groups,
            "securityGroupSelectorTerms matched no security group: "
            + _terms(nodeclass.security_group_selector_terms),
        ),
        instance_profile=await _lookup(
            "instanceProfile", instance_profile, f"no instance profile for role {nodeclass.role}", detail=True
        ),
    )
