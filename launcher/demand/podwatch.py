"""The launcher's own pod watch: a second, independent source of demand beside the extenders.

The extenders' demand stream is the early signal, but it is one path: an extender rollout gone
wrong, a crash loop, a NetworkPolicy or an expired token would leave pending pods unseen. So
the launcher also judges every pod its informer sees by the same rule the extender uses
(:mod:`shared.pendingpods`) and feeds what it finds into the :class:`DemandBook` as the source
``launcher/pod-watch``. The book merges by pod uid, so a pod both report is planned for once,
credited to the extender when the reports tie. Runs on every replica (the informer does), so a
new leader already holds the picture. Work per event is O(1); memory grows with pending pods.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from launcher.demand.book import OWN_WATCH, DemandBook
from shared.demand import PodDemand, Upsert, Withdraw
from shared.errors import FieldError, ValidationError
from shared.informer import Obj
from shared.logs import get_logger
from shared.pendingpods import Gone, judge
from shared.pods import pod_uid

log = get_logger(__name__)


class PodWatchDemand:
    """An informer handler that keeps :data:`OWN_WATCH`'s part of the book current."""

    def __init__(
        self,
        book: DemandBook,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._book = book
        self._clock = clock
        self._monotonic = monotonic
        self._seq = 0
        self._reported: set[str] = set()
        book.connected(OWN_WATCH, monotonic())

    def __len__(self) -> int:
        return len(self._reported)

    def on_added(self, obj: Obj) -> None:
        self._observe(obj)

    def on_modified(self, old: Obj, new: Obj) -> None:
        self._observe(new)

    def on_deleted(self, obj: Obj) -> None:
        self._withdraw(pod_uid(obj), "deleted")

    def _observe(self, pod: Obj) -> None:
        uid = pod_uid(pod)
        verdict = judge(pod)
        if isinstance(verdict, Gone):
            self._withdraw(uid, verdict.why)
            return
        if verdict is None or uid in self._reported:
            return  # tied to one node, or already reported (its shape can't change while pending)
        try:
            demand = PodDemand.from_pod(pod, "unschedulable", verdict.since or self._clock())
        except (ValidationError, FieldError, TypeError, ValueError) as exc:
            log.warning("pod watch: unreadable pod", uid=uid, error=str(exc))
            return
        self._reported.add(uid)
        self._seq += 1
        self._book.apply(Upsert(self._seq, OWN_WATCH, demand), self._monotonic())

    def _withdraw(self, uid: str, why: str) -> None:
        if uid not in self._reported:
            return
        self._reported.discard(uid)
        self._seq += 1
        self._book.apply(Withdraw(self._seq, OWN_WATCH, uid, why), self._monotonic())
