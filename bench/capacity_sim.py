"""Time to capacity: pod arrival traces through provisioning policies, on simulated time.

Replays the seed's burst (0 to 10 and 0 to 100 replicas), a diurnal day, spiky batch jobs and a
rollout surge through jitnode (cold, with a CapacityBuffer, with a warm pool Stopped, Hibernated
or Running), a Karpenter-like policy, a Cluster-Autoscaler-like policy and an EKS managed node
group's warm pool, with jitnode's real planner buying the nodes (see ``bench/capsim``). Prints one
table (pending p50, p99 and max; $ per day of instance-hours plus EBS; idle vCPU-hours per day),
issue 14's target on the diurnal trace, then sweeps of the boot times and of the warm pool's
floor. Everything is deterministic for a seed; docs/time-to-capacity.md reads the figures.

    python bench/capacity_sim.py [--seed 14] [--traces burst-10,diurnal] [--no-sweep]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

from capsim import policies
from capsim.engine import Outcome, simulate
from capsim.params import BootTimes, Settings, Spread
from capsim.planning import Planner
from capsim.report import table as format_table
from capsim.report import verdict
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


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--traces", default=",".join(TRACES))
    parser.add_argument("--no-sweep", action="store_true")
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
