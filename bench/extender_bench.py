"""Extender benchmark: request-path latency and throughput, and pod-Unschedulable-to-demand latency.

Processes (loopback only): the local API server (``localcluster``) filled with N nodes and N bound
pods; the extender (``python -m extender``, as deployed) pinned to CPU 0 with
``os.sched_setaffinity``; one load-generator process pinned to the other CPUs, sending
filter+prioritize pairs with bodies shaped like the captured kube-scheduler requests (the pod of
``v1.28-filter-nodecache-request.json``; as many candidate nodes as kube-scheduler's adaptive
``percentageOfNodesToScore`` samples: 500 at 5,000 nodes); and this process, which hosts the
launcher's ``DemandServer`` and measures how long a pod that turns Unschedulable in the API takes
to arrive there as demand.

Each load mode runs ``--runs`` times (interleaved, after a warm-up) and the median of each figure
is reported; latency is measured client-side, from writing a request to reading its whole answer:

* ``serial x1``: one connection, one call at a time: what kube-scheduler sees (it calls the
  extender from its single scheduling loop), and the fastest it could go.
* ``rate R xC``: open loop, calls started on a fixed schedule at R per second over C connections,
  whatever the answers do: the latency at the target load (a closed loop would slow down with
  the server and hide queueing).
* ``saturate xC``: C connections back to back: the most the one extender core serves.

Targets (issue 4): p99 < 2 ms at >= 3,000 req/s at 5,000 nodes with nodeCacheCapable; demand
p99 < 50 ms. Bounded: the whole run takes under three minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import aiohttp
import orjson
from aiohttp import web

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from extender import runtime  # noqa: E402
from launcher.demand import DemandBook, DemandServer  # noqa: E402
from shared.logs import configure_logging  # noqa: E402

FIXTURE = REPO / "tests" / "fixtures" / "kube-scheduler" / "v1.28-filter-nodecache-request.json"
FULLNODES_FIXTURE = REPO / "tests" / "fixtures" / "kube-scheduler" / "v1.24-filter-fullnodes-request.json"
TOKEN = "bench-token"
EXTENDER_CPU = 0


def pin(cpus: set[int]) -> None:
    with contextlib.suppress(AttributeError, OSError):
        available = os.sched_getaffinity(0)
        if cpus & available:
            os.sched_setaffinity(0, cpus & available)


def other_cpus() -> set[int]:
    try:
        cpus = set(os.sched_getaffinity(0))
    except AttributeError:
        return set()
    rest = cpus - {EXTENDER_CPU}
    return rest or cpus


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sample_size(nodes: int) -> int:
    """kube-scheduler's numFeasibleNodesToFind with the adaptive percentage."""
    if nodes < 100:
        return nodes
    percentage = max(5, 50 - nodes // 125)
    return max(100, nodes * percentage // 100)


def node_object(name: str, i: int) -> dict[str, Any]:
    zone = "us-east-1" + "abc"[i % 3]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/os": "linux",
                "node.kubernetes.io/instance-type": "m5.xlarge",
                "topology.kubernetes.io/zone": zone,
                "intent": "apps",
            },
            "annotations": {"jitnode.io/price-per-hour": "0.192"},
        },
        "spec": {"providerID": f"aws:///{zone}/i-{i:017x}"},
        "status": {
            "capacity": {"cpu": "4", "memory": "15944Mi", "pods": "58"},
            "allocatable": {"cpu": "3920m", "memory": "14848Mi", "pods": "58"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
        },
    }


def pod_object(name: str, node_name: str = "", cpu: str = "500m") -> dict[str, Any]:
    spec: dict[str, Any] = {
        "containers": [
            {"name": "app", "image": "pause", "resources": {"requests": {"cpu": cpu, "memory": "512Mi"}}}
        ],
        "schedulerName": "bench-none",  # nobody schedules these; the bench binds them itself
    }
    if node_name:
        spec["nodeName"] = node_name
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
    }


# API server process ------------------------------------------------------------------------


def apiserver_main(url_queue: Any, stop_event: Any) -> None:
    pin(other_cpus())
    from localcluster.apiserver import APIServer

    async def run() -> None:
        server = APIServer(history_limit=50_000, watcher_buffer=100_000, controllers=False)
        url = await server.start()
        url_queue.put(url)
        await asyncio.to_thread(stop_event.wait)
        await server.stop()

    asyncio.run(run())


async def fill(url: str, nodes: int) -> list[str]:
    names = [f"ip-10-{i // 65536}-{(i // 256) % 256}-{i % 256}.ec2.internal" for i in range(nodes)]
    sem = asyncio.Semaphore(32)
    async with aiohttp.ClientSession(base_url=url) as session:

        async def post(path: str, body: dict[str, Any]) -> None:
            async with (
                sem,
                session.post(
                    path, data=orjson.dumps(body), headers={"Content-Type": "application/json"}
                ) as r,
            ):
                if r.status >= 300:
                    raise RuntimeError(f"{path}: {r.status} {await r.text()}")

        await asyncio.gather(*(post("/api/v1/nodes", node_object(n, i)) for i, n in enumerate(names)))
        await asyncio.gather(
            *(
                post("/api/v1/namespaces/default/pods", pod_object(f"bound-{i}", n))
                for i, n in enumerate(names)
            )
        )
    return names


# Load generator process ---------------------------------------------------------------------


def build_requests(port: int, names: list[str], node_cache: bool, count: int) -> list[bytes]:
    fixture = orjson.loads(FIXTURE.read_bytes())
    full_node = orjson.loads(FULLNODES_FIXTURE.read_bytes())["Nodes"]["items"][0]
    k = sample_size(len(names))
    rng = random.Random(7)
    out: list[bytes] = []
    for i in range(count):
        pod = orjson.loads(orjson.dumps(fixture["Pod"]))
        pod["metadata"]["uid"] = f"bench-pod-{i}"
        pod["metadata"]["name"] = f"pause-{i}"
        start = rng.randrange(len(names))
        sample = [names[(start + j) % len(names)] for j in range(k)]
        if node_cache:
            args = {"Pod": pod, "Nodes": None, "NodeNames": sample}
        else:
            items = []
            for n in sample:
                item = orjson.loads(orjson.dumps(full_node))
                item["metadata"]["name"] = n
                items.append(item)
            args = {"Pod": pod, "Nodes": {"metadata": {}, "items": items}, "NodeNames": None}
        body = orjson.dumps(args)
        for verb in ("filter", "prioritize"):
            head = (
                f"POST /jitnode/{verb} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode()
            out.append(head + body)
    return out


@dataclass(frozen=True)
class Mode:
    """One way of loading the extender (see the module doc)."""

    name: str
    connections: int
    rate: float = 0.0  # calls per second, open loop; 0: closed loop

    @property
    def label(self) -> str:
        if self.rate:
            return f"rate {self.rate:.0f} x{self.connections}"
        return f"{self.name} x{self.connections}"


class Caller(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection that sends a pre-built request and waits for its answer.

    A bare protocol rather than asyncio streams: the generator has one core and must spend as
    little of it as possible per call, so the extender, not the generator, is what is measured.
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._waiter: asyncio.Future[None] | None = None
        self._expect = -1  # length of the whole answer (head + body) once the head is in

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass, but alike

    def call(self, request: bytes) -> asyncio.Future[None]:
        assert self.transport is not None
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return self._waiter

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        if self._expect < 0:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buffer[:end])
            if not head.startswith(b"HTTP/1.1 200"):
                self._fail(RuntimeError(head.decode(errors="replace")))
                return
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            self._expect = end + 4 + length
        if len(buffer) >= self._expect:
            del buffer[: self._expect]
            self._expect = -1
            waiter, self._waiter = self._waiter, None
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    def _fail(self, error: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(ConnectionError(f"extender closed the connection: {exc!r}"))


async def drive(
    port: int, requests: list[bytes], mode: Mode, warmup: float, duration: float
) -> tuple[list[float], int]:
    """Latencies (seconds) of the calls started after ``warmup`` and before ``warmup + duration``,
    and the number of calls made in all (warm-up included: the extender's CPU is counted over both).

    Closed loop: each connection sends its next call when the previous answer is in. Open loop:
    call ``i`` is due at ``start + i / rate`` and goes out on connection ``i % connections`` as
    soon as both it is due and that connection is free.
    """
    latencies: list[float] = []
    calls = 0
    start = time.perf_counter() + 0.05
    measure_from = start + warmup
    stop_at = measure_from + duration
    interval = 1.0 / mode.rate if mode.rate else 0.0

    async def connection(index: int) -> None:
        nonlocal calls
        loop = asyncio.get_running_loop()
        transport, caller = await loop.create_connection(Caller, "127.0.0.1", port)
        call = index if interval else index * 7
        while True:
            if interval:
                due = start + call * interval
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            sent = time.perf_counter()
            if sent >= stop_at:
                break
            await caller.call(requests[call % len(requests)])
            calls += 1
            if sent >= measure_from:
                latencies.append(time.perf_counter() - sent)
            call += mode.connections if interval else 1
        transport.close()

    await asyncio.gather(*(connection(c) for c in range(mode.connections)))
    return latencies, calls


def loadgen_main(args: tuple[int, list[bytes], Mode, float, float], out: Any) -> None:
    pin(other_cpus())
    port, requests, mode, warmup, duration = args
    # The generator must outrun the extender, on one core of its own: uvloop when installed.
    with asyncio.Runner(loop_factory=runtime.loop_factory()) as runner:
        out.put(runner.run(drive(port, requests, mode, warmup, duration)))


# Extender process ---------------------------------------------------------------------------


def start_extender(api_url: str, port: int, stream_url: str, workdir: Path) -> subprocess.Popen[bytes]:
    kubeconfig = workdir / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: bench\n"
        f"clusters: [{{name: bench, cluster: {{server: '{api_url}'}}}}]\n"
        "users: [{name: bench, user: {token: bench}}]\n"
        "contexts: [{name: bench, context: {cluster: bench, user: bench}}]\n"
    )
    token = workdir / "token"
    token.write_text(TOKEN)
    env = {**os.environ, "LOG_LEVEL": "warning", "PYTHONPATH": str(REPO)}
    command = [
        sys.executable,
        "-m",
        "extender",
        "--kubeconfig",
        str(kubeconfig),
        "--server-host",
        "127.0.0.1",
        "--server-port",
        str(port),
        "--stream-url",
        stream_url,
        "--stream-token-file",
        str(token),
        "--stream-source",
        "bench",
        "--log-level",
        "warning",
    ]
    return pin_to_extender_cpu(subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.DEVNULL))


def pin_to_extender_cpu(process: subprocess.Popen[bytes]) -> subprocess.Popen[bytes]:
    """Pin a just-started extender process to :data:`EXTENDER_CPU` (where this machine has it).

    Pinned before it has started any thread: threads it starts later inherit the mask.
    """
    with contextlib.suppress(AttributeError, OSError):
        if EXTENDER_CPU in os.sched_getaffinity(0):
            os.sched_setaffinity(process.pid, {EXTENDER_CPU})
    return process


async def wait_ready(port: int, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise TimeoutError("extender not ready")


def percentile(ordered: Sequence[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass(frozen=True)
class Figures:
    rate: float  # answered calls per second
    p50: float  # milliseconds
    p99: float
    p999: float
    samples: int
    capacity: float  # calls per CPU-second of the extender process

    @classmethod
    def of(cls, latencies: list[float], duration: float, capacity: float) -> Figures:
        ms = sorted(x * 1000 for x in latencies) or [float("nan")]
        return cls(
            len(latencies) / duration,
            percentile(ms, 0.5),
            percentile(ms, 0.99),
            percentile(ms, 0.999),
            len(latencies),
            capacity,
        )

    @classmethod
    def median(cls, runs: Sequence[Figures]) -> Figures:
        def mid(values: Sequence[float]) -> float:
            return statistics.median(values)

        return cls(
            mid([r.rate for r in runs]),
            mid([r.p50 for r in runs]),
            mid([r.p99 for r in runs]),
            mid([r.p999 for r in runs]),
            int(mid([r.samples for r in runs])),
            mid([r.capacity for r in runs]),
        )

    def line(self) -> str:
        return (
            f"{self.rate:7.0f} req/s  p50 {self.p50:6.3f} ms  p99 {self.p99:6.3f} ms  "
            f"p999 {self.p999:6.3f} ms  (n={self.samples})  capacity {self.capacity:6.0f} req/cpu-s"
        )


# Unschedulable -> demand --------------------------------------------------------------------


async def demand_latency(api_url: str, book: DemandBook, pods: int) -> list[float]:
    """Time from the status write that makes a pod Unschedulable to its demand in the book."""
    arrived: dict[str, float] = {}
    seen: set[str] = set()
    news = asyncio.Event()

    async def watch_book() -> None:
        version = book.version
        while True:
            version = await book.changed(version)
            now = time.perf_counter()
            for demand in book.current().values():
                if demand.name not in seen:
                    seen.add(demand.name)
                    arrived[demand.name] = now
                    news.set()

    watcher = asyncio.create_task(watch_book())
    latencies: list[float] = []
    async with aiohttp.ClientSession(base_url=api_url) as session:
        for i in range(pods):
            name = f"unsched-{i}"
            body = pod_object(name, cpu="64")
            async with session.post("/api/v1/namespaces/default/pods", data=orjson.dumps(body)) as r:
                created = await r.json(loads=orjson.loads)
            created["status"] = {
                "phase": "Pending",
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": "0/5000 nodes are available: 5000 Insufficient cpu.",
                        "lastTransitionTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    }
                ],
            }
            sent = time.perf_counter()
            async with session.put(
                f"/api/v1/namespaces/default/pods/{name}/status", data=orjson.dumps(created)
            ) as r:
                if r.status != 200:
                    raise RuntimeError(await r.text())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2.0):
                    while name not in arrived:
                        await news.wait()
                        news.clear()
            if name in arrived:
                latencies.append(arrived[name] - sent)
            await asyncio.sleep(0.005)
    watcher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watcher
    return latencies


# Orchestration ------------------------------------------------------------------------------


async def launcher_side() -> tuple[DemandBook, web.AppRunner, int]:
    book = DemandBook(grace_period=60)
    server = DemandServer(book, token=TOKEN, heartbeat_interval=2.0)
    app = web.Application()
    server.add_routes(app)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return book, runner, runner.addresses[0][1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from ``/proc/<pid>/stat``; 0 elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_load(
    port: int, requests: list[bytes], mode: Mode, warmup: float, duration: float, server_pid: int
) -> Figures:
    """One measurement: a fresh load-generator process on the other CPUs.

    Besides client-side latency, the extender's own CPU time over the run gives its capacity on
    one core (calls per CPU-second): the figure that does not depend on whether the load
    generator, sharing a small machine, could keep the extender's core busy.
    """
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    process = ctx.Process(target=loadgen_main, args=((port, requests, mode, warmup, duration), out))
    cpu_before = cpu_seconds(server_pid)
    process.start()
    try:
        latencies, calls = out.get(timeout=warmup + duration + 60)
    finally:
        process.join(10)
    cpu = cpu_seconds(server_pid) - cpu_before
    return Figures.of(latencies, duration, calls / cpu if cpu > 0 else float("nan"))


def measure(
    label: str,
    port: int,
    server_pid: int,
    requests: list[bytes],
    modes: Sequence[Mode],
    runs: int,
    warmup: float,
    duration: float,
) -> dict[str, Figures]:
    """Every mode ``runs`` times, interleaved (so drift hits all alike); prints each run and the median."""
    results: dict[str, list[Figures]] = {mode.label: [] for mode in modes}
    for run in range(runs):
        for mode in modes:
            figures = run_load(port, requests, mode, warmup, duration, server_pid)
            results[mode.label].append(figures)
            print(f"   run {run + 1} {label} {mode.label:15s} {figures.line()}", flush=True)
    medians = {name: Figures.median(found) for name, found in results.items()}
    for name, figures in medians.items():
        print(f"{label} {name:15s} median of {runs}: {figures.line()}", flush=True)
    return medians


async def bench_size(nodes: int, args: argparse.Namespace) -> None:
    ctx = mp.get_context("fork")
    url_queue = ctx.Queue()
    stop_event = ctx.Event()
    apiserver = ctx.Process(target=apiserver_main, args=(url_queue, stop_event))
    apiserver.start()
    api_url = url_queue.get(timeout=30)
    extender: subprocess.Popen[bytes] | None = None
    runner: web.AppRunner | None = None
    try:
        t0 = time.perf_counter()
        names = await fill(api_url, nodes)
        print(
            f"-- N={nodes} nodes, {nodes} bound pods (filled in {time.perf_counter() - t0:.1f}s)", flush=True
        )
        book, runner, stream_port = await launcher_side()
        port = free_port()
        with tempfile.TemporaryDirectory() as tmp:
            extender = start_extender(api_url, port, f"ws://127.0.0.1:{stream_port}/v1/demand", Path(tmp))
            await wait_ready(port)
            for node_cache in (True, False):
                requests = await asyncio.to_thread(
                    build_requests, port, names, node_cache, 64 if node_cache else 8
                )
                label = (
                    f"N={nodes:5d} nodeCacheCapable={str(node_cache).lower():5s} ({sample_size(nodes)} names)"
                )
                if node_cache:
                    modes = [
                        Mode("serial", 1),
                        Mode("rate", args.connections, rate=args.rate),
                        Mode("saturate", args.connections),
                    ]
                    warmup, duration = args.warmup, args.duration
                else:  # not a target: one short serial run per repetition
                    modes, warmup, duration = [Mode("serial", 1)], 0.5, args.duration / 2
                await asyncio.to_thread(
                    measure, label, port, extender.pid, requests, modes, args.runs, warmup, duration
                )
            lat = await demand_latency(api_url, book, args.demand_pods)
            ms = sorted(x * 1000 for x in lat)
            if ms:
                print(
                    f"N={nodes:5d} unschedulable->demand: p50 {percentile(ms, 0.5):6.2f} ms  "
                    f"p99 {percentile(ms, 0.99):6.2f} ms  max {ms[-1]:6.2f} ms  "
                    f"(n={len(ms)}/{args.demand_pods})",
                    flush=True,
                )
    finally:
        if extender is not None:
            extender.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                extender.wait(15)
        if runner is not None:
            await runner.cleanup()
        stop_event.set()
        apiserver.join(15)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, nargs="*", default=[1000, 5000])
    parser.add_argument(
        "--runs", type=int, default=3, help="repetitions of every mode; the median is reported"
    )
    parser.add_argument("--warmup", type=float, default=0.5, help="seconds of load before measuring")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds measured per run")
    parser.add_argument("--rate", type=float, default=3000.0, help="calls per second in the open-loop mode")
    parser.add_argument(
        "--connections", type=int, default=2, help="connections in the open-loop and saturate modes"
    )
    parser.add_argument("--demand-pods", type=int, default=200)
    args = parser.parse_args(argv)
    configure_logging("bench", level="warning")
    pin(other_cpus())
    print(
        f"cpus: {sorted(os.sched_getaffinity(0) | {EXTENDER_CPU})}; extender pinned to cpu {EXTENDER_CPU}, "
        f"load generator and API server on {sorted(other_cpus())}; python {sys.version.split()[0]}",
        flush=True,
    )
    started = time.perf_counter()
    for n in args.nodes:
        asyncio.run(bench_size(n, args))
    print(f"total {time.perf_counter() - started:.0f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
