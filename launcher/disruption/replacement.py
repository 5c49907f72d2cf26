"""Replacement capacity for a node about to be disrupted: NodeClaims created like the provisioner's.

The controller names the claims first and writes the names into the node's disruption mark, so
a restart finds them; then this creates them (with the ``jitnode.io/replaces`` annotation naming
the node, for people reading them) and hands each to the claim controller so CreateFleet follows
at once. Another launcher component may implement :class:`ReplacementLauncher` instead (for
example the provisioner treating the pods as pending demand).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, Protocol

from launcher.kube import NodeClaimWriter
from launcher.planner import PlannedClaim
from launcher.provisioning.claims import nodeclaim_body
from shared import labels
from shared.api.nodeclaim import NodeClaim
from shared.api.nodepool import NodePool
from shared.logs import get_logger
from shared.requirements import Requirement

log = get_logger("launcher.disruption.replacement")

REPLACES_ANNOTATION: Final = "jitnode.io/replaces"


class ReplacementLauncher(Protocol):
    async def __call__(self, name: str, planned: PlannedClaim, pool: NodePool, node: str) -> None:
        """Create the NodeClaim ``name`` for ``planned``; errors propagate."""


class ClaimReplacer:
    """Creates replacement NodeClaims and passes them to ``on_created`` (the claim controller)."""

    def __init__(
        self, writer: NodeClaimWriter, on_created: Callable[[NodeClaim], None] | None = None
    ) -> None:
        self._writer = writer
        self._on_created = on_created

    async def __call__(self, name: str, planned: PlannedClaim, pool: NodePool, node: str) -> None:
        # The instance types are written cheapest first; launch keeps that order for CreateFleet.
        types = Requirement(labels.INSTANCE_TYPE, "In", planned.instance_types)
        requirements = [*planned.requirements.without(labels.INSTANCE_TYPE).to_requirements(), types]
        body = nodeclaim_body(name, pool, requirements, planned.requests, planned.pods)
        body["metadata"]["annotations"][REPLACES_ANNOTATION] = node
        raw = await self._writer.create(body)
        claim = NodeClaim.from_api(raw)
        log.info(
            "replacement nodeclaim created",
            nodeclaim=claim.name,
            nodepool=pool.name,
            node=node,
            instance_types=list(planned.instance_types[:5]),
        )
        if self._on_created is not None:
            self._on_created(claim)
