"""Whether a NodeClaim has drifted from what its NodePool and EC2NodeClass now ask for (pure).

Karpenter v1's checks, in its order; the first that fires names the ``Drifted`` condition's
reason, and its message says what changed:

1. ``NodePoolDrifted``: the hash of the NodePool's template stamped on the claim at creation
   (:data:`NODEPOOL_HASH_ANNOTATION`) differs from the pool's hash now. Requirements,
   ``expireAfter`` and ``terminationGracePeriod`` are left out of the hash: requirements are
   checked on their own (step 2) and the other two only change how a node is disrupted.
2. ``RequirementsDrifted``: the node's labels no longer satisfy the NodePool's requirements. A
   well-known label the node lacks is not held against it, as Karpenter allows.
3. ``AMIDrift``: the instance's image is none of the AMIs the EC2NodeClass resolves to now (the
   SSM parameter behind an alias moved on, or the selectors match other images).
4. ``SubnetDrift`` / ``SecurityGroupDrift``: the instance's subnet, or one of its security
   groups, is no longer selected by the EC2NodeClass.
5. ``NodeClassDrift``: the hash of the EC2NodeClass's spec stamped at launch
   (:data:`NODECLASS_HASH_ANNOTATION`) differs; the selector terms are left out (steps 3-4).

A hash stamped under another :data:`HASH_VERSION` is not compared (a jitnode upgrade that
changes how hashes are computed must not drift every node): :func:`restamp` answers the
annotations to rewrite instead, as Karpenter's hash controller does. Anything not known yet (the
class not resolved, the instance not described) is not drift.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson

from shared import labels
from shared.api.nodeclass import EC2NodeClass
from shared.api.nodepool import NodePool
from shared.requirements import Requirements

HASH_VERSION: Final = "v1"
NODEPOOL_HASH_ANNOTATION: Final = "jitnode.io/nodepool-hash"
NODEPOOL_HASH_VERSION_ANNOTATION: Final = "jitnode.io/nodepool-hash-version"
NODECLASS_HASH_ANNOTATION: Final = "jitnode.io/ec2nodeclass-hash"
NODECLASS_HASH_VERSION_ANNOTATION: Final = "jitnode.io/ec2nodeclass-hash-version"

NODEPOOL_DRIFTED: Final = "NodePoolDrifted"
REQUIREMENTS_DRIFTED: Final = "RequirementsDrifted"
AMI_DRIFT: Final = "AMIDrift"
SUBNET_DRIFT: Final = "SubnetDrift"
SECURITY_GROUP_DRIFT: Final = "SecurityGroupDrift"
NODECLASS_DRIFT: Final = "NodeClassDrift"

# Fields that do not make a node drift (checked separately, or only change how it is disrupted).
_POOL_UNHASHED: Final = ("requirements", "expireAfter", "terminationGracePeriod")
_CLASS_UNHASHED: Final = ("amiSelectorTerms", "subnetSelectorTerms", "securityGroupSelectorTerms")


def _digest(value: Any) -> str:
    return hashlib.sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def nodepool_hash(pool: NodePool) -> str:
    """The hash of the pool's template that drift compares (see the module docstring)."""
    template = pool.to_api()["spec"]["template"]
    spec = {k: v for k, v in template["spec"].items() if k not in _POOL_UNHASHED}
    return _digest({"metadata": template.get("metadata") or {}, "spec": spec})


def nodeclass_hash(nodeclass: EC2NodeClass) -> str:
    """The hash of the class's spec that drift compares (selector terms left out)."""
    spec = nodeclass.to_api()["spec"]
    return _digest({k: v for k, v in spec.items() if k not in _CLASS_UNHASHED})


def nodepool_hash_annotations(pool: NodePool) -> dict[str, str]:
    """What a NodeClaim of ``pool`` is stamped with when it is created."""
    return {NODEPOOL_HASH_ANNOTATION: nodepool_hash(pool), NODEPOOL_HASH_VERSION_ANNOTATION: HASH_VERSION}


def nodeclass_hash_annotations(nodeclass: EC2NodeClass) -> dict[str, str]:
    """What a NodeClaim is stamped with when it is launched from ``nodeclass``."""
    return {
        NODECLASS_HASH_ANNOTATION: nodeclass_hash(nodeclass),
        NODECLASS_HASH_VERSION_ANNOTATION: HASH_VERSION,
    }


@dataclass(frozen=True)
class ClaimFacts:
    """What the claim and its instance are: annotations (hashes), node labels, image, network.

    ``subnet``/``security_groups`` None: the instance was not described yet (unknown).
    """

    annotations: Mapping[str, str]
    node_labels: Mapping[str, str]
    image_id: str | None = None
    subnet: str | None = None
    security_groups: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Wanted:
    """What the claim's NodePool and EC2NodeClass ask for now; None: not known (not checked)."""

    nodepool_hash: str | None = None
    requirements: Requirements | None = None
    amis: Collection[str] | None = None
    subnets: Collection[str] | None = None
    security_groups: Collection[str] | None = None
    nodeclass_hash: str | None = None


@dataclass(frozen=True)
class Drift:
    reason: str
    message: str


def drifted(facts: ClaimFacts, wanted: Wanted) -> Drift | None:
    """The first drift found, in Karpenter's order (see the module docstring), or None."""
    annotations = facts.annotations
    if _hash_differs(
        annotations, NODEPOOL_HASH_ANNOTATION, NODEPOOL_HASH_VERSION_ANNOTATION, wanted.nodepool_hash
    ):
        return Drift(
            NODEPOOL_DRIFTED,
            f"nodepool template hash {annotations[NODEPOOL_HASH_ANNOTATION]} is now {wanted.nodepool_hash}",
        )
    if wanted.requirements is not None:
        reasons = unsatisfied_requirements(wanted.requirements, facts.node_labels)
        if reasons:
            return Drift(REQUIREMENTS_DRIFTED, "; ".join(reasons))
    if wanted.amis is not None and facts.image_id and facts.image_id not in wanted.amis:
        return Drift(AMI_DRIFT, f"image {facts.image_id} is not among {', '.join(sorted(wanted.amis))}")
    if wanted.subnets is not None and facts.subnet and facts.subnet not in wanted.subnets:
        return Drift(SUBNET_DRIFT, f"subnet {facts.subnet} is not among {', '.join(sorted(wanted.subnets))}")
    groups = facts.security_groups
    if (
        wanted.security_groups is not None
        and groups is not None
        and set(groups) != set(wanted.security_groups)
    ):
        return Drift(
            SECURITY_GROUP_DRIFT,
            f"security groups {', '.join(sorted(groups)) or 'none'} are not "
            f"{', '.join(sorted(wanted.security_groups))}",
        )
    if _hash_differs(
        annotations, NODECLASS_HASH_ANNOTATION, NODECLASS_HASH_VERSION_ANNOTATION, wanted.nodeclass_hash
    ):
        return Drift(
            NODECLASS_DRIFT,
            f"ec2nodeclass spec hash {annotations[NODECLASS_HASH_ANNOTATION]} is now {wanted.nodeclass_hash}",
        )
    return None


def unsatisfied_requirements(requirements: Requirements, node_labels: Mapping[str, str]) -> list[str]:
    """Why the node's labels fail the pool's requirements, one line per key (empty: they pass)."""
    reasons: list[str] = []
    for key, constraint in sorted(requirements.items(), key=lambda item: item[0]):
        value = node_labels.get(key)
        if value is None and key in labels.WELL_KNOWN_LABELS:
            continue  # the node may simply not carry it; Karpenter allows undefined well-known keys
        if not constraint.allows(value):
            have = "absent" if value is None else repr(value)
            reasons.append(f"nodepool requires {constraint.describe(key)}, node has {have}")
    return reasons


def _hash_differs(annotations: Mapping[str, str], key: str, version_key: str, now: str | None) -> bool:
    stamped = annotations.get(key)
    if now is None or stamped is None or annotations.get(version_key) != HASH_VERSION:
        return False
    return stamped != now


def restamp(annotations: Mapping[str, str], wanted: Wanted) -> dict[str, str]:
    """Hash annotations stamped under another version, rewritten to the current hashes.

    Karpenter's answer to a hash whose computation changed: adopt the new hash without drifting.
    A claim never stamped (created before hashes existed) is stamped likewise.
    """
    out: dict[str, str] = {}
    for key, version_key, now in (
        (NODEPOOL_HASH_ANNOTATION, NODEPOOL_HASH_VERSION_ANNOTATION, wanted.nodepool_hash),
        (NODECLASS_HASH_ANNOTATION, NODECLASS_HASH_VERSION_ANNOTATION, wanted.nodeclass_hash),
    ):
        if now is not None and annotations.get(version_key) != HASH_VERSION:
            out[key] = now
            out[version_key] = HASH_VERSION
    return out
