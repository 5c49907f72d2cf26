"""Draining a node: mark and taint it, evict its pods through the Eviction API, then delete its claim.

(The drainer also writes the ``jitnode.io/disruption-candidate:PreferNoSchedule`` taint that the
disruption controller keeps on nodes about to be disrupted; see ``decisions.candidate_taints``.)

Rules (Karpenter's, and the ones users rely on):

- The node is annotated ``jitnode.io/disrupting`` and tainted ``jitnode.io/disrupted:NoSchedule``
  in one strategic-merge patch guarded by ``resourceVersion``. A Node's ``spec.taints`` has no
  patch merge key, so the patch carries the whole list.
- Pods leave only through ``pods/eviction`` (policy/v1), never by a direct delete, so every
  PodDisruptionBudget is honoured: a 429 means the budget said no, and that pod is tried again
  after an exponential backoff with jitter. DaemonSet, mirror and terminal pods are left alone;
  system-critical pods go last; pods annotated ``do-not-disrupt`` are not evicted while the
  annotation protects them (``"true"``, or a duration since the pod started; see ``donotdisrupt``).
- The drain waits until every evictable pod is gone, or until the NodePool's
  ``terminationGracePeriod`` (counted from the mark) has elapsed: then the NodeClaim is deleted
  anyway, as Karpenter does. Without a grace period it waits as long as it takes, logging.
- The last step deletes the NodeClaim; the lifecycle controller terminates the instance, deletes
  the Node and removes the claim's finalizer. Unless ``reclaim`` takes a drained node back into
  its pool's warm pool (``reuseOnScaleIn``, see ``launcher.warmpool.reuse``): then the claim stays
  and the warm pool parks its instance.

Every step is logged with node, nodeclaim and nodepool bound, and recorded as an Event on the Node.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from launcher.disruption.donotdisrupt import pod_protection
from launcher.disruption.mark import Mark
from launcher.kube import NodeClaimWriter, NodeWriter
from shared import labels, pods
from shared.backoff import Backoff
from shared.crashpoints import DRAIN_EVICTED, crash_point
from shared.events import NORMAL, WARNING, EventRecorder, object_reference
from shared.logs import get_logger

log = get_logger("launcher.disruption.drain")

Obj = Mapping[str, Any]
CRITICAL_PRIORITY_CLASSES: Final = frozenset({"system-cluster-critical", "system-node-critical"})
DISRUPTED_TAINT: Final = {"key": labels.DISRUPTED_TAINT, "effect": "NoSchedule"}
CANDIDATE_TAINT: Final = {"key": labels.DISRUPTION_CANDIDATE_TAINT, "effect": "PreferNoSchedule"}


@dataclass(frozen=True)
class DrainSettings:
    poll_seconds: float = 1.0  # how often the drain re-reads the node's pods
    eviction_backoff_base: float = 0.5
    eviction_backoff_cap: float = 30.0
    progress_log_seconds: float = 60.0  # "still draining" lines while pods remain


@dataclass(frozen=True)
class DrainTarget:
    node: str
    nodeclaim: str
    nodepool: str
    mark: Mark
    grace: timedelta | None  # terminationGracePeriod; None waits indefinitely


def evictable(pod: Obj) -> bool:
    """Pods a drain must move: not DaemonSet, mirror or terminal pods."""
    return not (pods.is_daemonset_pod(pod) or pods.is_mirror_pod(pod) or pods.is_terminal(pod))


def do_not_disrupt(obj: Obj) -> bool:
    """The annotation says ``"true"`` (durations on pods: see ``donotdisrupt.pod_protection``)."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(labels.DO_NOT_DISRUPT_ANNOTATION, "")).lower() == "true"


def is_critical(pod: Obj) -> bool:
    return (pod.get("spec") or {}).get("priorityClassName") in CRITICAL_PRIORITY_CLASSES


def node_reference(name: str, uid: str | None = None) -> dict[str, Any]:
    return object_reference({"metadata": {"name": name, "uid": uid}}, "Node")


def taints_with_disrupted(taints: Sequence[Obj]) -> list[dict[str, Any]]:
    """The node's whole taint list with ours added once (a strategic merge replaces the list)."""
    kept = [dict(t) for t in taints if t.get("key") != labels.DISRUPTED_TAINT]
    return [*kept, dict(DISRUPTED_TAINT)]


def taints_without_disrupted(taints: Sequence[Obj]) -> list[dict[str, Any]]:
    return [dict(t) for t in taints if t.get("key") != labels.DISRUPTED_TAINT]


def unmark_patch(node: Obj) -> dict[str, Any]:
    """The Node merge patch that takes the disruption mark off, guarded by the node's
    resourceVersion (a Node's taints have no merge key: the patch carries the whole list)."""
    return {
        "metadata": {
            "annotations": {labels.DISRUPTING_ANNOTATION: None},
            "resourceVersion": (node.get("metadata") or {}).get("resourceVersion"),
        },
        "spec": {"taints": taints_without_disrupted((node.get("spec") or {}).get("taints") or [])},
    }


def taints_with_candidate(taints: Sequence[Obj], candidate: bool) -> list[dict[str, Any]]:
    """The node's whole taint list with the disruption-candidate taint present once, or absent."""
    kept = [dict(t) for t in taints if t.get("key") != labels.DISRUPTION_CANDIDATE_TAINT]
    return [*kept, dict(CANDIDATE_TAINT)] if candidate else kept


@dataclass
class _PodRetry:
    backoff: Backoff
    next_at: float = 0.0
    blocked: int = 0


@dataclass
class _Progress:
    retries: dict[str, _PodRetry] = field(default_factory=dict)
    evicted: set[str] = field(default_factory=set)
    last_log: float = 0.0


class Drainer:
    """Marks, unmarks and drains nodes; reads pods through ``pods_on_node`` (an informer view)."""

    def __init__(
        self,
        *,
        api: client.ApiClient,
        nodes: NodeWriter,
        claims: NodeClaimWriter,
        events: EventRecorder,
        pods_on_node: Callable[[str], Sequence[Obj]],
        settings: DrainSettings = DrainSettings(),
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        rng: random.Random | None = None,
    ) -> None:
        self._api = api
        self._core = client.CoreV1Api(api)
        self._nodes = nodes
        self._claims = claims
        self._events = events
        self._pods_on_node = pods_on_node
        self.settings = settings
        self._now = now
        self._rng = rng or random.Random()

    # Marking --------------------------------------------------------------------------------

    async def mark(self, node_name: str, mark: Mark) -> bool:
        """Annotate and taint the node in one guarded patch; False if it is gone or changed."""
        try:
            node = await self._core.read_node(node_name)
            raw = self._api.sanitize_for_serialization(node)
            taints = (raw.get("spec") or {}).get("taints") or []
            patch = {
                "metadata": {
                    "annotations": {labels.DISRUPTING_ANNOTATION: mark.to_annotation()},
                    "resourceVersion": raw["metadata"]["resourceVersion"],
                },
                "spec": {"taints": taints_with_disrupted(taints)},
            }
            await self._nodes.patch(node_name, patch)
        except ApiException as error:
            if error.status in (404, 409):
                log.info("node not marked", node=node_name, status=error.status)
                return False
            raise
        return True

    async def unmark(self, node_name: str) -> None:
        """Remove our annotation and taint (a disruption given up); a gone node is fine."""
        try:
            node = await self._core.read_node(node_name)
            await self._nodes.patch(node_name, unmark_patch(self._api.sanitize_for_serialization(node)))
        except ApiException as error:
            if error.status == 404:
                return
            raise

    async def taint_candidate(self, node_name: str, candidate: bool) -> bool:
        """Add or remove the ``disruption-candidate:PreferNoSchedule`` taint in one guarded patch.

        False when the node is gone or changed under us (a later round tries again).
        """
        try:
            node = await self._core.read_node(node_name)
            raw = self._api.sanitize_for_serialization(node)
            taints = (raw.get("spec") or {}).get("taints") or []
            patch = {
                "metadata": {"resourceVersion": raw["metadata"]["resourceVersion"]},
                "spec": {"taints": taints_with_candidate(taints, candidate)},
            }
            await self._nodes.patch(node_name, patch)
        except ApiException as error:
            if error.status in (404, 409):
                log.info("candidate taint not changed", node=node_name, status=error.status)
                return False
            raise
        return True

    # Draining -------------------------------------------------------------------------------

    async def drain(self, target: DrainTarget, reclaim: Callable[[], Awaitable[bool]] | None = None) -> bool:
        """Evict until the node holds no evictable pod or the grace period ends; delete the claim,
        unless ``reclaim`` (asked once the node is drained) kept it for the warm pool.

        Returns True when the node was drained, False when the grace period cut it short.
        """
        bound = log.bind(node=target.node, nodeclaim=target.nodeclaim, nodepool=target.nodepool)
        ref = node_reference(target.node)
        deadline = target.mark.since + target.grace if target.grace is not None else None
        progress = _Progress(last_log=time.monotonic())
        bound.info("draining", reason=target.mark.reason, grace=str(target.grace) if target.grace else None)
        drained = True
        while True:
            remaining = [p for p in self._pods_on_node(target.node) if evictable(p)]
            if not remaining:
                break
            if deadline is not None and self._now() >= deadline:
                drained = False
                message = f"terminationGracePeriod {target.grace} elapsed with {len(remaining)} pods left"
                bound.warning("grace period elapsed", pods=len(remaining))
                await self._events.record(ref, WARNING, "GracePeriodElapsed", message)
                break
            await self._evict_round(target, remaining, progress, bound, ref)
            self._log_progress(remaining, progress, bound)
            await asyncio.sleep(self._sleep_for(progress))
        if drained:
            bound.info("drained")
            await self._events.record(ref, NORMAL, "Drained", f"node drained ({target.mark.reason})")
            if reclaim is not None and await reclaim():
                message = f"nodeclaim {target.nodeclaim} goes back to the warm pool"
                await self._events.record(ref, NORMAL, "ReturnedToWarmPool", message)
                return drained
        await self._claims.delete(target.nodeclaim)
        bound.info("nodeclaim deleted")
        await self._events.record(
            ref, NORMAL, "NodeClaimDeleted", f"deleted nodeclaim {target.nodeclaim}; the instance terminates"
        )
        return drained

    async def _evict_round(
        self, target: DrainTarget, remaining: list[Obj], progress: _Progress, bound: Any, ref: dict[str, Any]
    ) -> None:
        waiting_non_critical = any(not is_critical(p) for p in remaining)
        for pod in remaining:
            meta = pod.get("metadata") or {}
            uid = str(meta.get("uid") or "")
            key = pods.pod_key(pod)
            if meta.get("deletionTimestamp") or uid in progress.evicted:
                continue  # already leaving: wait for it to be gone
            if is_critical(pod) and waiting_non_critical:
                continue  # critical pods go last, as kubectl drain and Karpenter order them
            if pod_protection(pod, self._now()).active:  # "true", or a duration not yet over
                if uid not in progress.retries:
                    progress.retries[uid] = _PodRetry(self._backoff())
                    bound.info("pod is do-not-disrupt: waiting for it", pod=key)
                    await self._events.record(
                        ref, NORMAL, "EvictionBlocked", f"pod {key} is annotated do-not-disrupt"
                    )
                continue
            retry = progress.retries.setdefault(uid, _PodRetry(self._backoff()))
            if time.monotonic() < retry.next_at:
                continue
            await self._evict(pod, uid, key, retry, progress, bound, ref)

    async def _evict(
        self,
        pod: Obj,
        uid: str,
        key: str,
        retry: _PodRetry,
        progress: _Progress,
        bound: Any,
        ref: dict[str, Any],
    ) -> None:
        meta = pod.get("metadata") or {}
        namespace, name = str(meta.get("namespace") or "default"), str(meta.get("name") or "")
        body: dict[str, Any] = {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": name, "namespace": namespace},
            "deleteOptions": {"preconditions": {"uid": uid}} if uid else {},
        }
        try:
            await self._core.create_namespaced_pod_eviction(name, namespace, body)  # type: ignore[arg-type]
        except ApiException as error:
            if error.status == 404:
                progress.evicted.add(uid)
                return
            delay = retry.backoff.next_delay()
            retry.next_at = time.monotonic() + delay
            if error.status == 429:
                retry.blocked += 1
                bound.info("eviction refused by a disruption budget", pod=key, retry_in=round(delay, 2))
                await self._events.record(
                    ref,
                    WARNING,
                    "EvictionBlocked",
                    f"evicting pod {key} would violate its PodDisruptionBudget",
                )
            else:
                bound.warning("eviction failed", pod=key, status=error.status, error=str(error.reason))
            return
        progress.evicted.add(uid)
        bound.info("evicted", pod=key)
        crash_point(DRAIN_EVICTED)
        await self._events.record(ref, NORMAL, "Evicting", f"evicted pod {key}")

    def _backoff(self) -> Backoff:
        return Backoff(
            base=self.settings.eviction_backoff_base,
            cap=self.settings.eviction_backoff_cap,
            rng=self._rng,
        )

    def _sleep_for(self, progress: _Progress) -> float:
        now = time.monotonic()
        due = [r.next_at - now for r in progress.retries.values() if r.next_at > now]
        return max(0.01, min([self.settings.poll_seconds, *due]))

    def _log_progress(self, remaining: list[Obj], progress: _Progress, bound: Any) -> None:
        now = time.monotonic()
        if now - progress.last_log < self.settings.progress_log_seconds:
            return
        progress.last_log = now
        bound.info("still draining", pods=[pods.pod_key(p) for p in remaining[:10]], remaining=len(remaining))
