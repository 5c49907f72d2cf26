"""How a warm instance is written down, so that a restarted launcher reads back the same pool (pure).

A warm instance is a NodeClaim like any other (created before EC2 is called, with its finalizer
and ClientToken), plus:

- the label ``jitnode.io/warm: "true"`` while it belongs to the pool (filling or parked);
- a ``Warm`` condition: absent while filling, True once parked (reason: the state it waits in),
  False with reason ``Activated`` once the planner took it for pods;
- on a claim taken from the pool, the annotation ``jitnode.io/warm-serves`` with the pods it was
  started for and their requests (a claim's spec is immutable, and in-flight accounting needs
  them to not plan those pods again while the instance starts);
- on a claim taken in a hedged start (``hedging``), ``jitnode.io/warm-hedged`` naming the claim
  the pods were planned on (its own name, or another's for a spare);
- on a claim returned to the pool on scale-in (``reuse``), ``jitnode.io/warm-returned``.

The instance keeps the tags every claim's instance has (cluster, nodepool, nodeclaim): leak
collection and a restarted launcher find a warm instance through its claim like any other.

Taking a claim from the pool writes the status first (``Warm`` False, ``Activated``) and then
drops the label: the label is the commit point, and a claim that still has it after a crash is
simply parked again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Final

import orjson

from shared import labels
from shared.api.meta import Condition
from shared.api.nodeclaim import INITIALIZED, NodeClaim
from shared.errors import FieldError, ValidationError
from shared.resources import EMPTY, Resources

WARM_CONDITION: Final = "Warm"
ACTIVATED: Final = "Activated"


def is_warm(claim: NodeClaim) -> bool:
    """Whether the claim belongs to its pool's warm pool (filling or parked)."""
    return claim.metadata.labels.get(labels.WARM_LABEL) == "true"


def hedged(claim: NodeClaim) -> bool:
    """Whether the claim was taken from its pool in a hedged start (it goes back when emptied)."""
    return labels.WARM_HEDGED_ANNOTATION in claim.metadata.annotations


def is_spare(claim: NodeClaim) -> bool:
    """A spare of a hedged start: taken for no pod of its own (the claim it stands in for is
    named in its annotation), so it is no demand for the pool's sizing."""
    hedge = claim.metadata.annotations.get(labels.WARM_HEDGED_ANNOTATION)
    return hedge is not None and hedge != claim.name


def warm_condition(claim: NodeClaim) -> Condition | None:
    return claim.condition(WARM_CONDITION)


def parked_state(claim: NodeClaim) -> str | None:
    """The state a parked warm claim waits in (Stopped, Hibernated, Running); None if not parked."""
    condition = warm_condition(claim)
    if not is_warm(claim) or condition is None or not condition.is_true:
        return None
    return condition.reason


def activated_at(claim: NodeClaim) -> datetime | None:
    """When the planner took the claim from its warm pool, if it did."""
    condition = warm_condition(claim)
    if condition is None or condition.is_true or condition.reason != ACTIVATED:
        return None
    return condition.last_transition_time


def starting(claim: NodeClaim) -> bool:
    """Taken from the pool and not yet a Ready node again: its instance must be (re)started."""
    return not is_warm(claim) and activated_at(claim) is not None and not claim.is_true(INITIALIZED)


def held(claim: NodeClaim) -> bool:
    """Whether a stopped instance or a missing Node is expected for this claim (not a failure)."""
    return is_warm(claim) or starting(claim)


def stopped_on_purpose(obj: Mapping[str, Any]) -> bool:
    """Whether a NodeClaim (as the API serves it) is one whose instance the warm pool stops and
    starts itself: its stop is no interruption to react to."""
    try:
        return held(NodeClaim.from_api(obj))
    except ValidationError:
        return False


def serves_annotation(pods: Iterable[str], requests: Resources) -> str:
    """The ``jitnode.io/warm-serves`` value for a claim started for ``pods``."""
    return orjson.dumps({"pods": sorted(pods), "requests": requests.to_api()}).decode()


def served(claim: NodeClaim) -> tuple[tuple[str, ...], Resources]:
    """The pods a claim was planned or started for, and what they (and daemons) request.

    For a claim taken from the warm pool, what its annotation records; otherwise its spec. An
    unreadable annotation counts as nothing served (its pods are then planned again, which is
    safe: the warm instance still starts).
    """
    raw = claim.metadata.annotations.get(labels.WARM_SERVES_ANNOTATION)
    if raw is None:
        return claim.pods, claim.requests
    try:
        value: Any = orjson.loads(raw)
        pods = value.get("pods") if isinstance(value, Mapping) else None
        if not isinstance(pods, list):
            return (), EMPTY
        requests = Resources.parse(value.get("requests") or {}, labels.WARM_SERVES_ANNOTATION)
    except (orjson.JSONDecodeError, TypeError, FieldError, ValidationError):
        return (), EMPTY
    return tuple(str(p) for p in pods), requests
