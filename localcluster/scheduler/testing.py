"""Builders and a recording extender, for tests and the demo of the local scheduler.

:func:`node` and :func:`pod` write the JSON a kubelet and a Deployment controller would;
:class:`RecordingExtender` is a tiny HTTP extender on 127.0.0.1:0 that records every request
body and answers with a pluggable policy, so tests can check what the scheduler sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import orjson
from aiohttp import web

Obj = dict[str, Any]
Answer = Callable[[str, Obj], Any]


def node(
    name: str,
    *,
    cpu: str = "4",
    memory: str = "16Gi",
    pods: str = "110",
    labels: Mapping[str, str] | None = None,
    taints: Sequence[Mapping[str, str]] = (),
    ready: bool = True,
    unschedulable: bool = False,
    extra_allocatable: Mapping[str, str] | None = None,
) -> Obj:
    """A Node with allocatable = capacity and a Ready condition."""
    allocatable = {"cpu": cpu, "memory": memory, "pods": pods, **(extra_allocatable or {})}
    spec: Obj = {}
    if taints:
        spec["taints"] = [dict(t) for t in taints]
    if unschedulable:
        spec["unschedulable"] = True
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "spec": spec,
        "status": {
            "capacity": dict(allocatable),
            "allocatable": allocatable,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True" if ready else "False",
                    "reason": "KubeletReady" if ready else "KubeletNotReady",
                    "message": "ok",
                }
            ],
        },
    }


def pod(
    name: str,
    *,
    namespace: str = "default",
    labels: Mapping[str, str] | None = None,
    cpu: str | None = "1",
    memory: str | None = "1Gi",
    extra_requests: Mapping[str, str] | None = None,
    priority: int | None = None,
    scheduler_name: str | None = None,
    node_selector: Mapping[str, str] | None = None,
    affinity: Obj | None = None,
    tolerations: Sequence[Obj] = (),
    init_containers: Sequence[Obj] = (),
    topology_spread: Sequence[Obj] = (),
) -> Obj:
    """A pending Pod with one container requesting ``cpu`` and ``memory``."""
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    requests.update(extra_requests or {})
    spec: Obj = {
        "containers": [
            {"name": "main", "image": "registry.k8s.io/pause:3.9", "resources": {"requests": requests}}
        ]
    }
    if init_containers:
        spec["initContainers"] = [dict(c) for c in init_containers]
    if priority is not None:
        spec["priority"] = priority
    if scheduler_name is not None:
        spec["schedulerName"] = scheduler_name
    if node_selector:
        spec["nodeSelector"] = dict(node_selector)
    if affinity:
        spec["affinity"] = affinity
    if tolerations:
        spec["tolerations"] = [dict(t) for t in tolerations]
    if topology_spread:
        spec["topologySpreadConstraints"] = [dict(c) for c in topology_spread]
    metadata: Obj = {"name": name, "namespace": namespace}
    if labels:
        metadata["labels"] = dict(labels)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


def pass_all(verb: str, args: Obj) -> Any:
    """Filter passes every candidate, in the shape the request asked for; prioritize scores 0."""
    names = candidate_names(args)
    if verb == "filter":
        if args.get("NodeNames") is not None:
            return {"NodeNames": names, "FailedNodes": {}, "Error": ""}
        return {"Nodes": args["Nodes"], "FailedNodes": {}, "Error": ""}
    return [{"Host": n, "Score": 0} for n in names]


def candidate_names(args: Mapping[str, Any]) -> list[str]:
    if args.get("NodeNames") is not None:
        return list(args["NodeNames"])
    return [item["metadata"]["name"] for item in (args.get("Nodes") or {}).get("items") or []]


@dataclass
class Call:
    verb: str
    body: bytes
    content_type: str

    @property
    def json(self) -> Obj:
        decoded: Obj = orjson.loads(self.body)
        return decoded


@dataclass
class RecordingExtender:
    """An HTTP extender that records requests; ``answer(verb, args)`` builds the JSON answer.

    ``status`` forces an HTTP status, ``delay`` sleeps before answering (to trip timeouts).
    """

    answer: Answer = pass_all
    status: int = 200
    delay: float = 0.0
    calls: list[Call] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    url: str = ""

    def verbs(self) -> list[str]:
        return [c.verb for c in self.calls]

    async def _handle(self, request: web.Request) -> web.Response:
        verb = request.match_info["verb"]
        body = await request.read()
        self.calls.append(Call(verb, body, request.content_type))
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.status != 200:
            return web.Response(status=self.status, text="boom")
        return web.Response(
            body=orjson.dumps(self.answer(verb, orjson.loads(body))), content_type="application/json"
        )

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/scheduler/{verb}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        port = getattr(server, "sockets", [])[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/scheduler"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> RecordingExtender:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


async def wait_for(check: Callable[[], Any], *, limit: float = 5.0, interval: float = 0.02) -> Any:
    """Poll ``check`` (sync or async) until it returns something truthy; fail after ``limit`` seconds."""
    async with asyncio.timeout(limit):
        while True:
            result = check()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return result
            await asyncio.sleep(interval)
