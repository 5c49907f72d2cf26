"""The loopback Service: routing to ready endpoints only, leaving open connections alone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

from localcluster.service_proxy import ServiceProxy, http_ok, json_flag

PERIOD = 0.02


@dataclass
class Backend:
    """An HTTP server that says who it is, with a readiness switch and a leader flag."""

    name: str
    ready: bool = True
    leader: bool = False
    runner: web.AppRunner | None = None
    port: int = 0

    async def start(self) -> Backend:
        app = web.Application()
        app.router.add_get("/whoami", self._whoami)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/state", self._state)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self.runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def _whoami(self, request: web.Request) -> web.Response:
        return web.Response(text=self.name)

    async def _readyz(self, request: web.Request) -> web.Response:
        return web.Response(status=200 if self.ready else 503)

    async def _state(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "leader": self.leader})


@pytest.fixture
async def backends() -> AsyncIterator[dict[str, Backend]]:
    started = {name: await Backend(name).start() for name in ("a", "b", "c")}
    yield started
    for backend in started.values():
        await backend.stop()


async def whoami(url: str, count: int) -> list[str]:
    """``count`` requests, each on a new connection (so each is a routing decision)."""
    names = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:
        for _ in range(count):
            async with session.get(url + "/whoami") as response:
                names.append(await response.text())
    return names


async def raw_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> str:
    """One keep-alive HTTP/1.1 request on an open connection; returns the body."""
    writer.write(b"GET /whoami HTTP/1.1\r\nHost: svc\r\n\r\n")
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length")
    )
    return (await reader.readexactly(length)).decode()


async def test_routes_new_connections_round_robin_to_ready_endpoints_only(
    backends: dict[str, Backend],
) -> None:
    backends["c"].ready = False
    async with ServiceProxy(http_ok(), period=PERIOD) as proxy:
        for name, backend in backends.items():
            proxy.add(name, backend.port)
        await proxy.wait_ready("a", timeout=5)
        await proxy.wait_ready("b", timeout=5)
        names = await whoami(proxy.url, 20)
        assert sorted(set(names)) == ["a", "b"]
        assert names.count("a") == names.count("b") == 10
        assert proxy.ready() == ["a", "b"]
        assert "c" not in proxy.routed


async def test_unready_endpoint_leaves_rotation_but_keeps_its_open_connections(
    backends: dict[str, Backend],
) -> None:
    async with ServiceProxy(http_ok(), period=PERIOD) as proxy:
        proxy.add("a", backends["a"].port)
        await proxy.wait_ready("a", timeout=5)
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        try:
            assert await raw_request(reader, writer) == "a"
            proxy.add("b", backends["b"].port)
            await proxy.wait_ready("b", timeout=5)
            backends["a"].ready = False
            await proxy.wait_ready("a", ready=False, timeout=5)
            # New connections all go to b; the established one still reaches a.
            assert set(await whoami(proxy.url, 6)) == {"b"}
            assert await raw_request(reader, writer) == "a"
        finally:
            writer.close()
            await writer.wait_closed()
        backends["a"].ready = True
        await proxy.wait_ready("a", timeout=5)
        assert set(await whoami(proxy.url, 6)) == {"a", "b"}


async def test_removed_endpoint_gets_no_new_connections_at_once(backends: dict[str, Backend]) -> None:
    async with ServiceProxy(http_ok(), period=PERIOD) as proxy:
        proxy.add("a", backends["a"].port)
        proxy.add("b", backends["b"].port)
        await proxy.wait_ready("a", timeout=5)
        await proxy.wait_ready("b", timeout=5)
        proxy.remove("a")
        assert proxy.ready() == ["b"]
        assert set(await whoami(proxy.url, 6)) == {"b"}
        await proxy.wait_ready("a", ready=False, timeout=1)
        with pytest.raises(KeyError):
            await proxy.wait_ready("a", timeout=1)


async def test_without_ready_endpoints_connections_are_refused(backends: dict[str, Backend]) -> None:
    backends["a"].ready = False
    async with ServiceProxy(http_ok(), period=PERIOD) as proxy:
        proxy.add("a", backends["a"].port)
        await asyncio.sleep(PERIOD * 5)
        assert proxy.ready() == []
        with pytest.raises(aiohttp.ClientError):
            await whoami(proxy.url, 1)
        assert proxy.rejected >= 1  # aiohttp retries an idempotent GET once
        assert proxy.routed == {}


async def test_stopped_endpoint_fails_its_probe_and_leaves_rotation(backends: dict[str, Backend]) -> None:
    async with ServiceProxy(http_ok(), period=PERIOD, failure_threshold=2) as proxy:
        proxy.add("a", backends["a"].port)
        proxy.add("b", backends["b"].port)
        await proxy.wait_ready("a", timeout=5)
        await backends["a"].stop()
        await proxy.wait_ready("a", ready=False, timeout=5)
        assert set(await whoami(proxy.url, 4)) == {"b"}


async def test_json_flag_routes_to_the_leader_and_follows_a_handover(backends: dict[str, Backend]) -> None:
    backends["a"].leader = True
    async with ServiceProxy(json_flag("/state", "leader"), period=PERIOD) as proxy:
        proxy.add("a", backends["a"].port)
        proxy.add("b", backends["b"].port)
        await proxy.wait_ready("a", timeout=5)
        assert set(await whoami(proxy.url, 4)) == {"a"}
        backends["a"].leader, backends["b"].leader = False, True
        await proxy.wait_ready("b", timeout=5)
        await proxy.wait_ready("a", ready=False, timeout=5)
        assert set(await whoami(proxy.url, 4)) == {"b"}


async def test_websocket_passes_through() -> None:
    async def echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            await ws.send_str(message.data.upper())
        return ws

    async def readyz(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/ws", echo)
    app.router.add_get("/readyz", readyz)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        async with ServiceProxy(http_ok(), period=PERIOD) as proxy:
            proxy.add("ws", int(runner.addresses[0][1]))
            await proxy.wait_ready("ws", timeout=5)
            async with aiohttp.ClientSession() as session, session.ws_connect(proxy.url + "/ws") as ws:
                for word in ("snapshot", "upsert", "withdraw"):
                    await ws.send_str(word)
                    assert (await ws.receive_str()) == word.upper()
    finally:
        await runner.cleanup()


async def _echo_through_proxy(payload: bytes) -> bytes:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.read())  # until the client's half-close
        await writer.drain()
        writer.close()

    async def always(session: aiohttp.ClientSession, endpoint: object) -> bool:
        return True

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    try:
        async with ServiceProxy(always, period=PERIOD) as proxy:
            proxy.add("echo", int(server.sockets[0].getsockname()[1]))
            await proxy.wait_ready("echo", timeout=5)
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            writer.write(payload)
            writer.write_eof()
            echoed = await asyncio.wait_for(reader.read(), timeout=5)
            writer.close()
            await writer.wait_closed()
            return echoed
    finally:
        server.close()
        await server.wait_closed()


@settings(max_examples=15, deadline=None)
@given(st.binary(max_size=300_000))
def test_bytes_pass_unchanged_both_ways_with_half_close(payload: bytes) -> None:
    assert asyncio.run(_echo_through_proxy(payload)) == payload


def test_rejects_bad_settings() -> None:
    with pytest.raises(ValueError):
        ServiceProxy(http_ok(), period=0)
    with pytest.raises(ValueError):
        ServiceProxy(http_ok(), failure_threshold=0)


async def test_endpoint_names_are_unique(backends: dict[str, Backend]) -> None:
    proxy = ServiceProxy(http_ok())
    proxy.add("a", backends["a"].port)
    with pytest.raises(ValueError):
        proxy.add("a", backends["b"].port)
