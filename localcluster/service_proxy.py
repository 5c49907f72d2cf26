"""A Kubernetes Service on loopback: one stable address in front of a changing set of endpoints.

kube-scheduler reaches the extenders, and the extenders reach the launcher, through Services.
What a rollout relies on is how a Service behaves while its Pods come and go, so that is what
this emulates, at the TCP level as kube-proxy does:

* an endpoint receives new connections only while it is *ready*: a probe (like a readiness
  probe, or a label selector such as the launcher leader's) is polled every ``period`` seconds,
  and ``failure_threshold`` consecutive failures take the endpoint out of rotation, as the
  EndpointSlice controller does with a Pod that turns unready;
* :meth:`ServiceProxy.remove` takes an endpoint out at once, as deleting a Pod does before the
  kubelet sends SIGTERM;
* connections already established stay with their endpoint until either side closes them
  (conntrack keeps them), so a stopping server still has to drain its keep-alive clients;
* with no ready endpoint, a new connection is closed straight away (kube-proxy rejects it).

Plain asyncio streams, no HTTP parsing: any protocol passes (HTTP/1.1, WebSocket, TLS).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final

import aiohttp
import orjson

from shared.logs import get_logger

_log = get_logger(__name__)
_CHUNK: Final = 64 * 1024


@dataclass(frozen=True)
class Endpoint:
    """One backend address, named like the Pod behind it."""

    name: str
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


Probe = Callable[[aiohttp.ClientSession, Endpoint], Awaitable[bool]]


def http_ok(path: str = "/readyz") -> Probe:
    """A readiness probe: ready while ``GET path`` answers 200 (any failure is not ready)."""

    async def probe(session: aiohttp.ClientSession, endpoint: Endpoint) -> bool:
        async with session.get(endpoint.url + path) as response:
            await response.read()
            return response.status == 200

    return probe


def json_flag(path: str, key: str) -> Probe:
    """Ready while ``GET path`` answers 200 with a JSON object whose ``key`` is ``true``.

    Stands in for a label selector on state the Pod publishes about itself, such as the
    launcher leader's ``jitnode.io/launcher-leader`` label.
    """

    async def probe(session: aiohttp.ClientSession, endpoint: Endpoint) -> bool:
        async with session.get(endpoint.url + path) as response:
            body = await response.read()
            if response.status != 200:
                return False
            document = orjson.loads(body)
            return isinstance(document, dict) and document.get(key) is True

    return probe


@dataclass
class _State:
    endpoint: Endpoint
    ready: bool = False
    failures: int = 0
    connections: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class ServiceProxy:
    """A Service's virtual IP on 127.0.0.1 (see the module docstring)."""

    def __init__(
        self,
        probe: Probe,
        *,
        name: str = "service",
        period: float = 0.1,
        probe_timeout: float = 1.0,
        failure_threshold: int = 1,
    ) -> None:
        if period <= 0 or probe_timeout <= 0 or failure_threshold < 1:
            raise ValueError("need period > 0, probe_timeout > 0 and failure_threshold >= 1")
        self.name = name
        self.probe = probe
        self.period = period
        self.probe_timeout = probe_timeout
        self.failure_threshold = failure_threshold
        self._endpoints: dict[str, _State] = {}
        self._turn = itertools.count()
        self._server: asyncio.Server | None = None
        self._session: aiohttp.ClientSession | None = None
        self._prober: asyncio.Task[None] | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self.port = 0
        self.rejected = 0  # connections closed for want of a ready endpoint
        self.routed: dict[str, int] = {}  # connections handed to each endpoint, by name

    # Endpoints ----------------------------------------------------------------------------

    def add(self, name: str, port: int, host: str = "127.0.0.1") -> Endpoint:
        """Add an endpoint (not ready until its probe passes), as a new Pod's IP appears."""
        if name in self._endpoints:
            raise ValueError(f"endpoint {name!r} already exists")
        endpoint = Endpoint(name, host, port)
        self._endpoints[name] = _State(endpoint)
        return endpoint

    def remove(self, name: str) -> None:
        """Take an endpoint out of rotation now; its open connections are left alone."""
        state = self._endpoints.pop(name, None)
        if state is not None:
            self._set_ready(state, False)

    def ready(self) -> list[str]:
        """Names of the endpoints that new connections may go to."""
        return [name for name, state in self._endpoints.items() if state.ready]

    def is_ready(self, name: str) -> bool:
        state = self._endpoints.get(name)
        return state is not None and state.ready

    async def wait_ready(self, name: str, ready: bool = True, *, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Until endpoint ``name`` is (or, with ``ready=False``, is no longer) in rotation."""
        async with asyncio.timeout(timeout):
            while self.is_ready(name) != ready:
                state = self._endpoints.get(name)
                if state is None:
                    if ready:
                        raise KeyError(f"endpoint {name!r} is not part of {self.name}")
                    return
                state.changed.clear()
                await state.changed.wait()

    # Lifecycle ----------------------------------------------------------------------------

    async def start(self) -> int:
        """Listen on 127.0.0.1 and a free port, start probing; returns the port."""
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.probe_timeout))
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        self._prober = asyncio.create_task(self._probe_loop(), name=f"{self.name}-prober")
        return self.port

    async def stop(self) -> None:
        """Stop listening and probing and cut every proxied connection."""
        if self._server is not None:
            self._server.close()
        prober, self._prober = self._prober, None
        if prober is not None:
            prober.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await prober
        pipes = list(self._pipes)
        for pipe in pipes:
            pipe.cancel()
        await asyncio.gather(*pipes, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> ServiceProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # Probing ------------------------------------------------------------------------------

    async def _probe_loop(self) -> None:
        while True:
            states = list(self._endpoints.values())
            await asyncio.gather(*(self._probe_one(state) for state in states))
            await asyncio.sleep(self.period)

    async def _probe_one(self, state: _State) -> None:
        assert self._session is not None
        try:
            passed = await self.probe(self._session, state.endpoint)
        except (aiohttp.ClientError, TimeoutError, OSError, orjson.JSONDecodeError):
            passed = False
        if state.endpoint.name not in self._endpoints:
            return  # removed while probing: stays out
        if passed:
            state.failures = 0
            self._set_ready(state, True)
            return
        state.failures += 1
        if state.failures >= self.failure_threshold:
            self._set_ready(state, False)

    def _set_ready(self, state: _State, ready: bool) -> None:
        if state.ready != ready:
            state.ready = ready
            _log.info("service.endpoint", service=self.name, endpoint=state.endpoint.name, ready=ready)
        state.changed.set()

    # Proxying -----------------------------------------------------------------------------

    def _pick(self) -> _State | None:
        """Round robin over the ready endpoints."""
        ready = [state for state in self._endpoints.values() if state.ready]
        if not ready:
            return None
        return ready[next(self._turn) % len(ready)]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._pipes.add(task)
        try:
            await self._serve(reader, writer)
        finally:
            self._pipes.discard(task)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state = self._pick()
        if state is None:
            self.rejected += 1
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return
        endpoint = state.endpoint
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(endpoint.host, endpoint.port)
        except OSError as exc:
            _log.info("service.connect_failed", service=self.name, endpoint=endpoint.name, error=str(exc))
            self.rejected += 1
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return
        self.routed[endpoint.name] = self.routed.get(endpoint.name, 0) + 1
        state.connections += 1
        try:
            await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
        finally:
            state.connections -= 1
            for side in (writer, upstream_writer):
                side.close()
            for side in (writer, upstream_writer):
                with contextlib.suppress(OSError):
                    await side.wait_closed()


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    """Copy until EOF, then half-close ``sink`` so the far side sees the EOF too."""
    try:
        while chunk := await source.read(_CHUNK):
            sink.write(chunk)
            await sink.drain()
        if sink.can_write_eof():
            sink.write_eof()
    except OSError:
        sink.close()  # a reset on one side resets the other
