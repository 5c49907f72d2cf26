"""Fuzzing the launcher's ``/v1/demand`` WebSocket endpoint (wire format in ``shared.demand``).

Per the protocol: a stream with a bad or missing bearer token gets a 401 and never a WebSocket;
on an open stream, valid messages (whatever their seq) are applied and keep it open, and the
first frame that is not a valid message (or claims another source, or is over the size limit)
closes it with a close frame and a protocol close code, never a dropped connection nor a 5xx.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Final

import aiohttp
import orjson
import pytest
from aiohttp import WSCloseCode, WSMsgType, web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given
from hypothesis import strategies as st

from launcher.demand import DemandBook, DemandServer
from shared.demand import Heartbeat, PodDemand, Snapshot, Upsert, Withdraw, decode, encode
from shared.errors import FieldError, ValidationError
from tests.extender.helpers import eventually, pod
from tests.fuzz.strategies import FUZZ, damaged, json_values, mutated
from tests.fuzz.strategies import encode as encode_json

pytestmark = pytest.mark.fuzz

Client = TestClient[Any, Any]
TOKEN: Final = "s3cret-demand-token"
SOURCE: Final = "ext-a"
MAX_MESSAGE: Final = 64 * 1024
MARKERS: Final = itertools.count()
AUTH: Final = {"Authorization": f"Bearer {TOKEN}"}
# What closes a stream on bad input: undecodable message, bad UTF-8 in a text frame, another
# source, oversized frame, a WebSocket protocol error.
REFUSED: Final = {
    WSCloseCode.UNSUPPORTED_DATA,
    WSCloseCode.INVALID_TEXT,
    WSCloseCode.POLICY_VIOLATION,
    WSCloseCode.MESSAGE_TOO_BIG,
    WSCloseCode.PROTOCOL_ERROR,
}


@dataclass
class Launcher:
    server: DemandServer
    book: DemandBook
    client: Client


@pytest.fixture
async def launcher() -> AsyncIterator[Launcher]:
    book = DemandBook(grace_period=60)
    server = DemandServer(
        book, token=TOKEN, heartbeat_interval=0.5, idle_timeout=10, max_message_bytes=MAX_MESSAGE
    )
    app = web.Application()
    server.add_routes(app)
    server.start()
    async with TestClient(TestServer(app)) as client:
        yield Launcher(server, book, client)
        await server.stop()


def demand(uid: str) -> PodDemand:
    return PodDemand.from_pod(pod(uid), "unschedulable", 1.0)


def valid_messages(source: str = SOURCE) -> st.SearchStrategy[Any]:
    """Valid messages with any seq (repeats and reorderings are part of the protocol)."""
    seqs = st.integers(min_value=0, max_value=2**63)
    uids = st.sampled_from(["a", "b", "c"])
    return st.one_of(
        st.builds(Snapshot, seqs, st.just(source), st.lists(uids.map(demand), max_size=3).map(tuple)),
        st.builds(Upsert, seqs, st.just(source), uids.map(demand)),
        st.builds(Withdraw, seqs, st.just(source), uids.map(lambda u: f"uid-{u}"), st.text(max_size=10)),
        st.builds(
            Heartbeat,
            seqs,
            st.just(source),
            st.floats(0, 2e9),
            st.one_of(st.none(), st.floats(min_value=0.001, max_value=1e308)),
        ),
    )


@dataclass(frozen=True)
class Frame:
    data: bytes
    text: bool  # a text frame (data may still be invalid UTF-8) or a binary one


@st.composite
def frames(draw: st.DrawFn) -> Frame:
    """A frame: a valid message, a mutated one, random JSON, or damaged bytes."""
    how = draw(st.integers(0, 4))
    if how == 0:
        data = encode(draw(valid_messages()))
    elif how == 1:
        data = encode_json(draw(mutated(orjson.loads(encode(draw(valid_messages()))))))
    elif how == 2:
        data = draw(damaged(encode(draw(valid_messages()))))
    elif how == 3:
        data = encode(draw(valid_messages(draw(st.text(min_size=1, max_size=5)))))
    else:
        data = encode_json(draw(json_values()))
    if draw(st.integers(0, 20)) == 0:
        data = data + b" " * MAX_MESSAGE  # oversized (and valid JSON if it was)
    return Frame(data, draw(st.booleans()))


def first_refused(sent: list[Frame]) -> tuple[Frame | None, str]:
    """The frame the server must close on, if any, and the stream's source (its first valid
    message names it); the shared decoder is the validity oracle."""
    source = ""
    for frame in sent:
        if len(frame.data) > MAX_MESSAGE:
            return frame, source
        try:
            if frame.text:
                frame.data.decode()
            message = decode(frame.data)
        except (UnicodeDecodeError, ValidationError, FieldError):
            return frame, source
        source = source or message.source
        if message.source != source:
            return frame, source
    return None, source or SOURCE


async def send(ws: aiohttp.ClientWebSocketResponse, frame: Frame) -> None:
    await ws.send_frame(frame.data, WSMsgType.TEXT if frame.text else WSMsgType.BINARY)


async def next_non_heartbeat(ws: aiohttp.ClientWebSocketResponse) -> aiohttp.WSMessage:
    while True:
        msg = await ws.receive(timeout=3)
        if msg.type is not WSMsgType.BINARY:
            return msg
        assert isinstance(decode(msg.data), Heartbeat)


@FUZZ
@given(sent=st.lists(frames(), min_size=1, max_size=6))
async def test_frames_are_applied_or_close_the_stream(launcher: Launcher, sent: list[Frame]) -> None:
    async with launcher.client.ws_connect("/v1/demand", headers=AUTH, autoclose=False) as ws:
        marker = f"m{next(MARKERS)}"
        refused, source = first_refused(sent)
        for frame in sent:
            await send(ws, frame)
            if frame is refused:
                break
        if refused is None:
            # Everything was valid: the stream stays open and has applied it all, in order.
            await ws.send_bytes(encode(Snapshot(0, source, (demand(marker),))))
            await eventually(lambda: f"uid-{marker}" in launcher.book.current(), within=3)
            assert not ws.closed
            return
        msg = await next_non_heartbeat(ws)
        assert msg.type is WSMsgType.CLOSE, (msg, refused)  # a close frame, not a dropped connection
        assert msg.data in REFUSED, (msg, refused)


@pytest.mark.parametrize("interval", [1e308, 1e300, 1e-300])
async def test_any_announced_interval_keeps_the_stream_per_protocol(
    launcher: Launcher, interval: float
) -> None:
    """Any positive finite interval is valid; an absurd one must not break the next receive."""
    async with launcher.client.ws_connect("/v1/demand", headers=AUTH, autoclose=False) as ws:
        await ws.send_bytes(encode(Heartbeat(1, SOURCE, 1.0, interval)))
        await ws.send_bytes(encode(Snapshot(2, SOURCE, (demand("after"),))))
        if interval < 1e-6:  # silence longer than three intervals: closed as idle, per protocol
            msg = await next_non_heartbeat(ws)
            assert msg.type is WSMsgType.CLOSE
            assert msg.data == WSCloseCode.GOING_AWAY
            return
        await eventually(lambda: "uid-after" in launcher.book.current())
        assert not ws.closed


# Tokens -------------------------------------------------------------------------------------


async def raw_upgrade(launcher: Launcher, authorization: bytes | None) -> tuple[int, bytes]:
    """A WebSocket upgrade sent as raw bytes (any header bytes at all); the status and body."""
    server = launcher.client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    key = base64.b64encode(b"0123456789abcdef")
    request = (
        b"GET /v1/demand HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + key + b"\r\n"
    )
    if authorization is not None:
        request += b"Authorization: " + authorization + b"\r\n"
    writer.write(request + b"\r\n")
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        status = int(head.split(b" ", 2)[1])
        body = b""
        if status != 101:
            length = next(
                (
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                0,
            )
            body = await asyncio.wait_for(reader.readexactly(length), 10)
        return status, body
    finally:
        writer.close()
        await writer.wait_closed()


def header_value() -> st.SearchStrategy[bytes]:
    """Authorization values: near misses of the right one, random text and raw bytes."""
    token = TOKEN.encode()
    near = st.sampled_from(
        [
            b"Bearer " + token[:-1],
            b"Bearer " + token + b"x",
            b"Bearer " + token.upper(),
            b"Basic " + token,
            b"Bearer",
            b"Bearer ",
            b"",
            token,
            b"Bearer  " + token[1:],
            b"Bearer " + token + b"\xff",
            b"Bearer \xff\xfe",
            b"Bearer \xc3\xa9" + token,
            "Bearer é".encode("latin-1"),
            b"Bearer " + token + b"\x00",
        ]
    )
    random = st.binary(max_size=80).filter(lambda b: b"\r" not in b and b"\n" not in b)
    text = (
        st.text(max_size=40)
        .map(lambda t: ("Bearer " + t).encode())
        .filter(lambda b: b"\r" not in b and b"\n" not in b)
    )
    return st.one_of(near, random, text)


@FUZZ
@given(value=st.one_of(st.none(), header_value()))
async def test_wrong_or_missing_tokens_are_refused(launcher: Launcher, value: bytes | None) -> None:
    status, body = await raw_upgrade(launcher, value)
    assert status < 500, (status, body)
    assert status != 101, value
    assert status in (400, 401), (status, body)
    if status == 401:
        assert "bearer token" in orjson.loads(body)["error"]


@pytest.mark.parametrize(
    "value", [b"Bearer " + TOKEN.encode(), b"bearer " + TOKEN.encode(), b"BEARER  " + TOKEN.encode()]
)
async def test_the_right_token_is_accepted(launcher: Launcher, value: bytes) -> None:
    status, _ = await raw_upgrade(launcher, value)
    assert status == 101


async def test_token_comparison_is_constant_time(launcher: Launcher, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every presented token is compared with hmac.compare_digest, whatever its length."""
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def recording(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", recording)
    presented = [b"x" * len(TOKEN), b"short", TOKEN.encode() + b"-longer", TOKEN.encode(), b"\xff" * 5]
    for token in presented:
        await raw_upgrade(launcher, b"Bearer " + token)
    assert [a for a, _ in calls] == presented
    assert all(b == TOKEN.encode() for _, b in calls)
