"""The extender HTTP client against a real (tiny) extender on loopback, and answer decoding."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from localcluster.scheduler.config import ExtenderConfig, ManagedResource
from localcluster.scheduler.extenders import Extender
from localcluster.scheduler.model import pod_facts
from localcluster.scheduler.testing import RecordingExtender, node, pod
from localcluster.scheduler.wire import ExtenderError, decode_filter_result, decode_priorities

NODES = [node(f"n{i}") for i in range(3)]
POD = {**pod("p"), "metadata": {"name": "p", "namespace": "default", "uid": "u1", "resourceVersion": "7"}}


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def extender(url: str, **kw: Any) -> Extender:
    return Extender(
        ExtenderConfig(url_prefix=url, filter_verb="filter", prioritize_verb="prioritize", weight=1, **kw)
    )


@pytest.mark.parametrize("cache_capable", [True, False])
async def test_request_body_shape(session: aiohttp.ClientSession, cache_capable: bool) -> None:
    async with RecordingExtender() as ext:
        result = await extender(ext.url, node_cache_capable=cache_capable).filter(session, POD, NODES)
    assert result.node_names == ("n0", "n1", "n2")
    (call,) = ext.calls
    assert call.verb == "filter"
    assert call.content_type == "application/json"
    body = call.json
    assert list(body) == ["Pod", "Nodes", "NodeNames"]
    assert "kind" not in body["Pod"]
    assert "apiVersion" not in body["Pod"]
    assert body["Pod"]["metadata"] == POD["metadata"]
    assert body["Pod"]["spec"] == POD["spec"]
    if cache_capable:
        assert body["Nodes"] is None
        assert body["NodeNames"] == ["n0", "n1", "n2"]
    else:
        assert body["NodeNames"] is None
        assert list(body["Nodes"]) == ["metadata", "items"]
        assert body["Nodes"]["metadata"] == {}
        expected = [{k: v for k, v in n.items() if k not in ("kind", "apiVersion")} for n in NODES]
        assert body["Nodes"]["items"] == expected


async def test_answers_decoded_case_insensitively(session: aiohttp.ClientSession) -> None:
    def lower(verb: str, args: dict[str, Any]) -> Any:
        if verb == "filter":
            return {"nodenames": ["n2"], "failedNodes": {"n0": "too hot"}, "error": ""}
        return [{"host": "n2", "score": 7}]

    async with RecordingExtender(answer=lower) as ext:
        client = extender(ext.url, node_cache_capable=True)
        result = await client.filter(session, POD, NODES)
        priorities = await client.prioritize(session, POD, NODES)
    assert result.node_names == ("n2",)
    assert result.failed == {"n0": "too hot"}
    assert priorities == [("n2", 7)]


@pytest.mark.parametrize(
    ("status", "answer", "delay", "fragment"),
    [
        (500, None, 0.0, "failed filter with extender at URL"),
        (200, {"Error": "extender exploded"}, 0.0, "extender exploded"),
        (200, {"NodeNames": ["stranger"]}, 0.0, "not found in the input node list"),
        (200, None, 0.5, "context deadline exceeded"),
    ],
)
async def test_failures_raise(
    session: aiohttp.ClientSession, status: int, answer: Any, delay: float, fragment: str
) -> None:
    async with RecordingExtender(answer=lambda verb, args: answer, status=status, delay=delay) as ext:
        client = extender(ext.url, node_cache_capable=True, http_timeout=0.1)
        with pytest.raises(ExtenderError, match=fragment):
            await client.filter(session, POD, NODES)


async def test_connection_refused_raises(session: aiohttp.ClientSession) -> None:
    async with RecordingExtender() as ext:
        url = ext.url
    with pytest.raises(ExtenderError, match=r'Post "http://127\.0\.0\.1'):
        await extender(url).filter(session, POD, NODES)


async def test_verbs_missing_mean_no_call(session: aiohttp.ClientSession) -> None:
    async with RecordingExtender() as ext:
        client = Extender(ExtenderConfig(url_prefix=ext.url))
        assert (await client.filter(session, POD, NODES)).node_names == ("n0", "n1", "n2")
        assert await client.prioritize(session, POD, NODES) == []
    assert ext.calls == []


async def test_bind_body(session: aiohttp.ClientSession) -> None:
    async with RecordingExtender(answer=lambda verb, args: {"Error": ""}) as ext:
        client = Extender(ExtenderConfig(url_prefix=ext.url, bind_verb="bind"))
        await client.bind(session, pod_facts(POD), "n1")
    assert ext.calls[0].verb == "bind"
    assert ext.calls[0].json == {"PodName": "p", "PodNamespace": "default", "PodUID": "u1", "Node": "n1"}


def test_managed_resources_interest() -> None:
    client = Extender(
        ExtenderConfig(url_prefix="http://x", managed_resources=(ManagedResource("example.com/gpu"),))
    )
    assert not client.is_interested(pod_facts(pod("plain")))
    assert client.is_interested(pod_facts(pod("gpu", extra_requests={"example.com/gpu": "1"})))
    limits_only = pod("lim")
    limits_only["spec"]["containers"][0]["resources"]["limits"] = {"example.com/gpu": "1"}
    assert client.is_interested(pod_facts(limits_only))
    assert Extender(ExtenderConfig(url_prefix="http://x")).is_interested(pod_facts(pod("any")))


def test_decode_full_node_list_answer_and_bad_shapes() -> None:
    body = orjson.dumps(
        {"Nodes": {"items": [{"metadata": {"name": "n1"}}]}, "FailedAndUnresolvableNodes": {"n0": "x"}}
    )
    result = decode_filter_result(body, ["n0", "n1"], node_cache_capable=False)
    assert result.node_names == ("n1",)
    assert result.failed_unresolvable == {"n0": "x"}
    # Neither list: nothing passed (what an extender reading lower-case keys ends up answering).
    assert decode_filter_result(b"{}", ["n0"], node_cache_capable=True).node_names == ()
    for bad in (b"[", b"[]", b'{"NodeNames": "n0"}', b'{"FailedNodes": {"n0": 1}}'):
        with pytest.raises(ExtenderError):
            decode_filter_result(bad, ["n0"], node_cache_capable=True)
    with pytest.raises(ExtenderError):
        decode_priorities(b'[{"Host": "n0", "Score": 1.5}]')
    assert decode_priorities(b"null") == []
