"""The HTTP surface: status codes, error bodies, probes, metrics, and fuzzed input."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from extender import decisions
from extender.app import ExtenderApp
from extender.cache import ClusterCache
from extender.metrics import ExtenderMetrics
from extender.predict import filtered_pod
from tests.extender.helpers import eventually, node, pod

Client = TestClient[Any, Any]


class Harness:
    def __init__(self) -> None:
        self.cache = ClusterCache()
        self.metrics = ExtenderMetrics()
        self.ready = False
        self.offered: list[Any] = []
        self.app = ExtenderApp(
            self.cache,
            self.metrics,
            prefix="/x",
            max_body_bytes=64 * 1024,
            ready=lambda: self.ready,
            on_filtered=lambda body: self.offered.append(filtered_pod(body)),
        )


@pytest.fixture
async def harness() -> AsyncIterator[tuple[Harness, Client]]:
    h = Harness()
    for i in range(3):
        h.cache.upsert_node(node(f"n{i}"))
    async with TestClient(TestServer(h.app.build())) as client:
        yield h, client


def args(names: list[str]) -> bytes:
    return orjson.dumps({"Pod": pod("p"), "NodeNames": names, "Nodes": None})


async def test_filter_passes_known_and_unknown_and_hands_pod_to_predictor(
    harness: tuple[Harness, Client],
) -> None:
    h, client = harness
    response = await client.post("/x/filter", data=args(["n0", "ghost", "n2"]))
    assert response.status == 200
    answer = orjson.loads(await response.read())
    assert answer["NodeNames"] == ["n0", "ghost", "n2"]
    await eventually(lambda: h.offered)  # after the answer (tests/extender/test_after_answer.py)
    assert [p["metadata"]["name"] for p in h.offered] == ["p"]
    assert h.metrics.requests_by["filter", "ok"]._value.get() == 1


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"garbage", "body: is not JSON"),
        (b'{"Pod": {}}', "NodeNames: neither"),
        (b'{"NodeNames": []}', "Pod: missing"),
    ],
)
async def test_malformed_body_is_400_with_json_error(
    harness: tuple[Harness, Client], data: bytes, problem: str
) -> None:
    h, client = harness
    for verb in ("filter", "prioritize"):
        response = await client.post(f"/x/{verb}", data=data)
        assert response.status == 400
        assert response.content_type == "application/json"
        assert problem in orjson.loads(await response.read())["error"]
        assert h.metrics.requests_by[verb, "bad_request"]._value.get() >= 1
    assert h.offered == []


async def test_oversized_body_is_400(harness: tuple[Harness, Client]) -> None:
    _, client = harness
    data = args(["n" * 50] * 2000)
    response = await client.post("/x/filter", data=data)
    assert response.status == 400
    assert "over the limit of 65536" in orjson.loads(await response.read())["error"]


async def test_bad_pod_quantity_is_400_on_prioritize(harness: tuple[Harness, Client]) -> None:
    _, client = harness
    bad = pod("p", cpu="lots")
    response = await client.post("/x/prioritize", data=orjson.dumps({"Pod": bad, "NodeNames": ["n0"]}))
    assert response.status == 400
    assert "cpu" in orjson.loads(await response.read())["error"]


async def test_internal_failure_answers_error_not_500(
    harness: tuple[Harness, Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    h, client = harness

    def broken(*_: object) -> Any:
        raise RuntimeError("cache exploded")

    monkeypatch.setattr(decisions, "filter_nodes", broken)
    monkeypatch.setattr(h.cache.table, "priority_list", broken)
    response = await client.post("/x/filter", data=args(["n0", "n1"]))
    assert response.status == 200
    answer = orjson.loads(await response.read())
    assert "cache exploded" in answer["Error"]
    assert answer["NodeNames"] == ["n0", "n1"]
    response = await client.post("/x/prioritize", data=args(["n0", "n1"]))
    assert response.status == 200
    assert orjson.loads(await response.read()) == [{"Host": "n0", "Score": 0}, {"Host": "n1", "Score": 0}]
    assert h.metrics.requests_by["filter", "error"]._value.get() == 1
    assert h.metrics.requests_by["prioritize", "error"]._value.get() == 1


async def test_prioritize_prefers_the_fuller_node(harness: tuple[Harness, Client]) -> None:
    h, client = harness
    h.cache.upsert_pod(pod("busy", cpu="2", memory="8Gi", node_name="n1"))
    response = await client.post("/x/prioritize", data=args(["n0", "n1"]))
    scores = {e["Host"]: e["Score"] for e in orjson.loads(await response.read())}
    assert scores["n1"] > scores["n0"] > 0


async def test_probes_and_metrics(harness: tuple[Harness, Client]) -> None:
    h, client = harness
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/readyz")).status == 503
    h.ready = True
    assert (await client.get("/readyz")).status == 200
    await client.post("/x/filter", data=args(["n0"]))
    text = await (await client.get("/metrics")).text()
    assert 'jitnode_extender_request_seconds_bucket{le="0.002",verb="filter"}' in text
    assert 'jitnode_extender_requests_total{outcome="ok",verb="filter"} 1.0' in text


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=6),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=8), kids, max_size=3),
    max_leaves=15,
)
pods = st.fixed_dictionaries(
    {},
    optional={
        "metadata": st.dictionaries(st.sampled_from(["name", "uid", "resourceVersion"]), json_values),
        "spec": st.fixed_dictionaries(
            {},
            optional={
                "containers": st.lists(
                    st.fixed_dictionaries(
                        {
                            "resources": st.fixed_dictionaries(
                                {"requests": st.dictionaries(st.sampled_from(["cpu", "memory"]), json_values)}
                            )
                        }
                    ),
                    max_size=2,
                ),
                "nodeSelector": json_values,
            },
        ),
    },
)
bodies = st.one_of(
    st.binary(max_size=64),
    st.builds(
        lambda p, names, key: orjson.dumps({"Pod": p, key: names}),
        pods,
        st.one_of(st.lists(st.sampled_from(["n0", "n1", "zz"]), max_size=4), json_values),
        st.sampled_from(["NodeNames", "nodenames", "Nodes"]),
    ),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies, verb=st.sampled_from(["filter", "prioritize"]))
async def test_fuzzed_bodies_never_crash(harness: tuple[Harness, Client], body: bytes, verb: str) -> None:
    _, client = harness
    response = await client.post(f"/x/{verb}", data=body)
    assert response.status in (200, 400)
    assert response.content_type == "application/json"
    answer = orjson.loads(await response.read())
    if response.status == 400:
        assert answer["error"]
    elif verb == "filter":
        assert answer["Error"] == ""
    else:
        assert all(0 <= e["Score"] <= 10 for e in answer)
