"""Seeded randomized soak (issue 12): scale, delete and inject faults for minutes; nothing may be lost.

jitnode runs on the local cluster (the seed's NodePool, consolidating underutilized nodes after
10 s so that drains happen all the time, leak collection every few seconds). Three Deployments,
one behind a PodDisruptionBudget, are scaled up and down at random and have pods deleted, while
each window of ``WINDOW_SECONDS`` injects ``FAULTS_PER_WINDOW`` faults drawn from: the launcher
or the extender stopped and restarted; the API server restarted, its watches expired (410), its
writes slowed, failed or conflicting (:mod:`localcluster.apiserver.faults`); EC2 throttling, 5xx,
answers slower than the client's timeout, insufficient capacity, CreateFleet partial errors, an
instance that never runs or dies right after launch (:mod:`localcluster.chaos.ec2`).
After each window the operations pause and the invariant check runs
(:mod:`localcluster.chaos.invariants`); a :class:`RunObserver` watches the whole run.

It prints the operations done, the faults injected per kind, the invariant violations (the exit
status is 1 when there is any) and the pending-time p50/p99. The same ``--seed`` gives the same
sequence of operations and faults (timings, and so outcomes, still vary with the machine).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import math
import random
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kubernetes_asyncio import client  # noqa: E402

from extender.service import ExtenderService  # noqa: E402
from localcluster.chaos.ec2 import EC2Faults  # noqa: E402
from localcluster.chaos.invariants import (  # noqa: E402
    RunObserver,
    Violation,
    check_invariants,
    stack_leak_collection,
)
from localcluster.demo.seed import Seed, load_seed  # noqa: E402
from localcluster.ec2 import ZONES  # noqa: E402
from localcluster.stack import JitnodeStack, StackSettings  # noqa: E402
from shared.logs import configure_logging  # noqa: E402

NAMESPACE: Final = "default"
WINDOW_SECONDS: Final = 40.0
FAULTS_PER_WINDOW: Final = 2
# A pod pending at a check gets this long to run: a launch, a join, and a fault's aftermath.
PENDING_BOUND: Final = 120.0
INSTANCE_SETTLE: Final = 60.0
LEAK_GRACE: Final = 5.0
LEAK_INTERVAL: Final = 5.0
# An instance that never becomes running is given up on after this (the default is 15 minutes).
REGISTRATION_TIMEOUT: Final = 30.0
# The EC2 actions faults hit: the launcher's launches, terminations and instance listing.
EC2_ACTIONS: Final = ("CreateFleet", "TerminateInstances", "DescribeInstances")
CONSOLIDATE_AFTER: Final = "10s"
OPERATION_PAUSE: Final = (0.5, 2.5)  # seconds between random operations
WRITE_ATTEMPTS: Final = 10  # the soak's own writes meet the injected API faults too


@dataclass(frozen=True)
class Workload:
    name: str
    cpu: str
    memory: str
    max_replicas: int
    min_available: int | None = None  # a PodDisruptionBudget with this minAvailable

    @property
    def selector(self) -> dict[str, str]:
        return {"app": self.name}


WORKLOADS: Final = (
    Workload("web", "500m", "512Mi", 8, min_available=2),
    Workload("batch", "1", "1Gi", 6),
    Workload("tiny", "250m", "256Mi", 10),
)
OPERATIONS: Final = {"scale-up": 0.45, "scale-down": 0.35, "delete-pod": 0.2}


def deployment(seed: Seed, workload: Workload) -> dict[str, Any]:
    """The seed's inflate Deployment (its nodeSelector lands on the seed's pool), renamed and resized."""
    body = copy.deepcopy(seed.deployment)
    body["metadata"] = {"name": workload.name, "namespace": NAMESPACE}
    spec = body["spec"]
    spec["replicas"] = 0
    spec["selector"] = {"matchLabels": workload.selector}
    spec["template"]["metadata"] = {"labels": workload.selector}
    container = spec["template"]["spec"]["containers"][0]
    container["name"] = workload.name
    container["resources"] = {"requests": {"cpu": workload.cpu, "memory": workload.memory}}
    return body


def consolidating(nodepool: dict[str, Any]) -> dict[str, Any]:
    """The seed's NodePool, consolidating underutilized nodes soon: drains under the budget."""
    body = copy.deepcopy(nodepool)
    disruption = body.setdefault("spec", {}).setdefault("disruption", {})
    disruption["consolidationPolicy"] = "WhenEmptyOrUnderutilized"
    disruption["consolidateAfter"] = CONSOLIDATE_AFTER
    return body


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0-100)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


class Soak:
    def __init__(
        self, stack: JitnodeStack, observer: RunObserver, seed: Seed, rng: random.Random, ec2: EC2Faults
    ) -> None:
        assert stack.api is not None
        self.ec2 = ec2
        self.stack = stack
        self.api = stack.api
        self.observer = observer
        self.seed = seed
        self.rng = rng
        self.replicas = {w.name: 0 for w in WORKLOADS}
        self.operations: Counter[str] = Counter()
        self.retried_writes = 0
        self.faults: Counter[str] = Counter()
        self.checks = 0
        self.violations: dict[tuple[str, str], Violation] = {}
        self.fault_kinds: dict[str, Callable[[], Awaitable[None]]] = {
            "launcher-restart": self.restart_launcher,
            "extender-restart": self.restart_extender,
            "apiserver-restart": self.restart_apiserver,
            "apiserver-watches-expired": self.expire_watches,
            "apiserver-slow-writes": self.slow_writes,
            "apiserver-failing-writes": self.failing_writes,
            "apiserver-conflicts": self.conflicts,
            "ec2-throttling": self.ec2_throttling,
            "ec2-server-errors": self.ec2_server_errors,
            "ec2-slow-answers": self.ec2_slow_answers,
            "ec2-insufficient-capacity": self.ec2_insufficient_capacity,
            "ec2-partial-fleet-errors": self.ec2_partial_fleet_errors,
            "ec2-never-running": self.ec2_never_running,
            "ec2-dies-after-launch": self.ec2_dies_after_launch,
        }

    # Setup and operations -------------------------------------------------------------------------

    async def setup(self) -> None:
        apps: Any = client.AppsV1Api(self.api)
        policy: Any = client.PolicyV1Api(self.api)
        for workload in WORKLOADS:
            await apps.create_namespaced_deployment(NAMESPACE, deployment(self.seed, workload))
            if workload.min_available is not None:
                body = {
                    "apiVersion": "policy/v1",
                    "kind": "PodDisruptionBudget",
                    "metadata": {"name": workload.name, "namespace": NAMESPACE},
                    "spec": {
                        "minAvailable": workload.min_available,
                        "selector": {"matchLabels": workload.selector},
                    },
                }
                await policy.create_namespaced_pod_disruption_budget(NAMESPACE, body)

    async def operation(self) -> None:
        kind = self.rng.choices(list(OPERATIONS), weights=list(OPERATIONS.values()))[0]
        workload = self.rng.choice(WORKLOADS)
        current = self.replicas[workload.name]
        if kind == "scale-up" and current < workload.max_replicas:
            await self.scale(workload, min(workload.max_replicas, current + self.rng.randint(1, 4)))
        elif kind == "scale-down" and current > 0:
            await self.scale(workload, max(0, current - self.rng.randint(1, 3)))
        elif kind == "delete-pod":
            await self.delete_pod(workload)
        else:
            return
        self.operations[kind] += 1

    async def scale(self, workload: Workload, replicas: int) -> None:
        previous = self.replicas[workload.name]
        if replicas < previous:
            # Declared before the write: the ReplicaSet may delete before the answer arrives. The
            # pods counted now may exceed the old replicas (a replacement on its way).
            present = len(self._pods_of(workload))
            self.observer.expect_fewer(NAMESPACE, workload.selector, max(present, previous) - replicas)
        apps: Any = client.AppsV1Api(self.api)
        await self._write(
            lambda: apps.patch_namespaced_deployment_scale(
                workload.name, NAMESPACE, {"spec": {"replicas": replicas}}
            )
        )
        self.replicas[workload.name] = replicas

    async def delete_pod(self, workload: Workload) -> None:
        pods = self._pods_of(workload)
        if not pods:
            return
        name = self.rng.choice(sorted(pods))
        self.observer.expect_fewer(NAMESPACE, {**workload.selector}, 1)
        core: Any = client.CoreV1Api(self.api)
        await self._write(lambda: core.delete_namespaced_pod(name, NAMESPACE))

    def _pods_of(self, workload: Workload) -> list[str]:
        """Names of the workload's live pods, as the observer sees them."""
        return [
            f.key.split("/", 1)[1]
            for f in self.observer.fates().values()
            if not f.gone and f.key.startswith(f"{NAMESPACE}/{workload.name}-")
        ]

    async def _write(self, call: Callable[[], Awaitable[Any]]) -> None:
        for attempt in range(WRITE_ATTEMPTS):
            try:
                await call()
                return
            except client.ApiException as error:
                if error.status == 404:
                    return  # the pod went meanwhile
                if attempt == WRITE_ATTEMPTS - 1:
                    raise
            except Exception:  # a connection reset while the API server restarts
                if attempt == WRITE_ATTEMPTS - 1:
                    raise
            self.retried_writes += 1
            await asyncio.sleep(0.2 * (attempt + 1))

    # Faults ---------------------------------------------------------------------------------------

    async def fault(self) -> None:
        kind = self.rng.choice(sorted(self.fault_kinds))
        await self.fault_kinds[kind]()
        self.faults[kind] += 1

    async def restart_launcher(self) -> None:
        await self.stack.stop_launcher()
        await asyncio.sleep(self.rng.uniform(0.5, 3.0))
        await self.stack.start_launcher()

    async def restart_extender(self) -> None:
        stack = self.stack
        if stack.extender is not None:
            running, stack.extender = stack.extender, None
            await running.stop()
        await asyncio.sleep(self.rng.uniform(0.5, 3.0))
        launcher_url = f"http://127.0.0.1:{stack.launcher_port}"
        stack.extender = ExtenderService(stack.extender_config(launcher_url), self.api)
        await stack.extender.start()

    async def restart_apiserver(self) -> None:
        await self.stack.cluster.apiserver.faults.restart(self.rng.uniform(0.2, 1.5))

    async def expire_watches(self) -> None:
        self.stack.cluster.apiserver.faults.gone_watches(count=self.rng.randint(1, 5))

    async def slow_writes(self) -> None:
        self.stack.cluster.apiserver.faults.slow_writes(self.rng.uniform(0.2, 1.0), self.rng.randint(5, 20))

    async def failing_writes(self) -> None:
        status = self.rng.choice([429, 500, 503, 504])
        self.stack.cluster.apiserver.faults.failing_writes(status, self.rng.randint(3, 10), fraction=0.5)

    async def conflicts(self) -> None:
        self.stack.cluster.apiserver.faults.conflicts(self.rng.randint(2, 6))

    async def ec2_throttling(self) -> None:
        self.ec2.throttle(EC2_ACTIONS, count=self.rng.randint(2, 8))

    async def ec2_server_errors(self) -> None:
        self.ec2.server_errors(EC2_ACTIONS, count=self.rng.randint(1, 4), status=self.rng.choice([500, 503]))

    async def ec2_slow_answers(self) -> None:
        """An answer held back a few seconds, or past the launcher's 20 s read timeout."""
        seconds = self.rng.choice([self.rng.uniform(1.0, 5.0), self.rng.uniform(21.0, 24.0)])
        self.ec2.slow(seconds, ("CreateFleet",), count=1)

    async def ec2_insufficient_capacity(self) -> None:
        self.ec2.insufficient_capacity(zones=(self.rng.choice(ZONES),), count=self.rng.randint(1, 3))

    async def ec2_partial_fleet_errors(self) -> None:
        self.ec2.partial_fleet_errors(count=self.rng.randint(1, 3), skip=self.rng.randint(1, 3))

    async def ec2_never_running(self) -> None:
        self.ec2.never_running(count=1)

    async def ec2_dies_after_launch(self) -> None:
        self.ec2.dies_after_launch(count=1, after=self.rng.uniform(0.5, 5.0))

    # The run --------------------------------------------------------------------------------------

    async def window(self, seconds: float) -> None:
        """Random operations for ``seconds``, with faults at random moments among them."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        end = start + seconds
        due = sorted(start + self.rng.uniform(0.1, 0.75) * seconds for _ in range(FAULTS_PER_WINDOW))
        while loop.time() < end:
            if due and loop.time() >= due[0]:
                due.pop(0)
                await self.fault()
            await self.operation()
            await asyncio.sleep(self.rng.uniform(*OPERATION_PAUSE))

    async def check(self) -> list[Violation]:
        """The invariant check with operations paused and armed faults cleared; returns new violations."""
        self.stack.cluster.apiserver.faults.clear()
        self.ec2.clear()
        self.checks += 1
        found = await check_invariants(
            self.api,
            self.stack.cluster.ec2,
            self.stack.settings.cluster,
            self.observer,
            pending_bound=PENDING_BOUND,
            collect_leaks=stack_leak_collection(self.stack),
            instance_settle=INSTANCE_SETTLE,
        )
        new = [v for v in found if (v.invariant, v.detail) not in self.violations]
        for violation in new:
            self.violations[(violation.invariant, violation.detail)] = violation
        return new


async def run(seed_value: int, minutes: float, *, quiet: bool) -> int:
    rng = random.Random(seed_value)
    settings = StackSettings(
        leak_grace=LEAK_GRACE,
        leak_interval=LEAK_INTERVAL,
        registration_timeout=REGISTRATION_TIMEOUT,
        seed=seed_value,
    )
    started = time.monotonic()
    async with JitnodeStack(settings) as stack:
        with EC2Faults() as ec2:
            assert stack.api is not None
            seed = load_seed(stack.cluster.network.cluster)
            await stack.apply_nodeclass(seed.nodeclass)
            await stack.apply_nodepool(consolidating(seed.nodepool))
            async with RunObserver(stack.api, NAMESPACE) as observer:
                soak = Soak(stack, observer, seed, rng, ec2)
                await soak.setup()
                began = time.monotonic()
                deadline = began + minutes * 60
                while time.monotonic() < deadline:
                    window = min(WINDOW_SECONDS, max(5.0, deadline - time.monotonic()))
                    await soak.window(window)
                    checked = time.monotonic()
                    new = await soak.check()
                    if not quiet:
                        print(
                            f"  [{time.monotonic() - began:6.1f} s] window {soak.checks}: "
                            f"faults so far {sum(soak.faults.values())}, check took "
                            f"{time.monotonic() - checked:.1f} s, new violations {len(new)}",
                            flush=True,
                        )
                        for violation in new:
                            print(f"    {violation.invariant}: {violation.detail}", flush=True)
                # The end: everything scaled to zero, and the final check.
                for workload in WORKLOADS:
                    await soak.scale(workload, 0)
                checked = time.monotonic()
                new = await soak.check()
                if not quiet:
                    print(
                        f"  [{time.monotonic() - began:6.1f} s] all scaled to zero: final check took "
                        f"{time.monotonic() - checked:.1f} s, new violations {len(new)}",
                        flush=True,
                    )
                ran = time.monotonic() - began
                pending = observer.pending_seconds
                fired = stack.cluster.apiserver.faults.fired + ec2.fired
    print(
        f"soak: seed {seed_value}, {ran / 60:.1f} minutes of operations "
        f"({time.monotonic() - started:.0f} s in all)"
    )
    print(
        "operations: "
        + ", ".join(f"{k} {soak.operations[k]}" for k in OPERATIONS)
        + f" (writes retried after an injected API fault: {soak.retried_writes})"
    )
    print(
        f"faults injected: {sum(soak.faults.values())}: "
        + ", ".join(f"{k} {soak.faults[k]}" for k in sorted(soak.fault_kinds))
    )
    print("fired, as the injectors counted: " + ", ".join(f"{k} {v}" for k, v in sorted(fired.items())))
    print(f"invariant checks: {soak.checks}, violations: {len(soak.violations)}")
    for violation in soak.violations.values():
        print(f"  {violation.invariant}: {violation.detail}")
    if pending:
        print(
            f"pending time: p50 {percentile(pending, 50):.2f} s, p99 {percentile(pending, 99):.2f} s "
            f"(max {max(pending):.2f} s) over {len(pending)} pods"
        )
    else:
        print("pending time: no pod was pending")
    return 1 if soak.violations else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="seeds the operations and faults (default 0)")
    parser.add_argument("--minutes", type=float, default=5.0, help="how long to operate (default 5)")
    parser.add_argument("--log-level", default="critical", help="the services' log level (default critical)")
    parser.add_argument("--quiet", action="store_true", help="no line per window, only the figures")
    args = parser.parse_args(argv)
    configure_logging("soak", level=args.log_level)
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(run(args.seed, args.minutes, quiet=args.quiet))
    return 130


if __name__ == "__main__":
    sys.exit(main())
