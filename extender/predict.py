"""Shortfall prediction: demand for a pod shape before any pod of that shape fails to schedule.

Filter hands each request body to :meth:`Predictor.offer_body` after its answer is written, and
that only appends: the pod is decoded here, in batches that gather a few milliseconds of filter
calls, so the calls leave no work of their own on the event loop. For each pod's shape
(requests, node requirements, tolerations) the predictor counts how many more such pods fit on
every node that could host one (not only the scheduler's sample of candidates), caching that
per shape against the cache version. A pod with a hard topology spread or required pod
(anti-)affinity is a shape of its own (its constraints, namespace and labels are part of the
key) judged node by node with those constraints (``interpod``), so room the constraints forbid
is not counted. When placing the pods it is tracking would leave less than
``headroom`` room, it reports up to the shortfall of those pods as ``predicted`` demand, so a
node boots while they still fit. When a node joins or pods go and the room comes back, or the
prediction is older than ``ttl``, it withdraws them. Re-evaluation after cache changes is rate
limited, and batches and long room counts yield to the event loop every fraction of a
millisecond so the request path keeps its latency budget. A pod whose shape has ample room at
the current cache version costs a decode and a few lookups.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from extender import decisions, interpod, protocol
from extender.cache import ClusterCache, NodeState, pod_uid
from extender.demand import PREDICTED, UNSCHEDULABLE, DemandTracker
from extender.keys import STARTUP_TAINTS
from extender.metrics import ExtenderMetrics
from shared import labels
from shared.demand import PodDemand
from shared.errors import FieldError, ValidationError
from shared.logs import get_logger
from shared.pods import NODE_NAME_FIELD, SchedulingNeeds, scheduling_needs
from shared.taints import parse_taints, untolerated_taints
from shared.tasks import cancel_and_wait

_log = get_logger(__name__)
# Labels unique to one node: a shape selecting on them is judged node by node, not per group.
_PER_NODE_KEYS: Final = frozenset({labels.HOSTNAME, labels.NODECLAIM, NODE_NAME_FIELD})
_NODES_PER_SLICE: Final = 128  # ~0.3 ms of counting between yields to the request path
_MAX_SHAPES: Final = 4096
_COALESCE: Final = 0.005
_SLICE_SECONDS: Final = 0.0002  # a batch yields to waiting requests this often

ShapeKey = tuple[Any, ...]


@dataclass(slots=True)
class Shape:
    needs: SchedulingNeeds
    per_node: bool
    constraints: interpod.Constraints | None = None
    # uid -> (the pod, when predicted demand for it was first reported)
    members: dict[str, tuple[Mapping[str, Any], float]] = field(default_factory=dict)


def shape_key(needs: SchedulingNeeds, constraints: interpod.Constraints | None = None) -> ShapeKey:
    return (needs.requests, needs.requirements, needs.tolerations, constraints)


class Predictor:
    """Background shortfall predictor (see the module doc)."""

    def __init__(
        self,
        cache: ClusterCache,
        tracker: DemandTracker,
        *,
        headroom: int = 1,
        ttl: float = 300.0,
        queue_size: int = 10_000,
        recheck_interval: float = 0.1,
        metrics: ExtenderMetrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cache = cache
        self.tracker = tracker
        self.headroom = headroom
        self.ttl = ttl
        self.recheck_interval = recheck_interval
        self._metrics = metrics
        self.clock = clock
        self.queue_size = queue_size
        # Pods waiting for prediction by uid: a pod filtered again before we got to it counts once.
        self._pending: dict[str, Mapping[str, Any]] = {}
        # Filter bodies not yet decoded, oldest first (bounded like ``_pending``).
        self._bodies: deque[bytes] = deque()
        self._wake = asyncio.Event()
        # (uid, resourceVersion) -> cache version it was last judged at: unchanged means skip.
        self._judged: dict[tuple[str, str], int] = {}
        self._shapes: dict[ShapeKey, Shape] = {}
        # Room per shape as of a cache version; kept for shapes without predictions too, so a
        # stream of filter calls for a roomy shape costs one count per cache change, not per call.
        self._rooms: dict[ShapeKey, tuple[int, int]] = {}
        self._checked_version = -1
        self._task: asyncio.Task[None] | None = None
        self.evaluations = 0

    # Request path -------------------------------------------------------------------------

    def offer(self, pod: Mapping[str, Any]) -> None:
        """Queue a filtered pod for prediction; never blocks, drops when the queue is full."""
        uid = pod_uid(pod)
        if len(self._pending) >= self.queue_size and uid not in self._pending:
            if self._metrics is not None:
                self._metrics.predictions_dropped.inc()
            return
        self._pending[uid] = pod
        self._wake.set()

    def offer_body(self, body: bytes) -> None:
        """Queue a filter request's body (ExtenderArgs) as it came; constant time, never fails.

        When the queue is full the oldest body is dropped (and counted): the newest pods are the
        ones still being scheduled."""
        bodies = self._bodies
        if len(bodies) >= self.queue_size:
            bodies.popleft()
            if self._metrics is not None:
                self._metrics.predictions_dropped.inc()
        bodies.append(body)
        self._wake.set()

    @property
    def backlog(self) -> int:
        """Pods offered and not yet judged."""
        return len(self._pending) + len(self._bodies)

    # Lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="shortfall-predictor")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.recheck_interval if self._predicting() else None):
                    await self._wake.wait()
            # Let a burst of filter calls gather: one pass then serves many of them.
            await asyncio.sleep(_COALESCE)
            self._wake.clear()
            try:
                sliced = time.perf_counter()
                for uid, pod in self._drain():
                    await self._consider(uid, pod)
                    if time.perf_counter() - sliced >= _SLICE_SECONDS:
                        await asyncio.sleep(0)  # an extender call waiting meanwhile is answered first
                        sliced = time.perf_counter()
                if self._predicting() and (self.cache.version != self._checked_version or self._expiring()):
                    await self.recheck()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                _log.exception("predict.failed", error=repr(exc))

    def _drain(self) -> Iterator[tuple[str, Mapping[str, Any]]]:
        """Everything offered so far as (uid, pod); bodies are decoded one at a time as the
        caller reaches them, so a long backlog is decoded between its yields, not in one go.
        A pod offered twice comes twice: ``_consider`` skips the repeat in one lookup."""
        pending, self._pending = self._pending, {}
        bodies, self._bodies = self._bodies, deque()
        yield from pending.items()
        for body in bodies:
            pod = filtered_pod(body)
            if pod is not None:
                yield pod_uid(pod), pod

    # Evaluation ---------------------------------------------------------------------------

    async def _consider(self, uid: str, pod: Mapping[str, Any]) -> None:
        held = self.tracker.get(uid)
        if held is not None and held.reason == UNSCHEDULABLE:
            return
        meta = pod.get("metadata") or {}
        cache_key = (uid, str(meta.get("resourceVersion") or ""))
        if self._judged.get(cache_key) == self.cache.version:
            return  # same pod, same cluster: the same verdict as last time
        if len(self._judged) > 50_000:
            self._judged.clear()
        self._judged[cache_key] = self.cache.version
        needs = self._needs(uid, pod)
        if needs is None:
            return
        constraints = interpod.Constraints.of(pod)
        key = shape_key(needs, constraints)
        shape = self._shapes.get(key)
        if shape is None:
            per_node = any(k in _PER_NODE_KEYS for r in needs.requirements for k in r.keys())  # noqa: SIM118 (Requirements.keys(), not a dict)
            shape = self._shapes[key] = Shape(needs, per_node or constraints is not None, constraints)
        elif not shape.members:
            room = self._rooms.get(key)
            if room is not None and room[0] == self.cache.version and room[1] > self.headroom:
                return  # room for this pod with headroom to spare, nothing predicted: no change
        await self._evaluate(key, shape, candidate=(uid, pod))

    def _needs(self, uid: str, pod: Mapping[str, Any]) -> SchedulingNeeds | None:
        """The pod's needs (``scheduling_needs`` reads them once per distinct spec: the pods of
        one template share them); None for a pod that cannot be read."""
        try:
            return scheduling_needs(pod)
        except (ValidationError, FieldError, TypeError, ValueError) as exc:
            _log.debug("predict.unreadable_pod", uid=uid, error=str(exc))
            return None

    async def recheck(self) -> None:
        """Re-evaluate every shape with outstanding predictions (after cache changes)."""
        self._checked_version = self.cache.version
        for key, shape in list(self._shapes.items()):
            if shape.members:
                await self._evaluate(key, shape, candidate=None)

    def _predicting(self) -> bool:
        return any(shape.members for shape in self._shapes.values())

    def _expiring(self) -> bool:
        horizon = self.clock() - self.ttl
        return any(t <= horizon for s in self._shapes.values() for _, t in s.members.values())

    async def _evaluate(
        self, key: ShapeKey, shape: Shape, candidate: tuple[str, Mapping[str, Any]] | None
    ) -> None:
        self.evaluations += 1
        now = self.clock()
        # Members the tracker no longer holds as predictions (deleted, or now unschedulable).
        for uid in list(shape.members):
            held = self.tracker.get(uid)
            if held is None or held.reason != PREDICTED:
                del shape.members[uid]
        for uid, (_, since) in list(shape.members.items()):
            if now - since >= self.ttl:
                del shape.members[uid]
                self.tracker.withdraw(uid, "prediction expired", only=PREDICTED)
        version = self.cache.version
        cached = self._rooms.get(key)
        if cached is not None and cached[0] == version:
            room = cached[1]
        else:
            room = await self._room(shape)
            if len(self._rooms) >= _MAX_SHAPES:
                self._rooms.clear()
            self._rooms[key] = (version, room)
        waiting = dict(shape.members)
        if candidate is not None and candidate[0] not in waiting:
            waiting[candidate[0]] = (candidate[1], now)
        unplaced = sum(1 for uid in waiting if uid not in self.cache.pods)
        wanted = max(0, self.headroom - (room - unplaced))
        keep = list(waiting)[:wanted]
        for uid in list(shape.members):
            if uid not in keep:
                del shape.members[uid]
                self.tracker.withdraw(uid, "capacity available", only=PREDICTED)
        for uid in keep:
            if uid in shape.members:
                continue
            pod, since = waiting[uid]
            try:
                demand = PodDemand.from_pod(pod, PREDICTED, since)
            except (ValidationError, FieldError, TypeError, ValueError):
                continue
            if self.tracker.upsert(demand):
                shape.members[uid] = (pod, since)
        if not shape.members and len(self._shapes) > _MAX_SHAPES:
            self._shapes.pop(key, None)

    async def _room(self, shape: Shape) -> int:
        if shape.constraints is not None:
            return await self._constrained_room(shape, shape.constraints)
        needs = shape.needs
        requests = needs.requests
        room = 0
        counted = 0
        groups = decisions.group_nodes(self.cache.nodes.values())
        for members in groups.values():
            if not shape.per_node and not self._eligible(needs, members[0]):
                continue
            for state in members:
                if state.disrupted or state.cordoned or state.name not in self.cache.nodes:
                    continue
                if shape.per_node and not self._eligible(needs, state):
                    continue
                room += decisions.fit_count(requests, self.cache.free(state.name))
                counted += 1
                if counted % _NODES_PER_SLICE == 0:
                    await asyncio.sleep(0)  # keep the request path responsive
        return room

    async def _constrained_room(self, shape: Shape, constraints: interpod.Constraints) -> int:
        """Room under the pod's spread and affinity: every node is read (domains and the pods
        in them count even where the pod cannot go), with the pods bound to it."""
        needs = shape.needs
        by_node = self.cache.pods_by_node
        views: list[interpod.NodeView] = []
        for counted, state in enumerate(self.cache.nodes.values(), start=1):
            usable = not (state.disrupted or state.cordoned)
            fit = decisions.fit_count(needs.requests, self.cache.free(state.name)) if usable else 0
            node_labels = {**state.labels, NODE_NAME_FIELD: state.name}
            views.append(
                interpod.NodeView(
                    state.name,
                    state.labels,
                    fit,
                    any(req.matches(node_labels) for req in needs.requirements),
                    self._tolerated(needs, state),
                    [(r.namespace, r.labels) for r in by_node.get(state.name, {}).values()],
                )
            )
            if counted % _NODES_PER_SLICE == 0:
                await asyncio.sleep(0)  # keep the request path responsive
        return interpod.room(constraints, views)

    @classmethod
    def _eligible(cls, needs: SchedulingNeeds, state: NodeState) -> bool:
        node_labels = {**state.labels, NODE_NAME_FIELD: state.name}
        if not any(req.matches(node_labels) for req in needs.requirements):
            return False
        return cls._tolerated(needs, state)

    @staticmethod
    def _tolerated(needs: SchedulingNeeds, state: NodeState) -> bool:
        try:
            taints = parse_taints(
                [t for t in state.taints if t.get("key") not in STARTUP_TAINTS], "spec.taints"
            )
        except (FieldError, ValidationError):
            return False
        return not untolerated_taints(needs.tolerations, taints)


def filtered_pod(body: bytes) -> Mapping[str, Any] | None:
    """The pod of a filter body; None (logged) when it is unreadable.

    The answer was given from the candidate names alone, so this is where a pod kube-scheduler
    would never send is found out."""
    pod: Mapping[str, Any] | None = protocol.pod_only(body)
    if pod is None:
        try:
            pod = protocol.parse_args(body).pod
        except protocol.ProtocolError as exc:
            _log.warning("extender.unreadable_filtered_pod", problem=str(exc))
            return None
    return pod
