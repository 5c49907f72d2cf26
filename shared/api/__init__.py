"""The ``jitnode.io/v1`` API: NodePool, EC2NodeClass and NodeClaim, parsed from plain dicts.

Each type has ``from_api(obj) -> T`` (validating every field, raising one
``shared.errors.ValidationError`` that lists all problems by field path) and ``to_api() -> dict``.
The CRDs in ``manifests/crds/`` declare the same fields, enums and defaults (checked by tests).
"""

from __future__ import annotations

from shared.api.group import (
    API_GROUP,
    API_VERSION,
    GROUP_VERSION,
    NODECLAIM_KIND,
    NODECLAIM_PLURAL,
    NODECLASS_KIND,
    NODECLASS_PLURAL,
    NODEPOOL_KIND,
    NODEPOOL_PLURAL,
)
from shared.api.meta import Condition, ObjectMeta
from shared.api.nodeclaim import NodeClaim, NodeClaimStatus, Phase
from shared.api.nodeclass import EC2NodeClass, NodeClassRef
from shared.api.nodepool import Budget, Disruption, NodePool

__all__ = [
    "API_GROUP",
    "API_VERSION",
    "GROUP_VERSION",
    "NODECLAIM_KIND",
    "NODECLAIM_PLURAL",
    "NODECLASS_KIND",
    "NODECLASS_PLURAL",
    "NODEPOOL_KIND",
    "NODEPOOL_PLURAL",
    "Budget",
    "Condition",
    "Disruption",
    "EC2NodeClass",
    "NodeClaim",
    "NodeClaimStatus",
    "NodeClassRef",
    "NodePool",
    "ObjectMeta",
    "Phase",
]
