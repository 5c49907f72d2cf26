"""Whether a node consolidation removes goes back to its pool's warm pool (pure).

``reuseOnScaleIn`` (as an EKS warm pool's): a node that consolidation has drained, because it was
empty or its pods fit elsewhere, is returned to the warm pool instead of terminated when the pool
wants another instance, and is then parked like a fill (cordon, delete the Node, stop; see
``steps``). Its images are pulled and its boot is paid, so the next scale-up starts it in
seconds, as it would any warm instance.

Only capacity that is merely surplus goes back. A node that expired, drifted, was interrupted or
is being repaired must go, and goes; so does one whose claim is being deleted. An instance taken
from the pool in a hedged start (``hedging``) goes back whatever ``reuseOnScaleIn`` says: it was
only lent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from launcher.disruption.mark import EMPTY, UNDERUTILIZED
from launcher.warmpool.claims import hedged, is_warm
from launcher.warmpool.sizing import is_expired
from shared.api.nodeclaim import DRIFTED, NodeClaim
from shared.api.nodepool import NodePool

SURPLUS_REASONS: Final = frozenset({EMPTY, UNDERUTILIZED})  # consolidation's reasons


def refusal(
    claim: NodeClaim, pool: NodePool | None, warm: int, desired: int, reason: str, now: datetime
) -> str | None:
    """Why the claim may not go back to the warm pool, or None when it goes back. ``warm`` is the
    pool's warm instances now (filling or parked), ``desired`` the size it wants."""
    spec = pool.warm_pool if pool is not None else None
    if spec is None or not (spec.reuse_on_scale_in or hedged(claim)):
        return "its nodepool does not reuse nodes on scale-in (and it was not started hedged)"
    if reason not in SURPLUS_REASONS:
        return f"it was disrupted as {reason}, not as surplus"
    if is_warm(claim) or claim.metadata.deletion_timestamp is not None:
        return "the claim is already warm or being deleted"
    if is_expired(claim, now):
        return "it has expired"
    if claim.is_true(DRIFTED):
        return "it has drifted"
    if warm >= desired:
        return f"the warm pool already has {warm} of the {desired} instances it wants"
    return None
