"""When each node last gained or lost a pod: the start of its ``consolidateAfter`` clock (pure).

A pod counts until it is *gone*: deleted from the API or terminal. A pod that only carries a
``deletionTimestamp`` still runs (its grace period may last seconds or minutes), so asking for
its deletion is not a pod event and its node is not empty yet; counting it as gone would start
the clock early by the whole termination time. DaemonSet and mirror pods never count.

The tracker compares each NodeClaim's set of such pods with the set it saw last round; a change
is stamped with that round's time, which the controller then persists as the claim's
``status.lastPodEventTime``. Until the informer shows the persisted stamp, :meth:`last_event`
answers with the tracker's own, so the round that sees a node become empty never reads the
claim's older stamp (which would let the node go at once).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from launcher.disruption.drain import evictable
from shared import pods
from shared.api.nodeclaim import INITIALIZED, NodeClaim

Obj = Mapping[str, Any]


def present_pods(pods_here: Iterable[Obj]) -> frozenset[str]:
    """Uids of the pods that keep a node from being empty: not DaemonSet, mirror or terminal.

    Terminating pods (with a ``deletionTimestamp``) are included: they are not gone yet.
    """
    return frozenset(pods.pod_uid(p) for p in pods_here if evictable(p))


def recorded_pod_event(claim: NodeClaim) -> datetime | None:
    """``status.lastPodEventTime``, else when the claim became Initialized, else its creation."""
    if claim.status.last_pod_event_time is not None:
        return claim.status.last_pod_event_time
    initialized = claim.condition(INITIALIZED)
    if initialized is not None and initialized.is_true and initialized.last_transition_time is not None:
        return initialized.last_transition_time
    return claim.metadata.creation_timestamp


@dataclass
class PodEventTracker:
    """Per NodeClaim name: the pods on its node last seen, and when that set last changed."""

    _seen: dict[str, frozenset[str]] = field(default_factory=dict)
    _stamps: dict[str, datetime] = field(default_factory=dict)

    def observe(self, pods_by_claim: Mapping[str, frozenset[str]], now: datetime) -> list[str]:
        """Record every claim's current pods; return the claims whose set changed (stamped ``now``).

        A claim seen for the first time is not stamped: nothing is known about its past, and its
        recorded time (:func:`recorded_pod_event`) stands. Claims no longer listed are forgotten.
        """
        changed: list[str] = []
        for claim, current in sorted(pods_by_claim.items()):
            previous = self._seen.get(claim)
            self._seen[claim] = current
            if previous is not None and previous != current:
                self._stamps[claim] = now
                changed.append(claim)
        for gone in self._seen.keys() - pods_by_claim.keys():
            del self._seen[gone]
            self._stamps.pop(gone, None)
        return changed

    def last_event(self, claim: NodeClaim) -> datetime | None:
        """The later of the claim's recorded pod event and the last change seen here."""
        recorded = recorded_pod_event(claim)
        ours = self._stamps.get(claim.name)
        if ours is None or (recorded is not None and recorded >= ours):
            return recorded
        return ours
