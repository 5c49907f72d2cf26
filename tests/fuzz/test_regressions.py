"""Bugs the HTTP fuzz tests found, each pinned by the input that triggered it (not marked fuzz:
these run in every selection)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from extender.app import ExtenderApp
from extender.cache import ClusterCache
from extender.metrics import ExtenderMetrics
from launcher.demand import DemandBook, DemandServer
from tests.extender.helpers import node, pod

Client = TestClient[Any, Any]
TOKEN = "s3cret-demand-token"


@pytest.fixture
async def extender() -> AsyncIterator[Client]:
    cache = ClusterCache()
    cache.upsert_node(node("n0"))
    async with TestClient(TestServer(ExtenderApp(cache, ExtenderMetrics()).build())) as client:
        yield client


async def test_filter_of_a_node_too_deep_to_echo_is_400_naming_it(extender: Client) -> None:
    """A NodeList whose node nests deeper than orjson encodes (255; it decodes 1024) was a 500:
    the answer failed to encode, and so did the error answer that echoes every candidate."""
    deep = b'{"a":' * 300 + b"1" + b"}" * 300
    body = b'{"Pod":{},"Nodes":{"items":[{"metadata":{"name":"n0"}},{"metadata":{"name":"n0"},"x":' + deep
    body += b"}]}}"
    response = await extender.post("/filter", data=body)
    assert response.status == 400
    error = orjson.loads(await response.read())["error"]
    assert error.startswith("Nodes.items[1]: cannot be sent back"), error


async def test_prioritize_of_a_pod_whose_metadata_is_not_an_object_names_it(extender: Client) -> None:
    """``"metadata": true`` was a 400 reading "Pod: 'bool' object has no attribute 'get'"."""
    bad = {**pod("p"), "metadata": True}
    response = await extender.post("/prioritize", data=orjson.dumps({"Pod": bad, "NodeNames": ["n0"]}))
    assert response.status == 400
    assert orjson.loads(await response.read())["error"] == "Pod: invalid pod: metadata: expected an object"


async def test_a_token_that_is_not_utf8_is_401_not_500() -> None:
    """aiohttp decodes such header bytes as lone surrogates; encoding them back raised (a 500)."""
    server = DemandServer(DemandBook(), token=TOKEN)
    app = web.Application()
    server.add_routes(app)
    async with TestServer(app) as test_server:
        reader, writer = await asyncio.open_connection(test_server.host, test_server.port)
        key = base64.b64encode(b"0123456789abcdef")
        writer.write(
            b"GET /v1/demand HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + key + b"\r\n"
            b"Authorization: Bearer " + TOKEN.encode() + b"\xff\r\n\r\n"
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        writer.close()
        await writer.wait_closed()
    assert head.startswith(b"HTTP/1.1 401 "), head
