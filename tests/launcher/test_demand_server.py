"""The launcher's /v1/demand endpoint and DemandBook, against the extender's real stream client.

Level-triggered delivery is the point: cut connections, a restarted launcher (a fresh book) and
a restarted extender (a fresh client and tracker) all end with the launcher holding exactly the
extender's current demand.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from extender.demand import DemandTracker
from extender.stream import DemandStream
from launcher.demand import DemandBook, DemandServer
from shared.backoff import Backoff
from shared.demand import PodDemand, Snapshot, Upsert, Withdraw, encode
from shared.resources import Resources
from tests.extender.helpers import eventually, pod

TOKEN = "s3cret-token"


def demand(uid: str, reason: str = "unschedulable", first_seen: float = 1.0) -> PodDemand:
    return PodDemand.from_pod(pod(uid), reason, first_seen)  # type: ignore[arg-type]


class Launcher:
    """A DemandServer on loopback that can be restarted on the same port with a fresh book."""

    def __init__(self, grace: float = 5.0, heartbeat: float = 0.2) -> None:
        self.grace = grace
        self.heartbeat = heartbeat
        self.port = 0
        self.runner: web.AppRunner | None = None
        self.server: DemandServer | None = None
        self.book = DemandBook(grace)

    async def start(self) -> None:
        self.book = DemandBook(self.grace)
        self.server = DemandServer(self.book, token=TOKEN, heartbeat_interval=self.heartbeat)
        app = web.Application()
        self.server.add_routes(app)
        self.server.start()
        self.runner = web.AppRunner(app, shutdown_timeout=0.2)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        self.port = self.runner.addresses[0][1]

    async def stop(self) -> None:
        assert self.server is not None
        assert self.runner is not None
        await self.server.stop()
        await self.runner.cleanup()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/demand"


@pytest.fixture
async def launcher() -> AsyncIterator[Launcher]:
    server = Launcher()
    await server.start()
    yield server
    await server.stop()


def extender(
    url: str, source: str = "ext-a", token: str = TOKEN, heartbeat: float = 0.2
) -> tuple[DemandTracker, DemandStream]:
    tracker = DemandTracker()
    stream = DemandStream(
        url,
        source,
        tracker.snapshot,
        token=token,
        heartbeat_interval=heartbeat,
        backoff=Backoff(base=0.01, cap=0.1),
    )
    tracker.add_sink(stream)
    return tracker, stream


def uids(book: DemandBook) -> set[str]:
    return set(book.current())


# The book alone ------------------------------------------------------------------------


async def test_book_merges_sources_and_orders_by_seq() -> None:
    book = DemandBook(grace_period=10)
    book.connected("a", 0)
    book.connected("b", 0)
    assert book.apply(Snapshot(1, "a", (demand("p1"), demand("p2", "predicted"))), 0)
    assert book.apply(Snapshot(1, "b", (demand("p2", "unschedulable", 5.0),)), 0)
    assert uids(book) == {"uid-p1", "uid-p2"}
    assert book.current()["uid-p2"].reason == "unschedulable"  # the failed pod's view wins
    v = book.version
    assert not book.apply(Upsert(1, "a", demand("p3")), 0)  # stale seq: ignored
    assert book.version == v
    assert book.apply(Withdraw(2, "b", "uid-p2", "bound"), 0)
    assert book.current()["uid-p2"].reason == "predicted"  # still reported by a
    assert book.apply(Withdraw(3, "a", "uid-p2", "bound"), 0)
    assert uids(book) == {"uid-p1"}
    assert book.apply(Snapshot(9, "a", ()), 0)  # a snapshot replaces what the source said
    assert uids(book) == set()


async def test_book_grace_period_then_drop() -> None:
    book = DemandBook(grace_period=10)
    book.connected("a", 0)
    book.apply(Snapshot(1, "a", (demand("p1"),)), 0)
    book.disconnected("a", 100)
    assert book.expire(109) == []
    assert uids(book) == {"uid-p1"}
    waiter = asyncio.create_task(book.changed())
    await asyncio.sleep(0)
    assert not waiter.done()
    assert book.expire(110) == ["a"]
    assert uids(book) == set()
    assert await asyncio.wait_for(waiter, 1) == book.version


async def test_book_reconnect_cancels_expiry() -> None:
    book = DemandBook(grace_period=10)
    book.connected("a", 0)
    book.apply(Snapshot(1, "a", (demand("p1"),)), 0)
    book.connected("a", 1)  # the new connection arrives before the old one is noticed dead
    book.disconnected("a", 2)
    assert book.expire(1000) == []
    assert uids(book) == {"uid-p1"}


# Over the wire -------------------------------------------------------------------------


async def test_wrong_token_gets_401(launcher: Launcher) -> None:
    async with aiohttp.ClientSession(headers={"Authorization": "Bearer nope"}) as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await session.ws_connect(launcher.url)
    assert info.value.status == 401
    async with aiohttp.ClientSession() as session:
        response = await session.get(launcher.url.replace("ws://", "http://"))
        assert response.status == 401
    assert launcher.server is not None
    assert launcher.server.rejected == 2
    tracker, stream = extender(launcher.url, token="wrong")
    tracker.upsert(demand("p1"))
    stream.start()
    await asyncio.sleep(0.3)
    assert not stream.connected
    assert uids(launcher.book) == set()
    await stream.stop()


async def test_snapshot_then_deltas(launcher: Launcher) -> None:
    tracker, stream = extender(launcher.url)
    tracker.upsert(demand("before"))
    stream.start()
    await eventually(lambda: uids(launcher.book) == {"uid-before"})
    tracker.upsert(demand("p1"))
    tracker.upsert(demand("p2", "predicted"))
    tracker.withdraw("uid-before", "bound")
    await eventually(lambda: uids(launcher.book) == {"uid-p1", "uid-p2"})
    assert launcher.book.current()["uid-p2"].reason == "predicted"
    await stream.stop()


async def test_undecodable_message_closes_the_stream(launcher: Launcher) -> None:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as session:
        ws = await session.ws_connect(launcher.url)
        await ws.send_bytes(encode(Snapshot(1, "raw", (demand("p1"),))))
        await ws.send_bytes(b'{"apiVersion": "jitnode.io/demand/v1", "kind": "Upsert", "seq": 2}')
        async with asyncio.timeout(3):
            while (await ws.receive()).type not in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                pass
        assert ws.close_code == 1003
    # What was received before the bad message stays, under the grace period.
    assert uids(launcher.book) == {"uid-p1"}


async def test_survives_cuts_and_restarts_mid_burst(launcher: Launcher) -> None:
    tracker, stream = extender(launcher.url)
    stream.start()
    await eventually(lambda: stream.connected)
    expected: set[str] = set()

    async def burst(start: int, count: int) -> None:
        for i in range(start, start + count):
            tracker.upsert(demand(f"p{i}"))
            expected.add(f"uid-p{i}")
            if i % 3 == 0:
                tracker.withdraw(f"uid-p{i - 1}", "bound")
                expected.discard(f"uid-p{i - 1}")
            if i % 7 == 0:
                await asyncio.sleep(0)

    # 1. Cut every connection from the launcher side mid-burst.
    await burst(0, 40)
    assert launcher.server is not None
    for ws in list(launcher.server._sockets):
        await ws.close()
    await burst(40, 40)
    await eventually(lambda: uids(launcher.book) == expected)
    # 2. Restart the launcher (fresh, empty book) mid-burst.
    await launcher.stop()
    await burst(80, 40)
    await launcher.start()
    await burst(120, 40)
    await eventually(lambda: uids(launcher.book) == expected)
    assert stream.connects >= 3
    # 3. Restart the extender: a new process has a new tracker rebuilt from the API.
    await stream.stop()
    tracker2, stream2 = extender(launcher.url)
    for uid in sorted(expected)[:10]:
        tracker2.upsert(demand(uid.removeprefix("uid-")))
    stream2.start()
    await eventually(lambda: uids(launcher.book) == set(sorted(expected)[:10]))
    await stream2.stop()


async def test_disconnected_source_kept_for_grace_then_dropped() -> None:
    server = Launcher(grace=0.3)
    await server.start()
    try:
        tracker, stream = extender(server.url)
        tracker.upsert(demand("p1"))
        stream.start()
        await eventually(lambda: uids(server.book) == {"uid-p1"})
        await stream.stop()
        await asyncio.sleep(0.1)
        assert uids(server.book) == {"uid-p1"}
        await eventually(lambda: uids(server.book) == set(), within=3)
        assert "ext-a" not in server.book.sources()
    finally:
        await server.stop()


async def test_two_extenders_merge_by_uid(launcher: Launcher) -> None:
    a_tracker, a_stream = extender(launcher.url, "ext-a")
    b_tracker, b_stream = extender(launcher.url, "ext-b")
    a_stream.start()
    b_stream.start()
    a_tracker.upsert(demand("shared"))
    b_tracker.upsert(demand("shared"))
    b_tracker.upsert(demand("only-b"))
    await eventually(lambda: uids(launcher.book) == {"uid-shared", "uid-only-b"})
    a_tracker.withdraw("uid-shared", "bound")
    await asyncio.sleep(0.1)
    assert "uid-shared" in launcher.book.current()  # b still reports it
    b_tracker.withdraw("uid-shared", "bound")
    await eventually(lambda: uids(launcher.book) == {"uid-only-b"})
    await a_stream.stop()
    await b_stream.stop()


async def test_silent_launcher_is_detected(monkeypatch: pytest.MonkeyPatch) -> None:
    """A launcher that stops sending heartbeats (half-open connection) makes the client reconnect."""
    accepted: list[Any] = []

    async def mute(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        accepted.append(ws)
        async for _ in ws:
            pass
        return ws

    app = web.Application()
    app.router.add_get("/v1/demand", mute)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    _, stream = extender(f"ws://127.0.0.1:{port}/v1/demand")
    stream.start()
    await eventually(lambda: len(accepted) >= 2, within=5)
    assert "silent" in stream.last_error
    await stream.stop()
    await runner.cleanup()


@pytest.mark.parametrize(
    ("launcher_beat", "extender_beat"),
    [(0.5, 0.05), (0.05, 0.5)],
    ids=["launcher-beats-slower", "extender-beats-slower"],
)
async def test_each_side_waits_for_the_interval_the_other_announces(
    launcher_beat: float, extender_beat: float
) -> None:
    """Either side may beat ten times slower than the other: each judges silence by the
    interval the other announces, not by its own (which would cut the stream every few beats)."""
    server = Launcher(heartbeat=launcher_beat)
    await server.start()
    tracker, stream = extender(server.url, heartbeat=extender_beat)
    tracker.upsert(demand("1"))
    stream.start()
    try:
        await eventually(lambda: uids(server.book) == {"uid-1"})
        await asyncio.sleep(6 * max(launcher_beat, extender_beat))  # twenty silences of the faster
        assert stream.connects == 1, stream.last_error
        assert stream.connected
        assert uids(server.book) == {"uid-1"}
    finally:
        await stream.stop()
        await server.stop()


def test_requests_survive_the_wire() -> None:
    d = demand("p")
    assert d.requests == Resources(cpu=1000, memory=2**30, pods=1)


async def test_streams_only_while_accepting_and_closed_on_demand(launcher: Launcher) -> None:
    """A launcher that is not the leader refuses streams; one that loses the lead closes them."""
    assert launcher.server is not None
    leading = False
    launcher.server.accepting = lambda: leading
    tracker, stream = extender(launcher.url)
    tracker.upsert(demand("p1"))
    stream.start()
    try:
        await asyncio.sleep(0.3)
        assert not stream.connected
        assert uids(launcher.book) == set()
        leading = True
        await eventually(lambda: uids(launcher.book) == {"uid-p1"})
        connects = stream.connects
        leading = False
        await launcher.server.close_streams("leadership lost")
        await eventually(lambda: not stream.connected)
        await asyncio.sleep(0.3)
        assert not stream.connected
        assert stream.connects == connects
    finally:
        await stream.stop()
