"""The NodeClaim object for one planned claim (pure).

The claim is created before EC2 is called, with a finalizer so it outlives its instance, the
NodePool's labels and taints, and a ClientToken derived from its name so a retried CreateFleet
is idempotent on AWS.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from launcher.disruption.drift import nodepool_hash_annotations
from shared import labels
from shared.api._fields import format_time
from shared.api.durations import format_duration
from shared.api.group import GROUP_VERSION, NODECLAIM_KIND
from shared.api.nodeclaim import client_token_for
from shared.api.nodepool import NodePool
from shared.requirements import Requirement
from shared.resources import Resources

_SUFFIX_ALPHABET = string.ascii_lowercase + string.digits


def claim_name(nodepool: str) -> str:
    """``<nodepool>-<5 random characters>``, like Karpenter's NodeClaim names."""
    return f"{nodepool}-{''.join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(5))}"


def nodeclaim_body(
    name: str,
    pool: NodePool,
    requirements: Iterable[Requirement],
    requests: Resources,
    pods: Sequence[str],
    first_demand: float | None = None,
) -> dict[str, Any]:
    """The NodeClaim to create for ``pods`` on ``pool``; ``requirements`` fix its types and zones."""
    # The template's hash, for drift (``launcher.disruption.drift``): compared with the pool's later.
    annotations = {**pool.template_annotations, **nodepool_hash_annotations(pool)}
    if first_demand is not None:
        annotations["jitnode.io/first-demand"] = format_time(datetime.fromtimestamp(first_demand, tz=UTC))
    spec: dict[str, Any] = {
        "nodeClassRef": pool.node_class_ref.to_api(),
        "requirements": [r.to_api() for r in requirements],
        "resources": {"requests": requests.to_api()},
        "expireAfter": format_duration(pool.expire_after),
        "clientToken": client_token_for(name),
        "pods": list(pods),
    }
    if pool.template_taints:
        spec["taints"] = [t.to_api() for t in pool.template_taints]
    if pool.template_startup_taints:
        spec["startupTaints"] = [t.to_api() for t in pool.template_startup_taints]
    if pool.termination_grace_period is not None:
        spec["terminationGracePeriod"] = format_duration(pool.termination_grace_period)
    return {
        "apiVersion": GROUP_VERSION,
        "kind": NODECLAIM_KIND,
        "metadata": {
            "name": name,
            "labels": {**pool.template_labels, labels.NODEPOOL: pool.name},
            "annotations": annotations,
            "finalizers": [labels.TERMINATION_FINALIZER],
        },
        "spec": spec,
    }
