"""Scale benchmark (issue 16): the extender and the launcher against an API server holding N nodes
and M realistic pods, each service in its own process, as deployed.

For each size the API server (the local one in a process of its own, or a real one with
``--kubeconfig``) is filled with N Ready nodes and M running pods of about 7 KB of JSON each
(:mod:`scale_objects`). Then, for the launcher (started first: the extender streams demand to it)
and the extender, it prints:

* **first sync**: seconds from starting the process to every informer having listed
  (``jitnode_informer_synced`` on its ``/metrics``);
* **RSS** once synced, the peak (``VmHWM``) and **KiB per pod**: (RSS - the same process's RSS
  synced with an empty cluster) / M;
* **watch events/s kept up**: churn (pod creations, deletions and status updates, a third each)
  is written at rising rates (``--rates``) for ``--step`` seconds each; a process keeps up at a
  rate when, at the step's end, the oldest write it has not applied is under ``LAG_BOUND``
  seconds old. Applied means its pods informer's ``jitnode_informer_resource_version`` has
  reached the write's resourceVersion. Reported: the highest achieved write rate kept up with,
  and the most events/s the process applied in any step;
* **filter and prioritize p99** (extender): serial calls, one at a time over a keep-alive
  connection as kube-scheduler makes them, with the captured ``v1.28`` pod and as many
  candidate node names as kube-scheduler's adaptive sampling passes at N nodes, with the
  launcher paused meanwhile (the extender has a CPU of its own in a deployment; see ``paused``);
* **plan for 1,000 pending pods** (launcher): 1,000 Unschedulable pods are written at once;
  the launcher's own pod watch reports them and its ``plan`` log line gives the plan's time.

Sizes (``--size``): ``500/5000``, ``2000/20000`` (the default runs these two) and
``5000/150000`` (``--size 5000/150000``: minutes, and about 2 GiB in the API server process).
Figures on a loaded 2-core machine are pessimistic; compare sizes within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import aiohttp
import orjson
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from extender_bench import Caller, build_requests, free_port, percentile  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402
from scale_cluster import Churned, ClusterDriver, Filled, HTTPDriver, LocalDriver  # noqa: E402

from extender.config import ExtenderConfig, PredictionConfig, ServerConfig, StreamConfig  # noqa: E402
from launcher.config import (  # noqa: E402
    AWSConfig,
    ClusterSettings,
    LauncherConfig,
    LeaderSettings,
    ProvisioningSettings,
    ServerSettings,
)
from localcluster.demo.seed import load_seed  # noqa: E402
from localcluster.motoprocess import MotoProcess  # noqa: E402

SIZES: Final = {"500/5000": (500, 5_000), "2000/20000": (2_000, 20_000), "5000/150000": (5_000, 150_000)}
DEFAULT_SIZES: Final = ("500/5000", "2000/20000")
CLUSTER: Final = "jitnode-scale"
CRDS: Final = REPO / "manifests" / "crds"
PREFIX: Final = "/jitnode"
# A process keeps up with churn when its oldest unapplied write is younger than this.
LAG_BOUND: Final = 1.0
POLL: Final = 0.25
# The launcher's catalogue: the seed NodePool's cheapest types and some larger (moto's whole
# region takes tens of seconds to load and is not what is measured).
INSTANCE_TYPES: Final = (
    "c5.xlarge",
    "c5.2xlarge",
    "c5.4xlarge",
    "m5.xlarge",
    "m5.2xlarge",
    "m5.4xlarge",
    "r5.xlarge",
    "r5.2xlarge",
    "c6g.xlarge",
    "m6g.xlarge",
    "m6g.2xlarge",
)


# The services as processes ------------------------------------------------------------------


def plain(value: object) -> object:
    """A config dataclass tree as YAML-safe builtins."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain(dataclasses.asdict(value))
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def memory_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process in KiB, from ``/proc/<pid>/status``; zeros elsewhere."""
    found = {"VmRSS:": 0, "VmHWM:": 0}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            parts = line.split()
            if parts and parts[0] in found:
                found[parts[0]] = int(parts[1])
    return found["VmRSS:"], found["VmHWM:"]


@dataclass
class Service:
    """``python -m <module> --config FILE``, its port and its JSON log."""

    name: str
    module: str
    config: object
    port: int
    workdir: Path
    env: Mapping[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        path = self.workdir / f"{self.name}.yaml"
        path.write_text(yaml.safe_dump(plain(self.config), sort_keys=False))
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.module, "--config", str(path)],
                cwd=REPO,
                env={**os.environ, **self.env, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO)},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.started = time.monotonic()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def records(self, event: str) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_bytes().splitlines():
            with contextlib.suppress(orjson.JSONDecodeError):
                record = orjson.loads(line)
                if isinstance(record, dict) and record.get("event") == event:
                    out.append(record)
        return out

    def tail(self, lines: int = 15) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    async def metrics(self, session: aiohttp.ClientSession) -> dict[tuple[str, str], float]:
        """``(sample name, informer label) -> value`` of the informer series on ``/metrics``."""
        async with session.get(f"http://127.0.0.1:{self.port}/metrics") as response:
            text = await response.text()
        out: dict[tuple[str, str], float] = {}
        for family in text_string_to_metric_families(text):
            if family.name.startswith("jitnode_informer_"):
                for sample in family.samples:
                    out[(sample.name, sample.labels.get("informer", ""))] = sample.value
        return out

    async def wait_synced(self, session: aiohttp.ClientSession, timeout: float) -> float:  # noqa: ASYNC109
        """Seconds from the start to every informer synced (raises with the log's tail if never)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited {self.process.returncode}:\n{self.tail()}")
            with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                found = await self.metrics(session)
                synced = [v for (name, _), v in found.items() if name == "jitnode_informer_synced"]
                if synced and all(v == 1.0 for v in synced):
                    return time.monotonic() - self.started
            await asyncio.sleep(0.1)
        raise TimeoutError(f"{self.name} not synced in {timeout:.0f} s:\n{self.tail()}")

    async def applied(self, session: aiohttp.ClientSession) -> float:
        """The resourceVersion the pods informer has applied (NaN when unknown)."""
        with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
            found = await self.metrics(session)
            return found.get(("jitnode_informer_resource_version", "pods"), float("nan"))
        return float("nan")


@dataclass
class Stack:
    """moto, the kubeconfig, and the launcher and extender processes of one run."""

    api_url: str
    kubeconfig: Path
    workdir: Path
    moto: MotoProcess
    launcher: Service | None = None
    extender: Service | None = None

    def launcher_config(self, port: int) -> LauncherConfig:
        return LauncherConfig(
            cluster=ClusterSettings(
                name=CLUSTER,
                endpoint=self.api_url,
                certificate_authority="bG9jYWxjbHVzdGVyLWNh",
                kubeconfig=str(self.kubeconfig),
            ),
            server=ServerSettings(host="127.0.0.1", port=port, shutdown_grace=1.0),
            aws=AWSConfig(
                region=self.moto.region,
                endpoint_url=self.moto.endpoint,
                pricing_api=False,
                instance_types=INSTANCE_TYPES,
            ),
            # Coalesce the 1,000 pending pods into one plan, as a burst from one Deployment would be.
            provisioning=ProvisioningSettings(coalesce_idle=0.5, coalesce_max=3.0),
            leader=LeaderSettings(namespace="default", identity="scale-bench", retry_period=0.5),
            log_level="info",
        )

    def extender_config(self, port: int, launcher_port: int) -> ExtenderConfig:
        return ExtenderConfig(
            server=ServerConfig(host="127.0.0.1", port=port, prefix=PREFIX, shutdown_grace=1.0),
            stream=StreamConfig(url=f"ws://127.0.0.1:{launcher_port}/v1/demand", source="scale-bench"),
            prediction=PredictionConfig(enabled=True),
            kubeconfig=str(self.kubeconfig),
            log_level="warning",
        )

    def start(self) -> None:
        launcher_port, extender_port = free_port(), free_port()
        self.launcher = Service(
            "launcher",
            "launcher",
            self.launcher_config(launcher_port),
            launcher_port,
            self.workdir,
            self.moto.environment(),
        )
        self.extender = Service(
            "extender",
            "extender",
            self.extender_config(extender_port, launcher_port),
            extender_port,
            self.workdir,
        )
        self.launcher.start()

    def stop(self) -> None:
        for service in (self.extender, self.launcher):
            if service is not None:
                service.stop()


def write_kubeconfig(path: Path, url: str) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "scale", "cluster": {"server": url}}],
                "users": [{"name": "scale", "user": {"token": "scale"}}],
                "contexts": [{"name": "scale", "context": {"cluster": "scale", "user": "scale"}}],
                "current-context": "scale",
            }
        )
    )
    return path


async def apply_jitnode_objects(kubeconfig: Path) -> None:
    """jitnode's CRDs, then the seed's EC2NodeClass and NodePool (existing ones are kept)."""
    from kubernetes_asyncio import client, config
    from kubernetes_asyncio.client.exceptions import ApiException

    seed = await asyncio.to_thread(load_seed, CLUSTER)
    crds = []
    for path in sorted(CRDS.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if isinstance(document, dict) and document.get("kind") == "CustomResourceDefinition":
                crds.append(document)
    api = await config.new_client_from_config(config_file=str(kubeconfig))
    try:
        extensions: Any = client.ApiextensionsV1Api(api)
        for crd in crds:
            with contextlib.suppress(ApiException):
                await extensions.create_custom_resource_definition(crd)
        custom = client.CustomObjectsApi(api)
        for plural, body in (("ec2nodeclasses", seed.nodeclass), ("nodepools", seed.nodepool)):
            group, version = body["apiVersion"].split("/")
            for _ in range(50):  # a real server establishes new CRDs in a moment
                try:
                    await custom.create_cluster_custom_object(group, version, plural, body)
                    break
                except ApiException as exc:
                    if exc.status == 409:
                        break
                    if exc.status != 404:
                        raise
                    await asyncio.sleep(0.2)
    finally:
        await api.close()


# Measurements -------------------------------------------------------------------------------


@dataclass
class Synced:
    seconds: float
    rss_kib: int
    peak_kib: int


@dataclass
class Keeping:
    """One process over the churn steps."""

    kept_up: float = 0.0  # the highest achieved write rate it kept up with
    handled: float = 0.0  # the most writes per second it applied in a step
    steps: list[str] = field(default_factory=list)


def oldest_unapplied(
    writes: Sequence[tuple[int, float]], rvs: Sequence[int], applied: float, now: float
) -> float:
    """Age of the oldest write (made by ``now``) with a resourceVersion above ``applied``; 0 if none."""
    index = bisect.bisect_right(rvs, applied) if applied == applied else 0  # NaN: nothing applied
    if index >= len(writes) or writes[index][1] > now:
        return 0.0
    return now - writes[index][1]


@dataclass
class Sampler:
    """Polls one service's applied resourceVersion every :data:`POLL` seconds, in its own task
    (a service too busy to answer its ``/metrics`` must not slow the polling of the other)."""

    service: Service
    samples: list[tuple[float, float]] = field(default_factory=list)  # (answered at, applied)
    silences: list[float] = field(default_factory=list)  # seconds between answered polls

    async def run(self, session: aiohttp.ClientSession) -> None:
        last = time.time()
        while True:
            value = await self.service.applied(session)
            now = time.time()
            if value == value:  # not NaN: answered
                self.samples.append((now, value))
                self.silences.append(now - last)
                last = now
            await asyncio.sleep(POLL)

    def latest(self, until: float) -> tuple[float, float]:
        """The last answer at or before ``until`` (NaN if none)."""
        index = bisect.bisect_right(self.samples, (until, float("inf")))
        return self.samples[index - 1] if index else (until, float("nan"))


async def churn_steps(
    driver: ClusterDriver, services: Sequence[Service], rates: Sequence[float], seconds: float
) -> dict[str, Keeping]:
    """Churn at each rate, sampling every service's applied resourceVersion meanwhile."""
    results = {s.name: Keeping() for s in services}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        for rate in rates:
            samplers = [Sampler(s) for s in services]
            tasks = [asyncio.ensure_future(sampler.run(session)) for sampler in samplers]
            try:
                churned: Churned = await driver.churn(rate, seconds)
                writes = [w for w in churned.writes if w[0] > 0]
                rvs = [w[0] for w in writes]
                end = writes[-1][1] if writes else time.time()
                # Let everyone catch up before the next rate (and see how long it takes).
                caught: dict[str, float] = {}
                deadline = time.time() + 60
                while len(caught) < len(services) and time.time() < deadline and rvs:
                    for sampler in samplers:
                        applied = sampler.latest(time.time())[1]
                        if sampler.service.name not in caught and applied >= rvs[-1]:
                            caught[sampler.service.name] = sampler.latest(time.time())[0] - end
                    await asyncio.sleep(0.1)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            for sampler in samplers:
                name = sampler.service.name
                # The lag at the step's end, from the last answer by then (a stale answer counts
                # as what it says: a service too busy to answer is behind).
                at, applied_rv = sampler.latest(end + POLL)
                lag = oldest_unapplied(writes, rvs, applied_rv, end)
                applied = bisect.bisect_right(rvs, applied_rv) if applied_rv == applied_rv else 0
                handled = applied / max(1e-9, at - (writes[0][1] if writes else at))
                keeping = results[name]
                if lag < LAG_BOUND and name in caught:
                    keeping.kept_up = max(keeping.kept_up, churned.rate)
                keeping.handled = max(keeping.handled, min(handled, churned.rate))
                catch = f"{caught[name]:.1f} s" if name in caught else "> 60 s"
                silent = max(sampler.silences, default=float("nan"))
                keeping.steps.append(
                    f"{churned.rate:6.0f}/s (target {rate:.0f}): lag {lag:5.2f} s at the end, "
                    f"caught up {catch}, /metrics silent up to {silent:.1f} s"
                )
    return results


@contextlib.contextmanager
def paused(pid: int) -> Iterator[None]:
    """Stop a process (SIGSTOP) for the block, then let it go on.

    The filter's p99 is kube-scheduler's wait on the extender, which a deployment gives a CPU of
    its own. On a 2-core machine the launcher, still catching up after the churn, would share
    the extender's core and put its own rounds into the extender's tail (p99s of 1 to 8 ms from
    run to run); the launcher is paused while the calls are timed (under a second, far inside
    its Lease).
    """
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


async def filter_prioritize_p99(port: int, names: list[str], calls: int) -> tuple[float, float]:
    """p99 milliseconds of serial filter and prioritize calls (each pair for a new pod)."""
    requests = await asyncio.to_thread(build_requests, port, names, True, 64)
    loop = asyncio.get_running_loop()
    transport, caller = await loop.create_connection(Caller, "127.0.0.1", port)
    timings: dict[int, list[float]] = {0: [], 1: []}
    try:
        for i in range(2 * (calls + 20)):
            sent = time.perf_counter()
            await caller.call(requests[i % len(requests)])
            if i >= 40:  # warm-up
                timings[i % 2].append((time.perf_counter() - sent) * 1000)
    finally:
        transport.close()
    return percentile(sorted(timings[0]), 0.99), percentile(sorted(timings[1]), 0.99)


async def plan_time(
    driver: ClusterDriver,
    launcher: Service,
    count: int,
    timeout: float,  # noqa: ASYNC109
) -> tuple[float, int]:
    """(seconds, pods) of the launcher's largest plan after ``count`` pods turn Unschedulable."""
    before = len(launcher.records("plan"))
    await driver.pending(count)
    deadline = time.monotonic() + timeout
    best: tuple[float, int] = (float("nan"), 0)
    while time.monotonic() < deadline:
        plans = (await asyncio.to_thread(launcher.records, "plan"))[before:]
        for record in plans:
            pods = int(record.get("pods") or 0)
            if pods > best[1]:
                best = (float(record.get("seconds") or "nan"), pods)
        if best[1] >= count:
            break
        await asyncio.sleep(0.5)
    return best


# One size -----------------------------------------------------------------------------------


@dataclass
class Options:
    rates: tuple[float, ...]
    step: float
    calls: int
    pending: int
    kubeconfig: str | None
    sync_timeout: float


async def new_driver(options: Options) -> ClusterDriver:
    if options.kubeconfig:
        return await HTTPDriver.from_kubeconfig(options.kubeconfig)
    driver = LocalDriver()
    await driver.start()
    return driver


async def start_synced(stack: Stack, session: aiohttp.ClientSession, timeout: float) -> dict[str, Synced]:  # noqa: ASYNC109
    """The launcher, synced and leading, then the extender, synced."""
    stack.start()
    assert stack.launcher is not None
    assert stack.extender is not None
    out = {}
    seconds = await stack.launcher.wait_synced(session, timeout)
    out["launcher"] = Synced(seconds, *memory_kib(stack.launcher.pid))
    stack.extender.start()
    seconds = await stack.extender.wait_synced(session, timeout)
    out["extender"] = Synced(seconds, *memory_kib(stack.extender.pid))
    return out


async def run_size(
    nodes: int, pods: int, options: Options, baseline: dict[str, Synced] | None, workdir: Path
) -> dict[str, Any]:
    """Fill, start both services, measure; returns the figures (also printed)."""
    driver = await new_driver(options)
    moto = MotoProcess.spawn(cluster=CLUSTER)
    stack: Stack | None = None
    try:
        filled: Filled = await driver.fill(nodes, pods)
        await moto.ready()
        kubeconfig = (
            Path(options.kubeconfig)
            if options.kubeconfig
            else write_kubeconfig(workdir / "kubeconfig", driver.url)
        )
        await apply_jitnode_objects(kubeconfig)
        stack = Stack(driver.url, kubeconfig, workdir, moto)
        figures: dict[str, Any] = {"nodes": nodes, "pods": pods, "fill": filled.seconds}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            synced = await start_synced(stack, session, options.sync_timeout)
        figures["synced"] = synced
        if baseline is None or pods == 0:
            return figures
        assert stack.launcher is not None
        assert stack.extender is not None
        # Once before the churn too: the two figures tell a tail of the extender's own from one
        # the churn left behind (its objects not yet frozen out of the collector's reach).
        with paused(stack.launcher.pid):
            figures["p99_before"] = await filter_prioritize_p99(
                stack.extender.port, filled.names, options.calls
            )
        figures["keeping"] = await churn_steps(
            driver, [stack.extender, stack.launcher], options.rates, options.step
        )
        with paused(stack.launcher.pid):
            figures["p99"] = await filter_prioritize_p99(stack.extender.port, filled.names, options.calls)
        figures["plan"] = await plan_time(driver, stack.launcher, options.pending, timeout=120)
        figures["end"] = {s.name: memory_kib(s.pid)[0] for s in (stack.launcher, stack.extender)}
        figures["peak"] = {s.name: memory_kib(s.pid)[1] for s in (stack.launcher, stack.extender)}
        print_size(figures, baseline)
        return figures
    finally:
        if stack is not None:
            stack.stop()
        await driver.close()
        await moto.stop()


def print_size(figures: dict[str, Any], baseline: dict[str, Synced]) -> None:
    nodes, pods = figures["nodes"], figures["pods"]
    print(f"== {nodes:,} nodes, {pods:,} pods (API server filled in {figures['fill']:.1f} s)", flush=True)
    filter_p99, prioritize_p99 = figures["p99"]
    plan_seconds, plan_pods = figures["plan"]
    for name in ("extender", "launcher"):
        synced: Synced = figures["synced"][name]
        base = baseline[name]
        per_pod = (synced.rss_kib - base.rss_kib) / pods
        keeping: Keeping = figures["keeping"][name]
        print(
            f"{name:8s} first sync {synced.seconds:6.1f} s | RSS {synced.rss_kib / 1024:7.1f} MiB "
            f"(empty cluster {base.rss_kib / 1024:5.1f} MiB) {per_pod:5.1f} KiB/pod | "
            f"at the end {figures['end'][name] / 1024:7.1f} MiB, "
            f"peak {figures['peak'][name] / 1024:7.1f} MiB | "
            f"watch: kept up at {keeping.kept_up:5.0f} events/s, applied up to {keeping.handled:5.0f}/s",
            flush=True,
        )
        for step in keeping.steps:
            print(f"         churn {step}", flush=True)
    before = figures.get("p99_before")
    earlier = f" (before the churn: {before[0]:.2f} ms and {before[1]:.2f} ms)" if before else ""
    print(
        f"extender filter p99 {filter_p99:.2f} ms, prioritize p99 {prioritize_p99:.2f} ms{earlier}",
        flush=True,
    )
    print(f"launcher plan for {plan_pods:,} pending pods: {plan_seconds:.3f} s", flush=True)
    print("issue 16 targets: " + ", ".join(missed_targets(figures, baseline) or ["all met"]), flush=True)


def missed_targets(figures: dict[str, Any], baseline: dict[str, Synced]) -> list[str]:
    """Issue 16's "done when" figures this size misses (they are set for 5,000 / 150,000)."""
    missed = []
    for name in ("extender", "launcher"):
        synced: Synced = figures["synced"][name]
        peak = max(synced.rss_kib, figures["peak"][name])
        if peak >= 1024 * 1024:
            missed.append(f"{name} RSS {peak / 1024:.0f} MiB >= 1 GiB")
        per_pod = (synced.rss_kib - baseline[name].rss_kib) / figures["pods"]
        if per_pod > 5:
            missed.append(f"{name} {per_pod:.1f} KiB/pod > 5")
        if synced.seconds >= 60:
            missed.append(f"{name} first sync {synced.seconds:.0f} s >= 60 s")
        if figures["keeping"][name].kept_up < 2000 * 0.98:  # the achieved rate of a 2,000/s step
            missed.append(f"{name} keeps up at {figures['keeping'][name].kept_up:.0f} < 2,000 events/s")
    if figures["p99"][0] >= 2:
        missed.append(f"filter p99 {figures['p99'][0]:.2f} ms >= 2 ms")
    seconds, pods = figures["plan"]
    if not seconds < 1 or pods < 1000:
        missed.append(f"plan for {pods:,} pods {seconds:.3f} s (wanted 1,000 pods under 1 s)")
    return missed


def parse_size(text: str) -> tuple[int, int]:
    if text in SIZES:
        return SIZES[text]
    try:
        nodes, pods = (int(part) for part in text.split("/"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--size: expected NODES/PODS, got {text!r}") from exc
    if nodes < 1 or pods < 1:
        raise argparse.ArgumentTypeError(f"--size: nodes and pods must be positive, got {text!r}")
    return nodes, pods


async def run(
    sizes: Sequence[tuple[int, int]], options: Options, workdir: Path | None = None
) -> list[dict[str, Any]]:
    """The empty-cluster baseline, then each size; configs and logs go to ``workdir`` (kept) or a
    temporary directory."""
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="scale-bench-") as tmp:
            return await run_in(sizes, options, Path(tmp))
    return await run_in(sizes, options, workdir)


async def run_in(sizes: Sequence[tuple[int, int]], options: Options, top: Path) -> list[dict[str, Any]]:
    base_dir = top / "empty"
    base_dir.mkdir(parents=True, exist_ok=True)
    empty = await run_size(0, 0, options, None, base_dir)
    baseline: dict[str, Synced] = empty["synced"]
    print(
        "empty cluster: "
        + ", ".join(
            f"{name} RSS {s.rss_kib / 1024:.1f} MiB, synced in {s.seconds:.1f} s"
            for name, s in baseline.items()
        ),
        flush=True,
    )
    results = []
    for nodes, pods in sizes:
        workdir = top / f"{nodes}-{pods}"
        workdir.mkdir(parents=True, exist_ok=True)
        results.append(await run_size(nodes, pods, options, baseline, workdir))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--size",
        type=parse_size,
        action="append",
        help="NODES/PODS, repeatable (default: 500/5000 and 2000/20000; the issue's largest is 5000/150000)",
    )
    parser.add_argument(
        "--rates", type=float, nargs="+", default=[500, 1000, 2000, 4000], help="churn writes/s"
    )
    parser.add_argument("--step", type=float, default=8.0, help="seconds of churn per rate")
    parser.add_argument("--calls", type=int, default=500, help="filter+prioritize pairs timed")
    parser.add_argument("--pending", type=int, default=1000, help="pods the launcher plans for")
    parser.add_argument("--kubeconfig", help="a real API server to fill instead of the local one")
    parser.add_argument("--sync-timeout", type=float, default=300.0)
    parser.add_argument("--workdir", type=Path, help="keep the services' configs and logs here")
    args = parser.parse_args(argv)
    sizes = args.size or [SIZES[s] for s in DEFAULT_SIZES]
    options = Options(
        tuple(args.rates), args.step, args.calls, args.pending, args.kubeconfig, args.sync_timeout
    )
    started = time.perf_counter()
    asyncio.run(run(sizes, options, args.workdir))
    print(f"total {time.perf_counter() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
