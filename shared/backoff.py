"""Exponential backoff with jitter, for reconnect loops (watches, the demand stream).

Jitter spreads reconnects of many replicas after a shared outage, so they don't all hit the
API server or the launcher in the same millisecond; the cap keeps the worst wait short enough
that demand is not lost for long. Pure: the caller sleeps.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(slots=True)
class Backoff:
    """Delays ``uniform(c/2, c)`` with ``c = min(cap, base * factor**n)``; :meth:`reset` after success."""

    base: float = 0.1
    cap: float = 10.0
    factor: float = 2.0
    rng: random.Random = field(default_factory=random.Random)
    attempts: int = 0

    def next_delay(self) -> float:
        """The delay before the next attempt, growing with each call until :meth:`reset`."""
        ceiling = min(self.cap, self.base * self.factor ** min(self.attempts, 64))
        self.attempts += 1
        return self.rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.attempts = 0
