"""The local kube-scheduler: watches pods and nodes, schedules one pod at a time, binds async.

This is the I/O shell around the pure modules: informers (list+watch over kubernetes-asyncio)
feed the cache and the queue (and the Namespaces' labels for InterPodAffinity's
namespaceSelectors; for PodTopologySpread's default constraints, the selectors of Services and
ReplicaSets); each scheduling cycle runs the in-tree filters, the extenders'
filter (in config order, narrowing the candidates), scoring by the pod's profile's score
plugins and the extenders' prioritize,
then assumes the pod on the chosen node and binds it in a background task, so the next cycle
starts at once and sees the pod's resources as used. Failures patch the PodScheduled
condition and emit a FailedScheduling event in the background, in order per pod.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Final

import aiohttp
from kubernetes_asyncio import client

from shared.errors import FieldError
from shared.informer import Informer, Obj
from shared.logs import get_logger
from shared.pods import is_terminal
from shared.tasks import cancel_and_wait

from .cache import ClusterCache, NodeInfo, PodUsage
from .config import POD_TOPOLOGY_SPREAD, Profile, SchedulerConfig
from .extenders import Extender
from .filters import NodeStatus, inter_pod_state, matches_all_terms, run_filters
from .messages import (
    REASON_SCHEDULER_ERROR,
    REASON_UNSCHEDULABLE,
    binding_rejected_message,
    scheduled_message,
    unschedulable_message,
)
from .model import PodFacts, pod_facts
from .queue import QueuedPod, SchedulingQueue
from .scoring import extender_score, plugin_scores, select_host
from .topologyspread import NO_SPREAD, constraints_for, spread_filter_state, spread_score_state, waits_for
from .wire import ExtenderError
from .workloads import REPLICA_SET, WorkloadSelectors

_log = get_logger(__name__)

POD_SCHEDULED: Final = "PodScheduled"
STRATEGIC_MERGE: Final = "application/strategic-merge-patch+json"
# kube-scheduler's podMaxInUnschedulablePodsDuration.
DEFAULT_UNSCHEDULABLE_TIMEOUT: Final = 300.0
# client-go's event correlator folds repeats of one event into a count within this window.
EVENT_AGGREGATION_WINDOW: Final = 600.0
_MAX_TRACKED_EVENTS: Final = 10_000
# Fields of a node whose change can make a pending pod fit.
_NODE_FIELDS_THAT_MATTER: Final = ("match_labels", "taints", "unschedulable", "allocatable", "ready")


class ApiError(Exception):
    """The API server refused a write."""

    def __init__(self, status: int, body: bytes) -> None:
        self.status = status
        super().__init__(f"HTTP {status}: {body[:300].decode(errors='replace')}")


@dataclass(slots=True)
class _Attempt:
    """The outcome of one scheduling cycle that did not pick a node."""

    reason: str
    message: str
    unschedulable: bool


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _scheduling_view(pod: Obj) -> tuple[Any, Any]:
    """What ``isPodUpdated`` compares: metadata and spec without resourceVersion and status."""
    meta = {
        k: v for k, v in (pod.get("metadata") or {}).items() if k not in ("resourceVersion", "managedFields")
    }
    return meta, pod.get("spec")


class _Handler:
    """Adapts informer callbacks to the scheduler's methods."""

    def __init__(
        self,
        added: Callable[[Obj], None],
        modified: Callable[[Obj, Obj], None],
        deleted: Callable[[Obj], None],
    ) -> None:
        self.on_added = added
        self.on_modified = modified
        self.on_deleted = deleted


class Scheduler:
    """An emulated kube-scheduler (see the module docstring); use as an async context manager.

    ``scheduler_name`` restricts it to one profile (renaming the only profile when the config
    has one and no profile has that name). ``rng`` breaks score ties (seed it in tests).
    """

    def __init__(
        self,
        api: client.ApiClient,
        config: SchedulerConfig,
        *,
        scheduler_name: str | None = None,
        rng: random.Random | None = None,
        unschedulable_timeout: float = DEFAULT_UNSCHEDULABLE_TIMEOUT,
        sync_timeout: float = 30.0,
        max_background_writes: int = 64,
    ) -> None:
        # Typed as Any: the generated stubs want model objects where the API takes plain JSON.
        self._core: Any = client.CoreV1Api(api)
        self.config = config
        self.scheduler_names = self._profile_names(config, scheduler_name)
        self.component = self.scheduler_names[0]
        self._rng = rng or random.Random()
        self._ignored = config.ignored_resources()
        self.extenders = [Extender(e) for e in config.extenders]
        self._binder = next((e for e in self.extenders if e.can_bind), None)
        self.cache = ClusterCache()
        self.queue = SchedulingQueue(
            config.pod_initial_backoff, config.pod_max_backoff, unschedulable_timeout
        )
        self._sync_timeout = sync_timeout
        self._wake = asyncio.Event()
        self._writes = asyncio.Semaphore(max_background_writes)
        self._pod_writes: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._events: dict[tuple[str, str, str, str], tuple[str, int, float]] = {}
        self._session: aiohttp.ClientSession | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._instance = f"{self.component}-{socket.gethostname()}"
        self._nodes = Informer(
            self._core.list_node,
            _Handler(self._node_added, self._node_modified, self._node_deleted),
            name="scheduler-nodes",
        )
        self._pods = Informer(
            self._core.list_pod_for_all_namespaces,
            _Handler(self._pod_added, self._pod_modified, self._pod_deleted),
            name="scheduler-pods",
        )
        self.namespace_labels: dict[str, dict[str, str]] = {}
        self._namespaces = Informer(
            self._core.list_namespace,
            _Handler(
                self._namespace_changed, lambda _, new: self._namespace_changed(new), self._namespace_deleted
            ),
            name="scheduler-namespaces",
        )
        self.workloads = WorkloadSelectors()
        self._workload_informers = self._workload_watches(api) if self._uses_default_spread() else []
        self.scheduled = 0
        self.failures = 0
        # Failed extender calls by verb, ignored or not: a rollout drill asserts there are none.
        self.extender_errors: Counter[str] = Counter()

    @staticmethod
    def _profile_names(config: SchedulerConfig, override: str | None) -> tuple[str, ...]:
        names = config.scheduler_names
        if override is None or override in names:
            return (override,) if override else names
        if len(names) == 1:
            return (override,)
        raise ValueError(f"scheduler_name {override!r} is not one of the profiles {list(names)}")

    def _namespace_changed(self, namespace: Obj) -> None:
        meta = namespace.get("metadata") or {}
        labels = meta.get("labels") or {}
        self.namespace_labels[str(meta.get("name"))] = {str(k): str(v) for k, v in labels.items()}

    def _namespace_deleted(self, namespace: Obj) -> None:
        self.namespace_labels.pop(str((namespace.get("metadata") or {}).get("name")), None)

    def _uses_default_spread(self) -> bool:
        return any(self.config.profile(name).spread.default_constraints for name in self.scheduler_names)

    def _workload_watches(self, api: client.ApiClient) -> list[Informer]:
        """Services and ReplicaSets, whose selectors PodTopologySpread's defaults use.

        kube-scheduler also reads StatefulSets and ReplicationControllers; the local API server
        serves neither, so no pod can be owned by one here.
        """
        workloads = self.workloads
        apps: Any = client.AppsV1Api(api)

        def replica_set(obj: Obj) -> None:
            workloads.set_controller(REPLICA_SET, obj)

        return [
            Informer(
                self._core.list_service_for_all_namespaces,
                _Handler(
                    workloads.set_service, lambda _, new: workloads.set_service(new), workloads.delete_service
                ),
                name="scheduler-services",
            ),
            Informer(
                apps.list_replica_set_for_all_namespaces,
                _Handler(
                    replica_set,
                    lambda _, new: replica_set(new),
                    lambda obj: workloads.delete_controller(REPLICA_SET, obj),
                ),
                name="scheduler-replicasets",
            ),
        ]

    # Lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start watching, wait for the caches to fill, then start scheduling."""
        if self._loop_task is not None:
            return
        self._session = aiohttp.ClientSession()
        informers = [self._nodes, self._pods, self._namespaces, *self._workload_informers]
        for informer in informers:
            informer.start()
        try:
            async with asyncio.timeout(self._sync_timeout):
                for informer in informers:
                    await informer.wait_synced()
        except BaseException:
            await self.stop()
            raise
        self._loop_task = asyncio.create_task(self._run(), name=f"scheduler-{self.component}")
        _log.info("scheduler started", profiles=list(self.scheduler_names), extenders=len(self.extenders))

    async def stop(self) -> None:
        """Stop scheduling and watching; in-flight API writes are cancelled."""
        task, self._loop_task = self._loop_task, None
        await cancel_and_wait(task)
        await self._nodes.stop()
        await self._pods.stop()
        await self._namespaces.stop()
        for informer in self._workload_informers:
            await informer.stop()
        pending = list(self._tasks)
        for pending_task in pending:
            pending_task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> Scheduler:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def wait_idle(self) -> None:
        """Wait until no background binding or status write is running (for tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # Informer callbacks -------------------------------------------------------------------

    def _moved(self) -> None:
        self.queue.move_all(time.monotonic())
        self._wake.set()

    def _set_node(self, node: Obj) -> NodeInfo | None:
        try:
            return self.cache.set_node(dict(node))
        except (FieldError, TypeError, ValueError) as exc:
            _log.warning("node skipped", node=(node.get("metadata") or {}).get("name"), error=str(exc))
            return None

    def _node_added(self, node: Obj) -> None:
        if self._set_node(node) is not None:
            self._moved()

    def _node_modified(self, old: Obj, node: Obj) -> None:
        before = self.cache.node(str((old.get("metadata") or {}).get("name", "")))
        previous = before.facts if before is not None else None
        info = self._set_node(node)
        if info is None:
            return
        if previous is None or any(
            getattr(previous, f) != getattr(info.facts, f) for f in _NODE_FIELDS_THAT_MATTER
        ):
            self._moved()

    def _node_deleted(self, node: Obj) -> None:
        self.cache.delete_node(str((node.get("metadata") or {}).get("name", "")))

    def _facts(self, pod: Obj) -> PodFacts | None:
        try:
            return pod_facts(pod)
        except (FieldError, TypeError, ValueError) as exc:
            meta = pod.get("metadata") or {}
            _log.warning("pod skipped", pod=f"{meta.get('namespace')}/{meta.get('name')}", error=str(exc))
            return None

    def _pod_added(self, pod: Obj) -> None:
        self._pod_changed(None, pod)

    def _pod_modified(self, old: Obj, pod: Obj) -> None:
        self._pod_changed(old, pod)

    def _pod_changed(self, old: Obj | None, pod: Obj) -> None:
        facts = self._facts(pod)
        if facts is None:
            return
        if facts.node_name:
            self.queue.delete(facts.uid)
            if is_terminal(pod):
                if self.cache.node_of(facts.uid) is not None:
                    self.cache.remove_pod(facts.uid)
                    self._moved()
            else:
                self._pod_assigned(facts)
            return
        deleting = bool((pod.get("metadata") or {}).get("deletionTimestamp"))
        if facts.scheduler_name not in self.scheduler_names or deleting or is_terminal(pod):
            self.queue.delete(facts.uid)
            return
        if self.cache.is_assumed(facts.uid):
            return  # bound by us; the watch has not caught up with the binding yet
        changed = old is None or _scheduling_view(old) != _scheduling_view(pod)
        self.queue.add(dict(pod), facts, time.monotonic(), changed=changed)
        self._wake.set()

    def _pod_assigned(self, facts: PodFacts) -> None:
        """Count a bound pod; a new neighbour may satisfy pending pods' required pod affinity.

        As kube-scheduler's AssignedPodAdd/Update events do, a pod newly seen bound (also one
        this scheduler assumed) or relabelled moves the unschedulable pods whose required
        affinity terms it matches all of.
        """
        previous = self.cache.pod(facts.uid)
        fresh = previous is None or self.cache.is_assumed(facts.uid) or previous.labels != facts.labels
        usage = PodUsage.of(facts)
        self.cache.add_pod(facts.node_name, usage)
        if fresh and self.queue.move_matching(
            time.monotonic(), lambda waiting: self._may_fit_now(waiting, usage)
        ):
            self._wake.set()

    def _may_fit_now(self, waiting: PodFacts, placed: PodUsage) -> bool:
        """Whether a newly placed pod may let a waiting one pass InterPodAffinity (it matches
        all its affinity terms) or PodTopologySpread (a DoNotSchedule selector picks it, or
        the waiting pod takes DoNotSchedule defaults, whose selectors are not known here)."""
        if matches_all_terms(
            waiting.affinity_terms,
            placed.namespace,
            placed.labels,
            waiting.affinity_scopes,
            self.namespace_labels,
        ):
            return True
        if waiting.spread_constraints:
            return waits_for(waiting, placed.namespace, placed.labels)
        profile = self.config.profile(waiting.scheduler_name)
        return profile.spread_filter and any(c.hard for c in profile.spread.default_constraints)

    def _pod_deleted(self, pod: Obj) -> None:
        facts = self._facts(pod)
        if facts is None:
            return
        self.queue.delete(facts.uid)
        if self.cache.node_of(facts.uid) is not None:
            self.cache.remove_pod(facts.uid)
            self._moved()

    # The scheduling loop ------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            pod = self.queue.pop(time.monotonic())
            if pod is None:
                self._wake.clear()
                wakeup = self.queue.next_wakeup()
                delay = None if wakeup is None else max(0.0, wakeup - time.monotonic())
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
                continue
            try:
                await self._schedule_one(pod)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                _log.exception("scheduling cycle crashed", pod=pod.facts.key)
                self._fail(pod, _Attempt(REASON_SCHEDULER_ERROR, str(exc), unschedulable=False))
            # Let informers and bindings run between cycles, even when no extender was awaited.
            await asyncio.sleep(0)

    async def _schedule_one(self, queued: QueuedPod) -> None:
        pod = queued.facts
        nodes = self.cache.nodes()
        if not nodes:
            self._fail(queued, _Attempt(REASON_UNSCHEDULABLE, unschedulable_message(0, {}), True))
            return
        statuses: dict[str, NodeStatus] = {}
        feasible: list[NodeInfo] = []
        profile = self.config.profile(pod.scheduler_name)
        inter_pod = inter_pod_state(pod, nodes, self.namespace_labels)
        spread = NO_SPREAD
        if profile.spread_filter:
            hard = constraints_for(pod, hard=True, args=profile.spread, workloads=self.workloads)
            spread = spread_filter_state(pod, hard, nodes)
        for info in nodes:
            status = run_filters(pod, info, self._ignored, inter_pod, spread)
            if status is None:
                feasible.append(info)
            else:
                statuses[info.name] = status
        rejected_in_tree = bool(statuses)
        if feasible and self.extenders:
            try:
                feasible = await self._extender_filter(queued, feasible, statuses)
            except ExtenderError as exc:
                self._fail(queued, _Attempt(REASON_SCHEDULER_ERROR, str(exc), unschedulable=False))
                return
        if not feasible:
            message = unschedulable_message(len(nodes), statuses, preempt_never=pod.preempt_never)
            self._fail(queued, _Attempt(REASON_UNSCHEDULABLE, message, rejected_in_tree))
            return
        host = feasible[0].name if len(feasible) == 1 else await self._pick(queued, profile, feasible, nodes)
        self.cache.assume(host, pod)
        self._spawn(pod.uid, self._bind(queued, host))

    async def _extender_filter(
        self, queued: QueuedPod, feasible: list[NodeInfo], statuses: dict[str, NodeStatus]
    ) -> list[NodeInfo]:
        """``findNodesThatPassExtenders``: each interested extender narrows the candidates."""
        assert self._session is not None
        for extender in self.extenders:
            if not feasible:
                break
            if not extender.is_interested(queued.facts):
                continue
            raws = [info.raw for info in feasible if info.raw is not None]
            try:
                result = await extender.filter(self._session, queued.raw, raws)
            except ExtenderError as exc:
                self.extender_errors["filter"] += 1
                if extender.ignorable:
                    _log.info(
                        "extender skipped", extender=extender.name, error=str(exc), pod=queued.facts.key
                    )
                    continue
                raise
            for name, message in result.failed_unresolvable.items():
                previous = statuses.get(name)
                reasons = (*(previous.reasons if previous else ()), message)
                statuses[name] = NodeStatus(reasons, resolvable=False)
            for name, message in result.failed.items():
                if name in result.failed_unresolvable:
                    continue
                previous = statuses.get(name)
                if previous is None:
                    statuses[name] = NodeStatus((message,), resolvable=True)
                else:
                    statuses[name] = NodeStatus((*previous.reasons, message), previous.resolvable)
            by_name = {info.name: info for info in feasible}
            feasible = [by_name[name] for name in result.node_names if name in by_name]
        return feasible

    async def _pick(
        self, queued: QueuedPod, profile: Profile, feasible: Sequence[NodeInfo], nodes: Sequence[NodeInfo]
    ) -> str:
        pod = queued.facts
        scoring = profile.scoring
        spread = None
        if scoring.weight(POD_TOPOLOGY_SPREAD):
            soft = constraints_for(pod, hard=False, args=profile.spread, workloads=self.workloads)
            # Nodes lacking a key are only scored under the system defaults (requireAllTopologies).
            strict = bool(pod.spread_constraints) or not profile.spread.system_defaulted
            spread = spread_score_state(pod, soft, feasible, nodes, require_all_keys=strict)
        scores = plugin_scores(pod, feasible, scoring, spread)
        interested = [e for e in self.extenders if e.can_prioritize and e.is_interested(queued.facts)]
        if interested:
            assert self._session is not None
            raws = [info.raw for info in feasible if info.raw is not None]
            results = await asyncio.gather(
                *(e.prioritize(self._session, queued.raw, raws) for e in interested), return_exceptions=True
            )
            for extender, result in zip(interested, results, strict=True):
                if isinstance(result, BaseException):
                    # kube-scheduler ignores prioritize errors, ignorable or not.
                    self.extender_errors["prioritize"] += 1
                    _log.info("extender prioritize failed", extender=extender.name, error=str(result))
                    continue
                for host, score in result:
                    if host in scores:
                        scores[host] += extender_score(score, extender.config.weight)
        return select_host(scores, self._rng)

    # Outcomes -----------------------------------------------------------------------------

    def _spawn(self, uid: str, work: Awaitable[None]) -> None:
        """Run API writes for one pod in order, in the background."""
        previous = self._pod_writes.get(uid)

        async def chained() -> None:
            if previous is not None:
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await previous
            async with self._writes:
                await work

        task = asyncio.create_task(chained())
        self._pod_writes[uid] = task
        self._tasks.add(task)

        def finished(done: asyncio.Task[None]) -> None:
            self._tasks.discard(done)
            if self._pod_writes.get(uid) is done:
                del self._pod_writes[uid]
            if not done.cancelled() and done.exception() is not None:
                _log.warning("api write failed", pod_uid=uid, error=repr(done.exception()))

        task.add_done_callback(finished)

    def _fail(self, queued: QueuedPod, attempt: _Attempt) -> None:
        self.failures += 1
        self.queue.failed(queued.facts.uid, time.monotonic(), unschedulable=attempt.unschedulable)
        _log.debug("pod unschedulable", pod=queued.facts.key, message=attempt.message)
        self._spawn(
            queued.facts.uid, self._record_failure(queued.raw, queued.facts, attempt.reason, attempt.message)
        )

    async def _bind(self, queued: QueuedPod, host: str) -> None:
        pod = queued.facts
        try:
            if self._binder is not None and self._binder.is_interested(pod):
                assert self._session is not None
                await self._binder.bind(self._session, pod, host)
            else:
                await self._create_binding(pod, host)
        except (ExtenderError, ApiError, aiohttp.ClientError, TimeoutError) as exc:
            self.cache.forget(pod.uid)
            self.queue.failed(pod.uid, time.monotonic(), unschedulable=False)
            self._moved()
            _log.info("binding failed", pod=pod.key, node=host, error=str(exc))
            if not isinstance(exc, ApiError) or exc.status != 404:
                await self._record_failure(
                    queued.raw, pod, REASON_SCHEDULER_ERROR, binding_rejected_message(str(exc))
                )
            return
        self.scheduled += 1
        self.queue.done(pod.uid)
        _log.debug("pod bound", pod=pod.key, node=host)
        await self._emit_event(pod, "Normal", "Scheduled", scheduled_message(pod.namespace, pod.name, host))

    async def _create_binding(self, pod: PodFacts, host: str) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": pod.name, "namespace": pod.namespace},
            "target": {"apiVersion": "v1", "kind": "Node", "name": host},
        }
        await self._write(
            self._core.create_namespaced_pod_binding(pod.name, pod.namespace, body, _preload_content=False)
        )

    async def _record_failure(self, raw: Obj, pod: PodFacts, reason: str, message: str) -> None:
        """PodScheduled=False on the pod (when it changed), then a FailedScheduling event."""
        patch = condition_patch(raw, reason, message)
        if patch is not None:
            try:
                await self._write(
                    self._core.patch_namespaced_pod_status(
                        pod.name, pod.namespace, patch, _content_type=STRATEGIC_MERGE, _preload_content=False
                    )
                )
            except ApiError as exc:
                if exc.status == 404:
                    return  # the pod is gone
                raise
        await self._emit_event(pod, "Warning", "FailedScheduling", message)

    async def _emit_event(self, pod: PodFacts, type_: str, reason: str, message: str) -> None:
        """A core/v1 Event; a repeat within ten minutes bumps the count of the first one."""
        key = (pod.uid, type_, reason, message)
        now = now_rfc3339()
        seen = self._events.get(key)
        mono = time.monotonic()
        if seen is not None and mono - seen[2] < EVENT_AGGREGATION_WINDOW:
            name, count, first = seen
            self._events[key] = (name, count + 1, first)
            patch = {"count": count + 1, "lastTimestamp": now}
            try:
                await self._write(
                    self._core.patch_namespaced_event(
                        name, pod.namespace, patch, _content_type=STRATEGIC_MERGE, _preload_content=False
                    )
                )
                return
            except ApiError as exc:
                if exc.status != 404:
                    raise
        name = f"{pod.name}.{time.time_ns():x}"
        if len(self._events) >= _MAX_TRACKED_EVENTS:
            self._events = {k: v for k, v in self._events.items() if mono - v[2] < EVENT_AGGREGATION_WINDOW}
        self._events[key] = (name, 1, mono)
        await self._write(
            self._core.create_namespaced_event(
                pod.namespace,
                event_body(pod, name, type_, reason, message, now, self.component, self._instance),
                _preload_content=False,
            )
        )

    async def _write(self, call: Awaitable[Any]) -> bytes:
        response: aiohttp.ClientResponse = await call
        try:
            body = await response.read()
        finally:
            response.release()
        if not 200 <= response.status < 300:
            raise ApiError(response.status, body)
        return body


def condition_patch(pod: Obj, reason: str, message: str) -> dict[str, Any] | None:
    """The status patch setting PodScheduled=False, or None when the pod already says so.

    ``lastTransitionTime`` only moves when the status changes, as ``UpdatePodCondition`` does.
    """
    conditions: Sequence[Mapping[str, Any]] = (pod.get("status") or {}).get("conditions") or []
    current = next((c for c in conditions if c.get("type") == POD_SCHEDULED), None)
    if current is not None and (current.get("status"), current.get("reason"), current.get("message")) == (
        "False",
        reason,
        message,
    ):
        return None
    transition = now_rfc3339()
    if current is not None and current.get("status") == "False" and current.get("lastTransitionTime"):
        transition = str(current["lastTransitionTime"])
    condition = {
        "type": POD_SCHEDULED,
        "status": "False",
        "reason": reason,
        "message": message,
        "lastProbeTime": None,
        "lastTransitionTime": transition,
    }
    return {"status": {"conditions": [condition]}}


def event_body(
    pod: PodFacts, name: str, type_: str, reason: str, message: str, now: str, component: str, instance: str
) -> dict[str, Any]:
    """A core/v1 Event about ``pod``, as client-go's recorder writes it."""
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": pod.namespace},
        "involvedObject": {
            "apiVersion": "v1",
            "kind": "Pod",
            "name": pod.name,
            "namespace": pod.namespace,
            "uid": pod.uid,
        },
        "reason": reason,
        "message": message,
        "source": {"component": component},
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
        "type": type_,
        "eventTime": None,
        "reportingComponent": component,
        "reportingInstance": instance,
    }
