"""Small-plan benchmark: the planner's cost over the proven optimum, case by case.

At a few dozen pods one badly chosen node is a large share of the bill, and the LP bound is too
loose to tell how far off a plan is, so every case here is solved to optimality by the benchmark
itself, independently of the planner:

- identical pods, 1 to 40 of the seed's ``inflate`` shape (1 CPU, 1.5Gi) on the seed's NodePool
  (``examples/seed`` converted by ``jitnode convert``): an exhaustive dynamic programme over how
  many nodes of each instance type to buy (each holds a whole number of pods), or with a per-node
  cap (spread by hostname);
- mixed shapes and requirements (8 to 12 pods, on the seed's NodePool and on the planner
  benchmark's spot-and-on-demand pool, some with replicas that repel each other), cases with
  NodePool limits, and mixes with zone spread: a set-partitioning MIP solved by HiGHS with no
  time limit, whose columns are every multiset of the pods one node may hold, priced with the
  cheapest type their joint requirements allow (with limits, the cheapest of each capacity);
- zone spread (``maxSkew`` 1 and 2 over the three zones): every count per zone the skew allows,
  each zone's pods pinned there and solved as above; the cheapest wins.

The optimum uses the catalogue and ``Requirements`` only, none of the planner's code. Limits are
counted here with each node's own capacity; the planner counts a claim with the largest type it
lists (as Karpenter does), so with limits the optimum is a bound the planner may not reach. Each
case is planned twice: by packing and merging alone (``exact=None``, the planner before issue 13)
and as the launcher plans (with the exact solver). Prints per case both costs, the optimum, the
ratios and times, then the mean and worst ratio. Targets (issue 13): mean at most 1.005, worst at
most 1.05, 10 seed pods at $0.459/h. Exits 1 when a target is missed.

    python bench/planner_small_bench.py [--budget 0.08]
"""

from __future__ import annotations

import argparse
import itertools
import math
import random
import statistics
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace

import highspy
import numpy as np
import numpy.typing as npt
from planner_bench import SHAPES, pools

from launcher.aws.offline import offline_catalogue
from launcher.model import InstanceType
from launcher.planner import Plan, PoolView, plan
from launcher.planner.exact import ExactSettings
from launcher.planner.lowerbound import silent_solver
from localcluster.demo.seed import load_seed
from shared import labels
from shared.api.nodepool import NodePool
from shared.demand import PodDemand
from shared.requirements import Requirements
from shared.resources import PODS, Resources
from shared.topologyspread import SpreadConstraint

KEYS = ("cpu", "memory", PODS)
SEED_PRICE_10 = 0.459
INFLATE = ("1", "1.5Gi")
APPS = Requirements.from_labels({"intent": "apps"})


@dataclass(frozen=True)
class Case:
    family: str
    name: str
    pool: PoolView
    pods: dict[str, PodDemand]


def seed_pool(
    extra: Sequence[Mapping[str, object]] = (), limits: Mapping[str, str] | None = None
) -> PoolView:
    """The seed's NodePool as the demo applies it, with extra requirements or limits."""
    raw = load_seed("bench").nodepool
    spec = raw["spec"]
    spec["template"]["spec"]["requirements"] = [*spec["template"]["spec"]["requirements"], *extra]
    if limits is not None:
        spec["limits"] = dict(limits)
    nodepool = NodePool.from_api(raw)
    return PoolView(nodepool, nodepool.requirements())


def pod(
    uid: str, cpu: str, memory: str, requirements: Requirements, exclusive: str | None = None
) -> PodDemand:
    return PodDemand(
        uid=uid,
        namespace="bench",
        name=uid,
        requests=Resources.parse({"cpu": cpu, "memory": memory}) + Resources(pods=1),
        requirements=(requirements,),
        tolerations=(),
        priority=0,
        owner_kind=None,
        owner_name=None,
        first_seen=0.0,
        reason="unschedulable",
        exclusive=exclusive,
    )


def inflate(count: int) -> dict[str, PodDemand]:
    return {f"inflate-{i}": pod(f"inflate-{i}", *INFLATE, APPS) for i in range(count)}


def mixed(seed: int, alternatives: Sequence[Requirements], exclusive: int = 0) -> dict[str, PodDemand]:
    """8 to 12 pods of the planner benchmark's shapes; the first ``exclusive`` repel each other."""
    rng = random.Random(seed)
    out = {}
    for i in range(rng.randint(8, 12)):
        cpu, memory = rng.choice(SHAPES)
        key = "web" if i < exclusive else None
        if key is not None:
            cpu, memory = "500m", "1Gi"
        out[f"m{seed}-{i}"] = pod(f"m{seed}-{i}", cpu, memory, rng.choice(alternatives), key)
    return out


def cases() -> list[Case]:
    seed = seed_pool()
    general = pools()[0]
    anything = Requirements()
    on_demand = Requirements.from_labels({labels.CAPACITY_TYPE: "on-demand"})
    amd64 = Requirements.from_labels({labels.ARCH: "amd64"})
    arm64 = Requirements.from_labels({labels.ARCH: "arm64"})
    out = [Case("identical", f"seed x{n}", seed, inflate(n)) for n in range(1, 41)]
    for s in range(1, 7):
        out.append(Case("mixed", f"seed mix {s}", seed, mixed(s, [APPS])))
    for s in range(7, 11):
        out.append(Case("mixed", f"general mix {s}", general, mixed(s, [anything, on_demand, amd64, arm64])))
    out.append(Case("mixed", "seed mix + 3 apart", seed, mixed(11, [APPS], exclusive=3)))
    out.append(Case("mixed", "general mix + 4 apart", general, mixed(12, [anything, on_demand], exclusive=4)))
    c6a = [
        {
            "key": labels.INSTANCE_TYPE,
            "operator": "In",
            "values": ["c6a.xlarge", "c6a.2xlarge", "c6a.4xlarge"],
        }
    ]
    out.append(Case("limits", "c6a x10, cpu 24", seed_pool(c6a, {"cpu": "24"}), inflate(10)))
    out.append(Case("limits", "c6a x10, cpu 20", seed_pool(c6a, {"cpu": "20"}), inflate(10)))
    out.append(Case("limits", "c6a x11, cpu 16", seed_pool(c6a, {"cpu": "16"}), inflate(11)))
    out.append(Case("limits", "seed x11, memory 40Gi", seed_pool(limits={"memory": "40Gi"}), inflate(11)))
    out.append(Case("limits", "seed x26, memory 64Gi", seed_pool(limits={"memory": "64Gi"}), inflate(26)))
    out.append(Case("limits", "seed mix 3, cpu 40", seed_pool(limits={"cpu": "40"}), mixed(3, [APPS])))
    for n in (3, 6, 7, 10, 14, 20):
        out.append(Case("spread", f"seed x{n}, zones skew 1", seed, spread(inflate(n), labels.ZONE, 1)))
    out.append(Case("spread", "seed x10, zones skew 2", seed, spread(inflate(10), labels.ZONE, 2)))
    with_others = {**spread(inflate(6), labels.ZONE, 1), **mixed(5, [APPS])}
    out.append(Case("spread", "seed x6 zones + mix 5", seed, with_others))
    out.append(Case("spread", "seed x5, hosts skew 1", seed, spread(inflate(5), labels.HOSTNAME, 1)))
    out.append(Case("spread", "seed x10, hosts skew 2", seed, spread(inflate(10), labels.HOSTNAME, 2)))
    return out


def spread(pods: Mapping[str, PodDemand], key: str, skew: int) -> dict[str, PodDemand]:
    """``pods`` labelled app=inflate and spread over ``key`` (DoNotSchedule, ``maxSkew`` skew)."""
    selector = Requirements.from_labels({"app": "inflate"})
    constraint = SpreadConstraint(key, skew, True, selector)
    return {uid: replace(p, labels={"app": "inflate"}, spread=(constraint,)) for uid, p in pods.items()}


# The independent optimum ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Offers:
    """Types allowed together, cheapest first: prices, rooms and limit capacities, one row each."""

    prices: npt.NDArray[np.float64]
    rooms: npt.NDArray[np.int64]
    capacities: npt.NDArray[np.int64]


@dataclass(frozen=True)
class _Pod:
    """A pod as the optimum sees it: requirements, requests, and at most how many share a node."""

    requirements: Requirements
    requests: tuple[int, ...]
    key: str | None = None  # at most one pod with this key a node (pod anti-affinity)
    cap: int = 1 << 30  # at most this many of its shape a node (spread by hostname)


def optimum(catalogue: Sequence[InstanceType], case: Case) -> float:
    """The case's optimum. Pods spread by zone are pinned to zones in every way the spread allows
    (every count per zone within ``maxSkew``), and the cheapest way wins."""
    spread: list[PodDemand] = []
    pods: list[_Pod] = []
    for p in case.pods.values():
        requests = tuple(p.requests.amount(k) for k in KEYS)
        by_host = [c for c in p.spread if c.topology_key == labels.HOSTNAME]
        cap = min((c.max_skew for c in by_host), default=1 << 30)
        if any(c.topology_key == labels.ZONE for c in p.spread):
            spread.append(p)
        else:
            pods.append(_Pod(p.requirements[0], requests, p.exclusive, cap))
    if not spread:
        return Optimum(catalogue, case.pool, pods).value()
    skew = min(c.max_skew for c in spread[0].spread if c.topology_key == labels.ZONE)
    reqs = case.pool.requirements.intersect(spread[0].requirements[0])
    zones = sorted(
        {
            o.zone
            for t in catalogue
            if reqs.compatible(Requirements.from_labels(t.labels))
            and spread[0].requests.fits_in(t.allocatable)
            for o in t.offerings_for(reqs)
        }
    )
    best = float("inf")
    for split in itertools.product(range(len(spread) + 1), repeat=len(zones)):
        if sum(split) != len(spread) or max(split) - min(split) > skew:
            continue
        pinned = list(pods)
        placed = iter(spread)
        for zone, count in zip(zones, split, strict=True):
            in_zone = Requirements.from_api([{"key": labels.ZONE, "operator": "In", "values": [zone]}])
            for _ in range(count):
                p = next(placed)
                pinned.append(
                    _Pod(p.requirements[0].intersect(in_zone), tuple(p.requests.amount(k) for k in KEYS))
                )
        best = min(best, Optimum(catalogue, case.pool, pinned).value())
    return best


class Optimum:
    """The cheapest way to buy nodes for some pods of a pool (module docstring), from first
    principles: the catalogue and ``Requirements`` only."""

    def __init__(self, catalogue: Sequence[InstanceType], pool: PoolView, pods: Sequence[_Pod]) -> None:
        self.catalogue = catalogue
        self.pool = pool
        self.limits = (
            {k: pool.pool.limits.amount(k) for k in sorted(pool.pool.limits)} if pool.pool.limits else {}
        )
        self.alternatives = sorted({p.requirements for p in pods}, key=str)
        by_shape: dict[tuple[int, tuple[int, ...], str, int], int] = {}
        for p in pods:
            key = (self.alternatives.index(p.requirements), p.requests, p.key or "", 1 if p.key else p.cap)
            by_shape[key] = by_shape.get(key, 0) + 1
        self.shapes = sorted(by_shape)
        self.counts = [by_shape[s] for s in self.shapes]
        self._offers: dict[frozenset[int], _Offers] = {}

    def offers(self, groups: frozenset[int]) -> _Offers:
        """Every type the pool and these groups' requirements allow together, with its price."""
        found = self._offers.get(groups)
        if found is not None:
            return found
        reqs = self.pool.requirements
        for g in sorted(groups):
            reqs = reqs.intersect(self.alternatives[g])
        rows: list[tuple[float, tuple[int, ...], tuple[int, ...]]] = []
        for t in self.catalogue if reqs.is_satisfiable() else ():
            price = t.cheapest_price(reqs)
            if price is None or not reqs.compatible(Requirements.from_labels(t.labels)):
                continue
            room = t.allocatable - self.pool.overhead
            rows.append(
                (price, tuple(room.amount(k) for k in KEYS), tuple(t.capacity.amount(k) for k in self.limits))
            )
        rows.sort(key=lambda r: r[0])
        found = self._offers[groups] = _Offers(
            np.array([r[0] for r in rows], dtype=np.float64),
            np.array([r[1] for r in rows], dtype=np.int64).reshape(len(rows), len(KEYS)),
            np.array([r[2] for r in rows], dtype=np.int64).reshape(len(rows), len(self.limits)),
        )
        return found

    def value(self) -> float:
        if len(self.shapes) == 1 and not self.limits:
            return self._identical()
        return self._partition()

    def _identical(self) -> float:
        """Identical pods: best[n] = min over types of best[n - pods it holds] + its price."""
        group, requests, _, cap = self.shapes[0]
        offers = self.offers(frozenset({group}))
        holds: dict[int, float] = {}
        for price, room in zip(offers.prices.tolist(), offers.rooms.tolist(), strict=True):
            k = min(cap, *(r // q for r, q in zip(room, requests, strict=True) if q > 0))
            if k > 0:
                holds[k] = min(holds.get(k, price), price)
        best = [0.0] + [float("inf")] * self.counts[0]
        for n in range(1, self.counts[0] + 1):
            best[n] = min(best[max(0, n - k)] + price for k, price in holds.items())
        return best[-1]

    def _contents(self) -> Iterator[tuple[int, ...]]:
        """Every non-empty multiset of the pods a node may hold (at most one pod of a key)."""
        ranges = [range(min(c, s[3]) + 1) for s, c in zip(self.shapes, self.counts, strict=True)]
        for content in itertools.product(*ranges):
            keys = [s[2] for s, n in zip(self.shapes, content, strict=True) if n and s[2]]
            if any(content) and len(keys) == len(set(keys)):
                yield content

    def _partition(self) -> float:
        """min sum price[c] z[c]  s.t.  sum_c content[c] z[c] = counts  (and limits), z integer."""
        columns: list[tuple[tuple[int, ...], float, tuple[int, ...]]] = []
        requests = np.array([s[1] for s in self.shapes], dtype=np.int64)
        for content in self._contents():
            used = np.array(content, dtype=np.int64) @ requests
            groups = frozenset(s[0] for s, n in zip(self.shapes, content, strict=True) if n)
            offers = self.offers(groups)
            holding = np.flatnonzero(np.all(offers.rooms >= used, axis=1))
            if len(holding) == 0:
                continue
            if not self.limits:
                columns.append((content, float(offers.prices[holding[0]]), ()))
                continue
            cheapest: dict[tuple[int, ...], float] = {}
            for i in holding.tolist():  # per capacity, the cheapest type (prices ascend)
                cheapest.setdefault(tuple(offers.capacities[i].tolist()), float(offers.prices[i]))
            columns.extend((content, price, capacity) for capacity, price in cheapest.items())
        highs = silent_solver()
        highs.setOptionValue("mip_rel_gap", 0.0)
        highs.setOptionValue("mip_abs_gap", 1e-9)
        lp = highspy.HighsLp()
        lp.num_col_ = len(columns)
        lp.num_row_ = len(self.shapes) + len(self.limits)
        lp.col_cost_ = np.array([price for _, price, _ in columns])
        lp.col_lower_ = np.zeros(len(columns))
        lp.col_upper_ = np.full(len(columns), highspy.kHighsInf)
        lp.row_lower_ = np.array([*map(float, self.counts), *([-highspy.kHighsInf] * len(self.limits))])
        lp.row_upper_ = np.array([*map(float, self.counts), *map(float, self.limits.values())])
        starts, index, values = [0], [], []
        for content, _, capacity in columns:
            for i, n in enumerate(content):
                if n:
                    index.append(i)
                    values.append(float(n))
            for r, amount in enumerate(capacity):
                index.append(len(self.shapes) + r)
                values.append(float(amount))
            starts.append(len(index))
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = np.array(starts, dtype=np.int32)
        lp.a_matrix_.index_ = np.array(index, dtype=np.int32)
        lp.a_matrix_.value_ = np.array(values)
        lp.integrality_ = [highspy.HighsVarType.kInteger] * len(columns)
        highs.passModel(lp)
        highs.run()
        if highs.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            return float("inf")
        return float(highs.getInfo().objective_function_value)


# The table ---------------------------------------------------------------------------------------

WIDTHS = (10, 24, 5, 9, 9, 9, 9, 9, 9, 7, 7)


def row(cells: Sequence[str]) -> str:
    return " ".join(
        f"{c:>{w}}" if i else f"{c:<{w}}" for i, (c, w) in enumerate(zip(cells, WIDTHS, strict=True))
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--budget", type=float, default=ExactSettings().seconds, help="exact solver seconds a pool"
    )
    args = parser.parse_args()
    catalogue = offline_catalogue()
    settings = ExactSettings(seconds=args.budget)
    print(f"catalogue: {len(catalogue)} instance types; exact budget {args.budget * 1000:.0f} ms a pool")
    print("heuristic: packing and merging alone (exact=None); plan: with the exact solver (the default)")
    header = ("family", "case", "pods", "heur $/h", "plan $/h", "opt $/h", "heur/opt", "plan/opt", "exact")
    print(row((*header, "heur ms", "plan ms")))
    ratios: dict[str, list[float]] = {}
    alone_ratios: dict[str, list[float]] = {}
    seed_10 = float("nan")
    times: list[float] = []
    extra: list[float] = []
    for case in cases():
        best = optimum(catalogue, case)
        started = time.perf_counter()
        alone = plan(demand=case.pods, pools=[case.pool], types=catalogue, exact=None)
        middle = time.perf_counter()
        result = plan(demand=case.pods, pools=[case.pool], types=catalogue, exact=settings)
        ended = time.perf_counter()
        times.append(ended - middle)
        extra.append((ended - middle) - (middle - started))
        ratio = _ratio(result.cost_per_hour, best, result, case)
        alone_ratio = _ratio(alone.cost_per_hour, best, alone, case)
        alone_ratios.setdefault(case.family, []).append(alone_ratio)
        ratios.setdefault(case.family, []).append(ratio)
        if case.name == "seed x10":
            seed_10 = result.cost_per_hour
        planned = sum(len(c.pods) for c in result.claims)
        note = "" if planned == len(case.pods) else f"   ({len(case.pods) - planned} pods not planned)"
        cells = (
            case.family,
            case.name,
            str(len(case.pods)),
            f"{alone.cost_per_hour:.4f}",
            f"{result.cost_per_hour:.4f}",
            f"{best:.4f}",
            f"{alone_ratio:.4f}" if math.isfinite(alone_ratio) else "unplanned",
            f"{ratio:.4f}",
            ",".join(result.exact.values()) or "-",
            f"{(middle - started) * 1000:.0f}",
            f"{times[-1] * 1000:.0f}",
        )
        print(row(cells) + note, flush=True)
    every = [r for rs in ratios.values() for r in rs]
    print()
    for family, rs in ratios.items():
        print(f"{family:<10} {len(rs):>3} cases: plan/opt mean {statistics.fmean(rs):.4f}, ", end="")
        print(f"worst {max(rs):.4f}; ", end="")
        print(f"packing alone {_summary(alone_ratios[family])}")
    mean, worst = statistics.fmean(every), max(every)
    print(f"{'all':<10} {len(every):>3} cases: plan/opt mean {mean:.4f} (target <= 1.005), ", end="")
    print(f"worst {worst:.4f} (target <= 1.05); ", end="")
    print(f"packing alone {_summary([r for rs in alone_ratios.values() for r in rs])}")
    print(f"seed x10: ${seed_10:.3f}/h (target ${SEED_PRICE_10}/h)")
    print(
        f"plan time: median {statistics.median(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms; "
        f"the exact solver's share: median {statistics.median(extra) * 1000:.0f} ms, "
        f"max {max(extra) * 1000:.0f} ms"
    )
    ok = mean <= 1.005 and worst <= 1.05 and abs(seed_10 - SEED_PRICE_10) < 1e-9
    return 0 if ok else 1


def _summary(ratios: Sequence[float]) -> str:
    """Mean and worst of the finite ratios, and how many plans left pods unplanned."""
    served = [r for r in ratios if math.isfinite(r)]
    text = f"mean {statistics.fmean(served):.4f}, worst {max(served):.4f}" if served else "-"
    unplanned = len(ratios) - len(served)
    return text + (f" (left pods unplanned in {unplanned})" if unplanned else "")


def _ratio(cost: float, best: float, result: Plan, case: Case) -> float:
    """Cost over the optimum; infinite when some pod was not planned."""
    planned = sum(len(c.pods) for c in result.claims)
    return cost / best if planned == len(case.pods) else float("inf")


if __name__ == "__main__":
    sys.exit(main())
