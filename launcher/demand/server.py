"""The launcher's ``/v1/demand`` WebSocket endpoint: authenticate, decode, feed the DemandBook.

Each extender replica keeps one connection open and sends a Snapshot first, then deltas and
heartbeats (wire format in :mod:`shared.demand`). A wrong or missing bearer token gets a 401
and a log line, never a WebSocket. A message that does not decode closes the connection: the
extender reconnects and its Snapshot restores a consistent picture, which is safer than
guessing past a gap. Silence longer than ``idle_timeout`` also closes it (a half-open TCP
connection must not hold demand forever: the book's grace period takes over).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import time
from collections.abc import Callable
from typing import Final

from aiohttp import WSCloseCode, WSMsgType, web

from launcher.demand.book import DemandBook
from shared.demand import Heartbeat, decode, encode
from shared.errors import FieldError, ValidationError
from shared.logs import get_logger
from shared.tasks import cancel_and_wait

PATH: Final = "/v1/demand"
SOURCE_NAME: Final = "launcher"
_log = get_logger(__name__)


class DemandServer:
    """Serves ``/v1/demand`` into ``book``; :meth:`start` runs the grace-period sweeper."""

    def __init__(
        self,
        book: DemandBook,
        *,
        token: str | None,
        heartbeat_interval: float = 5.0,
        idle_timeout: float | None = None,
        max_message_bytes: int = 64 * 2**20,
        clock: Callable[[], float] = time.monotonic,
        accepting: Callable[[], bool] = lambda: True,
    ) -> None:
        """``accepting``: whether new streams are taken now (a launcher: while it leads); when
        not, a stream gets a 503 and the extender retries through the Service."""
        self.book = book
        self.accepting = accepting
        self._token = token.encode() if token else None
        self.heartbeat_interval = heartbeat_interval
        self.idle_timeout = idle_timeout if idle_timeout is not None else 3 * heartbeat_interval
        self.max_message_bytes = max_message_bytes
        self.clock = clock
        self._sockets: set[web.WebSocketResponse] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._seq = 0
        self.rejected = 0

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get(PATH, self.handle)

    def start(self) -> None:
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep(), name="demand-grace-sweeper")

    async def stop(self) -> None:
        """Stop sweeping and close every stream (extenders reconnect to whoever serves next)."""
        sweeper, self._sweeper = self._sweeper, None
        await cancel_and_wait(sweeper)
        await self.close_streams("launcher shutting down")

    async def close_streams(self, reason: str) -> None:
        """Close every open stream; the extenders reconnect through the Service."""
        for ws in list(self._sockets):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=reason.encode())

    def _authorized(self, request: web.Request) -> bool:
        if self._token is None:
            return True
        header = request.headers.get("Authorization", "")
        scheme, _, presented = header.partition(" ")
        # aiohttp decodes header bytes that are not UTF-8 as lone surrogates: back to those bytes.
        token = presented.strip().encode("utf-8", "surrogateescape")
        return scheme.lower() == "bearer" and hmac.compare_digest(token, self._token)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            self.rejected += 1
            _log.warning(
                "demand.unauthorized", peer=request.remote, has_header="Authorization" in request.headers
            )
            return web.json_response({"error": "unauthorized: bad or missing bearer token"}, status=401)
        if not self.accepting():
            return web.json_response({"error": "not serving demand now: not the leader"}, status=503)
        ws = web.WebSocketResponse(max_msg_size=self.max_message_bytes, receive_timeout=self.idle_timeout)
        await ws.prepare(request)
        self._sockets.add(ws)
        heartbeats = asyncio.create_task(self._heartbeat(ws))
        source: str | None = None
        try:
            source = await self._serve(ws, request.remote)
        finally:
            await cancel_and_wait(heartbeats)
            self._sockets.discard(ws)
            if source is not None:
                self.book.disconnected(source, self.clock())
                _log.info("demand.source_disconnected", source=source, grace_period=self.book.grace_period)
            if not ws.closed:
                await ws.close()
        return ws

    async def _serve(self, ws: web.WebSocketResponse, peer: str | None) -> str | None:
        source: str | None = None
        # Three of the extender's heartbeat intervals once it announces one; ours until then.
        idle_timeout = self.idle_timeout
        while True:
            try:
                msg = await ws.receive(timeout=idle_timeout)
            except TimeoutError:
                _log.warning("demand.idle_timeout", source=source, idle_timeout=idle_timeout)
                await ws.close(code=WSCloseCode.GOING_AWAY, message=b"idle")
                return source
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                return source
            if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                continue
            try:
                message = decode(msg.data)
            except (ValidationError, FieldError) as exc:
                _log.warning("demand.bad_message", source=source, peer=peer, error=str(exc))
                await ws.close(code=WSCloseCode.UNSUPPORTED_DATA, message=b"undecodable demand message")
                return source
            if source is None:
                source = message.source
                self.book.connected(source, self.clock())
                _log.info("demand.source_connected", source=source, peer=peer)
            elif message.source != source:
                _log.warning("demand.source_changed", source=source, claimed=message.source)
                await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"source changed mid-stream")
                return source
            if isinstance(message, Heartbeat) and message.interval is not None:
                idle_timeout = 3 * message.interval
            if self.book.apply(message, self.clock()):
                _log.debug("demand.changed", source=source, kind=type(message).__name__, seq=message.seq)

    async def _heartbeat(self, ws: web.WebSocketResponse) -> None:
        while not ws.closed:
            self._seq += 1
            beat = Heartbeat(
                seq=self._seq, source=SOURCE_NAME, sent_at=time.time(), interval=self.heartbeat_interval
            )
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_bytes(encode(beat))
            await asyncio.sleep(self.heartbeat_interval)

    async def _sweep(self) -> None:
        interval = max(0.05, min(1.0, self.book.grace_period / 4))
        while True:
            await asyncio.sleep(interval)
            for source in self.book.expire(self.clock()):
                _log.info("demand.source_expired", source=source)
