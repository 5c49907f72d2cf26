"""Filter answers from the names alone; the pod is read after the answer, in the predictor's
batches, and prediction still sees every filtered pod.

The answer must not wait for anything the pod is needed for (issue 11): a deliberately slow
prediction step shows the answer arriving before it finishes, and a real predictor shows
demand within 50 ms of each filter call.
"""

from __future__ import annotations

import asyncio
import http.client
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given, settings
from hypothesis import strategies as st

from extender import protocol
from extender.app import ExtenderApp
from extender.cache import ClusterCache
from extender.demand import DemandTracker
from extender.metrics import ExtenderMetrics
from extender.predict import Predictor, filtered_pod
from shared.demand import PodDemand
from tests.conftest import KUBE_SCHEDULER_FIXTURES
from tests.extender.helpers import eventually, node, pod

Client = TestClient[Any, Any]
names = st.lists(st.text(max_size=8), max_size=6)
json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.text(max_size=6))
json_values = st.recursive(
    json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["NodeNames", "a", "b"]), inner, max_size=3),
    ),
    max_leaves=12,
)


def full_parse_names(body: bytes) -> list[str] | None:
    try:
        return list(protocol.parse_args(body).node_names or []) or None
    except protocol.ProtocolError:
        return None


def test_names_only_reads_the_captured_bodies_as_the_full_parse_does() -> None:
    checked = 0
    for path in sorted(KUBE_SCHEDULER_FIXTURES.glob("*nodecache*.json")):
        body = path.read_bytes()
        parsed = protocol.parse_args(body)
        assert protocol.node_names_only(body) == parsed.node_names, path.name
        assert protocol.pod_only(body) == parsed.pod, path.name
        checked += 1
    assert checked >= 4


@settings(max_examples=150, deadline=None)
@given(pod_value=json_values, candidates=st.one_of(names, json_values), extra=st.booleans())
def test_names_only_never_disagrees_with_the_full_parse(pod_value: Any, candidates: Any, extra: bool) -> None:
    """Whatever the pod holds (a nested "NodeNames" key included), the names it reads are the ones
    the full parse reads; when it cannot tell, it says None and the full parse decides."""
    pod_object = {"NodeNames": pod_value, "x": [pod_value]} if extra else {"spec": pod_value}
    body = orjson.dumps({"Pod": pod_object, "Nodes": None, "NodeNames": candidates})
    fast = protocol.node_names_only(body)
    if fast is not None:
        parsed = protocol.parse_args(body)
        assert fast == parsed.node_names
        assert protocol.pod_only(body) == parsed.pod  # what prediction reads after the answer
    # The top-level key first and a nested one last: never mistaken for the candidates.
    moved = orjson.dumps({"Pod": {"a": 1}, "NodeNames": ["real"], "Nodes": None, "x": {"NodeNames": ["no"]}})
    assert protocol.node_names_only(moved) is None


def test_names_only_leaves_other_shapes_to_the_full_parse() -> None:
    for body in (
        b'{"pod":{},"nodenames":["a"]}',  # lower-case keys (old schedulers)
        b'{"Pod":{},"Nodes":{"items":[]},"NodeNames":null}',  # a NodeList
        b'{"Pod":{},"NodeNames":["a"],"nodenames":["b"]}',  # a later duplicate wins in Go
        b'{"Pod":{},"NodeNames":[1]}',
        b'{"Pod":[],"NodeNames":["a"]}',
        b"garbage",
    ):
        assert protocol.node_names_only(body) is None, body
    assert protocol.node_names_only(b'{"Pod":{},"NodeNames":["a"]}\n') == ["a"]


async def test_overflow_drops_the_oldest_bodies_and_counts() -> None:
    metrics = ExtenderMetrics()
    cache = ClusterCache()
    cache.upsert_node(node("n0"))
    predictor = Predictor(cache, DemandTracker(), queue_size=2, metrics=metrics)
    for name in ("a", "b", "c"):
        predictor.offer_body(filter_body(name, ["n0"]))
    assert predictor.backlog == 2
    assert metrics.predictions_dropped._value.get() == 1
    assert [p["metadata"]["name"] for _, p in predictor._drain()] == ["b", "c"]
    assert predictor.backlog == 0


def filter_body(name: str, candidates: list[str]) -> bytes:
    return orjson.dumps({"Pod": pod(name), "Nodes": None, "NodeNames": candidates})


def post_blocking(host: str, port: int, path: str, body: bytes) -> tuple[float, bytes]:
    """One call from a thread of its own: it sees the answer when it arrives, whatever the loop does."""
    connection = http.client.HTTPConnection(host, port, timeout=10)
    try:
        connection.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        answer = connection.getresponse().read()
        return time.perf_counter(), answer
    finally:
        connection.close()


async def test_the_answer_does_not_wait_for_a_slow_prediction_step() -> None:
    cache = ClusterCache()
    cache.upsert_node(node("n0"))
    slow_ran: list[tuple[float, float, str]] = []

    def slow_offer(body: bytes) -> None:  # blocks the event loop, as a slow step would
        began = time.perf_counter()
        time.sleep(0.3)
        pod_object = filtered_pod(body)
        assert pod_object is not None
        slow_ran.append((began, time.perf_counter(), pod_object["metadata"]["name"]))

    app = ExtenderApp(cache, ExtenderMetrics(), prefix="/x", on_filtered=slow_offer)
    async with TestClient(TestServer(app.build())) as client:
        sent = time.perf_counter()
        answered, answer = await asyncio.to_thread(
            post_blocking, client.host, client.port or 0, "/x/filter", filter_body("p", ["n0", "n1"])
        )
        await eventually(lambda: slow_ran)
    assert orjson.loads(answer)["NodeNames"] == ["n0", "n1"]
    began, ended, name = slow_ran[0]
    assert name == "p"
    assert answered - sent < 0.15, "the answer waited for the prediction step"
    assert answered < ended  # it arrived while the step was still running
    assert began >= sent


class Arrivals:
    """A demand sink that notes when each pod's demand arrived."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}

    def upsert(self, demand: PodDemand) -> None:
        self.at.setdefault(demand.name, time.perf_counter())

    def withdraw(self, uid: str, reason: str) -> None:
        pass


@pytest.fixture
async def predicting() -> AsyncIterator[tuple[Client, Arrivals, list[str]]]:
    cache = ClusterCache()
    cache.upsert_node(node("full", cpu="1", memory="1Gi", pods="1"))
    cache.upsert_pod(pod("tenant", cpu="1", memory="1Gi", node_name="full"))  # no room for anything
    tracker = DemandTracker()
    arrivals = Arrivals()
    tracker.add_sink(arrivals)
    predictor = Predictor(cache, tracker, headroom=1, recheck_interval=0.05)
    offered: list[str] = []

    def offer(body: bytes) -> None:
        pod_object = filtered_pod(body)
        assert pod_object is not None
        offered.append(pod_object["metadata"]["name"])
        predictor.offer_body(body)

    predictor.start()
    app = ExtenderApp(cache, ExtenderMetrics(), prefix="/x", on_filtered=offer)
    try:
        async with TestClient(TestServer(app.build())) as client:
            yield client, arrivals, offered
    finally:
        await predictor.stop()


async def test_every_filtered_pod_is_predicted_within_50_ms(
    predicting: tuple[Client, Arrivals, list[str]],
) -> None:
    client, arrivals, offered = predicting
    pods = [f"p{i}" for i in range(20)]
    delays: list[float] = []
    for name in pods:
        sent = time.perf_counter()
        response = await client.post("/x/filter", data=filter_body(name, ["full"]))
        assert orjson.loads(await response.read())["NodeNames"] == ["full"]
        await eventually(lambda name=name: name in arrivals.at, within=1.0, step=0.001)  # type: ignore[misc]
        delays.append(arrivals.at[name] - sent)
    assert offered == pods  # every filtered pod, once, in order
    assert max(delays) < 0.05, f"demand after {max(delays) * 1000:.1f} ms"
    # A burst without waiting: every pod still reaches prediction.
    burst = [f"q{i}" for i in range(50)]
    for name in burst:
        await client.post("/x/filter", data=filter_body(name, ["full"]))
    await eventually(lambda: all(name in arrivals.at for name in burst), within=2.0)
    assert offered == pods + burst


async def test_a_pod_unreadable_after_the_answer_is_not_predicted() -> None:
    """The answer path does not read the pod's bytes, so a body kube-scheduler would never send
    is answered from its names; the predictor's decode finds the fault and drops the pod."""
    cache = ClusterCache()
    cache.upsert_node(node("n0"))
    predictor = Predictor(cache, DemandTracker())
    app = ExtenderApp(cache, ExtenderMetrics(), prefix="/x", on_filtered=predictor.offer_body)
    async with TestClient(TestServer(app.build())) as client:
        response = await client.post("/x/filter", data=b'{"Pod":{"a":nope},"Nodes":null,"NodeNames":["n0"]}')
        assert response.status == 200
        assert orjson.loads(await response.read())["NodeNames"] == ["n0"]
        good = await client.post("/x/filter", data=filter_body("ok", ["n0"]))
        assert good.status == 200
    assert predictor.backlog == 2
    assert [p["metadata"]["name"] for _, p in predictor._drain()] == ["ok"]
