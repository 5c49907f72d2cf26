"""The extender's end of the demand stream: one long-lived WebSocket to the launcher.

Level-triggered: on every (re)connect the client sends a Snapshot of all current demand, then
Upserts and Withdraws as they happen, with sequence numbers that only increase for the life of
the process. Changes made while disconnected are not queued: the next Snapshot carries them.
The snapshot is taken and the delta queue cleared in the same synchronous step, so no change
is lost or sent twice around a reconnect. Heartbeats go both ways; a launcher silent for three
intervals is treated as gone. Reconnects back off exponentially with jitter.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import ssl
import struct
import time
from collections import deque
from collections.abc import Callable, Iterable

import aiohttp

from extender.metrics import ExtenderMetrics
from shared.backoff import Backoff
from shared.crashpoints import STREAM_PARTIAL_FRAME, crash_point
from shared.demand import Heartbeat, Message, PodDemand, Snapshot, Upsert, Withdraw, decode, encode
from shared.errors import FieldError, ValidationError
from shared.logs import get_logger
from shared.tasks import cancel_and_wait

_log = get_logger(__name__)


class DemandStream:
    """Keeps the launcher's picture of this replica's demand current (see the module doc)."""

    def __init__(
        self,
        url: str,
        source: str,
        snapshot: Callable[[], Iterable[PodDemand]],
        *,
        token: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        heartbeat_interval: float = 5.0,
        backoff: Backoff | None = None,
        metrics: ExtenderMetrics | None = None,
    ) -> None:
        self.url = url
        self.source = source
        self._snapshot = snapshot
        self._token = token
        self._ssl = ssl_context
        self.heartbeat_interval = heartbeat_interval
        self._backoff = backoff or Backoff(base=0.05, cap=5.0)
        self._metrics = metrics
        self._seq = 0
        self._pending: deque[Message] = deque()
        self._wake = asyncio.Event()
        self._connected = False
        self._task: asyncio.Task[None] | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._stopping = False
        self.connects = 0
        self.last_error: str = ""
        self._close_reason = ""

    # State --------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True once the Snapshot of the current connection has been sent."""
        return self._connected

    # Deltas from the demand tracker ------------------------------------------------------

    def upsert(self, demand: PodDemand) -> None:
        if self._connected:
            self._pending.append(Upsert(seq=self._next_seq(), source=self.source, demand=demand))
            self._wake.set()

    def withdraw(self, uid: str, reason: str) -> None:
        if self._connected:
            self._pending.append(Withdraw(seq=self._next_seq(), source=self.source, uid=uid, reason=reason))
            self._wake.set()

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    # Lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self.run(), name="demand-stream")

    async def stop(self) -> None:
        """Flush what is queued, close the WebSocket cleanly, end the loop."""
        self._stopping = True
        self._wake.set()
        ws = self._ws
        if ws is not None and not ws.closed:
            with contextlib.suppress(Exception):
                await self._flush(ws)
                await ws.close()
        task, self._task = self._task, None
        await cancel_and_wait(task)
        _log.info("demand_stream.closed", url=self.url, seq=self._seq)

    async def run(self) -> None:
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        async with aiohttp.ClientSession(headers=headers) as session:
            while not self._stopping:
                try:
                    await self._connect_once(session)
                    if self._stopping:
                        return
                    self.last_error = self._close_reason or "closed by launcher"
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self.last_error = repr(exc)
                finally:
                    self._disconnected()
                delay = self._backoff.next_delay()
                _log.warning("demand_stream.disconnected", error=self.last_error, retry_in=round(delay, 3))
                await asyncio.sleep(delay)

    def _disconnected(self) -> None:
        self._connected = False
        self._ws = None
        self._pending.clear()
        if self._metrics is not None:
            self._metrics.stream_connected.set(0)

    async def _connect_once(self, session: aiohttp.ClientSession) -> None:
        ssl_arg: ssl.SSLContext | bool = self._ssl if self._ssl is not None else True
        async with session.ws_connect(
            self.url, ssl=ssl_arg, heartbeat=None, timeout=aiohttp.ClientWSTimeout(ws_close=2.0)
        ) as ws:
            self._ws = ws
            self._close_reason = ""
            # Snapshot and queue reset in one synchronous step: nothing slips between them.
            self._pending.clear()
            demands = tuple(self._snapshot())
            snapshot = Snapshot(seq=self._next_seq(), source=self.source, demands=demands)
            self._connected = True
            await ws.send_bytes(encode(snapshot))
            await ws.send_bytes(encode(self._heartbeat()))  # announces our interval at once
            self.connects += 1
            if self.connects > 1 and self._metrics is not None:
                self._metrics.stream_reconnects.inc()
            if self._metrics is not None:
                self._metrics.stream_connected.set(1)
            self._backoff.reset()
            _log.info("demand_stream.connected", url=self.url, demands=len(demands), seq=snapshot.seq)
            receiver = asyncio.create_task(self._receive(ws))
            try:
                await self._send_loop(ws, receiver)
            finally:
                with contextlib.suppress(Exception):  # the connection is gone either way
                    await cancel_and_wait(receiver)

    async def _send_loop(self, ws: aiohttp.ClientWebSocketResponse, receiver: asyncio.Task[None]) -> None:
        next_beat = time.monotonic() + self.heartbeat_interval
        while not self._stopping and not ws.closed and not receiver.done():
            timeout = max(0.0, next_beat - time.monotonic())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            self._wake.clear()
            await self._flush(ws)
            if time.monotonic() >= next_beat:
                await ws.send_bytes(encode(self._heartbeat()))
                next_beat = time.monotonic() + self.heartbeat_interval

    def _heartbeat(self) -> Heartbeat:
        return Heartbeat(
            seq=self._next_seq(), source=self.source, sent_at=time.time(), interval=self.heartbeat_interval
        )

    async def _flush(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        while self._pending:
            data = encode(self._pending[0])
            crash_point(STREAM_PARTIAL_FRAME, functools.partial(write_partial_frame, ws, data))
            await ws.send_bytes(data)
            self._pending.popleft()

    async def _receive(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Read the launcher's heartbeats; return when it goes silent or closes."""
        try:
            await self._receive_until_gone(ws)
        finally:
            self._wake.set()  # the send loop notices at once, not at its next heartbeat

    async def _receive_until_gone(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        # The launcher's interval as it announces it; our own until it has.
        peer_interval = self.heartbeat_interval
        while True:
            try:
                msg = await ws.receive(timeout=3 * peer_interval)
            except TimeoutError:
                self._close_reason = (
                    f"launcher silent for three heartbeat intervals ({3 * peer_interval:g} s)"
                )
                return
            if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                return
            if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                try:
                    message = decode(msg.data)
                except (ValidationError, FieldError) as exc:
                    _log.warning("demand_stream.bad_message", error=str(exc))
                    continue
                if isinstance(message, Heartbeat) and message.interval is not None:
                    peer_interval = message.interval


def masked_frame(payload: bytes) -> tuple[bytes, int]:
    """One unfragmented binary WebSocket frame as a client sends it, and its header's length.

    Masked, as RFC 6455 requires of a client; uncompressed, which permessage-deflate allows
    for any single message.
    """
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x82, 0x80 | length)
    elif length < 2**16:
        header = struct.pack("!BBH", 0x82, 0x80 | 126, length)
    else:
        header = struct.pack("!BBQ", 0x82, 0x80 | 127, length)
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return header + mask + masked, len(header) + len(mask)


def write_partial_frame(ws: aiohttp.ClientWebSocketResponse, payload: bytes) -> None:
    """Put the header and half the payload of ``payload``'s frame straight on ``ws``'s socket.

    For the :data:`~shared.crashpoints.STREAM_PARTIAL_FRAME` crash point: aiohttp writes only
    whole frames. Best effort, and blocking-free (a few bytes on an idle socket): the process
    dies right after.
    """
    sock = ws.get_extra_info("socket")
    if sock is None:
        return
    frame, header = masked_frame(payload)
    with contextlib.suppress(OSError):
        os.write(sock.fileno(), frame[: header + len(payload) // 2])
