"""Placement under two scheduler profiles: (a) extender filter + prioritize, (b) filter only +
NodeResourcesFit MostAllocated + jitnode's taints (issue 11, item 3).

Each scenario runs once per profile on a fresh local API server, with jitnode's real extender
and the local kube-scheduler (which scores as kube-scheduler does, see
``localcluster/scheduler/scoring.py``). Profile (b) is read from the shipped
``manifests/scheduler/config.yaml``; (a) is the profile shipped before it (prioritize, weight 5,
default LeastAllocated). Nodes that expire soon carry what each profile reads: the extender's
``jitnode.io/expires-at`` annotation for (a) (generous to (a): no launcher code writes it), the
``jitnode.io/disruption-candidate:PreferNoSchedule`` taint for (b). Printed per scenario: nodes
holding pods, empty nodes, the hourly cost of the nodes holding pods, pods put on nodes being
disrupted or expiring, and the share of pods placed on the same node by both profiles.

    python bench/scheduler_profiles.py [--fit-weight N]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import random
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kubernetes_asyncio import client  # noqa: E402

from extender import keys  # noqa: E402
from extender.config import ExtenderConfig, PredictionConfig, ServerConfig, StreamConfig  # noqa: E402
from extender.service import ExtenderService  # noqa: E402
from localcluster.apiserver.testing import running_apiserver  # noqa: E402
from localcluster.scheduler import Scheduler, SchedulerConfig, load_scheduler_config  # noqa: E402
from localcluster.scheduler.config import NODE_RESOURCES_FIT  # noqa: E402
from localcluster.scheduler.testing import node, pod, wait_for  # noqa: E402
from shared import labels  # noqa: E402
from shared.logs import configure_logging  # noqa: E402

SHIPPED = REPO / "manifests" / "scheduler" / "config.yaml"
# m5 on-demand us-east-1, $/h, by vCPU.
PRICES = {2: 0.096, 4: 0.192, 8: 0.384, 16: 0.768}


@dataclass(frozen=True)
class NodeSpec:
    name: str
    cpu: int
    used_cpu_m: int = 0  # pre-bound load (one pod), 1 GiB of memory per vCPU used
    disrupted: bool = False
    expiring: bool = False

    @property
    def price(self) -> float:
        return PRICES[self.cpu]


@dataclass(frozen=True)
class PodSpec:
    name: str
    cpu_m: int
    memory_mi: int


@dataclass(frozen=True)
class Scenario:
    name: str
    nodes: tuple[NodeSpec, ...]
    pods: tuple[PodSpec, ...]


@dataclass
class Outcome:
    placements: dict[str, str] = field(default_factory=dict)


def scenarios(rng: random.Random) -> list[Scenario]:
    inflate = tuple(PodSpec(f"inflate-{i}", 1000, 1536) for i in range(10))
    # The seed walkthrough: the launcher brought up capacity for a burst of `inflate` replicas.
    seed = Scenario(
        "seed inflate (10 x 1 cpu onto fresh 2/4/8/16-cpu nodes)",
        (NodeSpec("n2", 2), NodeSpec("n4", 4), NodeSpec("n8", 8), NodeSpec("n16", 16)),
        inflate,
    )
    # After a scale-down: nodes part-used, one empty and consolidatable; new small pods arrive.
    consolidation = Scenario(
        "consolidation (8 x 250m onto 4-cpu nodes used 3/2/1/0 cpu)",
        (
            NodeSpec("busy", 4, 3000),
            NodeSpec("half", 4, 2000),
            NodeSpec("light", 4, 1000),
            NodeSpec("empty", 4, 0),
        ),
        tuple(PodSpec(f"web-{i}", 250, 256) for i in range(8)),
    )
    # A node being drained, one expiring soon, two ordinary ones with room.
    disruption = Scenario(
        "disruption (drained, expiring and two ordinary 8-cpu nodes; 6 x 500m)",
        (
            NodeSpec("draining", 8, 1000, disrupted=True),
            NodeSpec("expiring", 8, 4000, expiring=True),
            NodeSpec("ok-a", 8, 2000),
            NodeSpec("ok-b", 8, 1000),
        ),
        tuple(PodSpec(f"api-{i}", 500, 512) for i in range(6)),
    )
    sizes = (2, 4, 8, 16)
    mixed_nodes = tuple(
        NodeSpec(f"m{i:02d}", (cpu := rng.choice(sizes)), rng.choice((0, rng.randrange(250, cpu * 500, 250))))
        for i in range(24)
    )
    mixed_pods = tuple(
        PodSpec(f"job-{i:03d}", rng.choice((100, 250, 500, 1000)), rng.choice((128, 256, 512, 1024, 2048)))
        for i in range(120)
    )
    mixed = Scenario("mixed (24 random nodes, about half empty, 120 random pods)", mixed_nodes, mixed_pods)
    return [seed, consolidation, disruption, mixed]


def profile_a() -> SchedulerConfig:
    """The profile shipped before issue 11: filter + prioritize (weight 5), in-tree defaults."""
    return load_scheduler_config(
        "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n"
        "profiles:\n- schedulerName: default-scheduler\n"
        "extenders:\n- urlPrefix: http://127.0.0.1:1/jitnode\n  filterVerb: filter\n"
        "  prioritizeVerb: prioritize\n  weight: 5\n  nodeCacheCapable: true\n  ignorable: true\n"
        "  httpTimeout: 5s\n"
    )


def profile_b(fit_weight: int | None) -> SchedulerConfig:
    """The shipped profile (optionally another NodeResourcesFit weight)."""
    shipped = load_scheduler_config(SHIPPED)
    (profile,) = shipped.profiles
    scoring = profile.scoring
    if fit_weight is not None:
        scoring = replace(scoring, weights={**scoring.weights, NODE_RESOURCES_FIT: fit_weight})
    return replace(shipped, profiles=(replace(profile, scoring=scoring),))


def with_extender_at(config: SchedulerConfig, url: str) -> SchedulerConfig:
    extenders = tuple(
        replace(e, url_prefix=url, enable_https=False, tls=None, http_timeout=5.0) for e in config.extenders
    )
    return replace(config, extenders=extenders)


def node_body(spec: NodeSpec, *, profile: str, now: datetime) -> dict[str, Any]:
    taints: list[dict[str, str]] = []
    if spec.disrupted:
        taints.append({"key": labels.DISRUPTED_TAINT, "effect": "NoSchedule"})
    if spec.expiring and profile == "b":
        taints.append({"key": labels.DISRUPTION_CANDIDATE_TAINT, "effect": "PreferNoSchedule"})
    body = node(spec.name, cpu=str(spec.cpu), memory=f"{spec.cpu * 4}Gi", taints=taints)
    annotations = body["metadata"].setdefault("annotations", {})
    if spec.disrupted:
        annotations[labels.DISRUPTING_ANNOTATION] = '{"reason":"Expired"}'
    if spec.expiring and profile == "a":
        annotations[keys.EXPIRES_AT] = (now + timedelta(minutes=5)).isoformat().replace("+00:00", "Z")
    return body


async def run(scenario: Scenario, profile: str, config: SchedulerConfig) -> Outcome:
    now = datetime.now(UTC)
    async with running_apiserver() as (_, api):
        core: Any = client.CoreV1Api(api)
        for spec in scenario.nodes:
            await core.create_node(node_body(spec, profile=profile, now=now))
            if spec.used_cpu_m:
                body = pod(
                    f"pre-{spec.name}",
                    cpu=f"{spec.used_cpu_m}m",
                    memory=f"{spec.used_cpu_m * 1024 // 1000}Mi",
                )
                body["spec"]["nodeName"] = spec.name
                await core.create_namespaced_pod("default", body)
        extender = ExtenderService(
            ExtenderConfig(
                server=ServerConfig(host="127.0.0.1", port=0, prefix="/jitnode", shutdown_grace=0.5),
                stream=StreamConfig(url=""),
                prediction=PredictionConfig(enabled=False),
            ),
            api,
        )
        await extender.start()
        try:
            await wait_for(extender.ready)
            scheduler_config = with_extender_at(config, f"http://127.0.0.1:{extender.port}/jitnode")
            names = scheduler_config.scheduler_names
            async with Scheduler(api, scheduler_config, rng=random.Random(0)):
                for want in scenario.pods:
                    body = pod(want.name, cpu=f"{want.cpu_m}m", memory=f"{want.memory_mi}Mi")
                    body["spec"]["schedulerName"] = names[0]
                    await core.create_namespaced_pod("default", body)
                    # One pod at a time: the same arrival order and cache state for both profiles.
                    await wait_for(functools.partial(bound, core, want.name), interval=0.005)
            pods = (await core.list_namespaced_pod("default")).items
        finally:
            await extender.stop()
    return Outcome(
        {p.metadata.name: p.spec.node_name for p in pods if not p.metadata.name.startswith("pre-")}
    )


async def bound(core: Any, name: str) -> bool:
    return bool((await core.read_namespaced_pod(name, "default")).spec.node_name)


def summary(scenario: Scenario, outcome: Outcome) -> dict[str, Any]:
    specs = {s.name: s for s in scenario.nodes}
    holding = {s.name for s in scenario.nodes if s.used_cpu_m} | set(outcome.placements.values())
    pod_cpu = {p.name: p.cpu_m for p in scenario.pods}
    used = {s.name: s.used_cpu_m for s in scenario.nodes}
    for name, host in outcome.placements.items():
        used[host] += pod_cpu[name]
    capacity = sum(specs[n].cpu * 1000 for n in holding)
    return {
        "nodes holding pods": len(holding),
        "empty nodes": len(specs) - len(holding),
        "cost of nodes holding pods $/h": round(sum(specs[n].price for n in holding), 3),
        "pods on drained/expiring nodes": sum(
            1 for n in outcome.placements.values() if specs[n].disrupted or specs[n].expiring
        ),
        "cpu requested / cpu of nodes holding pods": f"{sum(used.values()) / max(1, capacity):.0%}",
        "nodes under 50% cpu": sum(1 for n in holding if used[n] < specs[n].cpu * 500),
        "pods per node": dict(sorted(_count(outcome.placements.values()).items())),
    }


def _count(names: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for name in names:
        out[name] = out.get(name, 0) + 1
    return out


def same_share(a: Mapping[str, str], b: Mapping[str, str]) -> float:
    return sum(1 for k, v in a.items() if b.get(k) == v) / max(1, len(a))


async def main(fit_weights: Sequence[int | None]) -> None:
    configure_logging("bench", level="warning")
    for scenario in scenarios(random.Random(11)):
        print(f"\n## {scenario.name}")
        a = await run(scenario, "a", profile_a())
        print(f"(a) filter+prioritize         {summary(scenario, a)}")
        for weight in fit_weights:
            b = await run(scenario, "b", profile_b(weight))
            label = "shipped" if weight is None else f"fit weight {weight}"
            print(f"(b) filter+MostAllocated ({label:>12}) {summary(scenario, b)}")
            print(f"    same node as (a) for {same_share(a.placements, b.placements):.0%} of pods")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--fit-weight", type=int, action="append", help="also run (b) with this NodeResourcesFit weight"
    )
    args = parser.parse_args()
    asyncio.run(main([None, *(args.fit_weight or [])]))
