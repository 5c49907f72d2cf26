"""Carries out :mod:`launcher.lifecycle.decisions` for every NodeClaim.

Each claim is reconciled by at most one task at a time; a change that arrives while it runs
marks the claim dirty and it is reconciled again right after. Every claim is also resynced
periodically, so a missed event only delays, never loses, a step. Launch failures are sorted:
insufficient capacity marks the offerings unavailable and retries with what is left (or
deletes the claim so its pods are planned again elsewhere); throttling backs off with jitter;
other errors are recorded on the claim and retried a bounded number of times.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from structlog.stdlib import BoundLogger

from launcher import metrics
from launcher.kube import NodeClaimWriter, NodeWriter
from launcher.lifecycle import decisions as d
from launcher.lifecycle.instances import InstanceIndex
from launcher.lifecycle.launch import launch_request
from launcher.model import Instance, InstanceType, InsufficientCapacityError, LaunchError, ThrottledError
from launcher.planner.offerings import UnavailableOfferings
from launcher.provider import CloudProvider
from launcher.state import LauncherState
from launcher.status import conditions as condition_set
from launcher.warmpool import claims as warm
from launcher.warmpool import steps as warm_steps
from shared import labels
from shared.api.meta import Condition
from shared.api.nodeclaim import INITIALIZED, LAUNCHED, READY, REGISTERED, NodeClaim
from shared.crashpoints import FLEET_RETURNED, INSTANCE_TERMINATED, crash_point
from shared.events import NORMAL, WARNING, EventRecorder
from shared.logs import get_logger
from shared.resources import Resources
from shared.tasks import within

log = get_logger("launcher.lifecycle")


@dataclass(frozen=True)
class LifecycleConfig:
    cluster: str
    registration_timeout: timedelta = timedelta(minutes=15)
    resync_seconds: float = 10.0
    instance_refresh_seconds: float = 5.0
    max_launch_attempts: int = 5
    throttle_backoff_seconds: float = 1.0
    # After a failed launch attempt the claim waits 1, 2, 4... seconds (at most 30) before the next.
    launch_backoff_seconds: float = 1.0
    concurrency: int = 32


def set_condition(
    conditions: list[dict[str, Any]], type_: str, status: str, reason: str, message: str, now: datetime
) -> list[dict[str, Any]]:
    """``conditions`` with ``type_`` set; lastTransitionTime changes only when status does."""
    wanted = Condition(type_, status, reason, message)
    return condition_set.to_api(condition_set.merge(condition_set.parse(conditions), [wanted], now))


def _conditions(claim: NodeClaim) -> list[dict[str, Any]]:
    return [c.to_api() for c in claim.status.conditions]


def claim_reference(claim: NodeClaim) -> dict[str, Any]:
    return {
        "kind": "NodeClaim",
        "apiVersion": "jitnode.io/v1",
        "name": claim.name,
        "uid": claim.metadata.uid,
        "namespace": "default",  # Events of cluster-scoped objects live in "default"
    }


class ClaimController:
    def __init__(
        self,
        *,
        state: LauncherState,
        provider: CloudProvider,
        claims: NodeClaimWriter,
        nodes: NodeWriter,
        events: EventRecorder,
        instances: InstanceIndex,
        unavailable: UnavailableOfferings,
        catalogue: Callable[[], Mapping[str, InstanceType]],
        config: LifecycleConfig,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._state = state
        self._provider = provider
        self._claims = claims
        self._nodes = nodes
        self._events = events
        self._instances = instances
        self._unavailable = unavailable
        self._catalogue = catalogue
        self.config = config
        self._now = now
        self._running: dict[str, asyncio.Task[None]] = {}
        self._dirty: set[str] = set()
        self._attempts: dict[str, int] = {}
        self._backoff: dict[str, float] = {}  # claim -> seconds to wait before its next reconcile
        self._limit = asyncio.Semaphore(config.concurrency)
        # Launches not yet visible on the claim object in our cache (its informer lags).
        self._launched: dict[str, Instance] = {}

    async def run(self) -> None:
        """Reconcile on every change and every resync, until cancelled."""
        wake = self._state.subscribe()
        await self._instances.refresh()
        try:
            while True:
                wake.clear()
                await self._instances.refresh_if_older(self.config.instance_refresh_seconds)
                self.reconcile_all()
                with contextlib.suppress(TimeoutError):
                    await within(wake.wait(), self.config.resync_seconds)
        finally:
            for task in self._running.values():
                task.cancel()
            await asyncio.gather(*self._running.values(), return_exceptions=True)

    def reconcile_all(self) -> None:
        for claim in self._state.nodeclaims().values():
            self.enqueue(claim)

    def enqueue(self, claim: NodeClaim) -> None:
        """Reconcile ``claim`` soon; at most one reconcile per claim runs at a time."""
        if claim.name in self._running:
            self._dirty.add(claim.name)
            return
        self._running[claim.name] = asyncio.create_task(self._guarded(claim), name=f"claim-{claim.name}")

    async def _guarded(self, claim: NodeClaim) -> None:
        try:
            async with self._limit:
                await self.reconcile(claim)
            # A failed launch waits here, its claim still marked running (events on it queue up)
            # but its concurrency slot given back.
            if (delay := self._backoff.pop(claim.name, 0.0)) > 0:
                await asyncio.sleep(delay)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.exception("reconcile failed", nodeclaim=claim.name, error=str(error))
        finally:
            self._running.pop(claim.name, None)
        if claim.name in self._dirty:
            self._dirty.discard(claim.name)
            fresh = self._state.nodeclaims().get(claim.name)
            if fresh is not None:
                self.enqueue(fresh)

    async def _instance_of(self, claim: NodeClaim) -> Instance | None:
        instance_id = claim.status.instance_id
        if instance_id:
            instance = self._instances.by_id(instance_id)
            if instance is None:
                # Absent from a snapshot is not proof it is gone: ask EC2 before concluding.
                instance = await self._provider.get(instance_id)
                if instance is not None:
                    self._instances.remember(instance)
            return instance
        return self._launched.get(claim.name) or self._instances.by_claim(claim.name)

    async def reconcile(self, claim: NodeClaim) -> d.Step:
        """Observe, decide and act once for ``claim``; returns the step taken (for tests)."""
        instance = await self._instance_of(claim)
        node = None
        if instance is not None:
            node = self._state.nodes_by_provider_id().get(instance.provider_id)
        step = d.next_step(
            claim, instance, node, self._now(), registration_timeout=self.config.registration_timeout
        )
        bound = log.bind(nodeclaim=claim.name, nodepool=claim.nodepool, step=type(step).__name__)
        if isinstance(step, d.Launch):
            await self._launch(claim)
        elif isinstance(step, d.Adopt):
            bound.info("adopting instance launched before a restart", instance_id=step.instance.id)
            await self._record_launch(claim, step.instance)
        elif isinstance(step, d.Register):
            await self._register(claim, step.node_name, node or {}, instance)
        elif isinstance(step, d.Initialize):
            await self._initialize(claim, node or {})
        elif isinstance(step, d.Delete):
            bound.warning("deleting claim", reason=step.reason, instance_id=claim.status.instance_id)
            if "did not register" in step.reason:
                metrics.REGISTRATION_TIMEOUTS.inc()
            await self._events.record(claim_reference(claim), WARNING, "NodeClaimFailed", step.reason)
            await self._claims.delete(claim.name)
        elif isinstance(step, d.TerminateInstance):
            bound.info("terminating instance", instance_id=step.instance_id)
            await self._provider.delete(step.instance_id)
            crash_point(INSTANCE_TERMINATED)
            self._instances.forget(step.instance_id)
            self._launched.pop(claim.name, None)
            await self._events.record(
                claim_reference(claim), NORMAL, "InstanceTerminated", f"terminated {step.instance_id}"
            )
            self._dirty.add(claim.name)
        elif isinstance(step, d.DeleteNode):
            bound.info("deleting node", node=step.node_name)
            await self._nodes.delete(step.node_name)
        elif isinstance(step, d.RemoveFinalizer):
            if labels.TERMINATION_FINALIZER in claim.metadata.finalizers:
                await self._claims.remove_finalizer(
                    claim.name,
                    claim.metadata.finalizers,
                    labels.TERMINATION_FINALIZER,
                    claim.metadata.resource_version,
                )
                bound.info("claim terminated")
            self._attempts.pop(claim.name, None)
            self._launched.pop(claim.name, None)
        return step

    # Launch ---------------------------------------------------------------------------------

    async def _launch(self, claim: NodeClaim) -> None:
        bound = log.bind(nodeclaim=claim.name, nodepool=claim.nodepool)
        # The snapshot must postdate the claim, or an instance a crashed leader launched for it
        # could be missed: refresh, then look again by tag before calling CreateFleet.
        await self._instances.refresh_if_older(0.0)
        existing = self._instances.by_claim(claim.name)
        if existing is not None:
            await self._record_launch(claim, existing)
            return
        tags = {
            labels.TAG_CLUSTER: self.config.cluster,
            labels.TAG_MANAGED_BY: "jitnode",
            f"kubernetes.io/cluster/{self.config.cluster}": "owned",
        }
        while True:
            # The catalogue is read afresh each round: a NodeClass resolved while this launch
            # waited narrows it to the zones that have subnets.
            request = launch_request(claim, self._catalogue(), self._unavailable, tags)
            if isinstance(request, str):
                bound.warning("no offering left", reason=request)
                await self._events.record(claim_reference(claim), WARNING, "InsufficientCapacity", request)
                await self._claims.delete(claim.name)
                return
            started = time.monotonic()
            try:
                instance = await self._provider.create(request)
            except InsufficientCapacityError as error:
                metrics.LAUNCHES.labels("insufficient_capacity").inc()
                for offering in error.offerings:
                    metrics.OFFERINGS_UNAVAILABLE.labels(offering[2]).inc()
                learned = [o for o in error.offerings if not self._unavailable.is_unavailable(*o)]
                self._unavailable.mark_all(error.offerings)
                bound.warning("insufficient capacity", error=str(error), offerings=len(error.offerings))
                if not error.offerings:
                    await self._claims.delete(claim.name)
                    return
                if learned:
                    continue
                # EC2 refused only offerings already known to be out: retrying at once would
                # ask again for the same. Count it as a failed attempt, with its backoff.
                await self._launch_failed(claim, bound, error)
                return
            except ThrottledError as error:
                metrics.LAUNCHES.labels("throttled").inc()
                delay = self.config.throttle_backoff_seconds * (1 + random.random())
                bound.warning("throttled", error=str(error), retry_in=round(delay, 2))
                await asyncio.sleep(delay)
                continue
            except LaunchError as error:
                await self._launch_failed(claim, bound, error)
                return
            crash_point(FLEET_RETURNED)
            metrics.FLEET_SECONDS.observe(time.monotonic() - started)
            metrics.LAUNCHES.labels("launched").inc()
            self._launched[claim.name] = instance
            self._instances.remember(instance)
            bound.info(
                "launched",
                instance_id=instance.id,
                instance_type=instance.instance_type,
                zone=instance.zone,
                capacity_type=instance.capacity_type,
            )
            if claim.metadata.creation_timestamp is not None:
                metrics.LAUNCH_SECONDS.labels("fleet_returned").observe(
                    (self._now() - claim.metadata.creation_timestamp).total_seconds()
                )
            await self._record_launch(claim, instance)
            return

    async def _launch_failed(self, claim: NodeClaim, bound: BoundLogger, error: Exception) -> None:
        """Record a failed attempt on the claim (condition, Event); delete it after the last one."""
        metrics.LAUNCHES.labels("error").inc()
        attempts = self._attempts.get(claim.name, 0) + 1
        self._attempts[claim.name] = attempts
        bound.error("launch failed", error=str(error), attempt=attempts)
        await self._claims.patch_status(
            claim.name,
            {
                "conditions": set_condition(
                    _conditions(claim), LAUNCHED, "False", "LaunchFailed", str(error)[:1000], self._now()
                )
            },
        )
        await self._events.record(claim_reference(claim), WARNING, "LaunchFailed", str(error)[:1000])
        if attempts >= self.config.max_launch_attempts:
            await self._claims.delete(claim.name)
            return
        self._backoff[claim.name] = min(30.0, self.config.launch_backoff_seconds * 2 ** (attempts - 1))

    async def _record_launch(self, claim: NodeClaim, instance: Instance) -> None:
        instance_type = self._catalogue().get(instance.instance_type)
        status: dict[str, Any] = {
            "instanceID": instance.id,
            "providerID": instance.provider_id,
            "imageID": instance.image_id,
            "conditions": set_condition(
                _conditions(claim),
                LAUNCHED,
                "True",
                "Launched",
                f"{instance.instance_type} in {instance.zone}",
                self._now(),
            ),
        }
        if instance_type is not None:
            status["capacity"] = instance_type.capacity.to_api()
            status["allocatable"] = instance_type.allocatable.to_api()
        await self._claims.patch(
            claim.name,
            {
                "metadata": {
                    "labels": {
                        labels.INSTANCE_TYPE: instance.instance_type,
                        labels.ZONE: instance.zone,
                        labels.CAPACITY_TYPE: instance.capacity_type,
                    }
                }
            },
        )
        await self._claims.patch_status(claim.name, status)
        await self._events.record(
            claim_reference(claim),
            NORMAL,
            "Launched",
            f"launched {instance.id} ({instance.instance_type}, {instance.zone}, {instance.capacity_type})",
        )

    # Registration ---------------------------------------------------------------------------

    async def _register(
        self, claim: NodeClaim, node_name: str, node: Mapping[str, Any], instance: Instance | None
    ) -> None:
        node_labels: dict[str, str] = dict(claim.metadata.labels)
        node_labels[labels.NODECLAIM] = claim.name
        if instance is not None:
            instance_type = self._catalogue().get(instance.instance_type)
            if instance_type is not None:
                node_labels.update(instance_type.labels)
            node_labels[labels.CAPACITY_TYPE] = instance.capacity_type
            node_labels[labels.ZONE] = instance.zone
        current_labels = (node.get("metadata") or {}).get("labels") or {}
        missing_labels = {k: v for k, v in node_labels.items() if current_labels.get(k) != v}
        current_taints = (node.get("spec") or {}).get("taints") or []
        have = {(t.get("key"), t.get("effect")) for t in current_taints}
        missing_taints = [t.to_api() for t in claim.taints if (t.key, t.effect) not in have]
        patch: dict[str, Any] = {}
        if missing_labels:
            patch["metadata"] = {"labels": missing_labels}
        if missing_taints:
            patch["spec"] = {"taints": [*current_taints, *missing_taints]}
        if warm.is_warm(claim):
            # Cordoned as it registers, before the scheduler can place pods on it (launcher.warmpool).
            patch = warm_steps.with_cordon(patch, node)
        if patch:
            await self._nodes.patch(node_name, patch)
        await self._claims.patch_status(
            claim.name,
            {
                "nodeName": node_name,
                "conditions": set_condition(
                    _conditions(claim),
                    REGISTERED,
                    "True",
                    "Registered",
                    f"node {node_name} joined",
                    self._now(),
                ),
            },
        )
        log.info("registered", nodeclaim=claim.name, nodepool=claim.nodepool, node=node_name)
        launched = d.launched_at(claim)
        if launched is not None:
            metrics.LAUNCH_SECONDS.labels("registered").observe((self._now() - launched).total_seconds())

    async def _initialize(self, claim: NodeClaim, node: Mapping[str, Any]) -> None:
        now = self._now()
        conditions = set_condition(
            _conditions(claim), INITIALIZED, "True", "Initialized", "node is Ready", now
        )
        conditions = set_condition(conditions, READY, "True", "Ready", "node is Ready", now)
        status: dict[str, Any] = {"conditions": conditions}
        allocatable = (node.get("status") or {}).get("allocatable")
        if allocatable:
            status["allocatable"] = Resources.parse(allocatable, "status.allocatable").to_api()
        await self._claims.patch_status(claim.name, status)
        name = (node.get("metadata") or {}).get("name")
        log.info("initialized", nodeclaim=claim.name, nodepool=claim.nodepool, node=name)
        if claim.metadata.creation_timestamp is not None:
            metrics.LAUNCH_SECONDS.labels("ready").observe(
                (now - claim.metadata.creation_timestamp).total_seconds()
            )
