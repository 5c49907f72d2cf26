"""The unavailable-offerings cache: offerings EC2 recently had no capacity for.

When CreateFleet reports insufficient capacity for an (instance type, zone, capacity type), the
launcher stops asking for that offering for a while (three minutes, like Karpenter) and plans
again without it; asking again at once would fail the same way and delay the pods. The cache
is a pure data structure: the clock is injected so tests and the planner never sleep.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Final, NamedTuple

DEFAULT_TTL_SECONDS: Final = 180.0


class OfferingKey(NamedTuple):
    """One purchasable offering: what the planner excludes and CreateFleet reports on."""

    instance_type: str
    zone: str
    capacity_type: str


class UnavailableOfferings:
    """Offerings marked unavailable, each until its own expiry time.

    Marking an offering again extends its expiry (a second failure means capacity is still short).
    Expired entries are dropped lazily on read, so the cache never grows past the offerings
    marked within one TTL.
    """

    def __init__(self, ttl: float = DEFAULT_TTL_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        if ttl <= 0:
            raise ValueError(f"ttl must be positive, got {ttl}")
        self._ttl = ttl
        self._clock = clock
        self._until: dict[OfferingKey, float] = {}

    @property
    def ttl(self) -> float:
        return self._ttl

    def mark(self, instance_type: str, zone: str, capacity_type: str) -> None:
        """Mark one offering unavailable for the TTL from now."""
        self._until[OfferingKey(instance_type, zone, capacity_type)] = self._clock() + self._ttl

    def mark_all(self, offerings: Iterable[tuple[str, str, str]]) -> None:
        """Mark several offerings at once (one CreateFleet error can name many)."""
        expiry = self._clock() + self._ttl
        for instance_type, zone, capacity_type in offerings:
            self._until[OfferingKey(instance_type, zone, capacity_type)] = expiry

    def is_unavailable(self, instance_type: str, zone: str, capacity_type: str) -> bool:
        expiry = self._until.get(OfferingKey(instance_type, zone, capacity_type))
        return expiry is not None and expiry > self._clock()

    def snapshot(self) -> frozenset[OfferingKey]:
        """The offerings unavailable right now, as an immutable set to hand to the planner."""
        self._expire()
        return frozenset(self._until)

    def expires_at(self, instance_type: str, zone: str, capacity_type: str) -> float | None:
        """When the offering becomes available again (clock time), or None when it is available."""
        expiry = self._until.get(OfferingKey(instance_type, zone, capacity_type))
        return expiry if expiry is not None and expiry > self._clock() else None

    def __len__(self) -> int:
        self._expire()
        return len(self._until)

    def _expire(self) -> None:
        now = self._clock()
        for key in [k for k, expiry in self._until.items() if expiry <= now]:
            del self._until[key]
