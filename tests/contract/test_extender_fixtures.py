"""Every request body captured from a real kube-scheduler, through filter and prioritize.

Each body is sent as captured (Go field names) and with every key lower-cased (old
schedulers); the answers must use the Go field names exactly and, with nodeCacheCapable,
answer NodeNames, without it a NodeList in Nodes. The outage the fixtures' README describes
(an empty answer when candidates were sent) must never happen.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from extender.app import ExtenderApp
from extender.cache import ClusterCache
from extender.metrics import ExtenderMetrics
from shared import labels
from tests.conftest import KUBE_SCHEDULER_FIXTURES

FIXTURES = sorted(KUBE_SCHEDULER_FIXTURES.glob("*.json"))
# Read once at import: the tests themselves don't touch the disk on the event loop.
BODIES = {path: path.read_bytes() for path in FIXTURES}
PREFIX = "/jitnode"


def lower_keys(value: Any, depth: int) -> Any:
    """Lower-case the keys of the top ``depth`` levels (ExtenderArgs and the NodeList)."""
    if depth <= 0 or not isinstance(value, dict):
        return value
    return {k.lower(): lower_keys(v, depth - 1) for k, v in value.items()}


def candidates(args: dict[str, Any]) -> list[str]:
    if args.get("NodeNames") is not None:
        return list(args["NodeNames"])
    return [n["metadata"]["name"] for n in args["Nodes"]["items"]]


def fixture_nodes() -> list[dict[str, Any]]:
    """Every full node object in the captures, to seed the cache."""
    nodes: dict[str, dict[str, Any]] = {}
    for path in FIXTURES:
        body = orjson.loads(BODIES[path])
        for item in (body.get("Nodes") or {}).get("items") or []:
            nodes[item["metadata"]["name"]] = item
    return list(nodes.values())


@pytest.fixture
async def client() -> AsyncIterator[tuple[TestClient[Any, Any], ClusterCache]]:
    cache = ClusterCache()
    for node in fixture_nodes():
        cache.upsert_node(node)
    app = ExtenderApp(cache, ExtenderMetrics(), prefix=PREFIX)
    async with TestClient(TestServer(app.build())) as test_client:
        yield test_client, cache


def test_fixtures_present() -> None:
    assert len(FIXTURES) >= 6, FIXTURES
    assert fixture_nodes(), "the full-nodes captures should carry nodes"


@pytest.mark.parametrize("spelling", ["captured", "lower"])
@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
async def test_filter_answers_every_candidate(
    client: tuple[TestClient[Any, Any], ClusterCache], path: Path, spelling: str
) -> None:
    test_client, _ = client
    args = orjson.loads(BODIES[path])
    body = args if spelling == "captured" else lower_keys(args, 2)
    response = await test_client.post(f"{PREFIX}/filter", data=orjson.dumps(body))
    assert response.status == 200
    assert response.content_type == "application/json"
    answer = orjson.loads(await response.read())
    assert set(answer) >= {"FailedNodes", "FailedAndUnresolvableNodes", "Error"}
    assert answer["Error"] == ""
    expected = candidates(args)
    assert expected, "every capture names candidates"
    if args.get("NodeNames") is not None:
        assert answer["NodeNames"] == expected
    else:
        assert [n["metadata"]["name"] for n in answer["Nodes"]["items"]] == expected
        # Full node objects come back unchanged, as the scheduler sent them.
        assert answer["Nodes"]["items"] == args["Nodes"]["items"]
    assert answer["FailedNodes"] == {}
    assert answer["FailedAndUnresolvableNodes"] == {}


@pytest.mark.parametrize("spelling", ["captured", "lower"])
@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
async def test_prioritize_scores_every_candidate(
    client: tuple[TestClient[Any, Any], ClusterCache], path: Path, spelling: str
) -> None:
    test_client, _ = client
    args = orjson.loads(BODIES[path])
    body = args if spelling == "captured" else lower_keys(args, 2)
    response = await test_client.post(f"{PREFIX}/prioritize", data=orjson.dumps(body))
    assert response.status == 200
    answer = orjson.loads(await response.read())
    assert isinstance(answer, list)
    assert [entry["Host"] for entry in answer] == candidates(args)
    for entry in answer:
        assert set(entry) == {"Host", "Score"}
        assert isinstance(entry["Score"], int)
        assert 0 <= entry["Score"] <= 10
    if args.get("Nodes") is not None:
        # Known nodes with room get a real bin-packing score, not a constant.
        assert any(entry["Score"] > 0 for entry in answer)


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
async def test_disrupted_node_fails_unresolvably(
    client: tuple[TestClient[Any, Any], ClusterCache], path: Path
) -> None:
    test_client, cache = client
    args = orjson.loads(BODIES[path])
    names = candidates(args)
    victim = names[0]
    node = {
        "metadata": {"name": victim, "annotations": {labels.DISRUPTING_ANNOTATION: "true"}},
        "status": {"allocatable": {"cpu": "4", "memory": "16Gi"}},
    }
    cache.upsert_node(node)
    response = await test_client.post(f"{PREFIX}/filter", data=BODIES[path])
    answer = orjson.loads(await response.read())
    passed = (
        answer["NodeNames"]
        if args.get("NodeNames") is not None
        else [n["metadata"]["name"] for n in answer["Nodes"]["items"]]
    )
    assert passed == names[1:]
    assert list(answer["FailedAndUnresolvableNodes"]) == [victim]
    scores = orjson.loads(await (await test_client.post(f"{PREFIX}/prioritize", data=BODIES[path])).read())
    assert {e["Host"]: e["Score"] for e in scores}[victim] == 0
