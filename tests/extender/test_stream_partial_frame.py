"""The torn frame of the ``stream-partial-frame`` crash point is a prefix of a real frame.

The chaos suite kills the extender after :func:`~extender.stream.write_partial_frame`; that
only tests a cut mid-message if the bytes written are the start of a frame the launcher would
have decoded. So the whole frame, written the same way, must reach an aiohttp server intact,
and the half frame must leave it waiting for the rest.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from extender.stream import masked_frame, write_partial_frame


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, asyncio.Queue[aiohttp.WSMessage]]]:
    """A WebSocket endpoint that queues every message it receives."""
    received: asyncio.Queue[aiohttp.WSMessage] = asyncio.Queue()

    async def handle(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            await received.put(message)
        return ws

    app = web.Application()
    app.router.add_get("/ws", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/ws", received
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("size", [10, 300, 70_000])  # the three header length encodings
async def test_a_whole_frame_written_raw_is_received_intact(
    server: tuple[str, asyncio.Queue[aiohttp.WSMessage]], size: int
) -> None:
    url, received = server
    payload = os.urandom(size)
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        frame, _ = masked_frame(payload)
        with socket.socket(fileno=os.dup(ws.get_extra_info("socket").fileno())) as raw:
            raw.setblocking(False)
            await asyncio.get_running_loop().sock_sendall(raw, frame)
        message = await asyncio.wait_for(received.get(), 5)
    assert message.type == aiohttp.WSMsgType.BINARY
    assert message.data == payload


async def test_half_a_frame_is_not_a_message(server: tuple[str, asyncio.Queue[aiohttp.WSMessage]]) -> None:
    url, received = server
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        write_partial_frame(ws, b'{"kind":"upsert","seq":3}')
        await ws.send_bytes(b"after")  # lands inside the torn frame's missing bytes
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(received.get(), 0.3)
