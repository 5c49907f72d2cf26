"""The figures as text: the main table, the issue's target on the diurnal trace, the sweeps."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from capsim.engine import Outcome

COLUMNS = (
    ("trace", 9, "<"),
    ("policy", 29, "<"),
    ("p50 s", 6, ">"),
    ("p99 s", 6, ">"),
    ("max s", 6, ">"),
    ("waited", 6, ">"),
    ("$/day", 8, ">"),
    ("EBS $/d", 7, ">"),
    ("idle vCPU-h/d", 13, ">"),
    ("cold", 5, ">"),
    ("warm", 5, ">"),
)
P99_RATIO = 1 / 3  # issue 14: best warm option's p99 at most a third of the Karpenter-like one's
COST_RATIO = 1.10  # ... for at most 10% more


def _line(cells: Sequence[str]) -> str:
    return " ".join(f"{c:{a}{w}}" for c, (_, w, a) in zip(cells, COLUMNS, strict=True)).rstrip()


def table(outcomes: Sequence[Outcome]) -> str:
    """One row per trace and policy: pending p50/p99/max, the share of pods that waited over a
    second, $ per day (instance-hours + EBS, the EBS part beside it), idle vCPU-hours per day,
    cold launches and warm starts in the run."""
    rows = [_line([h for h, _, _ in COLUMNS]), "-" * len(_line([h for h, _, _ in COLUMNS]))]
    previous = None
    for o in outcomes:
        if previous is not None and o.trace != previous:
            rows.append("")
        previous = o.trace
        rows.append(
            _line(
                [
                    o.trace,
                    o.policy,
                    f"{o.percentile(50):.1f}",
                    f"{o.percentile(99):.1f}",
                    f"{(o.pending_s[-1] if o.pending_s else 0.0):.1f}",
                    f"{o.waited_share:.0%}",
                    f"{o.dollars_per_day:.2f}",
                    f"{o.ebs_cost * o.per_day:.2f}",
                    f"{o.idle_vcpu_hours_per_day:.1f}",
                    str(o.cold_launches),
                    str(o.warm_starts),
                ]
            )
        )
    return "\n".join(rows)


@dataclass(frozen=True)
class Verdict:
    """The issue's target: the best warm option against the Karpenter-like policy."""

    best: Outcome | None  # the warm option with the lowest p99 within the cost bound, if any
    fastest: Outcome  # the warm option with the lowest p99 at any cost
    karpenter: Outcome

    @property
    def met(self) -> bool:
        return self.best is not None and self.p99_ratio(self.best) <= P99_RATIO

    def p99_ratio(self, o: Outcome) -> float:
        base = self.karpenter.percentile(99)
        return o.percentile(99) / base if base > 0 else float("inf")

    def cost_ratio(self, o: Outcome) -> float:
        return o.cost / self.karpenter.cost if self.karpenter.cost > 0 else float("inf")

    def describe(self) -> str:
        def one(o: Outcome) -> str:
            return (
                f"{o.policy}: p99 {o.percentile(99):.1f} s = {self.p99_ratio(o):.2f} x, "
                f"${o.dollars_per_day:.2f}/day = {self.cost_ratio(o):.3f} x"
            )

        k = self.karpenter
        head = f"karpenter p99 {k.percentile(99):.1f} s, ${k.dollars_per_day:.2f}/day"
        best = one(self.best) if self.best is not None else "no warm option within +10% cost"
        status = "MET" if self.met else "NOT MET"
        return f"{head}; best within +10%: {best}; fastest: {one(self.fastest)} -> target {status}"


def verdict(outcomes: Sequence[Outcome], karpenter: str, warm_options: Sequence[str]) -> Verdict:
    by_policy = {o.policy: o for o in outcomes}
    base = by_policy[karpenter]
    warm = [by_policy[name] for name in warm_options if name in by_policy]
    affordable = [o for o in warm if base.cost <= 0 or o.cost / base.cost <= COST_RATIO]
    best = min(affordable, key=lambda o: (o.percentile(99), o.cost), default=None)
    fastest = min(warm, key=lambda o: (o.percentile(99), o.cost))
    return Verdict(best, fastest, base)
