"""Keeps each NodePool's warm pool filled, parked and rotated, and starts warm instances on demand.

On every change (and every ``resync_seconds``) it reads the pools, claims, nodes and pods,
decides with the pure modules of this package and acts:

- sizing: creates warm NodeClaims up to the desired size (within the pool's limits), deletes the
  surplus, the expired (``expireAfter`` rotates warm instances like nodes) and the drifted (their
  ``Drifted`` condition, kept by ``launcher.status.drift`` as for any claim); the lifecycle
  controller launches them like any claim, but a Hibernated pool's fills on types EC2 can
  hibernate, ready for it (:meth:`WarmPoolController.hibernates` tells the provider which);
- each warm claim's next step (``steps``): cordon, evict, delete the Node, StopInstances, park;
- each claim taken from the pool: StartInstances, uncordon;
- the pool's ``status.warmPool``, its metrics and its cost both ways.

``activate`` is what the provisioner calls when a plan covered pods with a warm claim: the claim
leaves the pool (see ``claims`` for the order of writes that makes this crash-safe) and its
instance is started at once, ahead of the next reconcile.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from launcher import metrics
from launcher.disruption.drain import unmark_patch
from launcher.kube import NodeClaimWriter, NodeWriter, StatusWriter
from launcher.lifecycle.controller import set_condition
from launcher.lifecycle.instances import InstanceIndex
from launcher.model import Instance, InstanceType
from launcher.planner.offerings import UnavailableOfferings
from launcher.provisioning.claims import claim_name, nodeclaim_body
from launcher.provisioning.inputs import NodeClassZones, pool_requirements, pool_usage, unknown_zones
from launcher.state import LauncherState
from launcher.status import conditions as condition_set
from launcher.warmpool import reuse, steps
from launcher.warmpool.claims import (
    ACTIVATED,
    WARM_CONDITION,
    activated_at,
    is_spare,
    is_warm,
    parked_state,
    serves_annotation,
    starting,
)
from launcher.warmpool.cost import DEFAULT_VOLUME_GIB, WarmInstanceCost, format_dollars, hourly_cost
from launcher.warmpool.hedging import on_loan
from launcher.warmpool.sizing import (
    DEFAULT_WINDOW,
    desired_size,
    hibernating_types,
    is_expired,
    recent_demand,
    surplus_claims,
    warm_requirements,
    warm_types,
)
from shared import labels
from shared.api._fields import format_time
from shared.api.meta import Condition
from shared.api.nodeclaim import DRIFTED, INITIALIZED, REGISTERED, NodeClaim
from shared.api.nodepool import NodePool
from shared.api.warmpool import HIBERNATED, RUNNING, STOPPED, WarmPoolSpec, WarmPoolStatus
from shared.logs import get_logger
from shared.requirements import Requirement
from shared.resources import EMPTY, Resources
from shared.tasks import within

log = get_logger("launcher.warmpool")
Obj = Mapping[str, Any]
FILLING = "Filling"
# How long a claim just created counts before the informer shows it.
CREATED_GRACE = timedelta(seconds=30)


class WarmProvider(Protocol):
    """What the warm pool asks of EC2 beyond ``CloudProvider`` (``AWSCloudProvider`` has it)."""

    async def stop(self, instance_id: str, *, hibernate: bool) -> str: ...

    async def start(self, instance_id: str) -> None: ...

    async def get(self, instance_id: str) -> Instance | None: ...

    def hibernate_fills(self, wanted: Callable[[str], bool]) -> None: ...


@dataclass(frozen=True)
class WarmPoolSettings:
    resync_seconds: float = 5.0
    min_interval: float = 0.2
    # How long after a claim was taken its Node is still checked for the warm pool's marks.
    taken_watch: timedelta = timedelta(minutes=5)
    instance_refresh_seconds: float = 2.0
    demand_window: timedelta = DEFAULT_WINDOW


def within_limits(limits: Resources, usage: Resources, capacity: Resources) -> bool:
    """Whether ``capacity`` more keeps every limited resource of the pool within its limit."""
    return all(usage.amount(name) + capacity.amount(name) <= limit for name, limit in limits.items())


def _volume_gib(pool: NodePool, nodeclasses: Mapping[str, Any]) -> float:
    nodeclass = nodeclasses.get(pool.node_class_ref.name)
    total = 0
    for mapping in getattr(nodeclass, "block_device_mappings", ()) or ():
        if mapping.ebs is not None and mapping.ebs.volume_size:
            total += mapping.ebs.volume_size
    return total / 2**30 if total else DEFAULT_VOLUME_GIB


class WarmPoolController:
    def __init__(
        self,
        *,
        state: LauncherState,
        api: client.ApiClient,
        provider: WarmProvider,
        claims: NodeClaimWriter,
        nodes: NodeWriter,
        status: StatusWriter,
        instances: InstanceIndex,
        unavailable: UnavailableOfferings,
        catalogue: Callable[[], Mapping[str, InstanceType]],
        enqueue: Callable[[NodeClaim], None],
        settings: WarmPoolSettings = WarmPoolSettings(),
        zones: NodeClassZones = unknown_zones,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._state = state
        self._core: Any = client.CoreV1Api(api)
        self._provider = provider
        self._claims = claims
        self._nodes = nodes
        self._status = status
        self._instances = instances
        self._unavailable = unavailable
        self._catalogue = catalogue
        self._enqueue = enqueue
        self.settings = settings
        self._zones = zones
        self._now = now
        self._written: dict[str, dict[str, Any]] = {}
        # Claims created this pass that the informer may not show yet: not created twice.
        self._created: dict[str, NodeClaim] = {}
        # What each stop answered (Hibernated, or Stopped when EC2 would not hibernate it).
        self._stopped_as: dict[str, str] = {}
        self._starting: set[str] = set()  # instances a StartInstances is under way for
        # Hibernated pools that allow no type EC2 can hibernate (warned about once).
        self._cannot_hibernate: set[str] = set()
        provider.hibernate_fills(self.hibernates)

    def hibernates(self, nodeclaim: str) -> bool:
        """Whether ``nodeclaim`` is a warm fill of a Hibernated pool, to launch ready for hibernation
        (read from the claim and its pool, so a restarted launcher answers the same)."""
        claim = self._state.nodeclaims().get(nodeclaim) or self._created.get(nodeclaim)
        if claim is None or not is_warm(claim):
            return False
        pool = self._state.nodepools().get(claim.nodepool or "")
        return pool is not None and pool.warm_pool is not None and pool.warm_pool.hibernate

    async def run(self) -> None:
        wake = self._state.subscribe()
        while True:
            wake.clear()
            try:
                await self.reconcile_once()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.exception("warm pool reconcile failed", error=str(error))
            # Events come in bursts (every pod change wakes it): one pass per min_interval at most.
            await asyncio.sleep(self.settings.min_interval)
            with contextlib.suppress(TimeoutError):
                await within(wake.wait(), self.settings.resync_seconds)

    # Reconcile ------------------------------------------------------------------------------

    async def reconcile_once(self) -> None:
        await self._instances.refresh_if_older(self.settings.instance_refresh_seconds)
        known = self._state.nodeclaims()
        now = self._now()
        for name, created in list(self._created.items()):
            # Seen by the informer, or gone before it saw it (a launch refused at once).
            born = created.metadata.creation_timestamp or now
            if name in known or now - born > CREATED_GRACE:
                del self._created[name]
        claims = [*known.values(), *self._created.values()]
        by_pool: dict[str, list[NodeClaim]] = {}
        for claim in claims:
            by_pool.setdefault(claim.nodepool or "", []).append(claim)
        pools = self._state.nodepools()
        for name, pool in pools.items():
            pool_claims = by_pool.get(name, [])
            if pool.warm_pool is None and not any(is_warm(c) for c in pool_claims):
                continue
            await self._size(pool, pool.warm_pool or WarmPoolSpec(), pool_claims, claims)
        # Warm claims of a pool that is gone are no pool's: delete them (termination follows).
        for name, pool_claims in by_pool.items():
            if name not in pools:
                for claim in pool_claims:
                    if is_warm(claim) and claim.metadata.deletion_timestamp is None:
                        await self._delete(claim, "its NodePool is gone")
        await self._steps(claims, pools)

    async def _size(
        self, pool: NodePool, spec: WarmPoolSpec, pool_claims: list[NodeClaim], all_claims: list[NodeClaim]
    ) -> None:
        now = self._now()
        warm = _in_pool(pool_claims)
        expired = [c for c in warm if is_expired(c, now)]
        for claim in expired:
            await self._delete(claim, "expired (expireAfter)")
        # A drifted warm instance (new AMI, changed NodePool or NodeClass) would only be replaced
        # right after it served: it is rotated now, and refilled with what a launch uses today.
        drifted = [c for c in warm if c not in expired and c.is_true(DRIFTED)]
        for claim in drifted:
            condition = claim.condition(DRIFTED)
            await self._delete(claim, f"drifted ({condition.reason if condition else DRIFTED})")
        alive = [c for c in warm if c not in expired and c not in drifted]
        desired = self._desired(pool, pool_claims, now)
        # With reuseOnScaleIn, fills keep only the floor: the rest of what demand asks for comes
        # back from scale-in, already booted, rather than being launched beside it.
        fill_to = min(desired, spec.size) if spec.reuse_on_scale_in else desired
        # Instances lent in hedged starts come back when emptied: not refilled meanwhile.
        window = self.settings.demand_window
        lent = sum(1 for c in pool_claims if not c.metadata.deletion_timestamp and on_loan(c, now, window))
        fill_to = max(0, fill_to - lent)
        if len(alive) > desired:
            surplus = surplus_claims(alive, desired)
            for claim in surplus:
                await self._delete(claim, f"the pool wants {desired} warm instances")
            alive = [c for c in alive if c not in surplus]
        elif len(alive) < fill_to:
            await self._fill(pool, fill_to, alive, pool_claims, all_claims)
        await self._report(pool, desired, alive)

    def _desired(self, pool: NodePool | None, pool_claims: Iterable[NodeClaim], now: datetime) -> int:
        """How many warm instances the pool wants now (0 without a warm pool)."""
        if pool is None or pool.warm_pool is None:
            return 0
        return desired_size(pool.warm_pool, recent_demand(pool_claims, now, self.settings.demand_window))

    async def _fill(
        self,
        pool: NodePool,
        desired: int,
        alive: Sequence[NodeClaim],
        pool_claims: Sequence[NodeClaim],
        all_claims: Sequence[NodeClaim],
    ) -> None:
        catalogue = self._catalogue()
        requirements = warm_requirements(pool_requirements(pool, self._zones))
        recent = sorted(
            (c for c in pool_claims if not is_warm(c) and c.metadata.labels.get(labels.INSTANCE_TYPE)),
            key=lambda c: c.metadata.creation_timestamp or self._now(),
            reverse=True,
        )[:50]

        def choose(types: Mapping[str, InstanceType]) -> list[tuple[str, ...]]:
            return warm_types(
                requirements,
                types,
                recent_types=[c.metadata.labels[labels.INSTANCE_TYPE] for c in recent],
                existing_types=[_primary_type(c) for c in alive],
                count=desired - len(alive),
                target=desired,
                is_unavailable=self._unavailable.is_unavailable,
            )

        chosen = choose(hibernating_types(catalogue)) if self._can_hibernate(pool) else []
        chosen = chosen or choose(catalogue)
        if not chosen:
            log.warning("no instance type for the warm pool", nodepool=pool.name)
            return
        usage = pool_usage(all_claims, catalogue).get(pool.name, EMPTY)
        for types in chosen:
            capacity = EMPTY
            for name in types:
                capacity = capacity.max(catalogue[name].capacity)
            if pool.limits and not within_limits(pool.limits, usage, capacity):
                log.info("warm pool stops at the pool's limits", nodepool=pool.name)
                return
            usage = usage + capacity
            name = claim_name(pool.name)
            body = nodeclaim_body(
                name,
                pool,
                [*requirements.to_requirements(), Requirement(labels.INSTANCE_TYPE, "In", types)],
                EMPTY,
                (),
            )
            body["metadata"]["labels"][labels.WARM_LABEL] = "true"
            try:
                claim = NodeClaim.from_api(await self._claims.create(body))
            except Exception as error:
                log.error("warm nodeclaim not created", nodepool=pool.name, error=str(error))
                return
            log.info(
                "warm nodeclaim created",
                nodeclaim=claim.name,
                nodepool=pool.name,
                instance_types=list(types[:5]),
            )
            self._created[claim.name] = claim
            self._enqueue(claim)

    def _can_hibernate(self, pool: NodePool) -> bool:
        """Whether ``pool`` is Hibernated and allows a type EC2 can hibernate; a pool that allows
        none fills with any type, to be stopped instead (a warning, once until that changes)."""
        if pool.warm_pool is None or not pool.warm_pool.hibernate:
            self._cannot_hibernate.discard(pool.name)
            return False
        requirements = warm_requirements(pool_requirements(pool, self._zones))
        possible = any(
            requirements.compatible(t.requirements()) for t in hibernating_types(self._catalogue()).values()
        )
        if possible:
            self._cannot_hibernate.discard(pool.name)
        elif pool.name not in self._cannot_hibernate:
            self._cannot_hibernate.add(pool.name)
            log.warning(
                "warm pool cannot hibernate: no instance type it allows supports hibernation; "
                "its warm instances will be stopped instead",
                nodepool=pool.name,
            )
        return possible

    async def _delete(self, claim: NodeClaim, reason: str) -> None:
        log.info("warm nodeclaim deleted", nodeclaim=claim.name, nodepool=claim.nodepool, reason=reason)
        self._created.pop(claim.name, None)
        await self._claims.delete(claim.name)

    async def _steps(self, claims: Iterable[NodeClaim], pools: Mapping[str, NodePool]) -> None:
        now = self._now()
        mine = [c for c in claims if is_warm(c) or _recently_taken(c, now, self.settings.taken_watch)]
        if not mine:
            return
        nodes = self._state.nodes_by_provider_id()
        by_node = self._state.pods_by_node()
        work = []
        for claim in mine:
            instance = await self._instance_of(claim)
            node = nodes.get(instance.provider_id) if instance is not None else None
            node_name = str(((node or {}).get("metadata") or {}).get("name") or "")
            pool = pools.get(claim.nodepool or "")
            spec = (pool.warm_pool if pool is not None else None) or WarmPoolSpec()
            stopped_as = self._stopped_as.get(instance.id) if instance is not None else None
            step = steps.next_warm_step(claim, instance, node, by_node.get(node_name, ()), spec, stopped_as)
            if not isinstance(step, steps.Wait):
                work.append(self._act(claim, step, node))
        for result in await asyncio.gather(*work, return_exceptions=True):
            if isinstance(result, Exception):
                log.warning("warm pool step failed", error=str(result))

    async def _instance_of(self, claim: NodeClaim) -> Instance | None:
        if claim.status.instance_id:
            return self._instances.by_id(claim.status.instance_id)
        return self._instances.by_claim(claim.name)

    async def _act(self, claim: NodeClaim, step: steps.WarmStep, node: Obj | None) -> None:
        bound = log.bind(nodeclaim=claim.name, nodepool=claim.nodepool, step=type(step).__name__)
        if isinstance(step, steps.Cordon):
            await self._nodes.patch(step.node_name, steps.with_cordon({}, node or {}))
            bound.info("warm node cordoned", node=step.node_name)
        elif isinstance(step, steps.Evict):
            for pod in step.pods:
                await self._evict(pod)
        elif isinstance(step, steps.DeleteNode):
            await self._nodes.delete(step.node_name)
            bound.info("warm node removed", node=step.node_name)
        elif isinstance(step, steps.Stop):
            state = await self._provider.stop(step.instance_id, hibernate=step.hibernate)
            self._stopped_as[step.instance_id] = state
            self._forget_state(step.instance_id)
            bound.info("warm instance parking", instance_id=step.instance_id, state=state)
        elif isinstance(step, steps.Park):
            conditions = set_condition(
                _conditions(claim), WARM_CONDITION, "True", step.state, step.message, self._now()
            )
            # Guarded by the version read: a claim the planner just took must not be parked again.
            if not await self._write_status(claim, {"conditions": conditions}):
                return
            self._stopped_as.pop(claim.status.instance_id or "", None)
            bound.info(
                "warm instance parked",
                state=step.state,
                instance_id=claim.status.instance_id,
                **({"reason": step.message} if step.message != steps.PARKED else {}),
            )
        elif isinstance(step, steps.Start):
            await self._start(step.instance_id)
            bound.info("warm instance starting", instance_id=step.instance_id)
        elif isinstance(step, steps.Uncordon):
            await self._nodes.patch(step.node_name, steps.uncordon(node or {}))
            bound.info("warm node uncordoned", node=step.node_name)
        elif isinstance(step, steps.Retire):
            await self._delete(claim, step.reason)

    async def _write_status(self, claim: NodeClaim, status: dict[str, Any]) -> bool:
        """Merge-patch the claim's status if it is still at the version read; False on 409."""
        try:
            await self._status.nodeclaim(claim.name, status, claim.metadata.resource_version)
        except ApiException as error:
            if error.status not in (404, 409):
                raise
            return False
        return True

    def _forget_state(self, instance_id: str) -> None:
        """The snapshot's state of an instance we just stopped or started is stale: look again."""
        self._instances.refreshed_at = None

    async def _start(self, instance_id: str) -> None:
        """StartInstances, only from ``stopped`` as EC2 reports it now (a retry never acts twice),
        and one start at a time per instance: ``activate`` and a reconcile may both get here
        before either's StartInstances has landed."""
        if instance_id in self._starting:
            return
        self._starting.add(instance_id)
        try:
            current = await self._provider.get(instance_id)
            if current is None or current.state != "stopped":
                return
            await self._provider.start(instance_id)
            self._forget_state(instance_id)
        finally:
            self._starting.discard(instance_id)

    async def _evict(self, pod: Obj) -> None:
        meta = pod.get("metadata") or {}
        namespace, name = str(meta.get("namespace") or "default"), str(meta.get("name") or "")
        body = {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": name, "namespace": namespace},
            "deleteOptions": {"preconditions": {"uid": meta["uid"]}} if meta.get("uid") else {},
        }
        try:
            await self._core.create_namespaced_pod_eviction(name, namespace, body)
        except ApiException as error:
            if error.status not in (404, 429):  # 429: a PodDisruptionBudget; retried next pass
                raise
        else:
            log.info("evicted from a warm node", pod=f"{namespace}/{name}")

    # Taking a warm instance -----------------------------------------------------------------

    async def activate(
        self, name: str, pods: Sequence[str], requests: Resources, hedge: str | None = None
    ) -> NodeClaim | None:
        """Take warm claim ``name`` from its pool for ``pods``; returns it as now written, or None
        when it could not be taken (gone, taken, or changed meanwhile): the pods are planned again.
        ``hedge``: taken in a hedged start for that claim (``hedging``); it goes back when emptied."""
        claim = self._state.nodeclaims().get(name)
        if claim is None or not is_warm(claim) or claim.metadata.deletion_timestamp is not None:
            return None
        now = self._now()
        why = f"started for {len(pods)} pods" if pods or hedge is None else f"started as a spare for {hedge}"
        starting = Condition(REGISTERED, "Unknown", "Starting", "started from the warm pool")
        wanted = [
            Condition(WARM_CONDITION, "False", ACTIVATED, why),
            starting,
            Condition(INITIALIZED, "Unknown", "Starting", "started from the warm pool"),
        ]
        conditions = condition_set.to_api(condition_set.merge(claim.status.conditions, wanted, now))
        try:
            # Guarded by the version read: a claim parked or taken meanwhile is left alone (409)
            # and its pods are planned again. Parking is guarded the same way, so it cannot undo this.
            await self._status.nodeclaim(name, {"conditions": conditions}, claim.metadata.resource_version)
            raw = await self._claims.patch(
                name,
                {
                    "metadata": {
                        "labels": {labels.WARM_LABEL: None},
                        "annotations": {
                            labels.WARM_SERVES_ANNOTATION: serves_annotation(pods, requests),
                            labels.WARM_HEDGED_ANNOTATION: hedge,
                        },
                    }
                },
            )
        except ApiException as error:
            log.warning(
                "warm nodeclaim not taken", nodeclaim=name, status=error.status, error=str(error.reason)
            )
            return None
        taken = NodeClaim.from_api(raw)
        metrics.WARM_STARTS.labels(taken.nodepool or "").inc()
        log.info(
            "warm nodeclaim taken",
            nodeclaim=name,
            nodepool=taken.nodepool,
            pods=len(pods),
            state=parked_state(claim) or FILLING,
            instance_id=taken.status.instance_id,
        )
        await self._serve_now(taken)
        self._enqueue(taken)
        return taken

    async def _serve_now(self, claim: NodeClaim) -> None:
        """Start the instance, or uncordon its node, right away (the reconcile would, later)."""
        try:
            instance = await self._instance_of(claim)
            if instance is None:
                return
            if instance.state == "stopped":
                await self._start(instance.id)
                return
            node = self._state.nodes_by_provider_id().get(instance.provider_id)
            if node is not None and steps.has_warm_marks(node):
                await self._nodes.patch(str(node["metadata"]["name"]), steps.uncordon(node))
        except Exception as error:  # the reconcile retries it
            log.warning("warm instance not started yet", nodeclaim=claim.name, error=str(error))

    # Reuse on scale-in ----------------------------------------------------------------------

    async def reclaim(self, nodeclaim: str, node: str, reason: str) -> bool:
        """``reuseOnScaleIn``: take a node consolidation has drained back into its pool's warm
        pool (``reuse``), to be parked like a fill; False leaves it to be deleted.

        The claim is written first, its ``jitnode.io/warm`` label last: the commit point. Then
        the Node loses the disruption mark and is cordoned for the pool in one patch. A crash in
        between leaves a warm claim whose node the disruption controller unmarks and the steps
        cordon."""
        claim = self._state.nodeclaims().get(nodeclaim)
        if claim is None:
            return False
        pool = self._state.nodepools().get(claim.nodepool or "")
        now = self._now()
        pool_claims = [c for c in self._state.nodeclaims().values() if c.nodepool == claim.nodepool]
        warm = len(_in_pool(pool_claims))
        desired = self._desired(pool, pool_claims, now)
        bound = log.bind(nodeclaim=nodeclaim, node=node, nodepool=claim.nodepool)
        why = reuse.refusal(claim, pool, warm, desired, reason, now)
        if why is not None:
            bound.info("not returned to the warm pool", why=why)
            return False
        conditions = [c for c in _conditions(claim) if c.get("type") != WARM_CONDITION]
        try:
            version = claim.metadata.resource_version
            await self._status.nodeclaim(nodeclaim, {"conditions": conditions}, version)
            await self._claims.patch(
                nodeclaim,
                {
                    "metadata": {
                        "labels": {labels.WARM_LABEL: "true"},
                        "annotations": {
                            labels.WARM_SERVES_ANNOTATION: None,
                            labels.WARM_HEDGED_ANNOTATION: None,
                            # A spare was lent, not launched for demand: it counts as none.
                            labels.WARM_RETURNED_ANNOTATION: None if is_spare(claim) else format_time(now),
                        },
                    }
                },
            )
        except ApiException as error:
            bound.warning("not returned to the warm pool", status=error.status, error=str(error.reason))
            return False
        metrics.WARM_REUSED.labels(claim.nodepool or "").inc()
        bound.info("returned to the warm pool", reason=reason, warm=warm + 1, desired=desired)
        current = self._state.nodes().get(node)
        if current is not None:
            try:
                await self._nodes.patch(node, steps.with_cordon(unmark_patch(current), current))
            except ApiException as error:  # the steps cordon it; the disruption round unmarks it
                bound.warning("returned node not cordoned yet", status=error.status, error=str(error.reason))
        return True

    # Status ---------------------------------------------------------------------------------

    async def _report(self, pool: NodePool, desired: int, alive: Sequence[NodeClaim]) -> None:
        catalogue = self._catalogue()
        volume = _volume_gib(pool, self._state.nodeclasses())
        counts = dict.fromkeys((STOPPED, HIBERNATED, RUNNING, FILLING), 0)
        costs = []
        for claim in alive:
            state = parked_state(claim) or FILLING
            counts[state] = counts.get(state, 0) + 1
            instance_type = catalogue.get(claim.metadata.labels.get(labels.INSTANCE_TYPE, ""))
            price = instance_type.cheapest_price(claim.node_requirements()) if instance_type else None
            instance = await self._instance_of(claim)
            memory = (
                instance_type.memory_mib
                if instance_type and instance and instance.hibernation_configured
                else 0
            )
            costs.append(
                WarmInstanceCost(RUNNING if state == FILLING else state, price or 0.0, volume + memory / 1024)
            )
        current, running = hourly_cost(costs)
        for state, count in counts.items():
            metrics.WARM_INSTANCES.labels(pool.name, state).set(count)
        metrics.WARM_POOL_COST.labels(pool.name, "current").set(current)
        metrics.WARM_POOL_COST.labels(pool.name, "running").set(running)
        status = WarmPoolStatus(
            warm=len(alive) - counts[FILLING],
            filling=counts[FILLING],
            desired=desired,
            hourly_cost=format_dollars(current),
            hourly_cost_running=format_dollars(running),
        ).to_api()
        if self._written.get(pool.name) == status and pool.status.warm_pool is not None:
            return
        try:
            await self._status.nodepool(pool.name, {"warmPool": status}, pool.metadata.resource_version)
        except ApiException as error:
            if error.status not in (404, 409):
                raise
            return
        self._written[pool.name] = status
        log.info("warm pool", nodepool=pool.name, **status)


def _in_pool(claims: Iterable[NodeClaim]) -> list[NodeClaim]:
    """The warm claims (filling or parked) not being deleted."""
    return [c for c in claims if is_warm(c) and c.metadata.deletion_timestamp is None]


def _recently_taken(claim: NodeClaim, now: datetime, watch: timedelta) -> bool:
    """Taken from the pool and not yet a Ready node, or taken within ``watch``."""
    at = activated_at(claim)
    return at is not None and (starting(claim) or now - at <= watch)


def _primary_type(claim: NodeClaim) -> str:
    launched = claim.metadata.labels.get(labels.INSTANCE_TYPE)
    if launched:
        return launched
    for requirement in claim.requirements:
        if requirement.key == labels.INSTANCE_TYPE and requirement.operator == "In" and requirement.values:
            return requirement.values[0]
    return ""


def _conditions(claim: NodeClaim) -> list[dict[str, Any]]:
    return [c.to_api() for c in claim.status.conditions]
