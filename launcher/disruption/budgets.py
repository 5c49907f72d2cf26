"""NodePool disruption budgets: how many more of a pool's nodes may be disrupted right now (pure).

Karpenter's arithmetic: each active budget that applies to the reason allows ``nodes`` of the
pool's node count (percentages rounded up); the smallest allowance wins, and nodes already being
disrupted (marked, or their NodeClaim deleting) count against it. Forceful disruption (expiry)
is not limited by budgets but still counts against them, so voluntary disruption waits for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from shared.api.nodepool import NodePool


def allowed(pool: NodePool, total_nodes: int, disrupting: int, now: datetime, reason: str) -> int:
    """How many more nodes of ``pool`` may start a ``reason`` disruption at ``now``."""
    return max(0, pool.budget_nodes_allowed(total_nodes, now, reason) - disrupting)


@dataclass
class BudgetTracker:
    """Budget slots for one decision round; taking a slot counts the node as disrupting."""

    pools: Mapping[str, NodePool]
    totals: Mapping[str, int]
    now: datetime
    disrupting: dict[str, int] = field(default_factory=dict)

    def remaining(self, pool: str, reason: str) -> int:
        nodepool = self.pools.get(pool)
        if nodepool is None:
            return 0
        return allowed(nodepool, self.totals.get(pool, 0), self.disrupting.get(pool, 0), self.now, reason)

    def try_take(self, pool: str, reason: str) -> bool:
        """Take one slot for a voluntary disruption; False when the budget is spent."""
        if self.remaining(pool, reason) <= 0:
            return False
        self.force(pool)
        return True

    def force(self, pool: str) -> None:
        """Count a disruption budgets do not limit (expiry), so later voluntary ones see it."""
        self.disrupting[pool] = self.disrupting.get(pool, 0) + 1
