"""Scale-down stabilisation: room for each workload's recent peak stays (pure).

An HPA takes a workload back to a level it had a few minutes before more often than not (noise
around a trend, a dip between two bursts). Capacity consolidated a minute earlier must then be
launched again, and its pods wait a whole boot. A NodePool with
``spec.disruption.stabilizationWindow`` keeps room for each workload's highest pod count over
that window, as the HPA's own scale-down stabilisation keeps replicas: the pods above a
workload's current count become *retained* chunks. Disruption places them like CapacityBuffer
chunks (they move with a node that is consolidated, or keep it; see
``launcher.disruption.decisions``), but only on nodes whose pool's window still covers them, and
nothing is ever launched for them.

A workload is a scalable controller: the pods of one Deployment (its ReplicaSets, grouped by the
``pod-template-hash`` suffix), StatefulSet, ReplicaSet or ReplicationController. Its pods count
while they are neither finished nor being deleted, pending or bound. The pod index counts them
event by event and hands over each workload's count, and its highest count since the last
hand-over, once a round (``PodIndex.drain_workloads``); :class:`WorkloadPeaks` keeps those
samples for the longest window any pool has. A peak is timed at the round that saw it, so a
chunk may be kept up to one round longer than the window.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final

from shared import pods
from shared.demand import PodDemand
from shared.errors import FieldError, ValidationError

Obj = Mapping[str, Any]

TEMPLATE_HASH_LABEL: Final = "pod-template-hash"
SCALABLE_OWNERS: Final = frozenset({"ReplicaSet", "StatefulSet", "ReplicationController"})
# A workload that shrank by thousands of pods keeps at most this many chunks: the disruption
# round places each one, and a larger gap is a deliberate scale-down, not noise.
MAX_RETAINED_PER_WORKLOAD: Final = 1000
RETAINED_UID_PREFIX: Final = "retained/"


def workload_of(pod: Obj) -> str | None:
    """The workload a pod counts for (``namespace/Kind/name``), or None when it counts for none:
    no scalable controller, finished, or being deleted."""
    meta = pod.get("metadata") or {}
    if meta.get("deletionTimestamp") or pods.is_terminal(pod):
        return None
    controller = pods.owner(pod)
    if controller is None or controller[0] not in SCALABLE_OWNERS:
        return None
    kind, name = controller
    template_hash = (meta.get("labels") or {}).get(TEMPLATE_HASH_LABEL)
    if kind == "ReplicaSet" and isinstance(template_hash, str) and name.endswith(f"-{template_hash}"):
        kind, name = "Deployment", name[: -len(template_hash) - 1]
    return f"{meta.get('namespace') or 'default'}/{kind}/{name}"


@dataclass(frozen=True)
class WorkloadSample:
    """What the pod index saw of a workload since the last hand-over."""

    workload: str
    count: int  # its pods now
    peak: int  # its most pods at any moment since the last hand-over
    pod: Obj  # its newest pod: the shape a retained chunk takes


@dataclass(frozen=True)
class Retained:
    """Room for one pod of ``workload`` above its current count, last needed at ``needed_at``
    (seconds since the epoch, as ``PodDemand.first_seen``)."""

    workload: str
    level: int  # the pod count this chunk stands for (current + 1, current + 2, ...)
    needed_at: float
    pod: Obj

    @property
    def uid(self) -> str:
        return f"{RETAINED_UID_PREFIX}{self.workload}/{self.level}"


@dataclass(frozen=True)
class RetainedChunk:
    """Room for one pod of a workload's recent peak, as disruption holds it."""

    demand: PodDemand
    needed_at: datetime


def chunks(retained: Iterable[Retained]) -> list[RetainedChunk]:
    """The disruption inputs of ``retained``: each workload's pod read once; a pod the planner
    could not read (kube-scheduler would reject it) keeps no room."""
    shapes: dict[str, PodDemand | None] = {}
    out = []
    for chunk in retained:
        if chunk.workload not in shapes:
            try:
                shapes[chunk.workload] = PodDemand.from_pod(chunk.pod, "predicted", chunk.needed_at)
            except (ValidationError, FieldError):
                shapes[chunk.workload] = None
        shape = shapes[chunk.workload]
        if shape is not None:
            demand = replace(
                shape, uid=chunk.uid, name=f"{shape.name}-peak-{chunk.level}", first_seen=chunk.needed_at
            )
            out.append(RetainedChunk(demand, datetime.fromtimestamp(chunk.needed_at, UTC)))
    return out


@dataclass
class _Series:
    pod: Obj
    count: int
    samples: deque[tuple[float, int]] = field(default_factory=deque)  # (when, peak), oldest first


class WorkloadPeaks:
    """Each workload's recent peaks, kept for ``horizon`` seconds (the longest window)."""

    def __init__(self) -> None:
        self._series: dict[str, _Series] = {}

    def __len__(self) -> int:
        return len(self._series)

    def record(self, now: float, samples: Iterable[WorkloadSample], horizon: float) -> None:
        """Add one round's samples and forget what is older than ``horizon`` seconds."""
        for sample in samples:
            series = self._series.get(sample.workload)
            if series is None:
                series = self._series[sample.workload] = _Series(sample.pod, sample.count)
            series.pod, series.count = sample.pod, sample.count
            if sample.peak > sample.count:
                series.samples.append((now, sample.peak))
        since = now - horizon
        for workload in list(self._series):
            series = self._series[workload]
            while series.samples and (series.samples[0][0] < since or horizon <= 0):
                series.samples.popleft()
            if not series.samples:
                del self._series[workload]  # nothing above its count: the index counts it anew

    def retained(self, now: float, horizon: float) -> list[Retained]:
        """The chunks of every workload: one per pod between its current count and its peak
        within ``horizon``, each with the last time that level was reached."""
        since = now - horizon
        out: list[Retained] = []
        for workload, series in self._series.items():
            out.extend(_levels(workload, series, since))
        return out


def _levels(workload: str, series: _Series, since: float) -> list[Retained]:
    """Newest sample first: a level above the running maximum was last needed at that sample."""
    out: list[Retained] = []
    reached = series.count
    top = series.count + MAX_RETAINED_PER_WORKLOAD
    for when, peak in reversed(series.samples):
        if when < since:
            break
        peak = min(peak, top)
        for level in range(reached + 1, peak + 1):
            out.append(Retained(workload, level, when, series.pod))
        reached = max(reached, peak)
    return out
