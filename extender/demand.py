"""The demand this extender currently reports, one entry per pod uid, and the pod-watch rules.

Two things produce demand: the pod watch (a pod whose PodScheduled condition is False with
reason Unschedulable, from any scheduler: :mod:`shared.pendingpods`, the rule the launcher's own
watch applies too) and the shortfall predictor (``predicted``). One
entry per uid means a pod is never counted twice; an ``unschedulable`` entry replaces a
``predicted`` one for the same pod and a prediction never overwrites it. Changes go to sinks
(the demand stream) as they happen, and are logged.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, Final, Literal, Protocol

from extender.cache import pod_uid
from extender.metrics import ExtenderMetrics
from shared.demand import PodDemand
from shared.errors import FieldError, ValidationError
from shared.logs import get_logger
from shared.pendingpods import Gone, judge

UNSCHEDULABLE: Final = "unschedulable"
PREDICTED: Final = "predicted"
Reason = Literal["unschedulable", "predicted"]

_log = get_logger(__name__)


class DemandSink(Protocol):
    def upsert(self, demand: PodDemand) -> None: ...

    def withdraw(self, uid: str, reason: str) -> None: ...


class DemandTracker:
    """Current demand by uid; tells every sink about each change (see the module doc)."""

    def __init__(
        self, metrics: ExtenderMetrics | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self._current: dict[str, PodDemand] = {}
        self._sinks: list[DemandSink] = []
        self._metrics = metrics
        self.clock = clock

    def add_sink(self, sink: DemandSink) -> None:
        self._sinks.append(sink)

    def snapshot(self) -> tuple[PodDemand, ...]:
        return tuple(self._current.values())

    def get(self, uid: str) -> PodDemand | None:
        return self._current.get(uid)

    def __len__(self) -> int:
        return len(self._current)

    def upsert(self, demand: PodDemand) -> bool:
        """Record ``demand``; a prediction never replaces an unschedulable entry. True if changed."""
        held = self._current.get(demand.uid)
        if held == demand:
            return False
        if held is not None and held.reason == UNSCHEDULABLE and demand.reason == PREDICTED:
            return False
        self._current[demand.uid] = demand
        self._count(held, demand)
        _log.info(
            "demand.upsert",
            pod=f"{demand.namespace}/{demand.name}",
            uid=demand.uid,
            reason=demand.reason,
            requests=demand.requests.to_api(),
        )
        for sink in self._sinks:
            sink.upsert(demand)
        return True

    def withdraw(self, uid: str, why: str, only: Reason | None = None) -> bool:
        """Drop the entry for ``uid`` (only if its reason is ``only``, when given). True if dropped."""
        held = self._current.get(uid)
        if held is None or (only is not None and held.reason != only):
            return False
        del self._current[uid]
        self._count(held, None)
        _log.info(
            "demand.withdraw", pod=f"{held.namespace}/{held.name}", uid=uid, reason=held.reason, why=why
        )
        for sink in self._sinks:
            sink.withdraw(uid, why)
        return True

    def _count(self, old: PodDemand | None, new: PodDemand | None) -> None:
        if self._metrics is None:
            return
        if old is not None:
            self._metrics.demand.labels(old.reason).dec()
        if new is not None:
            self._metrics.demand.labels(new.reason).inc()
        self._metrics.demand_events.labels("upsert" if new is not None else "withdraw").inc()

    # Pod watch ----------------------------------------------------------------------------

    def on_added(self, pod: dict[str, Any]) -> None:
        self._observe(pod)

    def on_modified(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        self._observe(new)

    def on_deleted(self, pod: dict[str, Any]) -> None:
        self.withdraw(pod_uid(pod), "deleted")

    def _observe(self, pod: Mapping[str, Any]) -> None:
        uid = pod_uid(pod)
        verdict = judge(pod)
        if isinstance(verdict, Gone):
            self.withdraw(uid, verdict.why, only=UNSCHEDULABLE if verdict.verdict_only else None)
            return
        if verdict is None:
            return  # tied to one node: a new node cannot host it
        held = self._current.get(uid)
        if held is not None and held.reason == UNSCHEDULABLE:
            return  # already reported; its shape can't change while pending
        first_seen = verdict.since or self.clock()
        try:
            demand = PodDemand.from_pod(pod, UNSCHEDULABLE, first_seen)
        except (ValidationError, FieldError, TypeError, ValueError) as exc:
            _log.warning("demand.unreadable_pod", uid=uid, error=str(exc))
            return
        self.upsert(demand)
