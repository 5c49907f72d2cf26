"""Extender benchmark: request-path latency and throughput, and pod-Unschedulable-to-demand latency.

Processes (loopback only): the local API server (``localcluster``) filled with N nodes and N bound
pods; the extender (``python -m extender``) pinned to CPU 0 when the machine allows; load
generators on the other CPUs sending filter+prioritize pairs with bodies shaped like the captured
kube-scheduler requests (the pod of ``v1.28-filter-nodecache-request.json``; as many candidate
nodes as kube-scheduler's adaptive ``percentageOfNodesToScore`` sends, at least 100); and this
process, which hosts the launcher's ``DemandServer`` and measures how long a pod that turns
Unschedulable in the API takes to arrive there as demand.

Targets (issue 4): p99 < 2 ms and >= 3,000 req/s at 5,000 nodes with nodeCacheCapable; demand
p99 < 50 ms. Prints one line per configuration. Bounded: the whole run takes about two minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from launcher.demand import DemandBook, DemandServer  # noqa: E402
from shared.logs import configure_logging  # noqa: E402

FIXTURE = REPO.parent / "shared" / "fixtures" / "kube-scheduler" / "v1.28-filter-nodecache-request.json"
FULLNODES_FIXTURE = (
    REPO.parent / "shared" / "fixtures" / "kube-scheduler" / "v1.24-filter-fullnodes-request.json"
)
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


async def drive(
    port: int, requests: list[bytes], connections: int, warmup: float, duration: float
) -> list[float]:
    latencies: list[float] = []
    start = time.perf_counter()
    measure_from = start + warmup
    stop_at = measure_from + duration

    async def connection(offset: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        i = offset
        while True:
            request = requests[i % len(requests)]
            i += 1
            sent = time.perf_counter()
            if sent >= stop_at:
                break
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(head.decode(errors="replace"))
            await reader.readexactly(length)
            if sent >= measure_from:
                latencies.append(time.perf_counter() - sent)
        writer.close()

    await asyncio.gather(*(connection(c * 7) for c in range(connections)))
    return latencies


def loadgen_main(args: tuple[int, list[bytes], int, float, float], out: Any) -> None:
    pin(other_cpus())
    port, requests, connections, warmup, duration = args
    out.put(asyncio.run(drive(port, requests, connections, warmup, duration)))


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
    if os.path.exists("/usr/bin/taskset") and EXTENDER_CPU in os.sched_getaffinity(0):
        command = ["taskset", "-c", str(EXTENDER_CPU), *command]
    return subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.DEVNULL)


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


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(label: str, latencies: list[float], duration: float) -> None:
    if not latencies:
        print(f"{label}: no samples", flush=True)
        return
    ms = [x * 1000 for x in latencies]
    print(
        f"{label}: {len(ms) / duration:8.0f} req/s  p50 {percentile(ms, 0.5):6.3f} ms  "
        f"p99 {percentile(ms, 0.99):6.3f} ms  p999 {percentile(ms, 0.999):6.3f} ms  (n={len(ms)})",
        flush=True,
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


def run_load(
    port: int, requests: list[bytes], generators: int, connections: int, duration: float
) -> list[float]:
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    share = max(1, len(requests) // generators // 2 * 2)
    procs = [
        ctx.Process(
            target=loadgen_main,
            args=((port, requests[g * share : (g + 1) * share] or requests, connections, 1.0, duration), out),
        )
        for g in range(generators)
    ]
    for p in procs:
        p.start()
    latencies: list[float] = []
    for _ in procs:
        latencies.extend(out.get(timeout=duration + 60))
    for p in procs:
        p.join(10)
    return latencies


async def bench_size(
    nodes: int, duration: float, generators: int, connections: int, demand_pods: int
) -> None:
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
                count = 64 if node_cache else 8
                requests = await asyncio.to_thread(build_requests, port, names, node_cache, count)
                label = f"N={nodes:5d} nodeCacheCapable={str(node_cache).lower():5s}"
                label += f" ({sample_size(nodes)} candidates)"
                # kube-scheduler calls extenders from one scheduling cycle at a time: one
                # connection gives the latency it sees; several give the service's capacity.
                runs = [("serial", 1)] + ([("parallel", connections)] if node_cache else [])
                for mode, conns in runs:
                    latencies = await asyncio.to_thread(run_load, port, requests, generators, conns, duration)
                    report(f"{label} {mode:8s} x{conns}", latencies, duration)
            lat = await demand_latency(api_url, book, demand_pods)
            ms = [x * 1000 for x in lat]
            if ms:
                print(
                    f"N={nodes:5d} unschedulable->demand: p50 {percentile(ms, 0.5):6.2f} ms  "
                    f"p99 {percentile(ms, 0.99):6.2f} ms  max {max(ms):6.2f} ms  (n={len(ms)}/{demand_pods})",
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
    parser.add_argument("--duration", type=float, default=5.0, help="seconds measured per configuration")
    parser.add_argument("--generators", type=int, default=1, help="load-generator processes")
    parser.add_argument("--connections", type=int, default=4, help="keep-alive connections per generator")
    parser.add_argument("--demand-pods", type=int, default=200)
    args = parser.parse_args(argv)
    configure_logging("bench", level="warning")
    print(f"cpus: {sorted(os.sched_getaffinity(0))}; extender pinned to cpu {EXTENDER_CPU}", flush=True)
    for n in args.nodes:
        asyncio.run(bench_size(n, args.duration, args.generators, args.connections, args.demand_pods))
    return 0


if __name__ == "__main__":
    sys.exit(main())
