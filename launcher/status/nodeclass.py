"""What an EC2NodeClass's status should say, from what resolving it found (pure).

Like Karpenter's provider: ``status.subnets``, ``securityGroups``, ``amis`` and
``instanceProfile`` list what the selectors resolved to, and one condition per part says whether
it resolved: ``SubnetsReady``, ``SecurityGroupsReady``, ``AMIsReady``, ``InstanceProfileReady``,
plus ``ValidationSucceeded`` (the spec parses), all under ``Ready``. A selector that matches
nothing is False (nothing can launch from this class, and the message says which selector); an
AWS call that failed is Unknown and keeps what was found before (we do not know, it may be a blip).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Generic, TypeVar

from launcher.status import conditions as c
from shared.api.meta import Condition
from shared.api.nodeclass import AMIStatus, SecurityGroupStatus, SubnetStatus

T = TypeVar("T")

SUBNETS_READY: Final = "SubnetsReady"
SECURITY_GROUPS_READY: Final = "SecurityGroupsReady"
AMIS_READY: Final = "AMIsReady"
INSTANCE_PROFILE_READY: Final = "InstanceProfileReady"
VALIDATION_SUCCEEDED: Final = "ValidationSucceeded"
DEPENDENTS: Final = (
    AMIS_READY,
    SUBNETS_READY,
    SECURITY_GROUPS_READY,
    INSTANCE_PROFILE_READY,
    VALIDATION_SUCCEEDED,
)
CONDITION_TYPES: Final = (*DEPENDENTS, c.READY)
VALIDATION_FAILED: Final = "NodeClassValidationFailed"
# (condition, status key, reason when nothing matched, reason when the lookup failed)
_PARTS: Final = (
    (AMIS_READY, "amis", "AMINotFound", "AMIsResolutionFailed"),
    (SUBNETS_READY, "subnets", "SubnetsNotFound", "SubnetsResolutionFailed"),
    (SECURITY_GROUPS_READY, "securityGroups", "SecurityGroupsNotFound", "SecurityGroupsResolutionFailed"),
    (INSTANCE_PROFILE_READY, "instanceProfile", "InstanceProfileNotFound", "InstanceProfileResolutionFailed"),
)
STATUS_KEYS: Final = ("amis", "subnets", "securityGroups", "instanceProfile", "conditions")


@dataclass(frozen=True)
class Lookup(Generic[T]):
    """One part's resolution: what was found, or why nothing usable was.

    ``failed`` means the lookup itself failed (an AWS error), as opposed to matching nothing;
    ``reason`` overrides the part's not-found reason (``UnsupportedAlias``).
    """

    found: tuple[T, ...] = ()
    problem: str = ""
    failed: bool = False
    reason: str = ""


@dataclass(frozen=True)
class NodeClassFindings:
    """Everything one resolution of a class found, for the spec ``generation`` it resolved."""

    generation: int
    amis: Lookup[AMIStatus]
    subnets: Lookup[SubnetStatus]
    security_groups: Lookup[SecurityGroupStatus]
    instance_profile: Lookup[str]


def nodeclass_status(
    *,
    generation: int,
    previous: Mapping[str, Any],
    invalid: str | None,
    findings: NodeClassFindings | None,
    now: datetime,
) -> dict[str, Any]:
    """The wanted status (the keys in ``STATUS_KEYS``; an absent key is to be removed).

    ``previous`` is the stored status; ``invalid`` the validation error of the spec, if any;
    ``findings`` the last resolution (None before the first, or stale when its generation is
    older than ``generation``: then the parts wait for the next resolution).
    """
    out: dict[str, Any] = {k: previous[k] for k in STATUS_KEYS[:-1] if previous.get(k) not in (None, [], "")}
    wanted: list[Condition] = []
    current = findings is not None and findings.generation == generation and invalid is None
    lookups: dict[str, Lookup[Any]] = {}
    if findings is not None:
        lookups = {
            AMIS_READY: findings.amis,
            SUBNETS_READY: findings.subnets,
            SECURITY_GROUPS_READY: findings.security_groups,
            INSTANCE_PROFILE_READY: findings.instance_profile,
        }
    for type_, key, not_found, failed in _PARTS:
        lookup = lookups.get(type_)
        if invalid is not None:
            wanted.append(c.unknown(type_, "NodeClassInvalid", "not resolved: the spec is invalid"))
        elif not current or lookup is None:
            wanted.append(c.unknown(type_))
        elif lookup.failed:
            wanted.append(c.unknown(type_, failed, lookup.problem or "lookup failed"))
        elif not lookup.found:
            out.pop(key, None)
            wanted.append(c.false(type_, lookup.reason or not_found, lookup.problem or f"no {key} found"))
        else:
            out[key] = _render(key, lookup.found)
            wanted.append(c.true(type_))
    if invalid is None:
        wanted.append(c.true(VALIDATION_SUCCEEDED))
    else:
        wanted.append(c.false(VALIDATION_SUCCEEDED, VALIDATION_FAILED, invalid))
    wanted.append(c.root(wanted))
    previous_conditions = c.parse(previous.get("conditions"))
    out["conditions"] = c.to_api(c.merge(previous_conditions, wanted, now, generation))
    return out


def _render(key: str, found: Sequence[Any]) -> Any:
    if key == "instanceProfile":
        return str(found[0])
    return [item.to_api() for item in found]
