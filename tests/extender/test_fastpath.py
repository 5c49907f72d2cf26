"""The request path's shortcuts give exactly the answers of the plain code they replace.

The priority-list encoder against ``orjson.dumps`` of the dicts, the remembered filter body
against a fresh parse, the score matrix across growth, and the process runtime settings.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import strategies as st

from extender import decisions, protocol, runtime
from extender.app import ExtenderApp
from extender.cache import ClusterCache
from extender.metrics import ExtenderMetrics
from extender.recent import RecentBodies
from extender.scoretable import ScoreTable
from tests.extender.helpers import node, pod

hosts = st.lists(st.text(max_size=12), max_size=30)


def test_recent_bodies_match_exact_bytes_only_and_stay_bounded() -> None:
    recent: RecentBodies[int] = RecentBodies(size=2)
    recent.put(b'{"a":1}', 1)
    assert recent.get(b'{"a":1}') == 1
    assert recent.get(b'{"a":2}') is None  # same length, other bytes
    assert recent.get(b'{"a": 1}') is None
    recent.put(b"two", 2)
    recent.put(b"three", 3)
    assert len(recent) == 2
    assert recent.get(b'{"a":1}') is None  # evicted
    assert (recent.get(b"two"), recent.get(b"three")) == (2, 3)


def test_parse_rejects_non_string_names() -> None:
    for names in ([1, "a"], ["a", None], [["a"]], [{"a": 1}]):
        with pytest.raises(protocol.ProtocolError) as caught:
            protocol.parse_args(orjson.dumps({"Pod": {}, "NodeNames": names}))
        assert caught.value.path == "NodeNames"


@pytest.fixture
async def served() -> AsyncIterator[tuple[TestClient[Any, Any], ClusterCache]]:
    cache = ClusterCache()
    for i in range(4):
        cache.upsert_node(node(f"n{i}", cpu="4", memory="16Gi"))
    cache.upsert_pod(pod("busy", cpu="2", memory="8Gi", node_name="n1"))
    app = ExtenderApp(cache, ExtenderMetrics(), prefix="/x")
    async with TestClient(TestServer(app.build())) as client:
        yield client, cache


async def test_prioritize_reuses_filters_parse_of_the_same_body(
    served: tuple[TestClient[Any, Any], ClusterCache], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, cache = served
    calls: list[bytes] = []
    parse = protocol.parse_args

    def counting(body: bytes, max_bytes: int | None = None) -> protocol.ExtenderArgs:
        calls.append(body)
        return parse(body, max_bytes)

    monkeypatch.setattr(protocol, "parse_args", counting)
    names = ["n0", "n1", "ghost", "n3"]
    body = orjson.dumps({"Pod": pod("p", cpu="1", memory="1Gi"), "NodeNames": names, "Nodes": None})
    assert (await client.post("/x/filter", data=body)).status == 200
    response = await client.post("/x/prioritize", data=body)
    assert response.status == 200
    assert len(calls) == 1  # the second call found the same bytes
    expected = decisions.score_nodes(names, 1000, 2**30, cache, 0.0, 0.0)
    got = orjson.loads(await response.read())
    assert [(e["Host"], e["Score"]) for e in got] == expected
    assert got[1]["Score"] > got[0]["Score"] > 0
    assert got[2]["Score"] == 0

    other = orjson.dumps({"Pod": pod("q", cpu="1", memory="1Gi"), "NodeNames": names[:2], "Nodes": None})
    assert (await client.post("/x/prioritize", data=other)).status == 200
    assert len(calls) == 2


def test_score_table_grows_past_its_capacity() -> None:
    cache = ClusterCache()
    cache.table = ScoreTable(capacity=2)
    for i in range(40):
        cache.upsert_node(node(f"n{i}", cpu=f"{1000 + 100 * i}m"))
        cache.upsert_pod(pod(f"p{i}", cpu=f"{50 * i}m", memory="1Gi", node_name=f"n{i}"))
    for i in range(0, 40, 3):
        cache.delete_node(node(f"n{i}"))
    names = [f"n{i}" for i in range(40)] + ["ghost"]
    reference = [score for _, score in decisions.score_nodes(names, 300, 2**30, cache, 0.0, 0.0)]
    assert cache.table.scores(names, 300, 2**30, 0.0, 0.0) == reference
    assert len(cache.table) == len(cache.nodes)


def test_run_uses_uvloop_when_installed() -> None:
    uvloop = pytest.importorskip("uvloop")
    seen: list[type[asyncio.AbstractEventLoop]] = []

    async def main() -> None:
        seen.append(type(asyncio.get_running_loop()))

    runtime.run(main())
    assert seen == [uvloop.Loop]
    assert runtime.loop_factory() is uvloop.new_event_loop


def test_tune_collector_raises_only_the_young_threshold() -> None:
    before = gc.get_threshold()
    try:
        runtime.tune_collector(12_345)
        assert gc.get_threshold() == (12_345, before[1], before[2])
    finally:
        gc.set_threshold(*before)


async def test_heap_freezer_freezes_once_loaded() -> None:
    loaded = asyncio.Event()

    async def wait_loaded() -> None:
        await loaded.wait()

    freezer = runtime.HeapFreezer(wait_loaded, interval=0)  # 0: freeze once, then return
    task = asyncio.create_task(freezer.run())
    try:
        await asyncio.sleep(0.01)
        assert freezer.freezes == 0  # not before the caches are in
        loaded.set()
        await asyncio.wait_for(task, 5)
        assert freezer.freezes == 1
        assert gc.get_freeze_count() > 0
    finally:
        task.cancel()
        gc.unfreeze()
