"""A memo table that forgets everything when full: bounded memory, no per-hit bookkeeping.

For values computed from inputs that repeat a lot (every replica of a template has the same
requests): a hit is one dict lookup, and a table that fills up is cleared, not trimmed, since
the inputs that matter come back at once. Failures are never remembered: ``compute`` raising
leaves the table as it was.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class ClearingMemo(Generic[K, V]):
    """At most ``size`` remembered values, by key."""

    __slots__ = ("_size", "_values")

    def __init__(self, size: int) -> None:
        self._size = size
        self._values: dict[K, V] = {}

    def get(self, key: K, compute: Callable[[], V]) -> V:
        """The value remembered for ``key``, or ``compute()``'s, then remembered."""
        value = self._values.get(key)
        if value is None:
            value = compute()
            if len(self._values) >= self._size:
                self._values.clear()
            self._values[key] = value
        return value

    def __len__(self) -> int:
        return len(self._values)
