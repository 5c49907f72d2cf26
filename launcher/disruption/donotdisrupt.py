"""The ``jitnode.io/do-not-disrupt`` annotation, with Karpenter v1.12's durations (pure).

On a Pod the value is ``"true"`` (protected for as long as the annotation stays) or a positive
Go duration such as ``"30m"``: the pod is protected until that long after it started
(``status.startTime``, as Karpenter counts it); a pod without a start time yet is protected
(fail safe). Any other value is ignored, as Karpenter does, and reported: the caller logs it and
records a Warning Event ``InvalidDoNotDisruptAnnotation`` on the pod. On a Node only ``"true"``
protects (Karpenter reads no duration there either); a node value that is not ``"true"`` is
reported the same way.

Protection blocks voluntary disruption (empty, drifted, underutilized) and keeps the drain from
evicting the pod; forceful disruption (expiry) still goes ahead and waits for the pod.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from shared import labels
from shared.api._fields import parse_time
from shared.api.durations import parse_go_duration
from shared.errors import FieldError

Obj = Mapping[str, Any]
FIELD: Final = f"metadata.annotations[{labels.DO_NOT_DISRUPT_ANNOTATION}]"
INVALID_EVENT: Final = "InvalidDoNotDisruptAnnotation"


@dataclass(frozen=True)
class Protection:
    """Whether the annotation protects the object now; ``until`` ends a duration's protection.

    ``problem`` says why a present value was ignored (None when it was understood).
    """

    active: bool = False
    until: datetime | None = None
    problem: str | None = None


UNPROTECTED: Final = Protection()


def annotation(obj: Obj) -> str | None:
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(labels.DO_NOT_DISRUPT_ANNOTATION)
    return None if value is None else str(value)


def parse_protection_duration(value: str) -> timedelta:
    """A positive Go duration (``"30m"``, ``"1h30m"``, ``"90s"``); raises ``FieldError`` naming the field.

    A bare number has no unit, which Go's ``time.ParseDuration`` refuses, so it is refused here.
    """
    try:
        float(value)
    except ValueError:
        pass
    else:
        raise FieldError(FIELD, f'{value!r} is neither "true" nor a duration with a unit (e.g. 30m)')
    seconds = parse_go_duration(value, FIELD)
    if seconds <= 0:
        raise FieldError(FIELD, f"duration {value!r} must be positive")
    return timedelta(seconds=seconds)


def _is_true(value: str) -> bool:
    # Any spelling of true: jitnode accepted "True" before durations, and it must still protect.
    return value.strip().lower() == "true"


def pod_protection(pod: Obj, now: datetime) -> Protection:
    """The pod's protection at ``now`` (see the module docstring)."""
    value = annotation(pod)
    if value is None:
        return UNPROTECTED
    if _is_true(value):
        return Protection(active=True)
    try:
        duration = parse_protection_duration(value)
    except FieldError as error:
        return Protection(problem=f"{error}; ignoring the annotation")
    started = _start_time(pod)
    if started is None:
        return Protection(active=True)  # not started yet: its clock has not begun
    try:
        until = started + duration
    except OverflowError:
        return Protection(active=True)
    return Protection(active=now < until, until=until)


def node_protection(node: Obj) -> Protection:
    """A node is protected by ``"true"`` only; anything else is reported and ignored."""
    value = annotation(node)
    if value is None:
        return UNPROTECTED
    if _is_true(value):
        return Protection(active=True)
    return Protection(
        problem=f'{FIELD}: {value!r} is not "true"; durations apply to pods only; ignoring the annotation'
    )


def _start_time(pod: Obj) -> datetime | None:
    # Reads the pod's status.startTime (kept by the launcher's slim pod cache for this).
    raw = (pod.get("status") or {}).get("startTime")
    if not isinstance(raw, str) or not raw:
        return None
    try:
        return parse_time(raw)
    except ValueError:
        return None
