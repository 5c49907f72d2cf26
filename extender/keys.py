"""Node annotation keys the extender reads that the launcher writes (beyond ``shared.labels``).

Kept here until the launcher adopts them into ``shared.labels``; both sides must agree.
"""

from __future__ import annotations

from typing import Final

# Hourly price of the node's instance in USD, as a decimal string ("0.192"). Read from the
# annotation, else from a label of the same key. Prioritize prefers cheaper capacity per resource.
PRICE_PER_HOUR: Final = "jitnode.io/price-per-hour"
# RFC 3339 time after which the launcher replaces the node (expireAfter). Nodes close to it
# score 0 so new pods don't land on a node about to be drained.
EXPIRES_AT: Final = "jitnode.io/expires-at"

# Taints a node carries only while it starts; it is still capacity that is coming.
STARTUP_TAINTS: Final = frozenset(
    {
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
        "node.cloudprovider.kubernetes.io/uninitialized",
    }
)
