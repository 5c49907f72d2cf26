"""The cluster side of the scale benchmark: an API server filled with N nodes and M pods, churn.

Two drivers with one interface (:class:`ClusterDriver`):

* :class:`LocalDriver`: the local API server (:mod:`localcluster.apiserver`) in a process of
  its own, filled in-process: every object is committed to its store as the API would commit
  it (one resourceVersion each, serialized on the wire like any other), without 150,000 HTTP
  round trips; churn is written the same way, so its rate is not capped by a Python HTTP client.
  Controllers are off: nothing owns the pods' ReplicaSets, and garbage collection would reap them.
* :class:`HTTPDriver`: any API server over HTTP (``--kubeconfig``: a real one), through
  kubernetes-asyncio's client configuration and plain aiohttp requests; slower to fill.

Every churn write is returned as ``(resourceVersion, wall-clock time)``: comparing what an
informer has applied with these says how far behind it is, in writes and in seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import os
import random
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
import orjson
from scale_objects import NAMESPACES, REPLICAS_PER_DEPLOYMENT, Obj, PodFactory, node_object, pending_pod

from localcluster.apiserver.service import NS_KEY, POD_KEY
from localcluster.apiserver.store import Store

NODE_KEY = ("", "nodes")
Write = tuple[int, float]
# Churn is written in ticks of this many seconds (the API server serves watches in between).
TICK = 0.02


def namespaces(pods: int) -> list[str]:
    """The namespaces :class:`PodFactory` puts ``pods`` pods in."""
    deployments = -(-pods // REPLICAS_PER_DEPLOYMENT)
    return [f"team-{i}" for i in range(min(NAMESPACES, deployments))]


def namespace_object(name: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


@dataclass(frozen=True)
class Filled:
    nodes: int
    pods: int
    seconds: float
    names: list[str]  # node names, for kube-scheduler-shaped filter calls


@dataclass(frozen=True)
class Churned:
    """What one churn step wrote: each write's resourceVersion and time, in order."""

    target_rate: float
    seconds: float
    writes: list[Write]

    @property
    def rate(self) -> float:
        return len(self.writes) / self.seconds if self.seconds > 0 else 0.0


class ClusterDriver(Protocol):
    url: str

    async def fill(self, nodes: int, pods: int) -> Filled: ...

    async def pending(self, count: int) -> float: ...

    async def churn(self, rate: float, seconds: float) -> Churned: ...

    async def close(self) -> None: ...


@dataclass
class Churner:
    """Writes pod creations, deletions and status updates (a third each) at a set rate.

    ``write`` commits one pod (None: delete) and returns the write's resourceVersion; the pool of
    running pods keeps its size, so a long run does not change the cluster's size.
    """

    factory: PodFactory
    live: list[Obj] = field(default_factory=list)
    rng: random.Random = field(default_factory=lambda: random.Random(1))

    def next_write(self) -> tuple[str, Obj]:
        """The next write: ("create" | "update" | "delete", pod), keeping ``live`` current."""
        kind = ("create", "update", "delete")[self.rng.randrange(3)]
        if kind == "create" or len(self.live) < 2:
            pod = self.factory.running(self.rng.randrange(max(1, len(self.live))))
            self.live.append(pod)
            return "create", pod
        index = self.rng.randrange(len(self.live))
        if kind == "update":
            pod = self.factory.restarted(self.live[index])
            self.live[index] = pod
            return "update", pod
        pod = self.live[index]
        self.live[index] = self.live[-1]
        self.live.pop()
        return "delete", pod


async def paced(rate: float, seconds: float, write: Any) -> list[Write]:
    """Call ``write()`` (async, returning a resourceVersion) ``rate`` times a second for ``seconds``."""
    writes: list[Write] = []
    start = time.monotonic()
    done = 0
    while (elapsed := time.monotonic() - start) < seconds:
        due = int(elapsed * rate) + 1
        while done < due:
            writes.append((await write(), time.time()))
            done += 1
        await asyncio.sleep(TICK)
    return writes


# Local: the API server in a child process ----------------------------------------------------


class StoreFiller:
    """Runs in the API server's process: commits objects straight to its store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.churner: Churner | None = None

    async def fill(self, nodes: int, pods: int) -> Filled:
        started = time.perf_counter()
        now = time.time()
        names = []
        for i in range(nodes):
            node = node_object(i, now)
            names.append(node["metadata"]["name"])
            self.store.put(NODE_KEY, node, None)
        for namespace in namespaces(pods):
            self.store.put(NS_KEY, namespace_object(namespace), None)
        factory = PodFactory(nodes=max(1, nodes), now=now)
        live = []
        for i in range(pods):
            live.append(self.store.put(POD_KEY, factory.running(), None))
            if i % 5000 == 4999:
                await asyncio.sleep(0)  # answer probes while filling
        self.churner = Churner(factory, live)
        return Filled(nodes, pods, time.perf_counter() - started, names)

    async def pending(self, count: int) -> float:
        now = time.time()
        for i in range(count):
            self.store.put(POD_KEY, pending_pod(i, now), None)
        return time.time()

    async def churn(self, rate: float, seconds: float) -> Churned:
        churner = self.churner
        assert churner is not None, "fill first"

        # Made before the clock starts: building realistic pods would otherwise cap the rate
        # offered (this process is also the API server serving the watches).
        planned = iter([churner.next_write() for _ in range(int(rate * seconds) + 1)])

        async def write() -> int:
            kind, pod = next(planned)
            if kind == "delete":
                return int(self.store.remove(POD_KEY, pod)["metadata"]["resourceVersion"])
            meta = pod["metadata"]
            old = self.store.get(POD_KEY, meta["namespace"], meta["name"]) if kind == "update" else None
            return int(self.store.put(POD_KEY, pod, old)["metadata"]["resourceVersion"])

        started = time.monotonic()
        writes = await paced(rate, seconds, write)
        return Churned(rate, time.monotonic() - started, writes)


def apiserver_main(conn: Any, history: int, buffer: int) -> None:
    """The child: an API server on loopback, then commands from ``conn`` until "stop".

    It asks for a higher CPU priority (where allowed): on a cluster the API server has machines
    of its own, and starved here it would cap the churn rate instead of the services measured.
    """
    from localcluster.apiserver import APIServer

    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, 0, -5)

    async def run() -> None:
        server = APIServer(history_limit=history, watcher_buffer=buffer, controllers=False)
        conn.send(await server.start())
        filler = StoreFiller(server.store)
        try:
            while True:
                op, args = await asyncio.to_thread(conn.recv)
                if op == "stop":
                    break
                conn.send(await getattr(filler, op)(*args))
        finally:
            await server.stop()

    asyncio.run(run())


class LocalDriver:
    """The local API server in a child process, driven over a pipe."""

    def __init__(self, history: int = 50_000, buffer: int = 50_000) -> None:
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self.process = ctx.Process(target=apiserver_main, args=(child, history, buffer), daemon=True)
        self.process.start()
        self.url = ""

    async def start(self) -> str:
        self.url = await self._recv(60.0)
        return self.url

    async def _recv(self, timeout: float) -> Any:  # noqa: ASYNC109
        ready = await asyncio.to_thread(self._conn.poll, timeout)
        if not ready:
            raise TimeoutError("the API server process did not answer")
        return self._conn.recv()

    async def _call(self, op: str, *args: Any, timeout: float = 900.0) -> Any:  # noqa: ASYNC109
        self._conn.send((op, args))
        return await self._recv(timeout)

    async def fill(self, nodes: int, pods: int) -> Filled:
        filled: Filled = await self._call("fill", nodes, pods)
        return filled

    async def pending(self, count: int) -> float:
        at: float = await self._call("pending", count)
        return at

    async def churn(self, rate: float, seconds: float) -> Churned:
        churned: Churned = await self._call("churn", rate, seconds, timeout=seconds + 120)
        return churned

    @property
    def pid(self) -> int:
        return int(self.process.pid or 0)

    async def close(self) -> None:
        with contextlib.suppress(OSError, BrokenPipeError):
            self._conn.send(("stop", ()))
        await asyncio.to_thread(self.process.join, 15)
        if self.process.is_alive():
            self.process.kill()
            await asyncio.to_thread(self.process.join, 5)


# Any API server over HTTP --------------------------------------------------------------------


class HTTPDriver:
    """An API server given by a kubeconfig; objects are created, bound and updated over HTTP."""

    CONCURRENCY = 32

    def __init__(self, url: str, headers: dict[str, str], ssl: Any = None) -> None:
        self.url = url
        self._headers = {**headers, "Content-Type": "application/json"}
        self._ssl = ssl
        self._session: aiohttp.ClientSession | None = None
        self._namespaces: set[str] = set()
        self.churner: Churner | None = None

    @classmethod
    async def from_kubeconfig(cls, path: str) -> HTTPDriver:
        from kubernetes_asyncio import config
        from kubernetes_asyncio.client import Configuration

        configuration = Configuration()
        await config.load_kube_config(config_file=path, client_configuration=configuration)
        headers = {}
        token = configuration.api_key.get("authorization") or configuration.api_key.get("BearerToken")
        if token:
            headers["Authorization"] = token if token.startswith("Bearer ") else f"Bearer {token}"
        host = str(configuration.host or "")
        ssl: Any = None
        if host.startswith("https"):
            import ssl as ssl_module

            context = ssl_module.create_default_context(cafile=configuration.ssl_ca_cert)
            if configuration.cert_file:
                context.load_cert_chain(configuration.cert_file, configuration.key_file)
            if not configuration.verify_ssl:
                context.check_hostname = False
                context.verify_mode = ssl_module.CERT_NONE
            ssl = context
        return cls(host, headers, ssl)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers=self._headers, connector=aiohttp.TCPConnector(ssl=self._ssl, limit=self.CONCURRENCY)
            )
        return self._session

    async def _send(self, method: str, path: str, body: Obj | None = None, ok: tuple[int, ...] = ()) -> Obj:
        async with self._client().request(
            method, self.url + path, data=orjson.dumps(body) if body is not None else None
        ) as response:
            raw = await response.read()
            if response.status >= 300 and response.status not in ok:
                raise RuntimeError(f"{method} {path}: HTTP {response.status}: {raw[:300]!r}")
            answer: Obj = orjson.loads(raw) if raw else {}
            return answer

    @staticmethod
    def _for_create(obj: Obj) -> Obj:
        """What a client sends: no uid, resourceVersion, managedFields or status (the server's),
        and no ownerReferences (a real garbage collector reaps pods whose owner does not exist)."""
        server_side = ("uid", "resourceVersion", "managedFields", "ownerReferences")
        meta = {k: v for k, v in obj["metadata"].items() if k not in server_side}
        return {**{k: v for k, v in obj.items() if k != "status"}, "metadata": meta}

    async def _create_pod(self, pod: Obj) -> int:
        namespace = pod["metadata"]["namespace"]
        if namespace not in self._namespaces:
            await self._send("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}}, ok=(409,))
            self._namespaces.add(namespace)
        created = await self._send("POST", f"/api/v1/namespaces/{namespace}/pods", self._for_create(pod))
        created["status"] = pod["status"]
        path = f"/api/v1/namespaces/{namespace}/pods/{pod['metadata']['name']}/status"
        updated = await self._send("PUT", path, created)
        return int(updated["metadata"]["resourceVersion"])

    async def _gathered(self, calls: list[Any]) -> None:
        semaphore = asyncio.Semaphore(self.CONCURRENCY)

        async def one(call: Any) -> None:
            async with semaphore:
                await call

        await asyncio.gather(*(one(call) for call in calls))

    async def fill(self, nodes: int, pods: int) -> Filled:
        started = time.perf_counter()
        now = time.time()
        node_objects = [node_object(i, now) for i in range(nodes)]

        async def create_node(node: Obj) -> None:
            created = await self._send("POST", "/api/v1/nodes", self._for_create(node))
            created["status"] = node["status"]
            await self._send("PUT", f"/api/v1/nodes/{node['metadata']['name']}/status", created)

        await self._gathered([create_node(n) for n in node_objects])
        factory = PodFactory(nodes=max(1, nodes), now=now)
        live = [factory.running() for _ in range(pods)]
        await self._gathered([self._create_pod(p) for p in live])
        self.churner = Churner(factory, live)
        return Filled(
            nodes, pods, time.perf_counter() - started, [n["metadata"]["name"] for n in node_objects]
        )

    async def pending(self, count: int) -> float:
        now = time.time()
        await self._gathered([self._create_pod(pending_pod(i, now)) for i in range(count)])
        return time.time()

    async def churn(self, rate: float, seconds: float) -> Churned:
        churner = self.churner
        assert churner is not None, "fill first"

        async def write() -> int:
            kind, pod = churner.next_write()
            meta = pod["metadata"]
            path = f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}"
            if kind == "create":
                return await self._create_pod(pod)
            if kind == "delete":
                deleted = await self._send("DELETE", path, {"gracePeriodSeconds": 0})
                return int((deleted.get("metadata") or {}).get("resourceVersion") or 0)
            current = await self._send("GET", path)
            current["status"] = pod["status"]
            return int((await self._send("PUT", path + "/status", current))["metadata"]["resourceVersion"])

        started = time.monotonic()
        writes = await paced(rate, seconds, write)
        return Churned(rate, time.monotonic() - started, writes)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
