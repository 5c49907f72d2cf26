"""What an extender costs kube-scheduler: pods/s of a scheduling loop with no extender, with a
passthrough extender and with jitnode's, measured in the same run (issue 11).

kube-scheduler schedules one pod at a time: its in-tree filters until enough feasible nodes
are found, then for that pod one ``filter`` call and (when the profile has it) one
``prioritize`` call to each extender, serially, over a keep-alive HTTP/1.1 connection, then its
score plugins. The load generator here does the same:

* **in-tree work** ("no extender"): the local scheduler's filter plugins
  (:mod:`localcluster.scheduler.filters`), round-robin from where the last cycle stopped until
  ``numFeasibleNodesToFind`` nodes pass (kube-scheduler's adaptive ``percentageOfNodesToScore``:
  46% of 500 nodes, 10% of 5,000), then its score plugins on those nodes. It is Python, so it
  models kube-scheduler's per-pod work in shape, not in speed; the calls-alone columns leave
  it out and give the strictest ratio.
* **the calls**: the pod of the captured ``v1.28-filter-nodecache-request.json`` with a new uid
  every cycle (jitnode never sees the same pod twice, as in a real cluster), the feasible names
  as ``NodeNames``, encoded as Go encodes ``ExtenderArgs``.

Three modes, interleaved ``--repeats`` times so this machine's drift hits all alike, each for
``--seconds``: no extender; ``bench/passthrough_extender.py`` (echoes the names, scores 0);
``python -m extender`` with its cache listed from the local API server (N nodes, N bound
pods). Both extenders are pinned to CPU 0, the load generator and the API server to the other.
The profile is ``--verbs``, by default what ``manifests/scheduler/config.yaml`` ships.
Reported: medians of pods/s; jitnode/passthrough; jitnode's added microseconds per pod.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from extender_bench import (  # noqa: E402
    EXTENDER_CPU,
    FIXTURE,
    Caller,
    apiserver_main,
    fill,
    free_port,
    launcher_side,
    node_object,
    other_cpus,
    pin,
    pin_to_extender_cpu,
    pod_object,
    sample_size,
    start_extender,
    wait_ready,
)

from extender import runtime  # noqa: E402
from localcluster.scheduler.cache import ClusterCache, NodeInfo, PodUsage  # noqa: E402
from localcluster.scheduler.filters import inter_pod_state, run_filters  # noqa: E402
from localcluster.scheduler.model import PodFacts, pod_facts  # noqa: E402
from localcluster.scheduler.scoring import plugin_scores  # noqa: E402
from shared.logs import configure_logging  # noqa: E402

MANIFEST = REPO / "manifests" / "scheduler" / "config.yaml"
PREFIX = "/jitnode"
_UID_WIDTH = 12
IN_TREE = ""
CALLS_ALONE = ", calls alone"
PACED = ", paced"
# kube-scheduler's own per-pod time with no extender, as measured on a real control plane
# (issue 11: v1.28, 500 nodes, 1,560 pods/s, the fastest figure reported): the gap a paced
# loop leaves between pods. A conservative default: a slower scheduler leaves more room.
KUBE_SCHEDULER_US = 640.0


def shipped_verbs() -> tuple[str, ...]:
    """The verbs the shipped KubeSchedulerConfiguration's extender answers."""
    config = yaml.safe_load(MANIFEST.read_text())
    extender = (config.get("extenders") or [{}])[0]
    verbs = [
        verb
        for key, verb in (("filterVerb", "filter"), ("prioritizeVerb", "prioritize"))
        if extender.get(key)
    ]
    return tuple(verbs)


# The scheduling loop's own work ---------------------------------------------------------------


class InTree:
    """kube-scheduler's per-pod in-tree work over N nodes, by the local scheduler's plugins."""

    def __init__(self, names: Sequence[str]) -> None:
        self.cache = ClusterCache()
        for i, name in enumerate(names):
            self.cache.set_node(node_object(name, i))
            bound = pod_object(f"bound-{i}", name)
            bound["metadata"]["uid"] = f"bound-{i}"
            self.cache.add_pod(name, PodUsage.of(pod_facts(bound)))
        self.nodes: list[NodeInfo] = self.cache.nodes()
        self.want = sample_size(len(self.nodes))
        self.next_start = 0

    def cycle(self, pod: PodFacts) -> list[str]:
        """Feasible names for ``pod`` (as ``findNodesThatPassFilters`` samples them), scored."""
        nodes = self.nodes
        count = len(nodes)
        inter_pod = inter_pod_state(pod, nodes)
        feasible: list[NodeInfo] = []
        checked = 0
        while len(feasible) < self.want and checked < count:
            info = nodes[(self.next_start + checked) % count]
            checked += 1
            if run_filters(pod, info, (), inter_pod) is None:
                feasible.append(info)
        self.next_start = (self.next_start + checked) % count
        plugin_scores(pod, feasible)
        return [info.name for info in feasible]


@dataclass(frozen=True)
class Workload:
    pod_head: bytes  # ``{"Pod":{... "uid":"`` up to the uid
    pod_tail: bytes  # from the uid's closing quote to the end of the pod
    facts: PodFacts

    @classmethod
    def from_fixture(cls) -> Workload:
        pod = orjson.loads(FIXTURE.read_bytes())["Pod"]
        marker = "0" * _UID_WIDTH
        pod["metadata"]["uid"] = marker
        encoded = orjson.dumps(pod)
        at = encoded.index(marker.encode())
        return cls(b'{"Pod":' + encoded[:at], encoded[at + _UID_WIDTH :], pod_facts(pod))

    def body(self, serial: int, names: list[str]) -> bytes:
        uid = b"%0*d" % (_UID_WIDTH, serial)
        return b"".join(
            (self.pod_head, uid, self.pod_tail, b',"Nodes":null,"NodeNames":', orjson.dumps(names), b"}")
        )


def request(port: int, verb: str, body: bytes) -> bytes:
    head = (
        f"POST {PREFIX}/{verb} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


@dataclass(frozen=True)
class Run:
    pods: int
    seconds: float  # wall time of the measured cycles
    call_seconds: float  # of which waiting for extender answers

    @property
    def per_pod(self) -> float:
        return self.seconds / self.pods

    @property
    def calls_per_pod(self) -> float:
        return self.call_seconds / self.pods


async def loop(
    port: int, verbs: Sequence[str], in_tree: InTree, pacing: str, work: Workload, seconds: float, pace: float
) -> Run:
    """The scheduling loop for ``seconds`` after a short warm-up; ``port`` 0: no extender.

    ``pacing`` is what happens between pods: ``IN_TREE`` the local scheduler's plugins,
    ``CALLS_ALONE`` nothing (the candidates of one in-tree cycle, calls back to back), ``PACED``
    ``pace`` seconds of busy work on this core, as kube-scheduler's own in-tree work takes."""
    caller: Caller | None = None
    transport: asyncio.BaseTransport | None = None
    if port:
        transport, caller = await asyncio.get_running_loop().create_connection(Caller, "127.0.0.1", port)
    fixed = in_tree.cycle(work.facts)
    serial = int(time.time() * 1000) % 10**9 * 1000  # uids new across runs, too
    pods = 0
    call_seconds = 0.0
    warm_until = time.perf_counter() + min(0.3, seconds / 4)
    started = stop_at = 0.0
    while True:
        now = time.perf_counter()
        if not started and now >= warm_until:
            started, stop_at, pods, call_seconds = now, now + seconds, 0, 0.0
        if started and now >= stop_at:
            break
        serial += 1
        if pacing == IN_TREE:
            feasible = in_tree.cycle(work.facts)
        else:
            feasible = fixed
            spin_until = time.perf_counter() + (pace if pacing == PACED else 0.0)
            while time.perf_counter() < spin_until:
                pass
        if caller is not None:
            body = work.body(serial, feasible)
            sent = time.perf_counter()
            for verb in verbs:
                await caller.call(request(port, verb, body))
            call_seconds += time.perf_counter() - sent
        pods += 1
    if transport is not None:
        transport.close()
    return Run(pods, time.perf_counter() - started, call_seconds)


LoadArgs = tuple[int, tuple[str, ...], InTree, str, Workload, float, float]


def loadgen_main(args: LoadArgs, out: Any) -> None:
    pin(other_cpus())
    with asyncio.Runner(loop_factory=runtime.loop_factory()) as runner:
        out.put(runner.run(loop(*args)))


def run_once(args: LoadArgs) -> Run:
    """One measurement in a fresh load-generator process (forked: it inherits the in-tree cache)."""
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    process = ctx.Process(target=loadgen_main, args=(args, out))
    process.start()
    try:
        result: Run = out.get(timeout=args[5] + 60)
    finally:
        process.join(10)
    return result


# Orchestration ---------------------------------------------------------------------------------


def start_passthrough(port: int) -> subprocess.Popen[bytes]:
    script = str(REPO / "bench" / "passthrough_extender.py")
    return pin_to_extender_cpu(
        subprocess.Popen([sys.executable, script, str(port), PREFIX], cwd=REPO, stdout=subprocess.DEVNULL)
    )


async def wait_listening(port: int, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


@dataclass(frozen=True)
class Row:
    nodes: int
    candidates: int
    none: float  # median seconds per pod, no extender
    passthrough: float
    jitnode: float
    passthrough_calls: float  # median seconds per pod, the calls back to back
    jitnode_calls: float
    none_paced: float  # median seconds per pod, kube-scheduler's own time between pods
    passthrough_paced: float
    jitnode_paced: float


def measure(
    ports: dict[str, int], verbs: tuple[str, ...], in_tree: InTree, work: Workload, args: argparse.Namespace
) -> dict[str, list[Run]]:
    runs: dict[str, list[Run]] = {mode: [] for mode in ports}
    for repeat in range(args.repeats):
        for mode, port in ports.items():
            pacing = next((p for p in (CALLS_ALONE, PACED) if mode.endswith(p)), IN_TREE)
            run = run_once((port, verbs, in_tree, pacing, work, args.seconds, args.kube_scheduler_us / 1e6))
            runs[mode].append(run)
            print(
                f"   repeat {repeat + 1} {mode:25s} {run.pods / run.seconds:7.0f} pods/s  "
                f"{run.per_pod * 1e6:7.0f} us/pod, of which calls {run.calls_per_pod * 1e6:6.0f} us",
                flush=True,
            )
    return runs


async def bench_size(nodes: int, verbs: tuple[str, ...], args: argparse.Namespace) -> Row:
    ctx = mp.get_context("fork")
    url_queue = ctx.Queue()
    stop_event = ctx.Event()
    apiserver = ctx.Process(target=apiserver_main, args=(url_queue, stop_event))
    apiserver.start()
    api_url = url_queue.get(timeout=30)
    processes: list[subprocess.Popen[bytes]] = []
    runner = None
    try:
        t0 = time.perf_counter()
        names = await fill(api_url, nodes)
        in_tree = await asyncio.to_thread(InTree, names)
        work = Workload.from_fixture()
        print(
            f"-- N={nodes}: {nodes} nodes and bound pods, {in_tree.want} candidates a pod, verbs "
            f"{','.join(verbs)} (set up in {time.perf_counter() - t0:.1f}s)",
            flush=True,
        )
        _, runner, stream_port = await launcher_side()
        ports = {"no extender": 0, "passthrough": free_port(), "jitnode": free_port()}
        ports |= {f"{mode}{CALLS_ALONE}": ports[mode] for mode in ("passthrough", "jitnode")}
        ports |= {f"{mode}{PACED}": ports[mode] for mode in ("no extender", "passthrough", "jitnode")}
        with tempfile.TemporaryDirectory() as tmp:
            processes.append(start_passthrough(ports["passthrough"]))
            processes.append(
                start_extender(
                    api_url, ports["jitnode"], f"ws://127.0.0.1:{stream_port}/v1/demand", Path(tmp)
                )
            )
            await wait_listening(ports["passthrough"])
            await wait_ready(ports["jitnode"])
            runs = await asyncio.to_thread(measure, ports, verbs, in_tree, work, args)
    finally:
        for process in processes:
            process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(15)
        if runner is not None:
            await runner.cleanup()
        stop_event.set()
        apiserver.join(15)

    def median(mode: str) -> float:
        return statistics.median(r.per_pod for r in runs[mode])

    return Row(
        nodes,
        in_tree.want,
        median("no extender"),
        median("passthrough"),
        median("jitnode"),
        median(f"passthrough{CALLS_ALONE}"),
        median(f"jitnode{CALLS_ALONE}"),
        median(f"no extender{PACED}"),
        median(f"passthrough{PACED}"),
        median(f"jitnode{PACED}"),
    )


def table(rows: Sequence[Row], verbs: Sequence[str], kube_scheduler_us: float) -> str:
    lines = [
        f"verbs: {','.join(verbs)}",
        f"paced: {kube_scheduler_us:.0f} us of kube-scheduler's own work between pods (--kube-scheduler-us)",
        "| nodes | candidates | paced: no extender pods/s | passthrough pods/s | jitnode pods/s "
        "| jitnode / none | **jitnode / passthrough** | jitnode adds us/pod "
        "| in-tree (Python): passthrough pods/s | jitnode pods/s | jitnode / passthrough "
        "| calls alone: passthrough us/pod | jitnode us/pod | jitnode / passthrough |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.nodes:,} | {r.candidates} | {1 / r.none_paced:,.0f} | {1 / r.passthrough_paced:,.0f} "
            f"| {1 / r.jitnode_paced:,.0f} | {r.none_paced / r.jitnode_paced:.2f} "
            f"| **{r.passthrough_paced / r.jitnode_paced:.2f}** "
            f"| {(r.jitnode_paced - r.passthrough_paced) * 1e6:+.0f} "
            f"| {1 / r.passthrough:,.0f} | {1 / r.jitnode:,.0f} | {r.passthrough / r.jitnode:.2f} "
            f"| {r.passthrough_calls * 1e6:.0f} | {r.jitnode_calls * 1e6:.0f} "
            f"| {r.passthrough_calls / r.jitnode_calls:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, nargs="*", default=[500, 5000])
    parser.add_argument(
        "--verbs",
        default=",".join(shipped_verbs()),
        help="the profile's extender verbs: filter or filter,prioritize (default: what the manifest ships)",
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="interleaved repetitions; medians are reported"
    )
    parser.add_argument("--seconds", type=float, default=2.0, help="measured seconds per mode and repetition")
    parser.add_argument(
        "--kube-scheduler-us",
        type=float,
        default=KUBE_SCHEDULER_US,
        help="kube-scheduler's own time per pod in the paced loop (default: the fastest real figure)",
    )
    args = parser.parse_args(argv)
    verbs = tuple(v.strip() for v in args.verbs.split(",") if v.strip())
    if not verbs or any(v not in ("filter", "prioritize") for v in verbs):
        parser.error("--verbs: filter, or filter,prioritize")
    configure_logging("bench", level="warning")
    pin(other_cpus())
    print(
        f"extenders pinned to cpu {EXTENDER_CPU}, load generator and API server on {sorted(other_cpus())}; "
        f"python {sys.version.split()[0]}",
        flush=True,
    )
    started = time.perf_counter()
    rows = [asyncio.run(bench_size(n, verbs, args)) for n in args.nodes]
    print(table(rows, verbs, args.kube_scheduler_us))
    print(
        "jitnode adds = its time per pod minus the passthrough's (paced); in-tree = the local scheduler's "
        "Python plugins between pods; calls alone = the extender calls back to back. "
        f"total {time.perf_counter() - started:.0f}s",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
