"""Why a p99 is what it is: how many pods waited, and where in the trace they came from.

Each pod a trace creates comes from one resize (a step). A resize inside one of the diurnal
trace's spikes (its first 15 minutes) is ``spike``. Otherwise the pods that bring the workload
above its highest desired replicas of the last 10 minutes are ``ramp`` (a new high: the trend,
or noise on top of it), and the others ``noise`` (a level the workload already had in the last
10 minutes: capacity consolidation took away too soon). Within one resize the last pods created
are the ones that find no room, so a resize's waiting pods count as ramp first, then noise.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from capsim.engine import Outcome
from capsim.params import Spread
from capsim.planning import TypeInfo
from capsim.traces import DIURNAL_SPIKES, SPIKE_FADE_S, Trace

Cause = Literal["spike", "ramp", "noise", "other"]
CAUSES: Final[tuple[Cause, ...]] = ("spike", "ramp", "noise", "other")
RECENT_S: Final = 600.0


@dataclass(frozen=True)
class Resize:
    """The pods one step of a trace created, split by cause."""

    at: float
    workload: str
    created: int
    ramp: int  # the last ``ramp`` pods created: above the last 10 minutes' high
    spike: bool


Spikes = Sequence[tuple[float, float]]  # (start, height), as traces.DIURNAL_SPIKES


def spikes_of(trace: Trace) -> Spikes:
    """The spikes a trace was built with: the diurnal trace's two, none elsewhere."""
    return DIURNAL_SPIKES if trace.name == "diurnal" else ()


def resizes(trace: Trace, spikes: Spikes | None = None) -> list[Resize]:
    """Every step of ``trace`` that created pods (the steps at time 0 are the starting state)."""
    spikes = spikes_of(trace) if spikes is None else spikes
    desired: dict[str, int] = {}
    recent: dict[str, deque[tuple[float, int]]] = {}
    out = []
    for at, workload, replicas in trace.steps:
        if at > trace.duration:  # the simulation stops there
            break
        before = desired.get(workload, 0)
        window = recent.setdefault(workload, deque())
        while window and window[0][0] < at - RECENT_S:
            window.popleft()
        high = max((n for _, n in window), default=before)
        if at > 0 and replicas > before:
            in_spike = any(start <= at < start + SPIKE_FADE_S for start, _ in spikes)
            ramp = max(0, replicas - max(before, high))
            out.append(Resize(at, workload, replicas - before, ramp, in_spike))
        desired[workload] = replicas
        window.append((at, replicas))
    return out


@dataclass(frozen=True)
class Breakdown:
    """A run's waits against a threshold, by cause."""

    policy: str
    created: int
    over_1s: int
    threshold: float
    over: int  # pods that waited longer than ``threshold``
    by_cause: dict[Cause, int]

    @property
    def allowed(self) -> int:
        """How many pods may wait longer than ``threshold`` for the p99 to be within it (the
        nearest-rank p99 is the ceil(0.99 n)-th shortest wait)."""
        return self.created - math.ceil(0.99 * self.created)


def breakdown(outcome: Outcome, trace: Trace, threshold: float, spikes: Spikes | None = None) -> Breakdown:
    """Count ``outcome``'s waits over 1 s and over ``threshold``, and attribute the latter."""
    by_step: dict[tuple[float, str], Resize] = {(r.at, r.workload): r for r in resizes(trace, spikes)}
    over: Counter[tuple[float, str]] = Counter(
        (w.created, w.workload) for w in outcome.waits if w.seconds > threshold
    )
    causes: Counter[Cause] = Counter()
    for key, count in over.items():
        step = by_step.get(key)
        if step is None:
            causes["other"] += count
        elif step.spike:
            causes["spike"] += count
        else:
            ramp = min(count, step.ramp)
            causes["ramp"] += ramp
            causes["noise"] += count - ramp
    return Breakdown(
        policy=outcome.policy,
        created=len(outcome.waits),
        over_1s=sum(1 for w in outcome.waits if w.seconds > 1.0),
        threshold=threshold,
        over=sum(over.values()),
        by_cause={cause: causes[cause] for cause in CAUSES},
    )


def table(rows: Sequence[Breakdown]) -> str:
    if not rows:
        return ""
    t = rows[0].threshold
    head = f"{'policy':30} {'created':>7} {'>1 s':>5} {f'>{t:.1f} s':>7} {'allowed':>7}  " + " ".join(
        f"{c:>6}" for c in CAUSES
    )
    lines = [head, "-" * len(head)]
    for b in rows:
        lines.append(
            f"{b.policy:30} {b.created:7d} {b.over_1s:5d} {b.over:7d} {b.allowed:7d}  "
            + " ".join(f"{b.by_cause[c]:6d}" for c in CAUSES)
        )
    return "\n".join(lines)


def trace_summary(trace: Trace, threshold_pods: int) -> str:
    """The pods the trace creates by cause, and what serving the spikes at once takes."""
    steps = resizes(trace)
    shapes = {w.name: w.shape for w in trace.workloads}
    spike = [r for r in steps if r.spike]
    ramp = sum(r.ramp for r in steps if not r.spike)
    noise = sum(r.created - r.ramp for r in steps if not r.spike)
    lines = [
        f"pods created: {sum(r.created for r in steps)} "
        f"(spike {sum(r.created for r in spike)}, ramp {ramp}, noise {noise}); "
        f"at most {threshold_pods} may wait past the p99 target"
    ]
    for r in sorted(spike, key=lambda r: -r.created)[:4]:
        cpu = r.created * shapes[r.workload][0] / 1000
        lines.append(f"  largest spike resizes: {_clock(r.at)} {r.workload} +{r.created} pods ({cpu:g} CPU)")
    return "\n".join(lines)


def _clock(t: float) -> str:
    minutes = int(t // 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def within(spread: Spread, seconds: float) -> float:
    """The share of starts drawn from ``spread`` (triangular) that take at most ``seconds``."""
    low, mode, high = spread.low, spread.mode, spread.high
    if seconds <= low:
        return 0.0
    if seconds >= high:
        return 1.0
    if seconds <= mode:
        return (seconds - low) ** 2 / ((high - low) * (mode - low))
    return 1.0 - (high - seconds) ** 2 / ((high - low) * (high - mode))


@dataclass(frozen=True)
class Bound:
    """The least running headroom that serves a trace's spikes within the p99 target, held
    all the time (a policy that cannot see a spike coming holds it whenever one could come)."""

    pods: int  # pods of the spiking workload's shape
    cpu: float
    dollars_per_day: float  # at the cheapest price per such pod in the catalogue
    type_name: str

    def describe(self, base_dollars_per_day: float) -> str:
        share = self.dollars_per_day / base_dollars_per_day if base_dollars_per_day > 0 else math.inf
        return (
            f"least constant running headroom that serves the spikes (all but the allowed pods): "
            f"{self.pods} pods ({self.cpu:g} CPU); held all day at the price per pod of "
            f"{self.type_name}, ${self.dollars_per_day:.2f}/day (+{share:.0%} of karpenter), "
            "before any ramp or noise"
        )


def headroom_bound(
    trace: Trace, allowed: int, types: Mapping[str, TypeInfo], spikes: Spikes | None = None
) -> Bound | None:
    """The least constant headroom H (pods) such that the pods the spikes' resizes create beyond
    H, summed over the spikes, are at most ``allowed`` (every other pod served at once)."""
    in_spikes = [r for r in resizes(trace, spikes) if r.spike]
    if not in_spikes:
        return None
    workload = max(in_spikes, key=lambda r: r.created).workload
    sizes = [r.created for r in in_spikes if r.workload == workload]
    pods = next(h for h in range(max(sizes) + 1) if sum(max(0, n - h) for n in sizes) <= allowed)
    cpu_m, mem = trace.workload(workload).shape

    def per_pod(t: TypeInfo) -> float:
        fit = min(t.cpu_m // cpu_m, t.memory // mem, t.pods)
        return t.price / fit if fit > 0 else math.inf

    cheapest = min(types.values(), key=lambda t: (per_pod(t), t.name))
    return Bound(pods, pods * cpu_m / 1000, pods * per_pod(cheapest) * 24, cheapest.name)
