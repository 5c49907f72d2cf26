"""A NodePool's ``spec.warmPool`` and ``status.warmPool``: instances booted once, kept in reserve.

Shaped like an EKS managed node group's warm pool (``minSize``, ``maxGroupPreparedCapacity``,
``poolState``, ``reuseOnScaleIn``), with two differences: the planner chooses the instance types
(several per pool), and the pool's size follows recent demand between ``size`` and ``maxSize``.
Validation mirrors ``manifests/crds/jitnode.io_nodepools.yaml``; ``size <= maxSize`` is also a
CEL rule there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from shared.api._fields import Checker, join

STOPPED: Final = "Stopped"
HIBERNATED: Final = "Hibernated"
RUNNING: Final = "Running"
WARM_STATES: Final = (STOPPED, HIBERNATED, RUNNING)
MAX_WARM_POOL_SIZE: Final = 1000
DECIMAL_PATTERN: Final = r"^[0-9]+(\.[0-9]+)?$"

SPEC_PATH: Final = "spec.warmPool"
STATUS_PATH: Final = "status.warmPool"
SPEC_KEYS: Final = frozenset({"size", "maxSize", "state", "reuseOnScaleIn", "hedgedStarts"})
MAX_HEDGED_STARTS: Final = 4
STATUS_KEYS: Final = frozenset({"warm", "filling", "desired", "hourlyCost", "hourlyCostRunning"})
ENUMS: Final[Mapping[str, tuple[str, ...]]] = {f"{SPEC_PATH}.state": WARM_STATES}
DEFAULTS: Final[Mapping[str, object]] = {
    f"{SPEC_PATH}.size": 0,
    f"{SPEC_PATH}.state": STOPPED,
    f"{SPEC_PATH}.reuseOnScaleIn": False,
    f"{SPEC_PATH}.hedgedStarts": 0,
}


@dataclass(frozen=True)
class WarmPoolSpec:
    """How many warm instances a pool keeps, and in which state.

    ``size`` is always kept; up to ``max_size`` (None: ``size``) are kept while recent demand
    asks for more. ``hedged_starts`` spares start beside each parked instance taken for pods
    (``launcher.warmpool.hedging``). ``reuse_on_scale_in`` returns an emptied node to the pool instead of
    terminating it.
    """

    size: int = 0
    max_size: int | None = None
    state: str = STOPPED
    reuse_on_scale_in: bool = False
    hedged_starts: int = 0

    @property
    def upper(self) -> int:
        """The most warm instances the pool may hold."""
        return self.size if self.max_size is None else max(self.size, self.max_size)

    @property
    def hibernate(self) -> bool:
        return self.state == HIBERNATED

    @property
    def stops(self) -> bool:
        """Whether a warm instance is stopped (or hibernated) rather than left running."""
        return self.state != RUNNING

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {"size": self.size, "state": self.state}
        out["reuseOnScaleIn"] = self.reuse_on_scale_in
        out["hedgedStarts"] = self.hedged_starts
        if self.max_size is not None:
            out["maxSize"] = self.max_size
        return out


@dataclass(frozen=True)
class WarmPoolStatus:
    """What the launcher last counted: parked instances, those on their way, and what they cost."""

    warm: int = 0
    filling: int = 0
    desired: int = 0
    hourly_cost: str = "0"
    hourly_cost_running: str = "0"

    def to_api(self) -> dict[str, Any]:
        return {
            "warm": self.warm,
            "filling": self.filling,
            "desired": self.desired,
            "hourlyCost": self.hourly_cost,
            "hourlyCostRunning": self.hourly_cost_running,
        }


def parse_warm_pool(raw: Mapping[str, Any], check: Checker) -> WarmPoolSpec | None:
    """``spec.warmPool``, or None when absent; problems are reported on ``check``."""
    if not raw:
        return None
    path = SPEC_PATH
    check.keys(raw, path, SPEC_KEYS)
    size = check.integer(raw, "size", path, minimum=0, maximum=MAX_WARM_POOL_SIZE)
    max_size = check.integer(raw, "maxSize", path, minimum=0, maximum=MAX_WARM_POOL_SIZE)
    state = check.string(raw, "state", path, enum=WARM_STATES)
    reuse = check.boolean(raw, "reuseOnScaleIn", path)
    hedged = check.integer(raw, "hedgedStarts", path, minimum=0, maximum=MAX_HEDGED_STARTS)
    if size is not None and max_size is not None and size > max_size:
        check.error(join(path, "maxSize"), f"must be at least size ({size})")
    return WarmPoolSpec(
        size=size or 0,
        max_size=max_size,
        state=state or STOPPED,
        reuse_on_scale_in=bool(reuse),
        hedged_starts=hedged or 0,
    )


def parse_warm_pool_status(raw: Mapping[str, Any], check: Checker) -> WarmPoolStatus | None:
    """``status.warmPool`` as the launcher writes it, or None when absent."""
    if not raw:
        return None
    path = STATUS_PATH
    check.keys(raw, path, STATUS_KEYS)
    return WarmPoolStatus(
        warm=check.integer(raw, "warm", path, minimum=0) or 0,
        filling=check.integer(raw, "filling", path, minimum=0) or 0,
        desired=check.integer(raw, "desired", path, minimum=0) or 0,
        hourly_cost=check.string(raw, "hourlyCost", path, pattern=DECIMAL_PATTERN) or "0",
        hourly_cost_running=check.string(raw, "hourlyCostRunning", path, pattern=DECIMAL_PATTERN) or "0",
    )
