"""kube-scheduler's scheduling queue: active, backoff and unschedulable pods.

Pods wait in the active queue ordered by PrioritySort (``spec.priority`` high first, then
oldest). A pod that failed because in-tree filters rejected nodes waits as unschedulable until
a cluster event (node added or changed, pod deleted, or a pod its required pod affinity selects
bound) could make it fit; any other failure (extender rejected or errored, binding failed) or
an event that arrived during the attempt sends it to backoff, retried after
``initial * 2**(attempts-1)`` capped at ``maximum`` seconds. Unschedulable pods are also
retried after ``unschedulable_timeout`` without any event. Pure: the caller passes the
(monotonic) time and sleeps until :meth:`next_wakeup`.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from .model import PodFacts


class Where(Enum):
    ACTIVE = "active"
    BACKOFF = "backoff"
    UNSCHEDULABLE = "unschedulable"
    IN_FLIGHT = "in-flight"


@dataclass(slots=True)
class QueuedPod:
    """A pending pod and its scheduling history."""

    facts: PodFacts
    raw: dict[str, Any]
    attempts: int = 0
    last_failure: float = 0.0
    parked_at: float = 0.0
    cycle: int = 0
    where: Where = Where.ACTIVE
    token: int = field(default=0)


class SchedulingQueue:
    """See the module docstring; all times are seconds on one monotonic clock."""

    def __init__(self, initial_backoff: float, max_backoff: float, unschedulable_timeout: float) -> None:
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.unschedulable_timeout = unschedulable_timeout
        self._pods: dict[str, QueuedPod] = {}
        self._active: list[tuple[int, str, int, str]] = []
        self._unschedulable: dict[str, QueuedPod] = {}
        self._backoff: list[tuple[float, int, str, int]] = []
        self._seq = itertools.count()
        self.scheduling_cycle = 0
        self._move_request_cycle = -1
        self._in_flight: str | None = None

    def __len__(self) -> int:
        return len(self._pods)

    def __contains__(self, uid: object) -> bool:
        return uid in self._pods

    def get(self, uid: str) -> QueuedPod | None:
        return self._pods.get(uid)

    def counts(self) -> dict[str, int]:
        """Pods per sub-queue (for logs and tests)."""
        out = {w.value: 0 for w in Where}
        for pod in self._pods.values():
            out[pod.where.value] += 1
        return out

    def backoff_duration(self, attempts: int) -> float:
        """``initial * 2**(attempts-1)``, capped at the maximum."""
        duration = self.initial_backoff
        for _ in range(1, attempts):
            duration *= 2
            if duration >= self.max_backoff:
                return self.max_backoff
        return min(duration, self.max_backoff)

    # Placement ----------------------------------------------------------------------------

    def _push_active(self, pod: QueuedPod) -> None:
        self._set(pod, Where.ACTIVE)
        heapq.heappush(self._active, (-pod.facts.priority, pod.facts.created, pod.token, pod.facts.uid))

    def _push_backoff(self, pod: QueuedPod) -> None:
        self._set(pod, Where.BACKOFF)
        ready = pod.last_failure + self.backoff_duration(pod.attempts)
        heapq.heappush(self._backoff, (ready, pod.token, pod.facts.uid, pod.token))

    def _set(self, pod: QueuedPod, where: Where) -> None:
        """Move ``pod``; a new token makes its entries in the other heaps stale."""
        if pod.where is Where.UNSCHEDULABLE:
            self._unschedulable.pop(pod.facts.uid, None)
        pod.where = where
        pod.token = next(self._seq)
        if where is Where.UNSCHEDULABLE:
            self._unschedulable[pod.facts.uid] = pod

    def _backing_off(self, pod: QueuedPod, now: float) -> bool:
        return pod.attempts > 0 and now < pod.last_failure + self.backoff_duration(pod.attempts)

    def _requeue(self, pod: QueuedPod, now: float) -> None:
        """Active when its backoff is over, else backoff."""
        if self._backing_off(pod, now):
            self._push_backoff(pod)
        else:
            self._push_active(pod)

    # Pod events ---------------------------------------------------------------------------

    def add(self, raw: dict[str, Any], facts: PodFacts, now: float, *, changed: bool = True) -> None:
        """A pending pod was added or updated; ``changed`` is False for status-only updates."""
        pod = self._pods.get(facts.uid)
        if pod is None:
            pod = QueuedPod(facts, raw)
            self._pods[facts.uid] = pod
            self._push_active(pod)
            return
        pod.raw = raw
        pod.facts = facts
        if changed and pod.where is Where.UNSCHEDULABLE:
            self._requeue(pod, now)
        elif changed and pod.where is Where.ACTIVE:
            self._push_active(pod)  # the priority may have changed; the old entry goes stale

    def delete(self, uid: str) -> None:
        """The pod is gone or no longer pending (bound, finished, another scheduler's)."""
        pod = self._pods.pop(uid, None)
        if pod is not None:
            self._unschedulable.pop(uid, None)

    def move_all(self, now: float) -> None:
        """A cluster event that may make unschedulable pods fit."""
        self._move_request_cycle = self.scheduling_cycle
        for pod in list(self._unschedulable.values()):
            self._requeue(pod, now)

    def move_matching(self, now: float, wanted: Callable[[PodFacts], bool]) -> bool:
        """A cluster event that may only make the pods ``wanted`` picks fit; True if any moved.

        A pod in flight that ``wanted`` picks goes to backoff rather than unschedulable if its
        attempt fails, as after :meth:`move_all`, since it may have missed the event.
        """
        moved = False
        for pod in list(self._unschedulable.values()):
            if wanted(pod.facts):
                self._requeue(pod, now)
                moved = True
        flying = self._pods.get(self._in_flight) if self._in_flight is not None else None
        if flying is not None and flying.where is Where.IN_FLIGHT and wanted(flying.facts):
            self._move_request_cycle = self.scheduling_cycle
        return moved

    # Scheduling ---------------------------------------------------------------------------

    def _flush(self, now: float) -> None:
        while self._backoff and self._backoff[0][0] <= now:
            _, _, uid, token = heapq.heappop(self._backoff)
            pod = self._pods.get(uid)
            if pod is not None and pod.token == token and pod.where is Where.BACKOFF:
                self._push_active(pod)
        for pod in list(self._unschedulable.values()):
            if now - pod.parked_at >= self.unschedulable_timeout:
                self._requeue(pod, now)

    def pop(self, now: float) -> QueuedPod | None:
        """The next pod to schedule, now in flight; None when no pod is ready."""
        self._flush(now)
        while self._active:
            _, _, token, uid = heapq.heappop(self._active)
            pod = self._pods.get(uid)
            if pod is None or pod.token != token or pod.where is not Where.ACTIVE:
                continue
            self.scheduling_cycle += 1
            pod.cycle = self.scheduling_cycle
            self._set(pod, Where.IN_FLIGHT)
            self._in_flight = uid
            return pod
        return None

    def done(self, uid: str) -> None:
        """The pod was bound; it leaves the queue."""
        self.delete(uid)

    def failed(self, uid: str, now: float, *, unschedulable: bool) -> None:
        """An attempt failed; ``unschedulable`` when in-tree filters rejected nodes."""
        pod = self._pods.get(uid)
        if pod is None or pod.where is not Where.IN_FLIGHT:
            return
        pod.attempts += 1
        pod.last_failure = now
        if unschedulable and self._move_request_cycle < pod.cycle:
            pod.parked_at = now
            self._set(pod, Where.UNSCHEDULABLE)
        else:
            self._push_backoff(pod)

    def next_wakeup(self) -> float | None:
        """The earliest time a waiting pod becomes ready without an event (None: never)."""
        times = [self._backoff[0][0]] if self._backoff else []
        times += [pod.parked_at + self.unschedulable_timeout for pod in self._unschedulable.values()]
        return min(times, default=None)
