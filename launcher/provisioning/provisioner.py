"""The provisioning loop: wait for demand, coalesce it briefly, plan, create NodeClaims.

Demand is coalesced for ``coalesce_idle`` after the last change, but never longer than
``coalesce_max`` after the first (defaults 50 ms and 1 s, far below Karpenter's 1 s / 10 s), so
a burst becomes one plan and a single pod still launches within milliseconds. While demand is
pending the loop also re-plans when claims or nodes change (a claim deleted after insufficient
capacity, a node that joined) and every ``replan_interval``. Each new claim is handed straight to
the claim controller, so CreateFleet follows the plan without waiting for a watch event.
Each NodePool is narrowed to the zones where its EC2NodeClass has subnets (``nodeclass_zones``),
so no claim asks CreateFleet for a zone it cannot launch in. Warm-pool instances are offered to
the planner as in-flight room; those it covers pods with are taken (``take_warm``, see
``launcher.warmpool``) before any new claim is created.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from launcher import metrics
from launcher.buffers.controller import BUFFER_SOURCE
from launcher.buffers.decisions import is_buffer_uid
from launcher.demand.book import OWN_WATCH
from launcher.kube import NodeClaimWriter
from launcher.lifecycle.controller import ClaimController
from launcher.planner.exact import ExactSettings
from launcher.planner.inputs import Plan
from launcher.planner.offerings import UnavailableOfferings
from launcher.planner.plan import EXACT
from launcher.provisioning.claims import claim_name, nodeclaim_body
from launcher.provisioning.inputs import NodeClassZones, build_plan, unknown_zones
from launcher.state import LauncherState
from launcher.warmpool import claims as warm
from launcher.warmpool import hedging
from launcher.warmpool.candidates import activations
from launcher.warmpool.hedging import spares
from shared import labels
from shared.api.nodeclaim import NodeClaim
from shared.crashpoints import CLAIM_CREATED, PLAN_PARTLY_CREATED, crash_point
from shared.demand import PodDemand
from shared.events import WARNING, EventRecorder
from shared.logs import get_logger
from shared.requirements import Requirement
from shared.resources import EMPTY, Resources
from shared.tasks import within

# Takes warm claim ``name`` from its pool for ``pods`` (requesting ``requests``); None if it can't.
# ``hedge``: the claim is taken in a hedged start, for the claim named (its own name for the
# claim the pods were planned on; see ``launcher.warmpool.hedging``).
TakeWarm = Callable[[str, Sequence[str], Resources, str | None], Awaitable[NodeClaim | None]]


def source_kind(name: str) -> str:
    """The metric label of a demand source: ``pod-watch`` (the launcher's own), ``capacity-buffer``
    (CapacityBuffer chunks) or ``extender``."""
    if name == BUFFER_SOURCE:
        return "capacity-buffer"
    return "pod-watch" if name == OWN_WATCH else "extender"


log = get_logger("launcher.provisioner")


def plan_fields(plan: Plan) -> dict[str, Any]:
    """What the ``plan`` log line says of a plan: its size, cost and how far from optimal it may
    be (``gap``: over the best bound known, the exact optimum when proven; ``lp_gap``: over the
    LP bound; ``exact``: what the exact solver did, per pool)."""
    return {
        "claims": len(plan.claims),
        "covered": len(plan.covered),
        "unschedulable": len(plan.unschedulable),
        "cost_per_hour": round(plan.cost_per_hour, 4),
        "lower_bound_per_hour": round(plan.lower_bound_per_hour, 4),
        "bound_per_hour": round(plan.bound_per_hour, 4),
        "gap": round(plan.gap, 4),
        "lp_gap": round(plan.lp_gap, 4),
        "optimal": plan.optimal,
        "exact": dict(plan.exact),
    }


@dataclass(frozen=True)
class ProvisionerSettings:
    coalesce_idle: float = 0.05
    coalesce_max: float = 1.0
    replan_interval: float = 10.0
    exact: ExactSettings | None = EXACT  # when the planner solves a pool exactly (None: never)
    # While only CapacityBuffer chunks are pending, a cluster change re-plans after this long at
    # the soonest: chunks are pending for good, and a plan on every pod event would cost O(cluster).
    buffer_replan_delay: float = 1.0


class Provisioner:
    def __init__(
        self,
        *,
        state: LauncherState,
        book: Any,
        catalogue: Any,
        unavailable: UnavailableOfferings,
        claims: ClaimController,
        writer: NodeClaimWriter,
        events: EventRecorder,
        settings: ProvisionerSettings,
        nodeclass_zones: NodeClassZones = unknown_zones,
        before_plan: Callable[[], Awaitable[bool]] | None = None,
        on_plan: Callable[[Plan], None] | None = None,
        take_warm: TakeWarm | None = None,
    ) -> None:
        self._state = state
        self._book = book
        self._catalogue = catalogue
        self._unavailable = unavailable
        self._claims = claims
        self._writer = writer
        self._events = events
        self.settings = settings
        self._nodeclass_zones = nodeclass_zones
        # Waits out work the plan depends on (a NodeClass resolving: its zones narrow the pools);
        # True when it did wait, and demand is then read again.
        self._before_plan = before_plan
        # Told every plan (the CapacityBuffer controller reports what became of its chunks).
        self._on_plan = on_plan
        # Takes a warm claim the plan covered pods with from its pool (launcher.warmpool).
        self._take_warm = take_warm
        self._reported: dict[str, str] = {}
        # Claims created but not yet seen by the informer: the next plan must count them.
        self._recent: dict[str, NodeClaim] = {}

    async def run(self) -> None:
        wake = self._state.subscribe()
        seen = -1
        while True:
            if self._book.version == seen:
                await self._wait_for_work(seen, wake)
            await self._coalesce()
            seen = self._book.version
            wake.clear()
            try:
                await self.provision_once()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.exception("provisioning failed", error=str(error))
                await asyncio.sleep(1.0)

    async def _wait_for_work(self, seen: int, wake: asyncio.Event) -> None:
        """Until demand changes, or (while demand is pending) the cluster changes or time passes."""
        demand_changed = asyncio.ensure_future(self._book.changed(seen))
        waiters: set[asyncio.Future[Any]] = {demand_changed}
        if self._book.current():
            buffers_only = all(is_buffer_uid(uid) for uid in self._book.current())
            delay = self.settings.buffer_replan_delay if buffers_only else 0.0
            waiters.add(asyncio.ensure_future(_woken(wake, delay)))
        try:
            timeout = self.settings.replan_interval if self._book.current() else None
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)

    async def _coalesce(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.coalesce_max
        version = self._book.version
        while (remaining := deadline - loop.time()) > 0:
            try:
                version = await within(
                    self._book.changed(version), min(self.settings.coalesce_idle, remaining)
                )
            except TimeoutError:
                return

    async def provision_once(self) -> list[NodeClaim]:
        """Plan for the current demand and create its claims; returns the claims created."""
        demand = self._pending()
        metrics.PENDING_DEMAND.set(len(demand))
        if not demand:
            return []
        if self._before_plan is not None and await self._before_plan():
            demand = self._pending()
        started = time.perf_counter()
        known = self._state.nodeclaims()
        # A claim taken from a warm pool stays until the informer shows it taken.
        for name in [n for n in self._recent if n in known and not warm.is_warm(known[n])]:
            del self._recent[name]
        plan, pools = build_plan(
            demand=demand,
            state=self._state,
            extra_claims=list(self._recent.values()),
            catalogue=self._catalogue.get(),
            unavailable=self._unavailable,
            zones=self._nodeclass_zones,
            exact=self.settings.exact,
        )
        metrics.PLAN_SECONDS.observe(time.perf_counter() - started)
        if self._on_plan is not None:
            self._on_plan(plan)
        metrics.UNSERVABLE.set(len(plan.unschedulable))
        await self._take_warm_claims(plan, demand, known)
        created: list[NodeClaim] = []
        if plan.claims:
            metrics.PLAN_COST.set(plan.cost_per_hour)
            metrics.PLAN_GAP.set(plan.gap)
            metrics.PLAN_GAPS.observe(plan.gap)
            for outcome in (o for joined in plan.exact.values() for o in joined.split("+")):
                metrics.EXACT_PLANS.labels(outcome).inc()
            sources = self._sources_of(uid for planned in plan.claims for uid in planned.pods)
            for name, count in sources.items():
                metrics.PLANNED_PODS.labels(source_kind(name)).inc(count)
            log.info(
                "plan",
                pods=len(demand),
                sources=sources,
                **plan_fields(plan),
                seconds=round(time.perf_counter() - started, 4),
            )
        for index, planned in enumerate(plan.claims):
            pool = pools[planned.nodepool]
            name = claim_name(pool.name)
            first_seen = min((demand[uid].first_seen for uid in planned.pods if uid in demand), default=None)
            # The instance types go last and in the planner's order (cheapest first): the
            # launch reads them back in that order for CreateFleet's overrides.
            requirements = [
                *planned.requirements.to_requirements(),
                Requirement(labels.INSTANCE_TYPE, "In", planned.instance_types),
            ]
            body = nodeclaim_body(name, pool, requirements, planned.requests, planned.pods, first_seen)
            try:
                raw = await self._writer.create(body)
            except Exception as error:
                log.error("nodeclaim not created", nodepool=pool.name, error=str(error))
                continue
            claim = NodeClaim.from_api(raw)
            log.info(
                "nodeclaim created",
                nodeclaim=claim.name,
                nodepool=pool.name,
                pods=len(planned.pods),
                instance_types=list(planned.instance_types[:5]),
            )
            crash_point(CLAIM_CREATED)
            if index < len(plan.claims) - 1:
                crash_point(PLAN_PARTLY_CREATED)
            created.append(claim)
            self._recent[claim.name] = claim
            self._claims.enqueue(claim)
        await self._report_unschedulable(demand, plan.unschedulable)
        return created

    async def _take_warm_claims(
        self, plan: Plan, demand: Mapping[str, PodDemand], known: Mapping[str, NodeClaim]
    ) -> None:
        """Start the warm claims the plan covered pods with: the planner preferred them to new ones."""
        if self._take_warm is None:
            return
        names = {n for n, c in known.items() if warm.is_warm(c)} - self._recent.keys()
        wanted = activations(plan.covered, names, demand)
        # Parked claims taken for real pods bring spares along (``hedgedStarts``).
        for_pods = [known[n] for n, (uids, _) in wanted.items() if any(not is_buffer_uid(u) for u in uids)]
        pools = self._state.nodepools()
        spare = spares(for_pods, (known[n] for n in names - wanted.keys()), pools, self._catalogue.get())
        hedged = [c.name for c in for_pods if hedging.hedgeable(c, pools)] if spare else []
        hedge = hedged[0] if hedged else None  # the spares stand in for all of them
        for name, (uids, requests) in wanted.items():
            taken = await self._take_warm(name, uids, requests, name if name in hedged else None)
            if taken is not None:
                self._recent[taken.name] = taken
        for claim in spare:
            taken = await self._take_warm(claim.name, (), EMPTY, hedge)
            if taken is not None:
                self._recent[taken.name] = taken

    def _sources_of(self, uids: Iterable[str]) -> dict[str, int]:
        """How many of ``uids`` each demand source reported (the one the book credits)."""
        return dict(Counter(self._book.origin(uid) or "unknown" for uid in uids))

    def _pending(self) -> dict[str, PodDemand]:
        """Demand minus pods the API already shows bound (a withdraw may still be in flight);
        one index lookup per pending pod, whatever the number of bound ones."""
        index = self._state.pod_index
        return {uid: d for uid, d in self._book.current().items() if not index.is_bound(uid)}

    async def _report_unschedulable(
        self, demand: Mapping[str, PodDemand], reasons: Mapping[str, str]
    ) -> None:
        """A Warning event on each pod no NodePool can serve, once per distinct reason."""
        for uid, reason in reasons.items():
            if self._reported.get(uid) == reason or uid not in demand or is_buffer_uid(uid):
                continue  # a buffer's chunk is no Pod: its buffer's status says why instead
            self._reported[uid] = reason
            pod = demand[uid]
            log.warning("pod cannot be provisioned for", pod=f"{pod.namespace}/{pod.name}", reason=reason)
            await self._events.record(
                {"kind": "Pod", "apiVersion": "v1", "name": pod.name, "namespace": pod.namespace, "uid": uid},
                WARNING,
                "FailedProvisioning",
                reason,
            )
        for uid in list(self._reported):
            if uid not in demand:
                del self._reported[uid]


async def _woken(wake: asyncio.Event, delay: float) -> None:
    """Until ``wake`` is set, then ``delay`` more (0: at once)."""
    await wake.wait()
    if delay > 0:
        await asyncio.sleep(delay)
