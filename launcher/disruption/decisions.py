"""Which nodes to disrupt, why, and whether they need replacement capacity first (pure).

One call to :func:`decide` looks at a snapshot of the cluster and answers the disruptions to
start now, in Karpenter's order of precedence:

1. **Empty**: a node of a pool with a consolidation policy, holding no pods but DaemonSet,
   mirror and terminal ones since ``consolidateAfter``. Limited by budgets; several per pool.
2. **Expired**: a node older than its ``expireAfter``. Forceful: budgets and ``do-not-disrupt``
   don't stop it (they only slow its drain), but it counts against budgets. Pods that do not fit
   on the remaining nodes, and pods with inter-pod constraints (which the simulation cannot
   place safely), get replacement NodeClaims planned for them, launched before the drain.
3. **Drifted**: a node whose NodeClaim's ``Drifted`` condition is True (see ``drift``). Graceful,
   like consolidation: budgets for ``Drifted`` and ``do-not-disrupt`` stop it (a pod's only when
   the claim has no ``terminationGracePeriod``, which bounds the drain, as in Karpenter).
   Pods that do not fit on other nodes, and pods with inter-pod constraints, get replacement
   NodeClaims launched (and Ready) before the drain; a node whose pods would have nowhere to go
   is left for a later round. Other drifted nodes are no destination for moved pods (they are
   about to go too). Several per pool, as many as the budget allows.
4. **Underutilized** (``WhenEmptyOrUnderutilized``): a node whose pods all fit on other nodes is
   deleted; else one whose pods fit on one cheaper instance type of its pool is replaced. At most
   one per pool at a time, never while NodeClaims are in flight, never while the pods a node was
   launched for are still starting, never within ``consolidateAfter`` of its last pod event, and
   never when one of its pods has a required inter-pod constraint (pod affinity, anti-affinity,
   DoNotSchedule topology spread): the simulation places pods by resources, taints and node
   affinity only, and moving such a pod could leave it pending.

Separately, :func:`candidate_taints` answers which nodes should carry the
``jitnode.io/disruption-candidate:PreferNoSchedule`` taint: managed nodes that expire within a
window (and will then be drained), so new pods prefer other nodes, as the extender's prioritize
steered them. Nodes being drained carry ``jitnode.io/disrupted:NoSchedule`` (see ``mark``).

Capacity is never taken from pending pods: a node that a pending pod could use is left alone,
and pending pods are placed (first fit) before moved pods count on other nodes' free room. A node
that receives simulated pods in a round is not itself disrupted in that round. CapacityBuffer
chunks (``Snapshot.buffer``, virtual pods) hold free room after pending pods but pin no node:
an empty or underutilized node is disrupted when its chunks fit on other nodes too (they move
with it, and a cheaper replacement is sized for them), and kept when they do not, since its
capacity would only be launched again. Retained chunks (``Snapshot.retained``, scale-down
stabilisation, see ``stabilisation``) are held the same way after the buffers', but only on
nodes whose pool's ``stabilizationWindow`` still covers them (or on unmanaged nodes, which jitnode
never removes): an empty or underutilized node of such a pool stays while the recent peak it
makes room for fits nowhere else. Nodes being disrupted count as neither candidates nor
destinations. Voluntary disruption never picks a node or pod annotated
``jitnode.io/do-not-disrupt: "true"`` (or, on a pod, a duration not yet over: see ``donotdisrupt``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from launcher.disruption.budgets import BudgetTracker
from launcher.disruption.mark import DRIFTED, EMPTY, EXPIRED, UNDERUTILIZED, Mark
from launcher.disruption.stabilisation import RetainedChunk
from launcher.model import InstanceType
from launcher.planner import InFlightClaim, Plan, PlannedClaim, PoolView, plan
from shared.api.nodepool import WHEN_EMPTY, WHEN_EMPTY_OR_UNDERUTILIZED
from shared.demand import PodDemand
from shared.labels import DISRUPTION_CANDIDATE_TAINT
from shared.pods import NODE_NAME_FIELD
from shared.resources import EMPTY as NO_RESOURCES
from shared.resources import Resources
from shared.taints import Taint, untolerated_taints

CONSOLIDATION_POLICIES = frozenset({WHEN_EMPTY, WHEN_EMPTY_OR_UNDERUTILIZED})


@dataclass(frozen=True)
class PodInfo:
    """A pod that would have to move off its node (not DaemonSet, mirror or terminal)."""

    demand: PodDemand
    ready: bool = True
    do_not_disrupt: bool = False
    # A required inter-pod constraint the placement simulation does not model (pod affinity,
    # anti-affinity, hard topology spread): consolidation leaves such a pod's node alone.
    inter_pod_constraint: str | None = None

    @property
    def uid(self) -> str:
        return self.demand.uid


@dataclass(frozen=True)
class NodeInfo:
    """A node as the decisions need it; ``nodeclaim``/``nodepool`` are None for foreign nodes.

    ``used`` counts every non-terminal pod bound to the node (DaemonSets included);
    ``terminating`` counts pods a drain would move that are being deleted but still run: the
    node is not empty until they are gone. ``last_pod_event`` is when a pod last arrived or
    left (the claim's ``lastPodEventTime``, else when it became Ready); ``schedulable`` is Ready
    and not cordoned.
    """

    name: str
    labels: Mapping[str, str]
    taints: tuple[Taint, ...]
    allocatable: Resources
    used: Resources = NO_RESOURCES
    pods: tuple[PodInfo, ...] = ()
    terminating: int = 0
    nodeclaim: str | None = None
    nodepool: str | None = None
    created: datetime | None = None
    last_pod_event: datetime | None = None
    expire_after: timedelta | None = None
    planned_pods: frozenset[str] = frozenset()
    price: float | None = None
    instance_type: str | None = None
    do_not_disrupt: bool = False
    mark: Mark | None = None
    deleting: bool = False
    initialized: bool = True
    schedulable: bool = True
    drifted: str | None = None  # "<reason>: <message>" of a True Drifted condition
    # The claim's terminationGracePeriod: with one, a do-not-disrupt pod does not hold drift
    # (the drain ends by then anyway), as in Karpenter.
    grace_period: timedelta | None = None

    @property
    def free(self) -> Resources:
        return (self.allocatable - self.used).clamp_zero()

    @property
    def empty(self) -> bool:
        return not self.pods and not self.terminating

    @property
    def disrupting(self) -> bool:
        return self.mark is not None or self.deleting

    @property
    def managed(self) -> bool:
        return self.nodeclaim is not None and self.nodepool is not None


@dataclass(frozen=True)
class Snapshot:
    """Everything :func:`decide` reads. ``starting`` holds uids of pods not yet Ready."""

    nodes: Sequence[NodeInfo]
    pools: Mapping[str, PoolView]
    types: Mapping[str, InstanceType]
    now: datetime
    pending: Sequence[PodDemand] = ()
    in_flight: Sequence[InFlightClaim] = ()
    starting: frozenset[str] = frozenset()
    # CapacityBuffer chunks (``launcher.buffers``): they hold free room like pending pods, but
    # move with a node that is disrupted instead of blocking it; see :meth:`_Rooms.move_held`.
    buffer: Sequence[PodDemand] = ()
    # Scale-down stabilisation: room for pods of recent peaks (``stabilisation``), held like
    # buffer chunks on nodes of pools whose window covers them.
    retained: Sequence[RetainedChunk] = ()


@dataclass(frozen=True)
class Action:
    """Disrupt ``node``: launch ``replacements`` (if any), wait until Ready, drain, delete."""

    node: str
    nodeclaim: str
    nodepool: str
    reason: str
    message: str
    replacements: tuple[PlannedClaim, ...] = ()


@dataclass(frozen=True)
class Decisions:
    actions: tuple[Action, ...] = ()
    blocked: Mapping[str, str] = field(default_factory=dict)  # node -> why it was not chosen
    # The earliest time a blocked node's consolidateAfter clock runs out: decide again then,
    # so a node goes when its time is up rather than at the next periodic round.
    recheck_at: datetime | None = None


def pod_fits(pod: PodDemand, node: NodeInfo, room: Resources) -> bool:
    """Whether ``pod`` could run on ``node`` within ``room``: resources, taints, affinity."""
    if not pod.requests.fits_in(room) or untolerated_taints(pod.tolerations, node.taints):
        return False
    node_labels = {**node.labels, NODE_NAME_FIELD: node.name}
    return any(alternative.matches(node_labels) for alternative in pod.requirements)


def expired(node: NodeInfo, now: datetime) -> bool:
    return (
        node.expire_after is not None and node.created is not None and now - node.created >= node.expire_after
    )


def expires_at(node: NodeInfo) -> datetime | None:
    """When the node's ``expireAfter`` runs out (None: never)."""
    if node.expire_after is None or node.created is None:
        return None
    try:
        return node.created + node.expire_after
    except OverflowError:
        return None


@dataclass(frozen=True)
class TaintChanges:
    """Nodes to give or rid of the disruption-candidate taint, and when to look again."""

    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    # The earliest time a node not yet tainted enters the window.
    next_at: datetime | None = None


def is_candidate(node: NodeInfo, now: datetime, window: timedelta) -> bool:
    """A managed node that expires within ``window`` of ``now`` (or already has)."""
    at = expires_at(node) if node.managed else None
    return at is not None and now >= at - window


def candidate_taints(nodes: Iterable[NodeInfo], now: datetime, window: timedelta) -> TaintChanges:
    """Which nodes gain or lose the ``jitnode.io/disruption-candidate:PreferNoSchedule`` taint.

    A node gains it when it becomes a candidate (see :func:`is_candidate`) and loses it when it
    stops being one (its NodePool's ``expireAfter`` grew, or was removed). Nodes being deleted
    are left as they are: they go anyway.
    """
    add: list[str] = []
    remove: list[str] = []
    upcoming: list[datetime] = []
    for node in nodes:
        if node.deleting:
            continue
        tainted = any(t.key == DISRUPTION_CANDIDATE_TAINT for t in node.taints)
        wanted = is_candidate(node, now, window)
        if wanted and not tainted:
            add.append(node.name)
        elif tainted and not wanted:
            remove.append(node.name)
        if not wanted and node.managed and (at := expires_at(node)) is not None:
            upcoming.append(at - window)
    return TaintChanges(tuple(sorted(add)), tuple(sorted(remove)), min(upcoming, default=None))


def consolidatable_at(node: NodeInfo, pool: PoolView) -> datetime | None:
    """When ``consolidateAfter`` will have passed since the node's last pod event (None: never)."""
    after = pool.pool.disruption.consolidate_after
    since = node.last_pod_event or node.created
    if after is None or since is None:
        return None
    try:
        return since + after
    except OverflowError:
        return None


def consolidatable_since(node: NodeInfo, pool: PoolView, now: datetime) -> bool:
    """True once ``consolidateAfter`` has passed since the node's last pod event."""
    at = consolidatable_at(node, pool)
    return at is not None and now >= at


Where = Callable[[NodeInfo], bool]


@dataclass(frozen=True)
class _Held:
    """A chunk held in a node's free room, and the nodes it may be held on (None: any)."""

    pod: PodDemand
    where: Where | None = None
    retained: RetainedChunk | None = None


class _Rooms:
    """Free room on destination nodes, consumed as pods are placed during one round."""

    def __init__(self, nodes: Iterable[NodeInfo]) -> None:
        self.nodes = {n.name: n for n in nodes}
        self.free = {n.name: n.free for n in self.nodes.values()}
        self.excluded: set[str] = set()
        self.receiving: set[str] = set()
        self._last_receivers: set[str] = set()
        self.held: dict[str, list[_Held]] = {}  # node -> chunks its free room holds
        self._order = sorted(self.free)

    def place(self, pod: PodDemand, exclude: str | None = None, where: Where | None = None) -> str | None:
        for name in self._order:
            if name == exclude or name in self.excluded:
                continue
            node = self.nodes[name]
            if pod_fits(pod, node, self.free[name]) and (where is None or where(node)):
                self.free[name] = self.free[name] - pod.requests
                return name
        return None

    def hold(self, chunk: _Held) -> str | None:
        """Place a chunk and remember where, so it can move with its node."""
        name = self.place(chunk.pod, where=chunk.where)
        if name is not None:
            self.held.setdefault(name, []).append(chunk)
        return name

    def move_held(self, node: str) -> bool:
        """Move the buffer chunks ``node`` holds onto other nodes; False (nothing changed) when
        some fit nowhere else: disrupting the node would only launch their capacity again."""
        chunks = self.held.get(node, [])
        if not chunks:
            return True
        before = dict(self.free)
        moved: list[tuple[str, _Held]] = []
        for chunk in chunks:
            name = self.place(chunk.pod, exclude=node, where=chunk.where)
            if name is None:
                self.free = before
                return False
            moved.append((name, chunk))
        del self.held[node]
        for name, chunk in moved:
            self.held.setdefault(name, []).append(chunk)
        return True

    def held_message(self, node: str) -> str:
        """Why a node's chunks keep it: what they are."""
        chunks = self.held.get(node, [])
        retained = sum(1 for c in chunks if c.retained is not None)
        parts = []
        if len(chunks) > retained:
            parts.append(f"{len(chunks) - retained} CapacityBuffer chunks")
        if retained:
            parts.append(f"room for {retained} pods of recent peaks (stabilizationWindow)")
        return f"it holds {' and '.join(parts)} that fit on no other node"

    def try_place_all(
        self, pods: Sequence[PodDemand], exclude: str
    ) -> tuple[list[PodDemand], dict[str, Resources]]:
        """Place what fits (largest first) and return the rest; the caller commits or rolls back."""
        before = dict(self.free)
        unplaced: list[PodDemand] = []
        receivers: set[str] = set()
        for pod in sorted(pods, key=_size, reverse=True):
            placed = self.place(pod, exclude)
            if placed is None:
                unplaced.append(pod)
            else:
                receivers.add(placed)
        self._last_receivers = receivers
        return unplaced, before

    def commit(self) -> None:
        self.receiving |= self._last_receivers

    def rollback(self, before: dict[str, Resources]) -> None:
        self.free = before


def _size(pod: PodDemand) -> tuple[int, int, str]:
    return (pod.requests.amount("cpu"), pod.requests.amount("memory"), pod.uid)


def _pending_need(node: NodeInfo, pending: Sequence[PodDemand]) -> PodDemand | None:
    return next((p for p in pending if pod_fits(p, node, node.free)), None)


def decide(snapshot: Snapshot) -> Decisions:
    """The disruptions to start now (see the module docstring for the rules)."""
    now = snapshot.now
    managed = [n for n in snapshot.nodes if n.managed]
    totals: dict[str, int] = {}
    disrupting: dict[str, int] = {}
    for node in managed:
        pool_name = str(node.nodepool)
        totals[pool_name] = totals.get(pool_name, 0) + 1
        if node.disrupting:
            disrupting[pool_name] = disrupting.get(pool_name, 0) + 1
    budgets = BudgetTracker({k: v.pool for k, v in snapshot.pools.items()}, totals, now, disrupting)
    rooms = _Rooms(n for n in snapshot.nodes if n.schedulable and n.initialized and not n.disrupting)
    for pod in sorted(snapshot.pending, key=lambda p: (-p.priority, p.first_seen, p.uid)):
        rooms.place(pod)  # pending pods come first: moved pods only get what is left
    for pod in sorted(snapshot.buffer, key=lambda p: (-p.priority, p.first_seen, p.uid)):
        rooms.hold(_Held(pod))  # then buffer chunks, on room that pending pods left
    for chunk in sorted(snapshot.retained, key=lambda c: (-c.demand.priority, c.needed_at, c.demand.uid)):
        rooms.hold(_Held(chunk.demand, _covers(chunk, snapshot), chunk))  # then recent peaks

    actions: list[Action] = []
    blocked: dict[str, str] = {}
    chosen: set[str] = set()
    candidates = [
        n for n in managed if not n.disrupting and n.initialized and str(n.nodepool) in snapshot.pools
    ]

    def choose(action: Action) -> None:
        actions.append(action)
        chosen.add(action.node)
        rooms.excluded.add(action.node)

    # 1. Empty nodes.
    for node in candidates:
        view = snapshot.pools[str(node.nodepool)]
        if not node.empty or view.pool.disruption.consolidation_policy not in CONSOLIDATION_POLICIES:
            continue
        why = _voluntary_block(node, view, snapshot, rooms)
        if why is None and not rooms.move_held(node.name):
            why = rooms.held_message(node.name)
        if why is None and not budgets.try_take(view.name, EMPTY):
            why = f"nodepool {view.name} disruption budget for {EMPTY} is spent"
        if why is not None:
            blocked[node.name] = why
            continue
        choose(Action(node.name, str(node.nodeclaim), view.name, EMPTY, "node has been empty"))

    # 2. Expired nodes (forceful).
    for node in candidates:
        if node.name in chosen or node.name in rooms.receiving or not expired(node, now):
            continue
        view = snapshot.pools[str(node.nodepool)]
        # A pod with an inter-pod constraint may not fit where resources say it does: it gets
        # replacement capacity of its own rather than a place the scheduler could refuse.
        movable = [p.demand for p in node.pods if not p.inter_pod_constraint]
        constrained = [p.demand for p in node.pods if p.inter_pod_constraint]
        unplaced, _ = rooms.try_place_all(movable, exclude=node.name)
        rooms.commit()
        replacements, message = _replacements_for(unplaced + constrained, snapshot)
        budgets.force(view.name)
        choose(Action(node.name, str(node.nodeclaim), view.name, EXPIRED, message, replacements))

    # 3. Drifted nodes (graceful): replaced within the Drifted budget.
    _drifted_step(candidates, chosen, snapshot, rooms, budgets, blocked, choose)

    # 4. Underutilized nodes: one per pool, cheapest to disrupt first.
    busy = {str(n.nodepool) for n in managed if n.mark is not None and n.mark.reason == UNDERUTILIZED}
    ordered = sorted(candidates, key=lambda n: (len(n.pods), n.used.amount("cpu"), n.name))
    for node in ordered:
        view = snapshot.pools[str(node.nodepool)]
        if node.name in chosen or not node.pods:
            continue  # empty (step 1), or its last pods are terminating: wait until they are gone
        if view.pool.disruption.consolidation_policy != WHEN_EMPTY_OR_UNDERUTILIZED:
            continue
        why = _consolidation_block(node, view, snapshot, rooms, busy)
        if why is None and budgets.remaining(view.name, UNDERUTILIZED) <= 0:
            why = f"nodepool {view.name} disruption budget for {UNDERUTILIZED} is spent"
        if why is not None:
            blocked[node.name] = why
            continue
        action = _consolidate(node, view, snapshot, rooms)
        if isinstance(action, str):
            blocked[node.name] = action
            continue
        budgets.try_take(view.name, UNDERUTILIZED)
        busy.add(view.name)
        choose(action)
    recheck = min(
        (t for t in (_recheck_at(candidates, blocked, snapshot), _retained_until(rooms, snapshot)) if t),
        default=None,
    )
    return Decisions(tuple(actions), blocked, recheck)


def _window(node: NodeInfo, snapshot: Snapshot) -> timedelta | None:
    """The stabilisation window of the node's pool; None when it has none or is unmanaged."""
    view = snapshot.pools.get(str(node.nodepool)) if node.managed else None
    return view.pool.disruption.stabilization_window if view is not None else None


def _covers(chunk: RetainedChunk, snapshot: Snapshot) -> Where:
    """Where a retained chunk may be held: nodes jitnode does not manage (it never removes them),
    and nodes whose pool's window still covers the time the chunk's level was last needed."""

    def where(node: NodeInfo) -> bool:
        if not node.managed:
            return True
        window = _window(node, snapshot)
        return window is not None and snapshot.now - chunk.needed_at <= window

    return where


def _retained_until(rooms: _Rooms, snapshot: Snapshot) -> datetime | None:
    """When the first retained chunk held on a managed node stops being covered: a node it
    keeps may go then."""
    times = [
        held.retained.needed_at + window
        for name, chunks in rooms.held.items()
        for held in chunks
        if held.retained is not None and (window := _window(rooms.nodes[name], snapshot)) is not None
    ]
    return min((t for t in times if t > snapshot.now), default=None)


def _drifted_step(
    candidates: Sequence[NodeInfo],
    chosen: set[str],
    snapshot: Snapshot,
    rooms: _Rooms,
    budgets: BudgetTracker,
    blocked: dict[str, str],
    choose: Callable[[Action], None],
) -> None:
    """Start the replacement of drifted nodes (step 3 of :func:`decide`), fewest pods first."""
    drifted = [n for n in candidates if n.drifted is not None and n.name not in chosen]
    rooms.excluded.update(n.name for n in drifted)
    for node in sorted(drifted, key=lambda n: (len(n.pods), n.used.amount("cpu"), n.name)):
        view = snapshot.pools[str(node.nodepool)]
        why = _drift_block(node, rooms)
        if why is None and budgets.remaining(view.name, DRIFTED) <= 0:
            why = f"nodepool {view.name} disruption budget for {DRIFTED} is spent"
        if why is not None:
            blocked[node.name] = why
            continue
        movable = [p.demand for p in node.pods if not p.inter_pod_constraint]
        constrained = [p.demand for p in node.pods if p.inter_pod_constraint]
        unplaced, before = rooms.try_place_all(movable, exclude=node.name)
        result = _plan_replacements(unplaced + constrained, snapshot)
        if result is not None and result.unschedulable:
            rooms.rollback(before)
            blocked[node.name] = f"{len(result.unschedulable)} of its pods would have no node to go to"
            continue
        rooms.commit()
        rooms.move_held(node.name)  # its CapacityBuffer chunks go elsewhere if they fit (not a veto)
        budgets.try_take(view.name, DRIFTED)
        claims = result.claims if result is not None else ()
        moved = len(node.pods) - len(unplaced) - len(constrained)
        message = f"drifted ({node.drifted}); {len(claims)} replacement(s), {moved} pods fit on other nodes"
        choose(Action(node.name, str(node.nodeclaim), view.name, DRIFTED, message, claims))


def _drift_block(node: NodeInfo, rooms: _Rooms) -> str | None:
    """Why a drifted node may not be replaced now (voluntary: do-not-disrupt holds it), or None."""
    if node.do_not_disrupt:
        return "node is annotated do-not-disrupt"
    blocking = next((p for p in node.pods if p.do_not_disrupt), None)
    if blocking is not None and node.grace_period is None:
        return f"pod {blocking.demand.key} is annotated do-not-disrupt"
    if node.name in rooms.receiving:
        return "node receives pods moved from another node"
    return None


def _recheck_at(nodes: Iterable[NodeInfo], blocked: Mapping[str, str], snapshot: Snapshot) -> datetime | None:
    """The earliest future time at which a blocked node's consolidateAfter has passed."""
    times = [
        at
        for node in nodes
        if node.name in blocked
        and (at := consolidatable_at(node, snapshot.pools[str(node.nodepool)])) is not None
        and at > snapshot.now
    ]
    return min(times, default=None)


def _voluntary_block(node: NodeInfo, view: PoolView, snapshot: Snapshot, rooms: _Rooms) -> str | None:
    """Why voluntary disruption may not touch ``node`` now, or None."""
    if node.do_not_disrupt:
        return "node is annotated do-not-disrupt"
    blocking = next((p for p in node.pods if p.do_not_disrupt), None)
    if blocking is not None:
        return f"pod {blocking.demand.key} is annotated do-not-disrupt"
    if node.name in rooms.receiving:
        return "node receives pods moved from another node"
    if node.planned_pods & snapshot.starting:
        return "pods the node was launched for are still starting"
    if not consolidatable_since(node, view, snapshot.now):
        return f"last pod event less than consolidateAfter ({view.pool.disruption.consolidate_after}) ago"
    needed = _pending_need(node, snapshot.pending)
    if needed is not None:
        return f"pending pod {needed.key} could use this node"
    return None


def _consolidation_block(
    node: NodeInfo, view: PoolView, snapshot: Snapshot, rooms: _Rooms, busy: set[str]
) -> str | None:
    if view.name in busy:
        return f"nodepool {view.name} already has a consolidation in progress"
    if snapshot.in_flight:
        return "nodeclaims are still launching"
    starting = next((p for p in node.pods if not p.ready), None)
    if starting is not None:
        return f"pod {starting.demand.key} is not Ready"
    constrained = next((p for p in node.pods if p.inter_pod_constraint), None)
    if constrained is not None:
        return (
            f"pod {constrained.demand.key} has {constrained.inter_pod_constraint}, "
            "which the consolidation simulation does not model"
        )
    return _voluntary_block(node, view, snapshot, rooms)


def _consolidate(node: NodeInfo, view: PoolView, snapshot: Snapshot, rooms: _Rooms) -> Action | str:
    """Delete the node if its pods fit elsewhere, else replace it with one cheaper node."""
    pods = [p.demand for p in node.pods]
    held = [h.pod for h in rooms.held.get(node.name, ())]  # chunks go along, or the node stays
    unplaced, before = rooms.try_place_all(pods, exclude=node.name)
    if not unplaced and rooms.move_held(node.name):
        rooms.commit()
        return Action(
            node.name,
            str(node.nodeclaim),
            view.name,
            UNDERUTILIZED,
            f"its {len(pods)} pods fit on other nodes",
        )
    rooms.rollback(before)
    if node.price is None:
        return "pods do not fit on other nodes and the node's price is unknown"
    demand = {p.uid: p for p in [*pods, *held]}
    result = plan(demand=demand, pools=[view], types=list(snapshot.types.values()))
    if result.unschedulable or len(result.claims) != 1:
        return "pods do not fit on other nodes nor on one new node"
    planned = result.claims[0]
    prices: dict[str, float] = {}
    for name in planned.instance_types:
        price = snapshot.types[name].cheapest_price(planned.requirements) if name in snapshot.types else None
        if name != node.instance_type and price is not None and price < node.price:
            prices[name] = price
    if not prices:
        return f"no instance type cheaper than {node.price:.4f}/h fits its pods"
    cheaper = tuple(sorted(prices, key=lambda n: (prices[n], n)))
    replacement = PlannedClaim(
        nodepool=planned.nodepool,
        pods=planned.pods,
        requirements=planned.requirements,
        instance_types=cheaper,
        requests=planned.requests,
        price=prices[cheaper[0]],
    )
    return Action(
        node.name,
        str(node.nodeclaim),
        view.name,
        UNDERUTILIZED,
        f"replace with a cheaper {cheaper[0]} ({replacement.price:.4f}/h < {node.price:.4f}/h)",
        (replacement,),
    )


def _plan_replacements(pods: Sequence[PodDemand], snapshot: Snapshot) -> Plan | None:
    """Replacement claims for ``pods`` (None when there are none to place)."""
    if not pods:
        return None
    # Without the cluster's other pods, spread and affinity would be judged against an empty
    # cluster: the replacements are sized for the pods as they are, as before topology support.
    return plan(
        demand={p.uid: p for p in pods},
        pools=list(snapshot.pools.values()),
        types=list(snapshot.types.values()),
        topology_aware=False,
    )


def _replacements_for(pods: Sequence[PodDemand], snapshot: Snapshot) -> tuple[tuple[PlannedClaim, ...], str]:
    result = _plan_replacements(pods, snapshot)
    if result is None:
        return (), "node expired; its pods fit on other nodes"
    message = f"node expired; {len(result.claims)} replacement(s) for {len(pods)} pods"
    if result.unschedulable:
        message += f"; {len(result.unschedulable)} pods have no replacement"
    return result.claims, message
