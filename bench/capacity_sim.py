"""Time to capacity: pod arrival traces through provisioning policies, on simulated time.

Replays the seed's burst (0 to 10 and 0 to 100 replicas), a diurnal day, spiky batch jobs and a
rollout surge through jitnode (cold, with a CapacityBuffer, with a warm pool Stopped, Hibernated
or Running, with scale-down stabilisation, predictive headroom and hedged warm starts), a
Karpenter-like policy, a Cluster-Autoscaler-like policy and an EKS managed node
group's warm pool, with jitnode's real planner buying the nodes (see ``bench/capsim``). Prints one
table (pending p50, p99 and max; $ per day of instance-hours plus EBS; idle vCPU-hours per day),
issue 14's target on the diurnal trace, then sweeps of the boot times and of the warm pool's
floor. ``--explain`` adds, for the diurnal trace, how many pods waited past the target and why
(spike, ramp, noise), the least headroom the spikes need, and the best p99 found per cost.
Everything is deterministic for a seed; docs/time-to-capacity.md reads the figures.

    python bench/capacity_sim.py [--seed 14] [--traces burst-10,diurnal] [--no-sweep] [--explain[-wide]]
"""

from __future__ import annotations

import argparse
import itertools
import time
from dataclasses import replace

from capsim import explain, policies
from capsim.engine import Outcome, simulate
from capsim.params import BootTimes, Settings, Spread
from capsim.planning import Planner
from capsim.report import COST_RATIO, P99_RATIO, verdict
from capsim.report import table as format_table
from capsim.traces import TRACES, Trace

DEFAULT = BootTimes()
WARM_X2 = replace(
    DEFAULT,
    from_stopped=DEFAULT.from_stopped.scaled(2),
    from_hibernated=DEFAULT.from_hibernated.scaled(2),
    from_running=DEFAULT.from_running.scaled(2),
)
WARM_HALF = replace(
    DEFAULT,
    from_stopped=DEFAULT.from_stopped.scaled(0.5),
    from_hibernated=DEFAULT.from_hibernated.scaled(0.5),
    from_running=DEFAULT.from_running.scaled(0.5),
)
# (label, boot times, consolidation policy of jitnode and karpenter)
SCENARIOS: tuple[tuple[str, BootTimes, policies.Consolidation], ...] = (
    ("published (default)", DEFAULT, "WhenEmptyOrUnderutilized"),
    ("fast image, cold 15/20/30", DEFAULT.with_cold(Spread(15, 20, 30)), "WhenEmptyOrUnderutilized"),
    ("slow image, cold 45/60/90", DEFAULT.with_cold(Spread(45, 60, 90)), "WhenEmptyOrUnderutilized"),
    ("cold 90/110/150 (#277)", DEFAULT.with_cold(Spread(90, 110, 150)), "WhenEmptyOrUnderutilized"),
    ("warm starts x2", WARM_X2, "WhenEmptyOrUnderutilized"),
    ("warm starts x0.5", WARM_HALF, "WhenEmptyOrUnderutilized"),
    ("published, WhenEmpty (seed)", DEFAULT, "WhenEmpty"),
)
POOL_FLOORS = (2, 5, 10, 20)
BUFFER_PERCENTAGES = (10.0, 20.0, 30.0, 40.0)
WARM_NAMES = tuple(p.name for p in policies.WARM_OPTIONS)


def run_table(traces: list[Trace], planner: Planner, settings: Settings) -> list[Outcome]:
    return [simulate(trace, policy, planner, settings) for trace in traces for policy in policies.POLICIES]


def boot_sweep(trace: Trace, planner: Planner, seed: int) -> str:
    """How the verdict on ``trace`` moves with the boot-time distributions (and scale-down)."""
    chosen = (policies.KARPENTER, *policies.WARM_OPTIONS)
    short = [name.removeprefix("jitnode-") for name in WARM_NAMES]
    head = f"{'scenario':28} {'karpenter':>9}  " + "  ".join(f"{name:>14}" for name in short) + "  target"
    rows = [
        head,
        f"{'':28} {'p99 s':>9}  " + "  ".join(f"{'p99 s  cost x':>14}" for _ in short),
        "-" * len(head),
    ]
    for label, boot, consolidation in SCENARIOS:
        settings = Settings(boot=boot, seed=seed)
        runs = [
            replace(p, consolidation=consolidation) if p.scale_down == "consolidate" else p for p in chosen
        ]
        outcomes = [simulate(trace, policy, planner, settings) for policy in runs]
        v = verdict(outcomes, policies.KARPENTER.name, WARM_NAMES)
        by = {o.policy: o for o in outcomes}
        cells = [f"{by[n].percentile(99):5.1f} {v.cost_ratio(by[n]):6.3f}" for n in WARM_NAMES]
        rows.append(
            f"{label:28} {v.karpenter.percentile(99):9.1f}  "
            + "  ".join(f"{c:>14}" for c in cells)
            + f"  {'MET' if v.met else 'not met'}"
        )
    return "\n".join(rows)


def floor_sweep(traces: list[Trace], planner: Planner, settings: Settings) -> str:
    """The warm pool's floor (``size``; maxSize 20): what a bigger idle pool buys."""
    rows = [f"{'trace':9} {'policy':24} {'size':>4} {'p99 s':>6} {'$/day':>8} {'vs karpenter':>12}"]
    for trace in traces:
        base = simulate(trace, policies.KARPENTER, planner, settings)
        for policy in (policies.JITNODE_WARM_STOPPED, policies.JITNODE_WARM_HIBERNATED):
            for floor in POOL_FLOORS:
                assert policy.warm is not None
                variant = replace(policy, warm=replace(policy.warm, size=floor))
                o = simulate(trace, variant, planner, settings)
                rows.append(
                    f"{trace.name:9} {policy.name:24} {floor:4d} {o.percentile(99):6.1f} "
                    f"{o.dollars_per_day:8.2f} {o.cost / base.cost:7.3f}x"
                )
    return "\n".join(rows)


def buffer_sweep(trace: Trace, planner: Planner, settings: Settings) -> str:
    """What headroom it takes to meet the target: the buffer's percentage, alone and with a
    Stopped pool refilling it."""
    base = simulate(trace, policies.KARPENTER, planner, settings)
    rows = [f"{'trace':9} {'policy':24} {'buffer':>6} {'p99 s':>6} {'waited':>6} {'$/day':>8} {'vs karp':>8}"]
    for policy in (policies.JITNODE_BUFFER, policies.JITNODE_BUFFER_WARM):
        for percentage in BUFFER_PERCENTAGES:
            variant = replace(policy, buffer=policies.Buffer(percentage=percentage))
            o = simulate(trace, variant, planner, settings)
            rows.append(
                f"{trace.name:9} {policy.name:24} {percentage:5.0f}% {o.percentile(99):6.1f} "
                f"{o.waited_share:6.1%} {o.dollars_per_day:8.2f} {o.cost / base.cost:7.3f}x"
            )
    return "\n".join(rows)


# The trade-off search: each idea alone and combined (stabilisation window, headroom, warm pool),
# the cheapest configuration for each p99 kept. ``--explain-wide`` searches 750 (~10 min).
Space = tuple[
    tuple[float, ...],
    tuple[tuple[str, policies.Buffer | None], ...],
    tuple[tuple[str, policies.WarmPool | None], ...],
]
FRONTIER: Space = (
    (0.0, policies.STABILISE_S),
    (("-", None), ("predictive", policies.PREDICTIVE), ("10%", policies.Buffer())),
    (
        ("-", None),
        ("stopped 2/20", policies.WarmPool("Stopped")),
        ("stopped 10/20", policies.WarmPool("Stopped", size=10)),
        ("stopped 20/40 x2", policies.WarmPool("Stopped", size=20, max_size=40, hedge=2.0)),
        ("hibernated 10/40 x3", policies.WarmPool("Hibernated", size=10, max_size=40, hedge=3.0)),
        ("hibernated 20/60 x3", policies.WarmPool("Hibernated", size=20, max_size=60, hedge=3.0)),
        ("hibernated 30/80 x5", policies.WarmPool("Hibernated", size=30, max_size=80, hedge=5.0)),
    ),
)
WIDE: Space = (
    (0.0, 60.0, 120.0, 300.0, 600.0),
    (
        ("-", None),
        ("predictive 60 s", replace(policies.PREDICTIVE, lead_s=60.0)),
        ("predictive 120 s", policies.PREDICTIVE),
    ),
    (
        ("-", None),
        *(
            (f"stopped {size}/{most} x{hedge:g}", policies.WarmPool("Stopped", size, most, hedge=hedge))
            for size, most in ((10, 20), (20, 40), (40, 80))
            for hedge in (1.0, 2.0, 3.0)
        ),
        *(
            (
                f"hibernated {size}/{most} x{hedge:g}" + (f" >={least} pods" if least else ""),
                policies.WarmPool("Hibernated", size, most, hedge=hedge, hedge_min_pods=least),
            )
            for size, most in ((10, 40), (20, 60), (30, 80), (40, 100))
            for hedge in (1.0, 3.0, 5.0, 8.0, 12.0)
            for least in (0, 10)
        ),
    ),
)


def frontier(trace: Trace, planner: Planner, settings: Settings, karpenter: Outcome, space: Space) -> str:
    """Every configuration of ``space`` on ``trace``: the cheapest for each p99, the best p99
    within the cost bound, and the cheapest that reaches the p99 bound."""
    threshold = karpenter.percentile(99) * P99_RATIO
    tried = []
    windows, buffers, pools = space
    for stabilise, (buffer_name, buffer), (pool_name, pool) in itertools.product(windows, buffers, pools):
        policy = replace(
            policies.JITNODE_COLD,
            name=f"{stabilise:.0f} s / {buffer_name} / {pool_name}",
            stabilise_s=stabilise,
            buffer=buffer,
            warm=pool,
        )
        o = simulate(trace, policy, planner, settings)
        tried.append((o.cost / karpenter.cost, o.percentile(99), policy.name))
    tried.sort()

    def line(cost: float, p99: float, name: str) -> str:
        mark = "  target" if p99 <= threshold and cost <= COST_RATIO else ""
        return f"{name:54} {p99:6.1f} {p99 / karpenter.percentile(99):6.2f} {cost:6.3f}{mark}"

    out = [
        f"trade-off over {len(tried)} configurations: the cheapest for each p99",
        f"{'stabilise / headroom / warm pool (size/max x hedge)':54} {'p99 s':>6} {'x karp':>6} "
        f"{'cost x':>6}",
    ]
    best = float("inf")
    for cost, p99, name in tried:
        if p99 < best:
            best = p99
            out.append(line(cost, p99, name))
    affordable = [t for t in tried if t[0] <= COST_RATIO]
    if affordable:
        out.append("best p99 within the cost bound: " + line(*min(affordable, key=lambda t: (t[1], t[0]))))
    fast = [t for t in tried if t[1] <= threshold]
    out.append("cheapest within the p99 bound:  " + (line(*fast[0]) if fast else "none"))
    return "\n".join(out)


def explain_report(
    day: list[Outcome], trace: Trace, planner: Planner, settings: Settings, space: Space = FRONTIER
) -> str:
    """Where the target is missed on ``trace``: waits past a third of Karpenter's p99 per policy
    and by cause, the headroom the spikes alone need, and the best p99 found for each cost."""
    karpenter = next(o for o in day if o.policy == policies.KARPENTER.name)
    threshold = karpenter.percentile(99) * P99_RATIO
    rows = [explain.breakdown(o, trace, threshold) for o in day]
    allowed = rows[0].allowed
    out = [
        f"target: p99 <= {threshold:.1f} s (a third of karpenter's {karpenter.percentile(99):.1f} s)",
        explain.trace_summary(trace, allowed),
        "",
        explain.table(rows),
        "",
        "starts within the target (after jitnode's 0.4 s reaction): "
        + ", ".join(
            f"{kind} {explain.within(getattr(settings.boot, kind), threshold - 0.4):.1%}"
            for kind in ("cold", "from_stopped", "from_hibernated", "from_running")
        ),
    ]
    bound = explain.headroom_bound(trace, allowed, planner.info)
    if bound is not None:
        out.append(bound.describe(karpenter.dollars_per_day))
    out += ["", frontier(trace, planner, settings, karpenter, space)]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--traces", default=",".join(TRACES))
    parser.add_argument("--no-sweep", action="store_true")
    parser.add_argument("--explain", action="store_true", help="why the diurnal target is met or not")
    parser.add_argument("--explain-wide", action="store_true", help="--explain with a wider search (~10 min)")
    args = parser.parse_args()
    started = time.perf_counter()
    planner = Planner()
    settings = Settings(seed=args.seed)
    traces = [TRACES[name](args.seed) for name in args.traces.split(",")]
    print(f"catalogue: {len(planner.types)} instance types the seed's NodePool allows")
    print(
        "boot times (low/mode/high): "
        + ", ".join(
            f"{k} {getattr(settings.boot, k)}"
            for k in ("cold", "from_stopped", "from_hibernated", "from_running")
        )
    )
    print()
    outcomes = run_table(traces, planner, settings)
    print(format_table(outcomes))
    for name in ("diurnal",):
        day = [o for o in outcomes if o.trace == name]
        if day:
            print()
            print(
                f"issue 14 target on {name}: " + verdict(day, policies.KARPENTER.name, WARM_NAMES).describe()
            )
            if args.explain or args.explain_wide:
                trace = next(t for t in traces if t.name == name)
                space = WIDE if args.explain_wide else FRONTIER
                print()
                print(explain_report(day, trace, planner, settings, space))
    if not args.no_sweep:
        diurnal = next((t for t in traces if t.name == "diurnal"), TRACES["diurnal"](args.seed))
        print()
        print("sweep: boot times on the diurnal trace (p99 and cost relative to karpenter)")
        print(boot_sweep(diurnal, planner, args.seed))
        print()
        print("sweep: warm pool floor (size; maxSize 20)")
        burst = TRACES["burst-100"](args.seed)
        print(floor_sweep([diurnal, burst], planner, settings))
        print()
        print("sweep: CapacityBuffer percentage (at least 2 replicas)")
        print(buffer_sweep(diurnal, planner, settings))
    print()
    print(f"{planner.calls} planner calls; {time.perf_counter() - started:.1f} s in all")


if __name__ == "__main__":
    main()
