"""Planner benchmark: planning time and cost against the LP lower bound.

Plans 100, 1,000 and 10,000 pending pods of mixed shapes and mixed requirements (architecture,
zone, instance category, capacity type) for two NodePools over the full catalogue built from
moto's bundled EC2 data (about 1,400 types, us-east-1a..c) with the bundled on-demand prices and
spot at 35% of them. Prints the median planning time of a few runs, the plan's cost per hour,
the LP lower bound and their ratio. Targets (issue 5): under 1 s and a ratio of at most 1.03 at
10,000 pods.

    python bench/planner_bench.py [--runs 3] [--sizes 100,1000,10000]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from launcher.aws.offline import offline_catalogue
from launcher.planner import PoolView, plan
from shared import labels
from shared.api.nodepool import NodePool
from shared.demand import PodDemand
from shared.requirements import Requirements
from shared.resources import Resources

SHAPES = [  # (cpu, memory): a typical mix of web, worker, JVM and batch pods
    ("250m", "256Mi"),
    ("500m", "1Gi"),
    ("1", "1.5Gi"),
    ("1", "4Gi"),
    ("2", "2Gi"),
    ("2", "8Gi"),
    ("4", "16Gi"),
    ("100m", "128Mi"),
]
ZONES_AB = ["us-east-1a", "us-east-1b"]
NODECLASS_REF = {"group": "jitnode.io", "kind": "EC2NodeClass", "name": "default"}
ALTERNATIVES = [
    (Requirements(),),
    (Requirements.from_labels({labels.ARCH: "amd64"}),),
    (Requirements.from_labels({labels.ARCH: "arm64"}),),
    (Requirements.from_api([{"key": labels.ZONE, "operator": "In", "values": ZONES_AB}]),),
    (Requirements.from_api([{"key": labels.INSTANCE_CATEGORY, "operator": "In", "values": ["c", "m"]}]),),
    (Requirements.from_labels({labels.CAPACITY_TYPE: "on-demand"}),),
]


def pools() -> list[PoolView]:
    def pool(name: str, weight: int, requirements: list[dict[str, object]]) -> PoolView:
        nodepool = NodePool.from_api(
            {
                "apiVersion": "jitnode.io/v1",
                "kind": "NodePool",
                "metadata": {"name": name},
                "spec": {
                    "weight": weight,
                    "template": {
                        "spec": {
                            "nodeClassRef": NODECLASS_REF,
                            "requirements": requirements,
                        }
                    },
                },
            }
        )
        return PoolView(nodepool, nodepool.requirements())

    return [
        pool(
            "general",
            10,
            [
                {"key": labels.INSTANCE_CATEGORY, "operator": "In", "values": ["c", "m", "r", "t"]},
                {"key": labels.INSTANCE_GENERATION, "operator": "Gt", "values": ["4"]},
            ],
        ),
        pool("fallback", 1, []),
    ]


def demand(count: int, rng: random.Random) -> dict[str, PodDemand]:
    out = {}
    for i in range(count):
        cpu, memory = rng.choice(SHAPES)
        out[f"pod-{i}"] = PodDemand(
            uid=f"pod-{i}",
            namespace="bench",
            name=f"pod-{i}",
            requests=Resources.parse({"cpu": cpu, "memory": memory}) + Resources(pods=1),
            requirements=rng.choice(ALTERNATIVES),
            tolerations=(),
            priority=0,
            owner_kind="ReplicaSet",
            owner_name=f"rs-{i % 50}",
            first_seen=float(i),
            reason="unschedulable",
        )
    return out


WIDTHS = (7, 16, 7, 10, 13, 11)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sizes", default="100,1000,10000")
    args = parser.parse_args()
    started = time.perf_counter()
    catalogue = offline_catalogue()
    print(f"catalogue: {len(catalogue)} instance types (built in {time.perf_counter() - started:.2f} s)")
    views = pools()
    header = ("pods", "plan s (median)", "claims", "cost $/h", "LP bound $/h", "cost/bound")
    print(" ".join(f"{h:>{w}}" for h, w in zip(header, WIDTHS, strict=True)))
    for size in (int(s) for s in args.sizes.split(",")):
        pods = demand(size, random.Random(size))
        times = []
        result = None
        for _ in range(args.runs):
            t0 = time.perf_counter()
            result = plan(demand=pods, pools=views, types=catalogue)
            times.append(time.perf_counter() - t0)
        assert result is not None
        planned = sum(len(c.pods) for c in result.claims)
        cells = (
            f"{size}",
            f"{statistics.median(times):.3f}",
            f"{len(result.claims)}",
            f"{result.cost_per_hour:.3f}",
            f"{result.lower_bound_per_hour:.3f}",
            f"{result.lp_gap:.4f}",
        )
        line = " ".join(f"{c:>{w}}" for c, w in zip(cells, WIDTHS, strict=True))
        print(line + (f"   ({size - planned} pods not planned)" if planned != size else ""))


if __name__ == "__main__":
    main()
