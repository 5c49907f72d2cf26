"""What a NodeClaim's conditions should say beyond the lifecycle's own (pure).

The lifecycle controller writes ``Launched``, ``Registered`` and ``Initialized`` as it takes each
step (and ``Ready`` with ``Initialized``). This adds what Karpenter derives from them:

- ``Ready``, the root over the three: Unknown ("ReconcilingDependents", naming the steps still
  to come) until all are True, False ("UnhealthyDependents") once one fails, e.g. a launch error;
- ``Consolidatable``: True once ``consolidateAfter`` has passed since the last pod event on the
  node (or since it was initialized), absent while the clock runs, before initialization and when
  the pool never consolidates; the answer includes when to look again.

``Drifted`` is written by ``status.drift`` (and kept here, as another writer's condition); an
``Empty`` condition was dropped by Karpenter v1 (its consolidation reads pods directly), and
jitnode's does the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from launcher.status import conditions as c
from shared.api.meta import Condition
from shared.api.nodeclaim import CONSOLIDATABLE, INITIALIZED, LAUNCHED, READY, REGISTERED

DEPENDENTS: Final = (LAUNCHED, REGISTERED, INITIALIZED)


@dataclass(frozen=True)
class ClaimConditions:
    conditions: tuple[Condition, ...]
    recheck_at: datetime | None = None  # when Consolidatable would turn True, if it is not yet


def ready(conditions: Sequence[Condition]) -> Condition:
    """The root ``Ready``; an already True one is kept as written (the lifecycle's message)."""
    dependents = [c.find(conditions, t) or Condition(t, c.UNKNOWN) for t in DEPENDENTS]
    wanted = c.root(dependents, READY)
    existing = c.find(conditions, READY)
    if existing is not None and existing.status == wanted.status == c.TRUE:
        return existing
    return wanted


def consolidatable_at(
    conditions: Sequence[Condition], consolidate_after: timedelta | None, last_pod_event: datetime | None
) -> datetime | None:
    """When the node becomes a consolidation candidate (None: not while things stay as they are)."""
    initialized = c.find(conditions, INITIALIZED)
    if consolidate_after is None or initialized is None or initialized.status != c.TRUE:
        return None
    since = last_pod_event or initialized.last_transition_time
    if since is None:
        return None
    try:
        return since + consolidate_after
    except OverflowError:
        return None


def nodeclaim_conditions(
    previous: Sequence[Condition],
    *,
    generation: int | None,
    consolidate_after: timedelta | None,
    last_pod_event: datetime | None,
    now: datetime,
) -> ClaimConditions:
    """``previous`` with ``Ready`` and ``Consolidatable`` brought up to date.

    ``consolidate_after`` is the pool's (None: Never, or the pool is gone).
    """
    wanted = [ready(previous)]
    remove: tuple[str, ...] = ()
    recheck: datetime | None = None
    at = consolidatable_at(previous, consolidate_after, last_pod_event)
    if at is not None and now >= at:
        wanted.append(c.true(CONSOLIDATABLE))
    else:
        remove = (CONSOLIDATABLE,)
        recheck = at
    return ClaimConditions(c.merge(previous, wanted, now, generation, remove=remove), recheck)
