"""What a NodePool's status should say (pure).

Karpenter's conditions: ``ValidationSucceeded`` (the spec is usable: jitnode ignores a pool it
cannot parse, so this is where the reason shows), ``NodeClassReady`` (its EC2NodeClass exists,
is not being deleted and is Ready; when not, the message says which of the class's conditions
failed and why) and ``Ready`` over both. ``status.resources`` is the capacity of the pool's nodes
with their count under ``nodes``, for ``kubectl get nodepools``; ``nodeClassObservedGeneration``
is the generation of the EC2NodeClass the conditions were computed from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from launcher.status import conditions as c
from shared.api.meta import Condition
from shared.resources import CPU, EPHEMERAL_STORAGE, MEMORY, PODS, Resources

VALIDATION_SUCCEEDED: Final = "ValidationSucceeded"
NODECLASS_READY: Final = "NodeClassReady"
DEPENDENTS: Final = (VALIDATION_SUCCEEDED, NODECLASS_READY)
CONDITION_TYPES: Final = (*DEPENDENTS, c.READY)
VALIDATION_FAILED: Final = "NodePoolValidationFailed"
NODECLASS_NOT_FOUND: Final = "NodeClassNotFound"
NODECLASS_TERMINATING: Final = "NodeClassTerminating"
NODECLASS_READINESS_UNKNOWN: Final = "NodeClassReadinessUnknown"
NODES: Final = "nodes"
# Always shown, zero included, so the columns of an empty pool read 0 rather than blank.
BASE_RESOURCES: Final = (CPU, MEMORY, PODS, EPHEMERAL_STORAGE)


@dataclass(frozen=True)
class NodeClassView:
    """What a NodePool's status needs of its EC2NodeClass."""

    name: str
    generation: int = 0
    deleting: bool = False
    conditions: tuple[Condition, ...] = ()


def nodeclass_ready(name: str, nodeclass: NodeClassView | None) -> Condition:
    """``NodeClassReady``: True only when the class exists, stays and is Ready; else why not."""
    if not name:
        return c.false(NODECLASS_READY, NODECLASS_NOT_FOUND, "the NodePool names no EC2NodeClass")
    if nodeclass is None:
        return c.false(NODECLASS_READY, NODECLASS_NOT_FOUND, f"EC2NodeClass {name} not found")
    if nodeclass.deleting:
        return c.false(NODECLASS_READY, NODECLASS_TERMINATING, f"EC2NodeClass {name} is terminating")
    ready = c.find(nodeclass.conditions, c.READY)
    why = c.explain(x for x in nodeclass.conditions if x.type != c.READY)
    if ready is None or ready.status == c.UNKNOWN:
        message = f"EC2NodeClass {name} readiness unknown" + (f": {why}" if why else "")
        return c.false(NODECLASS_READY, NODECLASS_READINESS_UNKNOWN, message)
    if ready.status == c.FALSE:
        return c.false(
            NODECLASS_READY,
            ready.reason or "NodeClassNotReady",
            f"EC2NodeClass {name} not ready: {why or ready.message}",
        )
    return c.true(NODECLASS_READY)


def nodepool_conditions(
    *,
    generation: int,
    previous: Sequence[Condition],
    invalid: str | None,
    nodeclass_name: str,
    nodeclass: NodeClassView | None,
    now: datetime,
) -> tuple[Condition, ...]:
    """The pool's conditions: ``invalid`` is its validation error, ``nodeclass`` None when missing."""
    validation = (
        c.true(VALIDATION_SUCCEEDED)
        if invalid is None
        else c.false(VALIDATION_SUCCEEDED, VALIDATION_FAILED, invalid)
    )
    wanted = [validation, nodeclass_ready(nodeclass_name, nodeclass)]
    wanted.append(c.root(wanted))
    return c.merge(previous, wanted, now, generation)


def resources_status(capacity: Resources, nodes: int) -> dict[str, str]:
    """``status.resources``: the summed capacity of the pool's nodes and their count."""
    out = dict.fromkeys(BASE_RESOURCES, "0")
    out.update({k: v for k, v in capacity.to_api().items() if k != NODES})
    out[NODES] = str(nodes)
    return out


def nodepool_status(
    *,
    generation: int,
    previous: dict[str, Any],
    invalid: str | None,
    nodeclass_name: str,
    nodeclass: NodeClassView | None,
    capacity: Resources,
    nodes: int,
    now: datetime,
) -> dict[str, Any]:
    """The wanted status (conditions, resources, nodeClassObservedGeneration)."""
    conditions = nodepool_conditions(
        generation=generation,
        previous=c.parse(previous.get("conditions")),
        invalid=invalid,
        nodeclass_name=nodeclass_name,
        nodeclass=nodeclass,
        now=now,
    )
    out: dict[str, Any] = {
        "conditions": c.to_api(conditions),
        "resources": resources_status(capacity, nodes),
    }
    if nodeclass is not None:
        out["nodeClassObservedGeneration"] = nodeclass.generation
    elif previous.get("nodeClassObservedGeneration") is not None:
        out["nodeClassObservedGeneration"] = previous["nodeClassObservedGeneration"]
    return out
