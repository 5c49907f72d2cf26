"""Keeps NodePool, EC2NodeClass and NodeClaim status current (the imperative shell).

Fed by informer events (``LauncherState.listen``): each event updates the pools' resource totals
and marks the objects it affects, so the work per event does not grow with the cluster; a
periodic resync recomputes everything, so a missed event only delays a status. Each status is
computed by the pure modules beside this one and written through the ``status`` subresource
with a merge patch, only when it differs from the stored one (our own writes come back as events
and compute to no change). EC2NodeClasses are resolved against AWS on their own schedule: when
first seen, when their spec changes, and every ``nodeclass_refresh_seconds``, but never more
often than ``nodeclass_min_interval`` per class; events only reuse the last findings. Only the
leader writes (``run``); every replica keeps the index, so a new leader starts with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from kubernetes_asyncio.client.exceptions import ApiException

from launcher.kube import StatusWriter
from launcher.state import LauncherState
from launcher.status import conditions as c
from launcher.status import nodeclaim as claim_status
from launcher.status import nodeclass as class_status
from launcher.status import nodepool as pool_status
from launcher.status.patch import status_patch
from launcher.status.resources import PoolResources, claim_part, node_part
from shared import labels
from shared.api._fields import parse_time
from shared.api.nodeclass import EC2NodeClass
from shared.api.nodepool import NodePool
from shared.errors import ValidationError
from shared.informer import Obj
from shared.logs import get_logger
from shared.tasks import within

log = get_logger("launcher.status")

POOL: Final = "nodepool"
CLASS: Final = "nodeclass"
CLAIM: Final = "nodeclaim"
Inspect = Callable[[EC2NodeClass], Awaitable[class_status.NodeClassFindings]]


@dataclass(frozen=True)
class StatusConfig:
    resync_seconds: float = 60.0
    nodeclass_refresh_seconds: float = 60.0
    nodeclass_min_interval: float = 10.0
    retry_seconds: float = 2.0


class _On:
    """An informer event handler calling ``fn(old, new)``; None stands for absent."""

    def __init__(self, fn: Callable[[Obj | None, Obj | None], None]) -> None:
        self._fn = fn

    def on_added(self, obj: Obj) -> None:
        self._fn(None, obj)

    def on_modified(self, old: Obj, new: Obj) -> None:
        self._fn(old, new)

    def on_deleted(self, obj: Obj) -> None:
        self._fn(obj, None)


def _meta(obj: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return (obj or {}).get("metadata") or {}


def _name(obj: Mapping[str, Any]) -> str:
    return str(_meta(obj).get("name") or "")


def _generation(obj: Mapping[str, Any] | None) -> int:
    value = _meta(obj).get("generation")
    return value if isinstance(value, int) else 0


def _class_ref(pool: Mapping[str, Any] | None) -> str:
    ref = ((((pool or {}).get("spec") or {}).get("template") or {}).get("spec") or {}).get(
        "nodeClassRef"
    ) or {}
    name = ref.get("name") if isinstance(ref, Mapping) else None
    return name if isinstance(name, str) else ""


def _without_status(obj: Mapping[str, Any]) -> dict[str, Any]:
    """Validation is of the spec: a status we cannot read is ours to rewrite, not the user's error."""
    return {k: v for k, v in obj.items() if k != "status"}


class StatusController:
    def __init__(
        self,
        *,
        state: LauncherState,
        writer: StatusWriter,
        inspect: Inspect,
        config: StatusConfig = StatusConfig(),
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._state = state
        self._writer = writer
        self._inspect = inspect
        self.config = config
        self._now = now
        self._clock = clock
        self.resources = PoolResources()
        self._pool_class: dict[str, str] = {}
        self._class_pools: dict[str, set[str]] = {}
        self._claim_pool: dict[str, str] = {}
        self._pool_claims: dict[str, set[str]] = {}
        self._dirty: dict[str, set[str]] = {POOL: set(), CLASS: set(), CLAIM: set()}
        self._timers: list[tuple[float, str, str]] = []
        self._claim_timers: dict[str, float] = {}
        self._pools: dict[str, tuple[int, NodePool | None, str | None]] = {}
        self._classes: dict[str, tuple[int, EC2NodeClass | None, str | None]] = {}
        self.findings: dict[str, class_status.NodeClassFindings] = {}
        self._inspected_at: dict[str, float] = {}
        self._inspecting: dict[str, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        state.listen("nodepool", _On(self._on_pool))
        state.listen("nodeclass", _On(self._on_class))
        state.listen("nodeclaim", _On(self._on_claim))
        state.listen("node", _On(self._on_node))

    # Events (synchronous, O(1) apart from a pool's or class's own dependents) ------------------

    def _mark(self, kind: str, names: set[str] | list[str] | tuple[str, ...]) -> None:
        if names:
            self._dirty[kind].update(names)
            self._wake.set()

    def _on_pool(self, old: Obj | None, new: Obj | None) -> None:
        name = _name(new or old or {})
        previous_class = self._pool_class.pop(name, None)
        if previous_class is not None:
            self._class_pools.get(previous_class, set()).discard(name)
        if new is None:
            self._pools.pop(name, None)
            return
        ref = _class_ref(new)
        self._pool_class[name] = ref
        self._class_pools.setdefault(ref, set()).add(name)
        self._mark(POOL, [name])
        if old is None or _generation(old) != _generation(new):  # consolidateAfter may have changed
            self._mark(CLAIM, tuple(self._pool_claims.get(name, ())))

    def _on_class(self, old: Obj | None, new: Obj | None) -> None:
        name = _name(new or old or {})
        if new is None:
            self._classes.pop(name, None)
            self.findings.pop(name, None)
            self._inspected_at.pop(name, None)
        else:
            self._mark(CLASS, [name])
        self._mark(POOL, tuple(self._class_pools.get(name, ())))

    def _on_claim(self, old: Obj | None, new: Obj | None) -> None:
        name = _name(new or old or {})
        before, after = claim_part(old or {}), claim_part(new or {})
        changed: set[str] = set()
        if before is not None and (after is None or after[0] != before[0]):
            changed |= self.resources.set_claim(before[0], None)
        if after is not None:
            changed |= self.resources.set_claim(*after)
        self._mark(POOL, tuple(changed))
        pool = self._claim_pool.pop(name, None)
        if pool is not None:
            self._pool_claims.get(pool, set()).discard(name)
        if new is None:
            self._claim_timers.pop(name, None)
            return
        pool = (_meta(new).get("labels") or {}).get(labels.NODEPOOL)
        if pool:
            self._claim_pool[name] = str(pool)
            self._pool_claims.setdefault(str(pool), set()).add(name)
        self._mark(CLAIM, [name])

    def _on_node(self, old: Obj | None, new: Obj | None) -> None:
        before, after = node_part(old or {}), node_part(new or {})
        changed: set[str] = set()
        if before is not None and (after is None or after[0] != before[0]):
            changed |= self.resources.set_node(before[0], None)
        if after is not None:
            changed |= self.resources.set_node(*after)
        self._mark(POOL, tuple(changed))

    # The loop (leader only) -------------------------------------------------------------------

    def resync(self) -> None:
        """Mark every object for recomputation."""
        self._mark(POOL, tuple(self._state.nodepool_informer.store()))
        self._mark(CLASS, tuple(self._state.nodeclass_informer.store()))
        self._mark(CLAIM, tuple(self._state.nodeclaim_informer.store()))

    async def run(self) -> None:
        """Write statuses on every change, timer and resync, until cancelled."""
        next_resync = self._clock()
        try:
            while True:
                self._wake.clear()
                if self._clock() >= next_resync:
                    self.resync()
                    next_resync = self._clock() + self.config.resync_seconds
                self._fire_timers()
                await self.flush()
                wait = next_resync - self._clock()
                if self._timers:
                    wait = min(wait, self._timers[0][0] - self._clock())
                if self._wake.is_set():
                    continue
                with contextlib.suppress(TimeoutError):
                    await within(self._wake.wait(), max(0.01, wait))
        finally:
            tasks = list(self._inspecting.values())
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _later(self, seconds: float, kind: str, name: str) -> None:
        heapq.heappush(self._timers, (self._clock() + seconds, kind, name))

    def _fire_timers(self) -> None:
        now = self._clock()
        while self._timers and self._timers[0][0] <= now:
            _, kind, name = heapq.heappop(self._timers)
            if kind == CLAIM:
                self._claim_timers.pop(name, None)
            self._dirty[kind].add(name)

    async def flush(self) -> None:
        """Recompute and write every marked object (classes first: pools read their Ready)."""
        for kind, reconcile in ((CLASS, self._class), (POOL, self._pool), (CLAIM, self._claim)):
            names, self._dirty[kind] = self._dirty[kind], set()
            for name in sorted(names):
                try:
                    await reconcile(name)
                except asyncio.CancelledError:
                    raise
                except Exception as error:
                    log.warning("status not written", kind=kind, name=name, error=str(error))
                    self._later(self.config.retry_seconds, kind, name)

    async def _write(
        self, kind: str, obj: Mapping[str, Any], wanted: Mapping[str, Any], keys: tuple[str, ...]
    ) -> None:
        current = obj.get("status") or {}
        patch = status_patch(current, wanted, keys)
        if patch is None:
            return
        name = _name(obj)
        rv = str(_meta(obj).get("resourceVersion") or "")
        write = {POOL: self._writer.nodepool, CLASS: self._writer.nodeclass, CLAIM: self._writer.nodeclaim}[
            kind
        ]
        try:
            await write(name, patch, rv)
        except ApiException as error:
            if error.status == 404:
                return
            if error.status != 409:
                raise
            # Changed since we read it: its event is on the way; recompute then (or soon).
            self._later(self.config.retry_seconds, kind, name)
            return
        old_ready = c.find(c.parse(current.get("conditions")), c.READY)
        new_ready = c.find(c.parse(wanted.get("conditions")), c.READY)
        if new_ready is not None and (old_ready is None or old_ready.status != new_ready.status):
            log.info(
                "status ready changed",
                kind=kind,
                name=name,
                ready=new_ready.status,
                reason=new_ready.reason,
                message=new_ready.message,
            )

    # EC2NodeClass ------------------------------------------------------------------------------

    def _parsed_class(self, obj: Mapping[str, Any]) -> tuple[EC2NodeClass | None, str | None]:
        name, generation = _name(obj), _generation(obj)
        cached = self._classes.get(name)
        if cached is None or cached[0] != generation:
            try:
                cached = (generation, EC2NodeClass.from_api(_without_status(obj)), None)
            except ValidationError as error:
                cached = (generation, None, str(error))
            self._classes[name] = cached
        return cached[1], cached[2]

    async def _class(self, name: str) -> None:
        obj = self._state.nodeclass_informer.store().get(name)
        if obj is None:
            return
        nodeclass, invalid = self._parsed_class(obj)
        if nodeclass is not None:
            self._maybe_inspect(name, nodeclass)
        wanted = class_status.nodeclass_status(
            generation=_generation(obj),
            previous=obj.get("status") or {},
            invalid=invalid,
            findings=self.findings.get(name),
            now=self._now(),
        )
        await self._write(CLASS, obj, wanted, class_status.STATUS_KEYS)

    def _maybe_inspect(self, name: str, nodeclass: EC2NodeClass) -> None:
        if name in self._inspecting:
            return
        findings = self.findings.get(name)
        last = self._inspected_at.get(name)
        now = self._clock()
        due = (
            findings is None
            or findings.generation != nodeclass.metadata.generation
            or last is None
            or now - last >= self.config.nodeclass_refresh_seconds
        )
        if not due:
            return
        if last is not None and now - last < self.config.nodeclass_min_interval:
            self._later(last + self.config.nodeclass_min_interval - now, CLASS, name)
            return
        self._inspecting[name] = asyncio.create_task(
            self._run_inspect(name, nodeclass), name=f"inspect-{name}"
        )

    async def _run_inspect(self, name: str, nodeclass: EC2NodeClass) -> None:
        try:
            self.findings[name] = await self._inspect(nodeclass)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.warning("nodeclass not inspected", nodeclass=name, error=str(error))
        finally:
            self._inspected_at[name] = self._clock()
            self._inspecting.pop(name, None)
        self._mark(CLASS, [name])

    # NodePool ----------------------------------------------------------------------------------

    def _parsed_pool(self, obj: Mapping[str, Any]) -> tuple[NodePool | None, str | None]:
        name, generation = _name(obj), _generation(obj)
        cached = self._pools.get(name)
        if cached is None or cached[0] != generation:
            try:
                cached = (generation, NodePool.from_api(_without_status(obj)), None)
            except ValidationError as error:
                cached = (generation, None, str(error))
            self._pools[name] = cached
        return cached[1], cached[2]

    async def _pool(self, name: str) -> None:
        obj = self._state.nodepool_informer.store().get(name)
        if obj is None:
            return
        _, invalid = self._parsed_pool(obj)
        class_name = _class_ref(obj)
        class_obj = self._state.nodeclass_informer.store().get(class_name) if class_name else None
        view = None
        if class_obj is not None:
            view = pool_status.NodeClassView(
                name=class_name,
                generation=_generation(class_obj),
                deleting=bool(_meta(class_obj).get("deletionTimestamp")),
                conditions=c.parse((class_obj.get("status") or {}).get("conditions")),
            )
        capacity, nodes = self.resources.totals(name)
        wanted = pool_status.nodepool_status(
            generation=_generation(obj),
            previous=dict(obj.get("status") or {}),
            invalid=invalid,
            nodeclass_name=class_name,
            nodeclass=view,
            capacity=capacity,
            nodes=nodes,
            now=self._now(),
        )
        await self._write(POOL, obj, wanted, ("conditions", "resources", "nodeClassObservedGeneration"))

    # NodeClaim ---------------------------------------------------------------------------------

    async def _claim(self, name: str) -> None:
        obj = self._state.nodeclaim_informer.store().get(name)
        if obj is None or _meta(obj).get("deletionTimestamp"):
            return
        status = obj.get("status") or {}
        pool_name = (_meta(obj).get("labels") or {}).get(labels.NODEPOOL)
        pool_obj = self._state.nodepool_informer.store().get(str(pool_name)) if pool_name else None
        pool = self._parsed_pool(pool_obj)[0] if pool_obj is not None else None
        try:
            last_pod_event = (
                parse_time(status["lastPodEventTime"]) if status.get("lastPodEventTime") else None
            )
        except ValueError:
            last_pod_event = None
        now = self._now()
        result = claim_status.nodeclaim_conditions(
            c.parse(status.get("conditions")),
            generation=_generation(obj) or None,
            consolidate_after=pool.disruption.consolidate_after if pool is not None else None,
            last_pod_event=last_pod_event,
            now=now,
        )
        if result.recheck_at is not None:
            delay = max(0.0, (result.recheck_at - now).total_seconds()) + 0.05
            when = self._clock() + delay
            existing = self._claim_timers.get(name)
            if existing is None or abs(existing - when) > 1.0:
                self._claim_timers[name] = when
                heapq.heappush(self._timers, (when, CLAIM, name))
        await self._write(CLAIM, obj, {"conditions": c.to_api(result.conditions)}, ("conditions",))
