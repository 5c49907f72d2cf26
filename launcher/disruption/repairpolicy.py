"""Repair policies: which Node condition, in which status, for how long, makes a node unhealthy (pure).

Written in the launcher's configuration as ``{"Type:Status": duration}`` (``Ready:False: 30m``);
the defaults are Karpenter's AWS ones: the kubelet's ``Ready`` and the conditions of the EKS node
monitoring agent. Kept apart from the decisions so that the configuration can validate them
without importing the planner.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from shared.errors import FieldError, ValidationError

CONDITION_STATUSES: Final = ("True", "False", "Unknown")
DEFAULT_MAX_UNHEALTHY_PERCENT: Final = 20
# Karpenter's AWS repair policies: the kubelet's Ready, and the EKS node monitoring agent's.
DEFAULT_POLICIES: Final[Mapping[str, float]] = {
    "Ready:False": 1800.0,
    "Ready:Unknown": 1800.0,
    "AcceleratedHardwareReady:False": 600.0,
    "StorageReady:False": 1800.0,
    "NetworkingReady:False": 1800.0,
    "KernelReady:False": 1800.0,
    "ContainerRuntimeReady:False": 1800.0,
}


@dataclass(frozen=True)
class RepairPolicy:
    """Repair a node whose ``condition`` has had ``status`` for longer than ``toleration``."""

    condition: str
    status: str
    toleration: timedelta


def parse_policies(raw: Mapping[str, float], path: str) -> tuple[RepairPolicy, ...]:
    """Policies from ``{"Type:Status": seconds}``; raises ``ValidationError`` naming each bad entry."""
    errors: list[FieldError] = []
    out: list[RepairPolicy] = []
    for key, seconds in raw.items():
        where = f"{path}.{key}"
        condition, sep, status = str(key).partition(":")
        if not sep or not condition.strip():
            errors.append(FieldError(where, "expected ConditionType:Status, such as Ready:False"))
        elif status not in CONDITION_STATUSES:
            errors.append(
                FieldError(where, f"status {status!r} must be one of {', '.join(CONDITION_STATUSES)}")
            )
        elif not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
            errors.append(FieldError(where, f"toleration must be a duration of 0s or more, got {seconds!r}"))
        else:
            out.append(RepairPolicy(condition.strip(), status, timedelta(seconds=float(seconds))))
    if errors:
        raise ValidationError(errors, "repair policies")
    return tuple(sorted(out, key=lambda p: (p.condition, p.status)))
