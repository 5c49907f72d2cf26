"""Hedged warm starts: spare parked instances started beside those pods wait for (pure).

A start from Stopped takes 15 to 35 s, a resume from Hibernated 8 s to minutes: the pods wait for
the slowest start of the instances they were planned on. With ``spec.warmPool.hedgedStarts: N``,
each parked instance taken for pods brings N more parked instances of the same pool with it.
kube-scheduler binds the pending pods to whichever is Ready first, and what is left empty goes
back to the pool when consolidation removes it (``reuse``: hedged instances always may, whatever
``reuseOnScaleIn`` says). Each spare pays at least EC2's one-minute minimum and its time until
consolidation removes it; ``bench/capacity_sim.py`` shows what that buys (``jitnode-stable+stopped``).

Only starts of parked Stopped or Hibernated instances for real pods are hedged: a Running
instance serves in seconds, an instance still filling is already on its way, and a
CapacityBuffer's chunks are not waiting for anything. Spares are the pool's parked instances in
the zones of those they stand in for first (pods pinned to a zone can only use a spare there),
then the fastest (Hibernated before Stopped), the largest (so a spare can take the pods of any
instance it stands in for), then the cheapest. Other pod constraints (anti-affinity, a zone
spread) are not weighed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Final

from launcher.model import InstanceType
from launcher.warmpool.claims import activated_at, hedged, is_warm, parked_state
from shared import labels
from shared.api.nodeclaim import NodeClaim
from shared.api.nodepool import NodePool
from shared.api.warmpool import HIBERNATED, STOPPED

HEDGED_STATES: Final = {HIBERNATED: 0, STOPPED: 1}  # lower starts first


def on_loan(claim: NodeClaim, now: datetime, window: timedelta) -> bool:
    """Taken in a hedged start within ``window``: it is expected back once emptied, so the pool
    does not refill it meanwhile."""
    at = activated_at(claim)
    return hedged(claim) and not is_warm(claim) and at is not None and now - at <= window


def hedgeable(claim: NodeClaim, pools: Mapping[str, NodePool]) -> int:
    """How many spares a parked claim taken for pods brings (0: its start is not hedged)."""
    pool = pools.get(claim.nodepool or "")
    spec = pool.warm_pool if pool is not None else None
    if spec is None or parked_state(claim) not in HEDGED_STATES:
        return 0
    return spec.hedged_starts


def spares(
    taken: Sequence[NodeClaim],
    claims: Iterable[NodeClaim],
    pools: Mapping[str, NodePool],
    catalogue: Mapping[str, InstanceType],
) -> list[NodeClaim]:
    """The parked claims to start beside ``taken`` (the parked claims a plan took for real pods,
    as they were before being taken): ``hedgedStarts`` per taken claim of its pool, as many as
    the pool has parked."""
    taken_names = {c.name for c in taken}
    wanted: dict[str, int] = {}
    for claim in taken:
        count = hedgeable(claim, pools)
        if count > 0:
            wanted[claim.nodepool or ""] = wanted.get(claim.nodepool or "", 0) + count
    if not wanted:
        return []
    parked = [
        c
        for c in claims
        if c.name not in taken_names
        and is_warm(c)
        and c.metadata.deletion_timestamp is None
        and parked_state(c) in HEDGED_STATES
        and (c.nodepool or "") in wanted
    ]

    zones = {c.metadata.labels.get(labels.ZONE) for c in taken}

    def rank(claim: NodeClaim) -> tuple[bool, int, int, float, str]:
        state = parked_state(claim) or STOPPED
        instance_type = catalogue.get(claim.metadata.labels.get(labels.INSTANCE_TYPE, ""))
        cpu = instance_type.allocatable.amount("cpu") if instance_type is not None else 0
        price = (instance_type.cheapest_price(claim.node_requirements()) or 0.0) if instance_type else 0.0
        elsewhere = claim.metadata.labels.get(labels.ZONE) not in zones
        return (elsewhere, HEDGED_STATES[state], -cpu, price, claim.name)

    out: list[NodeClaim] = []
    for claim in sorted(parked, key=rank):
        pool = claim.nodepool or ""
        if wanted.get(pool, 0) > 0:
            wanted[pool] -= 1
            out.append(claim)
    return out
