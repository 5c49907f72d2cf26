"""The provisioning loop: wait for demand, coalesce it briefly, plan, create NodeClaims.

Demand is coalesced for ``coalesce_idle`` after the last change, but never longer than
``coalesce_max`` after the first (defaults 50 ms and 1 s, far below Karpenter's 1 s / 10 s), so
a burst becomes one plan and a single pod still launches within milliseconds. While demand is
pending the loop also re-plans when claims or nodes change (a claim deleted after insufficient
capacity, a node that joined) and every ``replan_interval``. Each new claim is handed straight to
the claim controller, so CreateFleet follows the plan without waiting for a watch event.
Each NodePool is narrowed to the zones where its EC2NodeClass has subnets (``nodeclass_zones``),
so no claim asks CreateFleet for a zone it cannot launch in.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from launcher import metrics
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
from shared import labels
from shared.api.nodeclaim import NodeClaim
from shared.crashpoints import CLAIM_CREATED, PLAN_PARTLY_CREATED, crash_point
from shared.demand import PodDemand
from shared.events import WARNING, EventRecorder
from shared.logs import get_logger
from shared.requirements import Requirement
from shared.tasks import within


def source_kind(name: str) -> str:
    """The metric label of a demand source: ``pod-watch`` (the launcher's own) or ``extender``."""
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
            waiters.add(asyncio.ensure_future(wake.wait()))
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
        for name in [n for n in self._recent if n in known]:
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
        metrics.UNSERVABLE.set(len(plan.unschedulable))
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

    def _sources_of(self, uids: Iterable[str]) -> dict[str, int]:
        """How many of ``uids`` each demand source reported (the one the book credits)."""
        return dict(Counter(self._book.origin(uid) or "unknown" for uid in uids))

    def _pending(self) -> dict[str, PodDemand]:
        """Demand minus pods the API already shows bound (a withdraw may still be in flight)."""
        bound = {
            str((pod.get("metadata") or {}).get("uid"))
            for pod in self._state.pods().values()
            if (pod.get("spec") or {}).get("nodeName")
        }
        return {uid: d for uid, d in self._book.current().items() if uid not in bound}

    async def _report_unschedulable(
        self, demand: Mapping[str, PodDemand], reasons: Mapping[str, str]
    ) -> None:
        """A Warning event on each pod no NodePool can serve, once per distinct reason."""
        for uid, reason in reasons.items():
            if self._reported.get(uid) == reason or uid not in demand:
                continue
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
