"""Node repair in the disruption loop: read node health, decide, report (the shell of ``repair``).

Each disruption round asks :meth:`NodeRepairer.actions` which unhealthy nodes to replace; the
controller starts each as a forceful disruption with a deadline (``replacement_wait`` from now):
its replacements are launched first, the node is deleted as soon as they are Ready, or at the
deadline without them, and its pods are not evicted one by one (a repaired node's kubelet is
rarely there to stop them; they go with the Node, as with Karpenter's repair). A repair started
is logged, recorded as a ``NodeRepair`` Event on the Node and counted in
``jitnode_launcher_nodes_repaired_total``; a node that repair leaves alone because its NodePool
is too unhealthy gets one ``NodeRepairBlocked`` Event each time the reason changes, and is
counted in ``jitnode_launcher_repair_blocked_nodes``.

Node fields read: ``metadata.name``, ``labels``, ``annotations`` (the disruption mark),
``creationTimestamp`` and ``deletionTimestamp``, ``spec.taints`` and ``status.conditions``
(``type``, ``status``, ``lastTransitionTime``).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from launcher import metrics
from launcher.config import RepairSettings
from launcher.disruption.decisions import Action, Snapshot
from launcher.disruption.drain import node_reference
from launcher.disruption.inputs import claims_by_node
from launcher.disruption.mark import node_mark
from launcher.disruption.repair import Repair, decide_repairs, node_health, repair_actions, repair_enabled
from launcher.disruption.repairpolicy import (
    DEFAULT_MAX_UNHEALTHY_PERCENT,
    DEFAULT_POLICIES,
    RepairPolicy,
    parse_policies,
)
from launcher.state import LauncherState
from shared.events import WARNING, EventRecorder
from shared.logs import get_logger

log = get_logger("launcher.disruption.repair")


@dataclass(frozen=True)
class NodeRepairSettings:
    """Repair as the controller runs it (from the launcher's ``repair`` configuration)."""

    enabled: bool = False  # for NodePools that do not set spec.disruption.repair
    policies: tuple[RepairPolicy, ...] = field(
        default_factory=lambda: parse_policies(DEFAULT_POLICIES, "policies")
    )
    max_unhealthy_percent: int = DEFAULT_MAX_UNHEALTHY_PERCENT
    replacement_wait: timedelta = timedelta(minutes=10)

    @classmethod
    def from_config(cls, config: RepairSettings) -> NodeRepairSettings:
        return cls(
            enabled=config.enabled,
            policies=parse_policies(config.policies, "repair.policies"),
            max_unhealthy_percent=config.max_unhealthy_percent,
            replacement_wait=timedelta(seconds=config.replacement_wait),
        )


class NodeRepairer:
    """Decides the repairs of one round from the launcher's informers; reports what it decided."""

    def __init__(self, *, state: LauncherState, events: EventRecorder, settings: NodeRepairSettings) -> None:
        self._state = state
        self._events = events
        self.settings = settings
        self.recheck_at: datetime | None = None
        self._repairs: dict[str, Repair] = {}  # the last round's, by node
        self._blocked: dict[str, tuple[str, str]] = {}  # the last round's: node -> (nodepool, why)
        self._reported: dict[str, str] = {}  # node -> the blocked reason last recorded as an Event

    def actions(self, snapshot: Snapshot, busy: Collection[str] = ()) -> tuple[Action, ...]:
        """The repairs to start now, as forceful disruptions (see the module docstring)."""
        now = snapshot.now
        nodes = self._state.nodes()
        claim_of = claims_by_node(self._state.nodeclaims().values(), nodes)
        pools = self._state.nodepools()
        settings = self.settings
        enabled = {
            name: repair_enabled(pool.disruption.repair, settings.enabled) for name, pool in pools.items()
        }
        if not any(enabled.values()):  # off everywhere (the default): no node's health to read
            self.recheck_at = None
            self._blocked, self._repairs = {}, {}
            return ()
        marks = {n.name: n.mark for n in snapshot.nodes}  # with marks written but not yet seen
        health = []
        for name, node in nodes.items():
            claim = claim_of.get(name)
            health.append(
                node_health(
                    node,
                    nodeclaim=claim.name if claim is not None else None,
                    nodepool=claim.nodepool if claim is not None else None,
                    mark=marks[name] if name in marks else node_mark(node, now),
                    deleting=claim is not None and claim.metadata.deletion_timestamp is not None,
                )
            )
        decisions = decide_repairs(
            health,
            enabled=lambda pool: enabled.get(pool, False),
            policies=settings.policies,
            now=now,
            max_unhealthy_percent=settings.max_unhealthy_percent,
        )
        self.recheck_at = decisions.recheck_at
        pool_of = {h.name: str(h.nodepool) for h in health}
        self._blocked = {node: (pool_of[node], why) for node, why in decisions.blocked.items()}
        self._repairs = {r.node: r for r in decisions.repairs}
        return repair_actions(decisions.repairs, snapshot, busy)

    def deadline(self, now: datetime) -> datetime:
        """When a repair started at ``now`` deletes its node, replacements Ready or not."""
        return now + self.settings.replacement_wait

    async def report_blocked(self) -> None:
        """Log, count and (once per reason) record the nodes repair left alone this round."""
        counts: dict[str, int] = dict.fromkeys(self._state.nodepools(), 0)
        for node, (pool, why) in self._blocked.items():
            counts[pool] = counts.get(pool, 0) + 1
            if self._reported.get(node) == why:
                continue
            self._reported[node] = why
            log.warning("node repair blocked", node=node, nodepool=pool, why=why)
            await self._events.record(node_reference(node), WARNING, "NodeRepairBlocked", why)
        for node in set(self._reported) - set(self._blocked):
            del self._reported[node]
        for pool, count in counts.items():
            metrics.REPAIR_BLOCKED.labels(nodepool=pool).set(count)

    async def started(self, action: Action) -> None:
        """A repair's mark is written: log it, record the Event, count it."""
        repair = self._repairs.get(action.node)
        condition, status = (repair.condition, repair.status) if repair is not None else ("", "")
        log.warning(
            "repairing unhealthy node",
            node=action.node,
            nodeclaim=action.nodeclaim,
            nodepool=action.nodepool,
            reason=action.reason,
            condition=condition,
            status=status,
            message=action.message,
            replacements=len(action.replacements),
        )
        await self._events.record(
            node_reference(action.node), WARNING, "NodeRepair", f"{action.reason}: {action.message}"
        )
        metrics.NODES_REPAIRED.labels(condition=condition, status=status, nodepool=action.nodepool).inc()
