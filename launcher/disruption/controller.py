"""The disruption loop: keep pod-event times, decide, mark, launch replacements, drain.

Level-triggered: every round re-reads the cluster through the launcher's informers. A node that
carries the disruption mark (annotation or taint) and has no drain running gets one, so a
launcher that restarted mid-drain carries on where the mark says. Each round:

1. records ``status.lastPodEventTime`` on a NodeClaim when the set of pods on its node changes
   (that time starts the ``consolidateAfter`` clock; a pod counts until it is gone, see
   ``podevents``), observed in the same instant as the snapshot the decisions read;
2. resumes the disruption of every marked node;
3. asks :func:`~launcher.disruption.decisions.decide` what to start, and for each action marks
   the node (naming its replacement NodeClaims), creates the replacements, and starts a task that
   waits for them to be Ready before draining. Replacements that vanish or are not Ready within
   ``replacement_timeout`` abort the disruption: the mark is removed and a later round decides
   again.

Every round also keeps the ``jitnode.io/disruption-candidate:PreferNoSchedule`` taint on the
nodes that expire within ``candidate_window`` and off every other node
(:func:`~launcher.disruption.decisions.candidate_taints`), so kube-scheduler's TaintToleration
score sends new pods elsewhere without an extender's prioritize.

Rounds run on cluster changes, at most every ``min_interval_seconds``, at least every
``interval_seconds``, when a blocked node's ``consolidateAfter`` runs out and when a node enters
the candidate window. A round reads every node (O(nodes): about a second at 5,000 nodes on a
slow core), so the pause after it is at least ``ROUND_PACING`` times its length: under constant
pod churn, rounds then take at most a quarter of the event loop, and the watches keep up.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from kubernetes_asyncio import client

from launcher.buffers.decisions import is_buffer_uid
from launcher.disruption.decisions import Action, Decisions, Snapshot, TaintChanges, candidate_taints, decide
from launcher.disruption.drain import Drainer, DrainSettings, DrainTarget, node_reference
from launcher.disruption.inputs import NodePodsCache, claims_by_node, node_info, starting_pods
from launcher.disruption.mark import Mark, node_mark
from launcher.disruption.optouts import OptOutReporter
from launcher.disruption.podevents import PodEventTracker
from launcher.disruption.repair import UNHEALTHY
from launcher.disruption.repairer import NodeRepairer, NodeRepairSettings
from launcher.disruption.replacement import ClaimReplacer, ReplacementLauncher
from launcher.disruption.stabilisation import RetainedChunk, WorkloadPeaks, chunks
from launcher.kube import NodeClaimWriter, NodeWriter
from launcher.model import InstanceType
from launcher.provisioning.claims import claim_name
from launcher.provisioning.inputs import (
    NodeClassZones,
    daemonset_overhead,
    in_flight_claims,
    pool_usage,
    pool_views,
    unknown_zones,
)
from launcher.state import LauncherState
from launcher.warmpool.claims import is_warm
from shared.api._fields import format_time
from shared.api.nodeclaim import INITIALIZED, NodeClaim
from shared.api.nodepool import NodePool
from shared.demand import PodDemand
from shared.events import NORMAL, WARNING, EventRecorder
from shared.logs import get_logger
from shared.tasks import within

log = get_logger("launcher.disruption")
# Nodes whose pod summaries are brought up to date between two yields to the event loop.
_NODES_PER_SLICE = 20
_REFRESH_PASSES = 4
# The pause after a round, in multiples of the round's length (see the module docstring).
ROUND_PACING = 3.0


def _no_demand() -> Mapping[str, PodDemand]:
    return {}


class Reclaimer(Protocol):
    """Takes a drained node back into its pool's warm pool (``launcher.warmpool``), or says no."""

    async def reclaim(self, nodeclaim: str, node: str, reason: str) -> bool: ...


@dataclass(frozen=True)
class DisruptionSettings:
    interval_seconds: float = 10.0
    min_interval_seconds: float = 1.0
    replacement_timeout: timedelta = timedelta(minutes=15)
    # A replacement named in a mark but absent this long after the mark was never created.
    replacement_missing_grace: timedelta = timedelta(seconds=30)
    # Nodes expiring within this carry the disruption-candidate PreferNoSchedule taint (the
    # extender's prioritize scored such nodes 0 within its expiry window, also 10 minutes).
    candidate_window: timedelta = timedelta(minutes=10)
    drain: DrainSettings = field(default_factory=DrainSettings)
    # A disruption with a deadline (an interruption notice) stops waiting for its replacements
    # this long before the deadline, to drain in the time left.
    deadline_drain_reserve: timedelta = timedelta(seconds=60)
    repair: NodeRepairSettings = field(default_factory=NodeRepairSettings)  # see ``repairer``


class DisruptionController:
    def __init__(
        self,
        *,
        state: LauncherState,
        api: client.ApiClient,
        claims: NodeClaimWriter,
        nodes: NodeWriter,
        events: EventRecorder,
        catalogue: Callable[[], Mapping[str, InstanceType]],
        pending: Callable[[], Mapping[str, PodDemand]] = _no_demand,
        replacer: ReplacementLauncher | None = None,
        settings: DisruptionSettings | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        nodeclass_zones: NodeClassZones = unknown_zones,
        reclaimer: Reclaimer | None = None,
    ) -> None:
        self._state = state
        self.reclaimer = reclaimer  # reuseOnScaleIn: set once the warm pools exist
        self._claims = claims
        self._events = events
        self._catalogue = catalogue
        self._pending = pending
        self._replacer: ReplacementLauncher = replacer or ClaimReplacer(claims)
        self.settings = settings or DisruptionSettings()
        self._now = now
        self._nodeclass_zones = nodeclass_zones  # replacements only go where subnets are
        self.drainer = Drainer(
            api=api,
            nodes=nodes,
            claims=claims,
            events=events,
            pods_on_node=lambda name: self._state.pods_by_node().get(name, []),
            settings=self.settings.drain,
            now=now,
        )
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self._marks: dict[str, Mark] = {}  # marks written but perhaps not yet in the informer
        self._pod_events = PodEventTracker()
        # What each node's pods make of its NodeInfo, kept until one of them changes.
        self._node_pods = NodePodsCache(state.pod_index)
        self._taint_recheck_at: datetime | None = None
        self._opt_outs = OptOutReporter(events)  # do-not-disrupt values that protect nothing
        self.repairer = NodeRepairer(state=state, events=events, settings=self.settings.repair)
        self._peaks = WorkloadPeaks()  # scale-down stabilisation: workloads' recent peaks

    async def run(self) -> None:
        """Run rounds until cancelled; drains in progress are cancelled with it."""
        wake = self._state.subscribe()
        try:
            while True:
                wake.clear()
                decisions = Decisions()
                started = time.monotonic()
                try:
                    decisions = await self.reconcile_once()
                except asyncio.CancelledError:
                    raise
                except Exception as error:
                    log.exception("disruption round failed", error=str(error))
                took = time.monotonic() - started
                await asyncio.sleep(max(self.settings.min_interval_seconds, ROUND_PACING * took))
                with contextlib.suppress(TimeoutError):
                    await within(wake.wait(), self._next_round_in(decisions))
        finally:
            await self.stop()

    def _next_round_in(self, decisions: Decisions) -> float:
        """Seconds until the next round without cluster changes: the resync, or sooner when a
        node's consolidateAfter runs out before it."""
        timeout = self.settings.interval_seconds
        for at in (decisions.recheck_at, self._taint_recheck_at, self.repairer.recheck_at):
            if at is not None:
                timeout = min(timeout, max(0.0, (at - self._now()).total_seconds()))
        return timeout

    async def stop(self) -> None:
        for task in self.tasks.values():
            task.cancel()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        self.tasks.clear()

    async def reconcile_once(self) -> Decisions:
        """One round (see the module docstring); returns what was decided (for tests and logs)."""
        if not self._state.has_synced:
            return Decisions()
        now = self._now()
        await self._refresh_node_pods(now)
        # No await between observing pod events and the snapshot: both read one informer state.
        changed = self._observe_pod_events(now)
        self._resume(now)
        snapshot = self.snapshot(now)
        await self._persist_pod_events(changed, now)
        # Only annotated pods can hold an ignored value: the index keeps them (no walk of every pod).
        await self._opt_outs.report(self._state.nodes().values(), self._state.pod_index.opted_out(), now)
        decisions = decide(snapshot)
        await self._keep_candidate_taints(
            candidate_taints(snapshot.nodes, now, self.settings.candidate_window)
        )
        for node, why in decisions.blocked.items():
            log.debug("not disrupted", node=node, why=why)
        for action in decisions.actions:
            await self._start(action, now)
        await self._repair(snapshot, {a.node for a in decisions.actions}, now)
        return decisions

    async def _repair(self, snapshot: Snapshot, busy: set[str], now: datetime) -> None:
        """Replace unhealthy nodes (``repairer``): forceful, the node gone by a deadline."""
        for action in self.repairer.actions(snapshot, busy):
            if await self.interrupt(action, self.repairer.deadline(now)):
                await self.repairer.started(action)
        await self.repairer.report_blocked()

    # Observation ----------------------------------------------------------------------------

    def snapshot(self, now: datetime) -> Snapshot:
        catalogue = self._catalogue()
        claims = list(self._state.nodeclaims().values())
        nodes = self._state.nodes()
        by_node = self._state.pods_by_node()
        claim_of = claims_by_node(claims, nodes)
        replacing = self._replacement_names(now)
        infos = [
            node_info(
                node,
                claim_of.get(name),
                by_node.get(name, []),
                catalogue,
                now,
                known_mark=self._marks.get(name),
                replacing=claim_of[name].name in replacing if name in claim_of else False,
                pod_event=self._pod_events.last_event(claim_of[name]) if name in claim_of else None,
                summary=self._node_pods.get(name, now),
            )
            for name, node in nodes.items()
        ]
        self._node_pods.keep_only(nodes.keys())
        pools = self._state.nodepools()
        daemons = self._state.pod_index.daemons_by_node()
        views = pool_views(
            pools, daemonset_overhead(nodes, daemons), pool_usage(claims, catalogue), self._nodeclass_zones
        )
        demand = self._pending()
        # CapacityBuffer chunks are no pods: they move with a node instead of blocking it.
        pending = {uid: d for uid, d in demand.items() if not is_buffer_uid(uid)}
        return Snapshot(
            nodes=infos,
            pools={v.name: v for v in views},
            types=catalogue,
            now=now,
            pending=list(pending.values()),
            in_flight=[c for c in in_flight_claims(claims, catalogue) if c.name not in replacing],
            starting=starting_pods(self._state.pod_index.not_ready(), pending),  # the rest are Ready
            buffer=[d for uid, d in demand.items() if is_buffer_uid(uid)],
            retained=self._retained(pools.values(), now),
        )

    def _retained(self, pools: Iterable[NodePool], now: datetime) -> list[RetainedChunk]:
        """Room for the workloads' recent peaks, for the pools with a stabilisation window (the
        pod index's counts since the last round are recorded every round, kept as long as the
        longest window)."""
        windows = [p.disruption.stabilization_window for p in pools]
        horizon = max((w.total_seconds() for w in windows if w is not None), default=0.0)
        stamp = now.timestamp()
        self._peaks.record(stamp, self._state.pod_index.drain_workloads(), horizon)
        return chunks(self._peaks.retained(stamp, horizon)) if horizon > 0 else []

    def _replacement_names(self, now: datetime) -> set[str]:
        names: set[str] = set()
        for name, node in self._state.nodes().items():
            mark = node_mark(node, now) or self._marks.get(name)
            if mark is not None:
                names.update(mark.replacements)
        return names

    async def _refresh_node_pods(self, now: datetime) -> None:
        """Bring each node's pod summary up to date before the round, yielding to the event loop
        between slices: the first round reads every pod's needs (seconds at 150,000 pods) and
        must not stall the watches. Pods keep changing meanwhile, so the nodes that changed are
        read again, a few passes at most, until no more than a slice is left for the snapshot
        (which must not yield, and would otherwise redo thousands of nodes under churn)."""
        names = list(self._state.nodes())
        for _ in range(_REFRESH_PASSES):
            stale = [name for name in names if not self._node_pods.is_current(name, now)]
            if len(stale) <= _NODES_PER_SLICE:
                return
            for count, name in enumerate(stale, start=1):
                self._node_pods.get(name, now)
                if count % _NODES_PER_SLICE == 0:
                    await asyncio.sleep(0)

    def _observe_pod_events(self, now: datetime) -> list[str]:
        """Claims whose node gained or lost a pod since last round (not those being deleted)."""
        claim_of = claims_by_node(self._state.nodeclaims().values(), self._state.nodes())
        current = {claim.name: self._node_pods.get(node, now).present for node, claim in claim_of.items()}
        changed = self._pod_events.observe(current, now)
        deleting = {c.name for c in claim_of.values() if c.metadata.deletion_timestamp is not None}
        return [name for name in changed if name not in deleting]

    async def _persist_pod_events(self, changed: list[str], now: datetime) -> None:
        """Stamp ``lastPodEventTime`` so a restarted launcher keeps each node's clock."""
        for name in changed:
            try:
                await self._claims.patch_status(name, {"lastPodEventTime": format_time(now)})
            except Exception as error:
                log.warning("lastPodEventTime not recorded", nodeclaim=name, error=str(error))

    # Acting ---------------------------------------------------------------------------------

    def _resume(self, now: datetime) -> None:
        nodes = self._state.nodes()
        claim_of = claims_by_node(self._state.nodeclaims().values(), nodes)
        for gone in self._marks.keys() - nodes.keys():
            del self._marks[gone]
        for name, node in nodes.items():
            if name in self.tasks:
                continue
            mark = node_mark(node, now)
            if mark is None:
                self._marks.pop(name, None)
                continue
            claim = claim_of.get(name)
            if claim is None or claim.metadata.deletion_timestamp is not None:
                continue
            log.info("resuming disruption", node=name, reason=mark.reason)
            self._spawn(name)

    async def _keep_candidate_taints(self, changes: TaintChanges) -> None:
        """Write the candidate taint changes; a failed one is retried next round (level-triggered)."""
        self._taint_recheck_at = changes.next_at
        for candidate, names in ((True, changes.add), (False, changes.remove)):
            for name in names:
                try:
                    if await self.drainer.taint_candidate(name, candidate):
                        log.info(
                            "disruption candidate" if candidate else "no longer a disruption candidate",
                            node=name,
                        )
                except Exception as error:
                    log.warning("candidate taint not written", node=name, error=str(error))

    async def interrupt(self, action: Action, deadline: datetime | None) -> bool:
        """Start ``action`` at once for an interruption notice (``launcher.interruption``).

        Forceful: no budget or do-not-disrupt check, and with a ``deadline`` the drain starts by
        ``deadline_drain_reserve`` before it, Ready replacements or not. A node already being
        disrupted keeps its replacements and gains the (earlier) deadline. True once the mark
        is written: a restarted launcher resumes from it.
        """
        now = self._now()
        node = self._state.nodes().get(action.node)
        existing = (node_mark(node, now) if node is not None else None) or self._marks.get(action.node)
        if existing is None:
            return await self._start(action, now, deadline)
        if deadline is None or (existing.deadline is not None and existing.deadline <= deadline):
            return True  # already going, at least as soon
        mark = dataclasses.replace(existing, deadline=deadline)
        if not await self.drainer.mark(action.node, mark):
            return False
        self._marks[action.node] = mark
        log.info("disruption given a deadline", node=action.node, deadline=str(deadline))
        if action.node not in self.tasks:
            self._spawn(action.node)
        return True

    async def _start(self, action: Action, now: datetime, deadline: datetime | None = None) -> bool:
        bound = log.bind(node=action.node, nodeclaim=action.nodeclaim, nodepool=action.nodepool)
        pools = self._state.nodepools()
        names = tuple(claim_name(p.nodepool) for p in action.replacements)
        mark = Mark(action.reason, now, names, deadline)
        if not await self.drainer.mark(action.node, mark):
            return False
        self._marks[action.node] = mark
        bound.info(
            "disruption started", reason=action.reason, message=action.message, replacements=list(names)
        )
        await self._events.record(
            node_reference(action.node), NORMAL, "DisruptionStarted", f"{action.reason}: {action.message}"
        )
        for name, planned in zip(names, action.replacements, strict=True):
            pool = pools.get(planned.nodepool)
            if pool is None:
                continue
            try:
                await self._replacer(name, planned, pool, action.node)
            except Exception as error:  # the missing-replacement check aborts the disruption
                bound.error("replacement not created", replacement=name, error=str(error))
        self._spawn(action.node)
        return True

    def _spawn(self, node: str) -> None:
        if node in self.tasks:  # ``interrupt`` may race a round's resume: one drain per node
            return
        task = asyncio.create_task(self._disrupt(node), name=f"disrupt-{node}")
        self.tasks[node] = task
        task.add_done_callback(lambda _: self.tasks.pop(node, None) if self.tasks.get(node) is task else None)

    async def _disrupt(self, node_name: str) -> None:
        """Wait for the node's replacements, then drain it; abort if they never come."""
        bound = log.bind(node=node_name)
        try:
            while True:
                now = self._now()
                node = self._state.nodes().get(node_name)
                if node is None:
                    return
                mark = node_mark(node, now) or self._marks.get(node_name)
                if mark is None:
                    return
                claim = claims_by_node(self._state.nodeclaims().values(), {node_name: node}).get(node_name)
                if claim is None or claim.metadata.deletion_timestamp is not None:
                    return  # not ours, or already terminating: the lifecycle controller finishes
                if is_warm(claim):  # returned to the warm pool, and the mark survived a crash
                    await self.drainer.unmark(node_name)
                    self._marks.pop(node_name, None)
                    return
                waiting = self._replacements_pending(mark, now)
                # An interruption notice: the node goes by its deadline, replacements or not.
                if waiting is not False and self._out_of_time(mark, now, waiting):
                    bound.info("draining before the replacements are Ready", deadline=str(mark.deadline))
                    waiting = False
                if isinstance(waiting, str):
                    await self._abort(node_name, claim, waiting)
                    return
                if waiting:
                    await asyncio.sleep(self.settings.drain.poll_seconds)
                    continue
                pool = self._state.nodepools().get(claim.nodepool or "")
                grace = claim.termination_grace_period or (pool.termination_grace_period if pool else None)
                if mark.deadline is not None:  # the NodeClaim is deleted by the deadline
                    left = max(mark.deadline - mark.since, timedelta(0))
                    grace = left if grace is None else min(grace, left)
                if mark.reason == UNHEALTHY:
                    grace = timedelta(0)  # a repair evicts nothing: the pods go with the Node
                target = DrainTarget(node_name, claim.name, claim.nodepool or "", mark, grace)
                reclaim = (
                    functools.partial(self.reclaimer.reclaim, claim.name, node_name, mark.reason)
                    if self.reclaimer is not None
                    else None
                )
                await self.drainer.drain(target, reclaim)
                return
        except asyncio.CancelledError:
            raise
        except Exception as error:
            bound.exception("disruption failed; a later round resumes it", error=str(error))

    def _out_of_time(self, mark: Mark, now: datetime, waiting: bool | str) -> bool:
        """A mark with a deadline drains without its replacements once one failed or time is short."""
        if mark.deadline is None:
            return False
        return isinstance(waiting, str) or now >= mark.deadline - self.settings.deadline_drain_reserve

    def _replacements_pending(self, mark: Mark, now: datetime) -> bool | str:
        """True while replacements are launching; a reason to abort; False when all are Ready."""
        claims = self._state.nodeclaims()
        age = now - mark.since
        for name in mark.replacements:
            claim: NodeClaim | None = claims.get(name)
            if claim is None or claim.metadata.deletion_timestamp is not None:
                if claim is not None or age > self.settings.replacement_missing_grace:
                    return f"replacement nodeclaim {name} is gone"
                return True
            if not claim.is_true(INITIALIZED):
                if age > self.settings.replacement_timeout:
                    return (
                        f"replacement nodeclaim {name} not Ready within {self.settings.replacement_timeout}"
                    )
                return True
        return False

    async def _abort(self, node_name: str, claim: NodeClaim, why: str) -> None:
        log.warning(
            "disruption aborted", node=node_name, nodeclaim=claim.name, nodepool=claim.nodepool, why=why
        )
        await self.drainer.unmark(node_name)
        self._marks.pop(node_name, None)
        await self._events.record(node_reference(node_name), WARNING, "DisruptionAborted", why)
