"""The discrete-event loop: one trace through one policy on simulated time (no sleeping).

A pod waits from its creation until it is bound to a Ready node. The scheduler binds pending
pods to the Ready node they fit best (most allocated, as jitnode's shipped profile packs); a
real pod that fits nowhere takes the room of a buffer's virtual pods, which then wait in its
stead. Pods the policy has bought or started a node for are nominated to it and ask for nothing
more. Deleting replicas takes pending pods first, then the newest (the ReplicaSet's order).
Pods moved by consolidation are moved at once (their brief rescheduling is not capacity's).
A policy's stabilisation window keeps nodes that the pods' recent peak needs (the peaks kept by
the launcher's ``launcher.disruption.stabilisation``); hedged warm starts
start spare parked instances, and pending pods bind to whichever is Ready first.

Money is integrated exactly: every instance pays its EBS volumes while it exists and its
on-demand price while running (booting, Ready, filling a warm pool, stopping, warm Running),
at least a minute per start. Idle capacity is Ready nodes' CPU not requested by real pods plus
the whole CPU of running instances that serve none (booting, warm, stopping).
"""

from __future__ import annotations

import heapq
import math
import random
import zlib
from collections import Counter, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Final, Literal

from capsim.nodegroups import groups_for, least_waste
from capsim.params import Settings, Spread
from capsim.planning import Counts, Planner, Shape, TypeInfo
from capsim.policies import Policy
from capsim.traces import Rollout, Trace
from launcher.disruption.stabilisation import WorkloadPeaks, WorkloadSample

NodeState = Literal[
    "booting", "starting", "ready", "filling", "stopping", "stopped", "hibernated", "warm_running", "gone"
]
RUNNING: Final = frozenset({"booting", "starting", "ready", "filling", "stopping", "warm_running"})
IN_FLIGHT: Final = frozenset({"booting", "starting"})
SERVING: Final = IN_FLIGHT | {"ready"}
WARM_IDLE: Final = frozenset({"stopped", "hibernated", "warm_running"})
# Warm instances by how soon they are Ready: parked (Running, Hibernated, Stopped), then filling.
WARM_ORDER: Final = {"warm_running": 0, "hibernated": 1, "stopped": 2, "filling": 3}
WARM_ANY: Final = WARM_IDLE | {"filling", "stopping"}
TICK_S: Final = 10.0
CONSOLIDATE_EVERY_S: Final = 60.0
CA_UNNEEDED_S: Final = 600.0
CA_DELAY_AFTER_ADD_S: Final = 600.0
CA_UTILISATION: Final = 0.5
HISTORY_S: Final = 3600.0  # desired replicas kept per workload, for predictive headroom
DEMAND_WINDOW_S: Final = 600.0  # launcher.warmpool.sizing.DEFAULT_WINDOW
FALLBACK_CPU_M: Final = 2000  # launcher.warmpool.sizing.FALLBACK_CPU


@dataclass
class Node:
    id: int
    type: TypeInfo
    state: NodeState
    ebs_gib: float
    group: str | None = None
    since: float = 0.0
    run_started: float | None = None
    pods: set[int] = field(default_factory=set)
    nominated: set[int] = field(default_factory=set)
    used_cpu: int = 0
    used_mem: int = 0
    real_cpu: int = 0
    real_mem: int = 0
    nominated_cpu: int = 0
    nominated_mem: int = 0
    empty_since: float | None = None
    unneeded_since: float | None = None
    launched: float = 0.0
    pods_changed: float = 0.0  # when a pod last came or went (consolidateAfter counts from it)

    def fits(self, shape: Shape, count: int = 1) -> bool:
        cpu, mem = shape
        return (
            self.used_cpu + cpu * count <= self.type.cpu_m
            and self.used_mem + mem * count <= self.type.memory
            and len(self.pods) + count <= self.type.pods
        )

    def room_for_nominee(self, shape: Shape) -> bool:
        """Whether an in-flight node can still take a pod besides those nominated to it."""
        return (
            self.nominated_cpu + shape[0] <= self.type.cpu_m
            and self.nominated_mem + shape[1] <= self.type.memory
            and len(self.nominated) + 1 <= self.type.pods
        )


@dataclass
class Pod:
    id: int
    workload: str
    shape: Shape
    created: float
    virtual: bool = False
    generation: int = 0
    node: int | None = None
    nominated: int | None = None
    bound_at: float | None = None


@dataclass(frozen=True)
class Wait:
    """One real pod's wait: when it was created, for which workload, and how long it waited."""

    created: float
    workload: str
    seconds: float


@dataclass(frozen=True)
class Outcome:
    """What one run measured."""

    trace: str
    policy: str
    duration: float
    pending_s: tuple[float, ...]  # each real pod's wait, sorted
    cost: float  # $ over the run
    instance_cost: float
    ebs_cost: float
    idle_vcpu_s: float
    cold_launches: int
    warm_starts: int
    rollout_s: tuple[float, ...] = ()
    waits: tuple[Wait, ...] = ()  # each real pod's wait, in the order the pods stopped waiting

    def percentile(self, q: float) -> float:
        """Nearest-rank percentile of the pending times (0 when no pod waited)."""
        if not self.pending_s:
            return 0.0
        rank = max(1, math.ceil(q / 100 * len(self.pending_s)))
        return self.pending_s[rank - 1]

    @property
    def waited_share(self) -> float:
        """The share of pods that waited more than a second (for a new node, in practice)."""
        if not self.pending_s:
            return 0.0
        return sum(1 for s in self.pending_s if s > 1.0) / len(self.pending_s)

    @property
    def per_day(self) -> float:
        return 86400.0 / self.duration

    @property
    def dollars_per_day(self) -> float:
        return self.cost * self.per_day

    @property
    def idle_vcpu_hours_per_day(self) -> float:
        return self.idle_vcpu_s / 3600.0 * self.per_day


class Simulation:
    """One run; ``run()`` returns its :class:`Outcome`."""

    def __init__(self, trace: Trace, policy: Policy, planner: Planner, settings: Settings):
        self.trace = trace
        self.policy = policy
        self.planner = planner
        self.settings = settings
        self._seed = f"{settings.seed}/{trace.name}"
        self._streams: dict[str, random.Random] = {}
        self.now = 0.0
        self._events: list[tuple[float, int, str, object]] = []
        self._seq = 0
        self.nodes: dict[int, Node] = {}
        self.pods: dict[int, Pod] = {}
        self.pending: dict[int, Pod] = {}  # insertion-ordered: creation order
        self._ids = 0
        self.desired: dict[str, int] = {w.name: 0 for w in trace.workloads}
        self.generation: dict[str, int] = {w.name: 0 for w in trace.workloads}
        self.waits: list[Wait] = []
        # Rates, kept up to date on every change so integrating them is O(1) per event.
        self._instance_rate = 0.0
        self._ebs_rate = 0.0
        self._idle_rate = 0.0
        self.instance_cost = 0.0
        self.ebs_cost = 0.0
        self.idle_m_s = 0.0
        self._last = 0.0
        self.cold_launches = 0
        self.warm_starts = 0
        self._decide_at: float | None = None
        self._batch: tuple[float, float] | None = None  # (opened, last pod)
        self._starts: deque[float] = deque()  # node starts, for warm-pool sizing
        self._recent_types: deque[str] = deque(maxlen=20)
        self._last_scale_up = -math.inf
        self._history: dict[str, deque[tuple[float, int]]] = {w.name: deque() for w in trace.workloads}
        self._count: Counter[str] = Counter()  # pods per workload, real or virtual
        # Scale-down stabilisation: the launcher's own tracker of each workload's recent peaks,
        # fed the counts as the pod index hands them over (count now, most since the last).
        self._peaks = WorkloadPeaks()
        self._sampled: Counter[str] = Counter()
        self._rollouts: dict[str, _RolloutState] = {}
        self.rollout_s: list[float] = []
        self._groups = (
            groups_for(planner, trace.workloads[0].shape, policy.group_sizes)
            if policy.packing == "node_groups"
            else ()
        )

    # -- the loop -------------------------------------------------------------------------------

    def run(self) -> Outcome:
        self._bootstrap()
        for at, workload, replicas in self.trace.steps:
            if at > 0:
                self._at(at, "step", (workload, replicas))
        for rollout in self.trace.rollouts:
            self._at(rollout.at, "rollout", rollout)
        self._at(TICK_S, "tick", None)
        if self.policy.trigger == "scan":
            self._at(self._stream("scan").uniform(0, self.policy.scan_s), "scan", None)
        while self._events:
            at, _, kind, payload = heapq.heappop(self._events)
            if at > self.trace.duration:
                break
            self._advance(at)
            self._handle(kind, payload)
        self._advance(self.trace.duration)
        for pod in self.pending.values():
            if not pod.virtual:
                self._waited(pod, self.trace.duration)
        return Outcome(
            trace=self.trace.name,
            policy=self.policy.name,
            duration=self.trace.duration,
            pending_s=tuple(sorted(w.seconds for w in self.waits)),
            cost=self.instance_cost + self.ebs_cost,
            instance_cost=self.instance_cost,
            ebs_cost=self.ebs_cost,
            idle_vcpu_s=self.idle_m_s / 1000.0,
            cold_launches=self.cold_launches,
            warm_starts=self.warm_starts,
            rollout_s=tuple(self.rollout_s),
            waits=tuple(self.waits),
        )

    def _stream(self, kind: str) -> random.Random:
        """One random stream per kind of duration, the same for every policy on a trace: the
        n-th cold boot takes as long under each (common random numbers), so policies differ by
        what they do, not by their luck."""
        found = self._streams.get(kind)
        if found is None:
            found = random.Random(zlib.crc32(f"{self._seed}/{kind}".encode()))
            self._streams[kind] = found
        return found

    def _sample(self, kind: str, spread: Spread) -> float:
        return spread.sample(self._stream(kind))

    def _at(self, at: float, kind: str, payload: object) -> None:
        self._seq += 1
        heapq.heappush(self._events, (at, self._seq, kind, payload))

    def _advance(self, to: float) -> None:
        dt = to - self._last
        if dt > 0:
            self.instance_cost += self._instance_rate * dt
            self.ebs_cost += self._ebs_rate * dt
            self.idle_m_s += self._idle_rate * dt
        self._last = to
        self.now = to

    def _handle(self, kind: str, payload: object) -> None:
        if kind == "step":
            assert isinstance(payload, tuple)
            self._scale(str(payload[0]), int(payload[1]))
        elif kind == "decide":
            self._decide_at = None
            self._decide()
        elif kind == "batch":
            self._batch_check()
        elif kind == "scan":
            self._decide()
            self._at(self.now + self.policy.scan_s, "scan", None)
        elif kind == "ready":
            assert isinstance(payload, int)
            self._node_ready(payload)
        elif kind == "warmed":
            assert isinstance(payload, int)
            self._warmed(payload)
        elif kind == "tick":
            self._tick()
            self._at(self.now + TICK_S, "tick", None)
        elif kind == "rollout":
            assert isinstance(payload, Rollout)
            self._rollout_start(payload)
        elif kind == "rollout_ready":
            assert isinstance(payload, int)
            self._rollout_ready(payload)

    # -- accounting -----------------------------------------------------------------------------

    @contextmanager
    def _changing(self, node: Node) -> Iterator[None]:
        """Take the node's rates out, let the caller change it, put them back in."""
        instance, ebs, idle = self._rates(node)
        self._instance_rate -= instance
        self._ebs_rate -= ebs
        self._idle_rate -= idle
        was_running = node.state in RUNNING
        yield
        if was_running and node.state not in RUNNING and node.run_started is not None:
            short = self.settings.prices.start_minimum_s - (self.now - node.run_started)
            if short > 0:  # EC2's one-minute minimum per start
                self.instance_cost += short * node.type.price / 3600.0
            node.run_started = None
        if not was_running and node.state in RUNNING:
            node.run_started = self.now
        instance, ebs, idle = self._rates(node)
        self._instance_rate += instance
        self._ebs_rate += ebs
        self._idle_rate += idle

    def _rates(self, node: Node) -> tuple[float, float, float]:
        if node.state == "gone":
            return 0.0, 0.0, 0.0
        ebs = self.settings.prices.ebs_per_second(node.ebs_gib)
        if node.state not in RUNNING:
            return 0.0, ebs, 0.0
        idle = node.type.cpu_m - node.real_cpu if node.state == "ready" else node.type.cpu_m
        return node.type.price / 3600.0, ebs, float(idle)

    def _set_state(self, node: Node, state: NodeState) -> None:
        with self._changing(node):
            node.state = state
            node.since = self.now

    # -- nodes ----------------------------------------------------------------------------------

    def _new_node(self, type_name: str, state: NodeState, group: str | None = None) -> Node:
        info = self.planner.info[type_name]
        self._ids += 1
        warm = self.policy.warm
        ebs = self.settings.prices.root_gib
        if warm is not None and warm.state == "Hibernated":
            ebs += info.ram_gib  # a hibernating instance's root volume holds its RAM too
        node = Node(self._ids, info, "gone", ebs, group=group, launched=self.now)
        self.nodes[node.id] = node
        self._set_state(node, state)
        return node

    def _launch_cold(self, type_name: str, group: str | None = None) -> Node:
        node = self._new_node(type_name, "booting", group)
        self.cold_launches += 1
        self._started(node)
        self._at(self.now + self._sample("cold", self.settings.boot.cold), "ready", node.id)
        return node

    def _start_warm(self, node: Node) -> None:
        boot = self.settings.boot
        kind = node.state  # each kind of start draws from its own stream
        spread: Spread = {
            "stopped": boot.from_stopped,
            "hibernated": boot.from_hibernated,
            "warm_running": boot.from_running,
        }[kind]
        self._set_state(node, "starting")
        self.warm_starts += 1
        self._started(node)
        self._at(self.now + self._sample(kind, spread), "ready", node.id)

    def _started(self, node: Node) -> None:
        self._starts.append(self.now)
        self._recent_types.append(node.type.name)
        self._last_scale_up = self.now

    def _node_ready(self, node_id: int) -> None:
        node = self.nodes[node_id]
        if node.state not in IN_FLIGHT:
            return
        for pod_id in list(node.nominated):
            self._unnominate(self.pods[pod_id])
        self._set_state(node, "ready")
        node.empty_since = self.now
        self._schedule(list(self.pending.values()))

    def _remove(self, node: Node) -> None:
        """Scale-in: the node's instance goes back to the warm pool or is terminated."""
        warm = self.policy.warm
        if warm is not None and warm.reuse_on_scale_in and self._pool_count() < self._pool_target():
            self._to_pool(node)
        else:
            self._set_state(node, "gone")
            del self.nodes[node.id]

    def _to_pool(self, node: Node) -> None:
        """After a first join (or on scale-in): drain and stop, hibernate, or keep running."""
        warm = self.policy.warm
        assert warm is not None
        if warm.state == "Running":
            self._set_state(node, "warm_running")
            return
        self._set_state(node, "stopping")
        spread = self.settings.boot.hibernate if warm.state == "Hibernated" else self.settings.boot.stop
        self._at(self.now + self._sample(f"rest-{warm.state}", spread), "warmed", node.id)

    def _warmed(self, node_id: int) -> None:
        node = self.nodes.get(node_id)
        warm = self.policy.warm
        if node is None or warm is None:
            return
        if node.state == "filling":
            self._to_pool(node)
        elif node.state == "booting":  # taken from the pool while filling: it serves at once
            self._node_ready(node.id)
        elif node.state == "stopping":
            self._set_state(node, "hibernated" if warm.state == "Hibernated" else "stopped")

    # -- pods and the scheduler -----------------------------------------------------------------

    def _create(self, workload: str, virtual: bool = False, created: float | None = None) -> Pod:
        self._ids += 1
        shape = self.trace.workload(workload).shape
        pod = Pod(self._ids, workload, shape, self.now if created is None else created, virtual=virtual)
        pod.generation = self.generation[workload]
        self.pods[pod.id] = pod
        self._count[workload] += 1
        self.pending[pod.id] = pod
        return pod

    def _delete(self, pod: Pod) -> None:
        if pod.node is not None:
            self._unbind(pod)
        else:
            self.pending.pop(pod.id, None)
            if not pod.virtual:
                self._waited(pod, self.now)
        self._unnominate(pod)
        del self.pods[pod.id]
        self._count[pod.workload] -= 1

    def _waited(self, pod: Pod, until: float) -> None:
        self.waits.append(Wait(pod.created, pod.workload, until - pod.created))

    def _bind(self, pod: Pod, node: Node) -> None:
        self._unnominate(pod)
        self.pending.pop(pod.id, None)
        with self._changing(node):
            node.pods.add(pod.id)
            node.used_cpu += pod.shape[0]
            node.used_mem += pod.shape[1]
            if not pod.virtual:
                node.real_cpu += pod.shape[0]
                node.real_mem += pod.shape[1]
        node.empty_since = None
        node.pods_changed = self.now
        pod.node = node.id
        if pod.bound_at is None:
            pod.bound_at = self.now
            if not pod.virtual:
                self._waited(pod, self.now)
                if pod.workload in self._rollouts:
                    rollout = self._rollouts[pod.workload]
                    if pod.generation == rollout.generation:
                        self._at(self.now + rollout.spec.ready_after, "rollout_ready", pod.id)

    def _unbind(self, pod: Pod) -> None:
        assert pod.node is not None
        node = self.nodes[pod.node]
        with self._changing(node):
            node.pods.discard(pod.id)
            node.used_cpu -= pod.shape[0]
            node.used_mem -= pod.shape[1]
            if not pod.virtual:
                node.real_cpu -= pod.shape[0]
                node.real_mem -= pod.shape[1]
        if not node.pods:
            node.empty_since = self.now
        node.pods_changed = self.now
        pod.node = None

    def _nominate(self, pod: Pod, node: Node) -> None:
        pod.nominated = node.id
        node.nominated.add(pod.id)
        node.nominated_cpu += pod.shape[0]
        node.nominated_mem += pod.shape[1]

    def _unnominate(self, pod: Pod) -> None:
        if pod.nominated is None:
            return
        node = self.nodes.get(pod.nominated)
        if node is not None and pod.id in node.nominated:
            node.nominated.discard(pod.id)
            node.nominated_cpu -= pod.shape[0]
            node.nominated_mem -= pod.shape[1]
        pod.nominated = None

    def _ready_nodes(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.state == "ready"]

    def _schedule(self, pods: list[Pod]) -> None:
        """Bind what fits; real pods first, each to the fullest Ready node that holds it."""
        if not pods:
            return
        ready = self._ready_nodes()
        unplaced = False
        for pod in sorted(pods, key=lambda p: (p.virtual, p.created, p.id)):
            if pod.id not in self.pending:
                continue
            best = _fullest(ready, pod.shape)
            if best is None and not pod.virtual:
                best = self._preempt_virtual(ready, pod.shape)
                unplaced |= best is not None  # the evicted buffer pods wait now
            if best is None:
                unplaced |= pod.nominated is None
                continue
            self._bind(pod, best)
        if unplaced:
            self._notice()

    def _preempt_virtual(self, ready: list[Node], shape: Shape) -> Node | None:
        """A node where evicting buffer pods makes room for a real pod (they then wait instead)."""
        for node in sorted(ready, key=lambda n: (n.type.cpu_m - n.real_cpu, n.id)):
            if (
                node.real_cpu + shape[0] > node.type.cpu_m
                or node.real_mem + shape[1] > node.type.memory
                or sum(1 for p in node.pods if not self.pods[p].virtual) + 1 > node.type.pods
            ):
                continue
            for pod_id in sorted(node.pods, reverse=True):
                if node.fits(shape):
                    break
                victim = self.pods[pod_id]
                if victim.virtual:
                    self._unbind(victim)
                    self.pending[victim.id] = victim
            return node
        return None

    # -- the trace ------------------------------------------------------------------------------

    def _bootstrap(self) -> None:
        """The steady state before the trace: its first replicas already run on Ready nodes,
        planned by the policy, and the warm pool is full."""
        for at, workload, replicas in self.trace.steps:
            if at == 0:
                self.desired[workload] = replicas
                for _ in range(replicas):
                    self._create(workload, created=0.0)
        self._sync_buffers()
        for node in self._buy(list(self.pending.values()), instant=True):
            self._set_state(node, "ready")
        self._schedule(list(self.pending.values()))
        self.waits.clear()  # the bootstrap's own binding is not waiting
        self._decide_at = None
        self._batch = None
        self._events.clear()
        warm = self.policy.warm
        if warm is not None:
            for type_name in self._fill_types(self._pool_target()):
                self._new_node(type_name, "warm_running" if warm.state == "Running" else _rest(warm.state))

    def _scale(self, workload: str, replicas: int) -> None:
        self.desired[workload] = replicas
        self._remember(workload, replicas)
        current = [p for p in self.pods.values() if p.workload == workload and not p.virtual]
        if replicas > len(current):
            created = [self._create(workload) for _ in range(replicas - len(current))]
            self._schedule(created)
        elif replicas < len(current):
            self._delete_some(current, len(current) - replicas)
            self._schedule(list(self.pending.values()))
        self._sync_buffers()
        self._sample_peak()

    def _delete_some(self, pods: list[Pod], count: int) -> None:
        """Pending pods first, then the newest (the ReplicaSet's order, roughly)."""
        order = sorted(pods, key=lambda p: (p.node is not None, -p.created, -p.id))
        for pod in order[:count]:
            self._delete(pod)

    def _remember(self, workload: str, replicas: int) -> None:
        """The workload's desired replicas over time, for predictive headroom (an hour kept)."""
        history = self._history[workload]
        history.append((self.now, replicas))
        keep = max(HISTORY_S, self.policy.buffer.window_s if self.policy.buffer else 0.0)
        while len(history) > 1 and history[1][0] < self.now - keep:
            history.popleft()

    def _sample_peak(self) -> None:
        """How many pods each workload has now, for scale-down stabilisation."""
        if self.policy.stabilise_s <= 0:
            return
        samples = [
            WorkloadSample(w, n, max(n, self._sampled[w]), {})
            for w, n in self._count.items()
            if n != self._sampled[w]
        ]
        self._sampled = Counter(self._count)
        self._peaks.record(self.now, samples, self.policy.stabilise_s)

    def _stabilised(self, node: Node) -> bool:
        """Whether stabilisation keeps ``node``: each workload's most pods over the window
        (buffers' included) would not all fit on the other Ready and booting nodes, empty."""
        if self.policy.stabilise_s <= 0:
            return False
        peak = Counter(self._count)
        for chunk in self._peaks.retained(self.now, self.policy.stabilise_s):
            peak[chunk.workload] = max(peak[chunk.workload], chunk.level)
        shapes = {w.name: w.shape for w in self.trace.workloads}
        need = sorted(((shapes[w], n) for w, n in peak.items() if n > 0), reverse=True)
        serving = [n for n in self.nodes.values() if n is not node and n.state in SERVING]
        return not _fit_counts(need, serving)

    def _sync_buffers(self) -> None:
        buffer = self.policy.buffer
        if buffer is None:
            return
        for workload in self.desired:
            predicted = buffer.predicted(self._history[workload], self.now)
            want = max(buffer.size(self.desired[workload]), predicted)
            have = [p for p in self.pods.values() if p.workload == workload and p.virtual]
            if want > len(have):
                created = [self._create(workload, virtual=True) for _ in range(want - len(have))]
                self._schedule(created)
            elif want < len(have):
                self._delete_some(have, len(have) - want)

    def _rollout_start(self, spec: Rollout) -> None:
        self.generation[spec.workload] += 1
        state = _RolloutState(spec, self.generation[spec.workload], self.now, self.desired[spec.workload])
        self._rollouts[spec.workload] = state
        surge = max(1, math.ceil(spec.max_surge * state.replicas))
        state.to_create = state.replicas - surge
        self._schedule([self._create(spec.workload) for _ in range(surge)])

    def _rollout_ready(self, pod_id: int) -> None:
        pod = self.pods.get(pod_id)
        if pod is None:
            return
        state = self._rollouts[pod.workload]
        old = [
            p
            for p in self.pods.values()
            if p.workload == pod.workload and not p.virtual and p.generation < state.generation
        ]
        if old:
            self._delete_some(old, 1)
        if state.to_create > 0:
            state.to_create -= 1
            self._schedule([self._create(pod.workload)])
        else:
            self._schedule(list(self.pending.values()))
        if len(old) <= 1 and state.to_create == 0 and not state.done:
            state.done = True
            self.rollout_s.append(self.now - state.started)

    # -- deciding on capacity -------------------------------------------------------------------

    def _notice(self) -> None:
        """A pod found no room: arrange for the policy to look, when it would."""
        policy = self.policy
        if policy.trigger == "reaction":
            if self._decide_at is None:
                self._decide_at = self.now + policy.reaction_s
                self._at(self._decide_at, "decide", None)
        elif policy.trigger == "batch":
            if self._batch is None:
                self._batch = (self.now, self.now)
                self._at(self.now + policy.batch_idle_s, "batch", None)
            else:
                self._batch = (self._batch[0], self.now)
        # "scan" looks on its own clock

    def _batch_check(self) -> None:
        if self._batch is None:
            return
        opened, last = self._batch
        close = min(last + self.policy.batch_idle_s, opened + self.policy.batch_max_s)
        if self.now + 1e-9 >= close:
            self._batch = None
            self._decide()
        else:
            self._at(close, "batch", None)

    def _waiting(self) -> list[Pod]:
        """Pending pods nothing is on its way for."""
        return [p for p in self.pending.values() if p.nominated is None]

    def _decide(self) -> None:
        waiting = self._waiting()
        if not waiting:
            return
        # Pods that fit the spare room of a node on its way wait for it (the planner's step 2).
        in_flight = [n for n in self.nodes.values() if n.state in IN_FLIGHT]
        rest: list[Pod] = []
        for pod in waiting:
            node = next((n for n in in_flight if n.room_for_nominee(pod.shape)), None)
            if node is None:
                rest.append(pod)
            else:
                self._nominate(pod, node)
        self._buy(rest, instant=False)

    def _buy(self, pods: list[Pod], *, instant: bool) -> list[Node]:
        """New nodes for ``pods`` (nominated to them): warm ones first, then cold launches.
        ``instant``: the bootstrap's nodes, made Ready by the caller."""
        if not pods:
            return []
        bought: list[Node] = []
        if not instant and self.policy.warm is not None:
            pods = self._start_warm_for(pods, bought)
        if self.policy.packing == "planner":
            claims = list(self.planner.plan(_counts(pods)))
        else:
            claims = least_waste([p.shape for p in pods], self._groups, self.planner.info)
        by_shape: dict[Shape, list[Pod]] = {}
        for pod in sorted(pods, key=lambda p: (p.virtual, p.created, p.id)):
            by_shape.setdefault(pod.shape, []).append(pod)
        for claim in claims:
            if not claim.instance_types:
                continue
            group = claim.instance_types[0] if self.policy.packing == "node_groups" else None
            if instant:
                node = self._new_node(claim.instance_types[0], "booting", group)
            else:
                node = self._launch_cold(claim.instance_types[0], group)
            bought.append(node)
            for shape, count in claim.pods:
                queue = by_shape.get(shape, [])
                for pod in queue[:count]:
                    self._nominate(pod, node)
                del queue[:count]
        if not instant and self.policy.warm is not None:
            self._refill()
        return bought

    def _start_warm_for(self, pods: list[Pod], bought: list[Node]) -> list[Pod]:
        """Start warm instances for as many of ``pods`` as they hold, nominating the pods to
        them; the pods left need cold launches. As the launcher's ``warmpool.candidates``:
        parked ones first, quickest to Ready first (Running, Hibernated, Stopped), then those
        still filling (they serve when their first boot ends); the cheapest first within each."""
        warm = sorted(
            (n for n in self.nodes.values() if n.state in WARM_ORDER),
            key=lambda n: (WARM_ORDER[n.state], n.type.price, n.id),
        )
        left = sorted(pods, key=lambda p: (p.virtual, p.created, p.id))
        for node in warm:
            if not left:
                break
            taken: list[Pod] = []
            for pod in left:
                if node.room_for_nominee(pod.shape):
                    self._nominate(pod, node)
                    taken.append(pod)
            if taken:
                if node.state == "filling":
                    self._set_state(node, "booting")
                    self.warm_starts += 1
                    self._started(node)
                else:
                    self._start_warm(node)
                bought.append(node)
                chosen = {p.id for p in taken}
                left = [p for p in left if p.id not in chosen]
        real = sum(1 for p in pods if not p.virtual)
        self._hedge(sum(1 for n in bought if n.state == "starting" and self._serves_real(n)), real)
        return left

    def _serves_real(self, node: Node) -> bool:
        return any(not self.pods[p].virtual for p in node.nominated)

    def _hedge(self, started: int, real_pods: int) -> None:
        """Hedged starts: spare parked instances started beside the ``started`` ones that real
        pods wait for (buffer refills are not hedged), when at least the pool's
        ``hedge_min_pods`` real pods wait; pending pods bind to whichever is Ready first, and the
        spare goes back to the pool once empty."""
        warm = self.policy.warm
        if warm is None or warm.hedge <= 1.0 or started == 0 or real_pods < warm.hedge_min_pods:
            return
        parked = sorted(
            (n for n in self.nodes.values() if n.state in WARM_IDLE),
            key=lambda n: (WARM_ORDER[n.state], -n.type.cpu_m, n.type.price, n.id),
        )
        for node in parked[: math.ceil((warm.hedge - 1.0) * started - 1e-9)]:
            self._start_warm(node)

    # -- warm pools -----------------------------------------------------------------------------

    def _pool_count(self) -> int:
        return sum(1 for n in self.nodes.values() if n.state in WARM_ANY)

    def _pool_target(self) -> int:
        warm = self.policy.warm
        if warm is None:
            return 0
        if warm.sizing == "asg":
            desired = sum(1 for n in self.nodes.values() if n.state in {"ready", *IN_FLIGHT})
            return max(warm.size, warm.max_size - desired)
        while self._starts and self._starts[0] < self.now - DEMAND_WINDOW_S:
            self._starts.popleft()
        return max(warm.size, min(warm.max_size, len(self._starts)))

    def _fill_types(self, count: int) -> list[str]:
        """Types for new warm instances: those the policy started lately, the most frequent first
        (several types, chosen by the planner); before any, the cheapest type with at least two
        CPUs, as the launcher's ``warmpool.sizing`` does."""
        if self.policy.packing == "node_groups":
            return [self._groups[0]] * count
        recent = [name for name, _ in Counter(self._recent_types).most_common()]
        if not recent:
            fitting = [t for t in self.planner.info.values() if t.cpu_m >= FALLBACK_CPU_M]
            recent = [min(fitting, key=lambda t: (t.price, t.name)).name] if fitting else []
        return [recent[i % len(recent)] for i in range(count)] if recent else []

    def _refill(self) -> None:
        """Keep the pool at its target: fill by cold launches that join once and then rest
        (their cost counts), or let idle warm instances go beyond it."""
        warm = self.policy.warm
        if warm is None:
            return
        target = self._pool_target()
        count = self._pool_count()
        # As the launcher: with reuse on scale-in, fills keep only the floor; scale-in returns
        # the rest of what demand asks for (``launcher.warmpool.controller``).
        fill_to = min(target, warm.size) if warm.reuse_on_scale_in else target
        if count < fill_to:
            for type_name in self._fill_types(fill_to - count):
                node = self._new_node(type_name, "filling")
                self._at(self.now + self._sample("fill", self.settings.boot.cold), "warmed", node.id)
        elif count > target:
            idle = sorted(
                (n for n in self.nodes.values() if n.state in WARM_IDLE), key=lambda n: (n.since, n.id)
            )
            for node in idle[: count - target]:
                self._set_state(node, "gone")
                del self.nodes[node.id]

    # -- scale-down -----------------------------------------------------------------------------

    def _tick(self) -> None:
        self._sample_peak()
        if self.policy.scale_down == "consolidate":
            self._consolidate()
        else:
            self._cluster_autoscaler_scale_down()
        if self.policy.warm is not None:
            self._refill()
        if self.policy.buffer is not None and self._waiting():
            self._notice()

    def _consolidate(self) -> None:
        """Empty nodes go after ``consolidate_after``; with WhenEmptyOrUnderutilized, once a
        minute one node whose pods fit elsewhere, untouched for as long, goes too."""
        after = self.policy.consolidate_after_s
        for node in self._ready_nodes():
            idle = node.empty_since is not None and self.now - node.empty_since >= after
            if not node.pods and idle and not self._stabilised(node):
                self._remove(node)
        if self.policy.consolidation == "WhenEmpty" or int(self.now) % int(CONSOLIDATE_EVERY_S) != 0:
            return
        ready = self._ready_nodes()
        candidates = sorted(
            (n for n in ready if n.pods and self.now - max(n.since, n.pods_changed) >= after),
            key=lambda n: (len(n.pods), n.type.price, n.id),
        )
        for node in candidates[:3]:
            if self._stabilised(node):
                continue
            if self._move_off(node, [n for n in ready if n is not node]):
                self._remove(node)
                return

    def _cluster_autoscaler_scale_down(self) -> None:
        if self.now - self._last_scale_up < CA_DELAY_AFTER_ADD_S:
            for node in self._ready_nodes():
                node.unneeded_since = None
            return
        ready = self._ready_nodes()
        removed_busy = False
        for node in sorted(ready, key=lambda n: (len(n.pods), n.id)):
            utilisation = max(node.used_cpu / node.type.cpu_m, node.used_mem / node.type.memory)
            others = [n for n in ready if n is not node and n.state == "ready"]
            if utilisation >= CA_UTILISATION or (node.pods and not _fit_all(self._pods_of(node), others)):
                node.unneeded_since = None
                continue
            if node.unneeded_since is None:
                node.unneeded_since = self.now
            if self.now - node.unneeded_since < CA_UNNEEDED_S:
                continue
            if node.pods:
                if removed_busy:
                    continue
                if not self._move_off(node, others):
                    continue
                removed_busy = True
            self._remove(node)

    def _pods_of(self, node: Node) -> list[Pod]:
        return [self.pods[p] for p in sorted(node.pods)]

    def _move_off(self, node: Node, others: list[Node]) -> bool:
        """Move every pod of ``node`` to ``others`` if they all fit; False (nothing moved) if not."""
        pods = self._pods_of(node)
        if not _fit_all(pods, others):
            return False
        for pod in sorted(pods, key=lambda p: (p.virtual, -p.shape[0], p.id)):
            self._unbind(pod)
            target = _fullest(others, pod.shape)
            if target is None:  # cannot happen after _fit_all; keep the pod waiting if it does
                self.pending[pod.id] = pod
                continue
            self._bind(pod, target)
        return True


@dataclass
class _RolloutState:
    spec: Rollout
    generation: int
    started: float
    replicas: int
    to_create: int = 0
    done: bool = False


def _rest(state: str) -> NodeState:
    return "hibernated" if state == "Hibernated" else "stopped"


def _counts(pods: list[Pod]) -> Counts:
    return tuple(sorted(Counter(p.shape for p in pods).items()))


def _fullest(nodes: list[Node], shape: Shape) -> Node | None:
    """The node with the least CPU left that still holds ``shape`` (most allocated)."""
    best: Node | None = None
    for node in nodes:
        if node.state != "ready" or not node.fits(shape):
            continue
        if best is None or (node.type.cpu_m - node.used_cpu, node.id) < (
            best.type.cpu_m - best.used_cpu,
            best.id,
        ):
            best = node
    return best


def _fit_counts(need: list[tuple[Shape, int]], nodes: list[Node]) -> bool:
    """Whether ``need`` (pods per shape, largest first) fits on ``nodes`` were they empty."""
    left = [n for _, n in need]
    for node in nodes:
        cpu, mem, pods = node.type.cpu_m, node.type.memory, node.type.pods
        for i, ((pod_cpu, pod_mem), _) in enumerate(need):
            take = min(left[i], cpu // max(pod_cpu, 1), mem // max(pod_mem, 1), pods)
            if take > 0:
                left[i] -= take
                cpu -= take * pod_cpu
                mem -= take * pod_mem
                pods -= take
        if not any(left):
            return True
    return not any(left)


def _fit_all(pods: list[Pod], nodes: list[Node]) -> bool:
    """Whether ``pods`` all fit on ``nodes``' free room at once (first fit decreasing)."""
    room = [[n.type.cpu_m - n.used_cpu, n.type.memory - n.used_mem, n.type.pods - len(n.pods)] for n in nodes]
    for pod in sorted(pods, key=lambda p: (-p.shape[0], -p.shape[1])):
        for free in room:
            if free[0] >= pod.shape[0] and free[1] >= pod.shape[1] and free[2] >= 1:
                free[0] -= pod.shape[0]
                free[1] -= pod.shape[1]
                free[2] -= 1
                break
        else:
            return False
    return True


def simulate(trace: Trace, policy: Policy, planner: Planner, settings: Settings | None = None) -> Outcome:
    """Replay ``trace`` through ``policy``: the figures of one cell of the table."""
    return Simulation(trace, policy, planner, settings or Settings()).run()
