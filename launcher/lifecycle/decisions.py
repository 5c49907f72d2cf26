"""What to do next with one NodeClaim, decided from the claim, its instance and its Node.

Level-triggered and pure: the controller calls :func:`next_step` on every change and every
resync with whatever it observes, so a restart in any state resumes correctly. In particular a
claim whose launch was interrupted before its instance id was recorded is matched to its
instance by the ``jitnode.io/nodeclaim`` tag (put on the instance atomically by CreateFleet)
and adopted, never launched twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from launcher.model import Instance
from launcher.warmpool import claims as warm
from shared.api.nodeclaim import INITIALIZED, LAUNCHED, REGISTERED, NodeClaim

# EC2 instance states from which an instance never becomes usable again.
GONE_STATES = frozenset({"shutting-down", "terminated", "stopping", "stopped"})
# States a warm instance waits in (see ``launcher.warmpool``).
WARM_STATES = frozenset({"stopping", "stopped"})


@dataclass(frozen=True)
class Launch:
    """No instance exists for the claim: call CreateFleet."""


@dataclass(frozen=True)
class Adopt:
    """An instance tagged for the claim exists but the claim does not record it (a crash)."""

    instance: Instance


@dataclass(frozen=True)
class Register:
    """The claim's Node has joined: label it and mark the claim Registered."""

    node_name: str


@dataclass(frozen=True)
class Initialize:
    """The claim's Node is Ready: mark the claim Initialized."""

    node_name: str


@dataclass(frozen=True)
class Delete:
    """The claim can no longer become a node: delete it (termination then runs)."""

    reason: str


@dataclass(frozen=True)
class TerminateInstance:
    """The claim is being deleted and its instance still runs."""

    instance_id: str


@dataclass(frozen=True)
class DeleteNode:
    """The claim is being deleted, its instance is gone, its Node object remains."""

    node_name: str


@dataclass(frozen=True)
class RemoveFinalizer:
    """Everything the claim owned is gone: let the API server delete it."""


@dataclass(frozen=True)
class Wait:
    """Nothing to do until something changes."""

    reason: str


Step = (
    Launch | Adopt | Register | Initialize | Delete | TerminateInstance | DeleteNode | RemoveFinalizer | Wait
)


def node_is_ready(node: Mapping[str, Any]) -> bool:
    """True when the Node's Ready condition is True."""
    conditions = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def launched_at(claim: NodeClaim) -> datetime | None:
    """When the claim's instance was launched (its Launched condition turned True)."""
    condition = claim.condition(LAUNCHED)
    if condition is None or not condition.is_true:
        return None
    return condition.last_transition_time


def next_step(
    claim: NodeClaim,
    instance: Instance | None,
    node: Mapping[str, Any] | None,
    now: datetime,
    *,
    registration_timeout: timedelta,
) -> Step:
    """The one next step for ``claim``.

    ``instance`` is the claim's instance as EC2 reports it (found by the recorded id, else by
    the nodeclaim tag), None when EC2 knows none; ``node`` is the Node whose providerID matches
    the instance, None when none has joined.
    """
    if claim.metadata.deletion_timestamp is not None:
        if instance is not None and instance.state == "shutting-down":
            return Wait(f"instance {instance.id} is shutting down")
        if instance is not None and instance.state != "terminated":
            return TerminateInstance(instance.id)
        if node is not None:
            return DeleteNode(str(node["metadata"]["name"]))
        return RemoveFinalizer()

    if instance is None:
        if claim.status.instance_id:
            return Delete(f"instance {claim.status.instance_id} no longer exists")
        return Launch()
    if claim.status.instance_id != instance.id:
        return Adopt(instance)
    if warm.held(claim) and instance.state in WARM_STATES:
        # Parked in its pool, or taken and about to be started: not a failure (launcher.warmpool).
        return Wait(f"warm instance {instance.id} is {instance.state}")
    if instance.state in GONE_STATES:
        return Delete(f"instance {instance.id} is {instance.state}")

    if node is None:
        if warm.is_warm(claim) and claim.is_true(REGISTERED):
            return Wait("warm instance's node removed until it is used")
        started = launched_at(claim) or instance.launch_time
        # A claim taken from a warm pool registers again: time that from when it was taken.
        activated = warm.activated_at(claim)
        if activated is not None and activated > started:
            started = activated
        if now - started > registration_timeout:
            return Delete(f"node did not register within {registration_timeout}")
        return Wait("waiting for the node to register")
    node_name = str(node["metadata"]["name"])
    if not claim.is_true(REGISTERED):
        return Register(node_name)
    if not claim.is_true(INITIALIZED):
        if node_is_ready(node):
            return Initialize(node_name)
        return Wait("waiting for the node to become Ready")
    return Wait("ready")
