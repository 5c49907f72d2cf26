"""The ``jitnode.io/v1`` API group: names the CRDs, clients and RBAC rules must agree on."""

from __future__ import annotations

from typing import Final

from shared.labels import GROUP

API_GROUP: Final = GROUP
API_VERSION: Final = "v1"
GROUP_VERSION: Final = f"{API_GROUP}/{API_VERSION}"

NODEPOOL_KIND: Final = "NodePool"
NODEPOOL_PLURAL: Final = "nodepools"
NODEPOOL_SINGULAR: Final = "nodepool"

NODECLASS_KIND: Final = "EC2NodeClass"
NODECLASS_PLURAL: Final = "ec2nodeclasses"
NODECLASS_SINGULAR: Final = "ec2nodeclass"

NODECLAIM_KIND: Final = "NodeClaim"
NODECLAIM_PLURAL: Final = "nodeclaims"
NODECLAIM_SINGULAR: Final = "nodeclaim"
