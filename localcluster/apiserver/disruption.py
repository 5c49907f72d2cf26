"""PodDisruptionBudget arithmetic, shared by the PDB status controller and the eviction subresource.

Pure: the caller passes the pods a budget selects and the replica counts of their controllers.
Mirrors the disruption controller: ``minAvailable`` as an integer counts the selected pods;
percentages and ``maxUnavailable`` are relative to the controllers' desired replicas.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from localcluster.apiserver.objects import controller_of, is_ready, now_rfc3339

Obj = dict[str, Any]

EVICTION_REFUSED = "Cannot evict pod as it would violate the pod's disruption budget."


@dataclass(frozen=True)
class Budget:
    expected: int
    desired: int
    healthy: int

    @property
    def disruptions_allowed(self) -> int:
        allowed = self.healthy - self.desired
        return allowed if self.expected > 0 and allowed > 0 else 0


def _scaled(value: Any, total: int, field: str) -> int:
    """An IntOrString against ``total``; percentages round up like ``GetScaledValueFromIntOrPercent``."""
    if isinstance(value, bool):
        raise ValueError(f"{field}: must be an integer or a percentage")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.endswith("%") and value[:-1].isdigit():
        return math.ceil(int(value[:-1]) * total / 100)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise ValueError(f"{field}: invalid value {value!r}: must be an integer or a percentage")


def is_healthy(pod: Obj) -> bool:
    return not pod.get("metadata", {}).get("deletionTimestamp") and is_ready(pod)


def budget(pdb: Obj, pods: Sequence[Obj], controller_replicas: Mapping[str, int]) -> Budget:
    """Expected, desired and currently healthy pods for one budget."""
    spec = pdb.get("spec") or {}
    healthy = sum(1 for p in pods if is_healthy(p))
    min_available, max_unavailable = spec.get("minAvailable"), spec.get("maxUnavailable")
    if isinstance(min_available, int) and not isinstance(min_available, bool):
        return Budget(expected=len(pods), desired=min_available, healthy=healthy)
    seen: set[str] = set()
    expected = 0
    for pod in pods:
        owner = controller_of(pod)
        uid = owner.get("uid") if owner else None
        if uid is None or uid not in controller_replicas:
            expected += 1
        elif uid not in seen:
            seen.add(uid)
            expected += controller_replicas[uid]
    if min_available is not None:
        desired = _scaled(min_available, expected, "spec.minAvailable")
    elif max_unavailable is not None:
        desired = max(0, expected - _scaled(max_unavailable, expected, "spec.maxUnavailable"))
    else:  # neither set: no disruption is allowed
        desired = expected
    return Budget(expected=expected, desired=desired, healthy=healthy)


def pdb_status(pdb: Obj, b: Budget, previous: Obj | None) -> Obj:
    """The ``.status`` the disruption controller would write (condition times kept when unchanged)."""
    allowed = b.disruptions_allowed
    ok = allowed > 0
    cond_status = "True" if ok else "False"
    old_cond = next(
        (c for c in ((previous or {}).get("conditions") or []) if c.get("type") == "DisruptionAllowed"), None
    )
    when = (
        old_cond["lastTransitionTime"]
        if old_cond and old_cond.get("status") == cond_status
        else now_rfc3339()
    )
    return {
        "observedGeneration": pdb.get("metadata", {}).get("generation", 1),
        "disruptionsAllowed": allowed,
        "currentHealthy": b.healthy,
        "desiredHealthy": b.desired,
        "expectedPods": b.expected,
        "conditions": [
            {
                "type": "DisruptionAllowed",
                "status": cond_status,
                "reason": "SufficientPods" if ok else "InsufficientPods",
                "message": "",
                "observedGeneration": pdb.get("metadata", {}).get("generation", 1),
                "lastTransitionTime": when,
            }
        ],
    }


def refusal_cause(pdb: Obj, b: Budget) -> dict[str, str]:
    name = pdb.get("metadata", {}).get("name", "")
    return {
        "reason": "DisruptionBudget",
        "message": f"The disruption budget {name} needs {b.desired} healthy pods "
        f"and has {b.healthy} currently",
    }


def can_evict_unhealthy(pdb: Obj, b: Budget) -> bool:
    """Whether a pod that is not healthy may go without spending the budget."""
    policy = (pdb.get("spec") or {}).get("unhealthyPodEvictionPolicy", "IfHealthyBudget")
    return policy == "AlwaysAllow" or b.healthy >= b.desired
