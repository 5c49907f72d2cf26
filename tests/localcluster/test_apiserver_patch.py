# mypy: disable-error-code="arg-type, call-arg"
"""Patch flavours: pure merge/strategic/JSON patch, then each Content-Type over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from kubernetes_asyncio import client

from localcluster.apiserver import APIServer
from localcluster.apiserver.patch import PatchError, json_patch, merge_patch, strategic_merge_patch
from localcluster.apiserver.testing import running_apiserver

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=10,
)
docs = st.dictionaries(st.text(max_size=3), json_values, max_size=4)


@given(docs, docs)
def test_merge_patch_is_idempotent_and_leaves_input_alone(
    target: dict[str, Any], patch: dict[str, Any]
) -> None:
    before = orjson.dumps(target)
    once = merge_patch(target, patch)
    assert merge_patch(once, patch) == once
    assert orjson.dumps(target) == before
    for key, value in patch.items():
        if value is None:
            assert key not in once
        elif not isinstance(value, dict):
            assert once[key] == value


@given(docs)
def test_json_patch_add_then_remove_round_trips(doc: dict[str, Any]) -> None:
    ops = [{"op": "add", "path": "/new~1key", "value": 1}, {"op": "remove", "path": "/new~1key"}]
    assert json_patch({k: v for k, v in doc.items() if k != "new/key"}, ops) == {
        k: v for k, v in doc.items() if k != "new/key"
    }


def test_json_patch_operations() -> None:
    doc = {"a": {"b": [1, 2]}, "c": "x"}
    out = json_patch(
        doc,
        [
            {"op": "add", "path": "/a/b/-", "value": 3},
            {"op": "replace", "path": "/c", "value": "y"},
            {"op": "copy", "from": "/c", "path": "/d"},
            {"op": "move", "from": "/a/b/0", "path": "/e"},
            {"op": "test", "path": "/d", "value": "y"},
        ],
    )
    assert out == {"a": {"b": [2, 3]}, "c": "y", "d": "y", "e": 1}
    assert doc == {"a": {"b": [1, 2]}, "c": "x"}
    with pytest.raises(PatchError):
        json_patch(doc, [{"op": "test", "path": "/c", "value": "nope"}])
    with pytest.raises(PatchError) as malformed:
        json_patch(doc, {"c": "y"})
    assert malformed.value.malformed


def test_strategic_merge_lists() -> None:
    node = {
        "spec": {"taints": [{"key": "a", "effect": "NoSchedule"}, {"key": "b", "effect": "NoSchedule"}]},
        "status": {
            "conditions": [
                {"type": "Ready", "status": "False"},
                {"type": "MemoryPressure", "status": "False"},
            ]
        },
        "metadata": {"finalizers": ["x"], "labels": {"keep": "1", "drop": "2"}},
    }
    out = strategic_merge_patch(
        node,
        {
            "spec": {"taints": [{"key": "c", "effect": "NoExecute"}]},
            "status": {
                "conditions": [{"type": "Ready", "status": "True"}, {"type": "Disk", "status": "False"}]
            },
            "metadata": {
                "finalizers": ["y"],
                "labels": {"drop": None},
                "$setElementOrder/finalizers": ["x", "y"],
            },
        },
    )
    assert out["spec"]["taints"] == [{"key": "c", "effect": "NoExecute"}]  # no patch strategy: replaced
    assert out["status"]["conditions"] == [
        {"type": "Ready", "status": "True"},
        {"type": "MemoryPressure", "status": "False"},
        {"type": "Disk", "status": "False"},
    ]
    assert out["metadata"] == {"finalizers": ["x", "y"], "labels": {"keep": "1"}}
    out = strategic_merge_patch(
        out,
        {
            "metadata": {"$deleteFromPrimitiveList/finalizers": ["x"]},
            "status": {"conditions": [{"type": "Disk", "$patch": "delete"}]},
        },
    )
    assert out["metadata"]["finalizers"] == ["y"]
    assert [c["type"] for c in out["status"]["conditions"]] == ["Ready", "MemoryPressure"]
    pod = {"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "1"}]}}
    out = strategic_merge_patch(pod, {"spec": {"containers": [{"name": "b", "image": "2"}]}})
    assert out["spec"]["containers"] == [{"name": "a", "image": "1"}, {"name": "b", "image": "2"}]


@pytest.fixture
async def kube() -> AsyncIterator[tuple[APIServer, client.ApiClient]]:
    async with running_apiserver() as pair:
        yield pair


async def send_patch(url: str, path: str, content_type: str, body: Any) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as http,
        http.patch(f"{url}{path}", data=orjson.dumps(body), headers={"Content-Type": content_type}) as resp,
    ):
        return resp.status, await resp.json()


async def test_patch_types_over_http(kube: tuple[APIServer, client.ApiClient]) -> None:
    server, api = kube
    v1 = client.CoreV1Api(api)
    await v1.create_node(
        {
            "metadata": {"name": "n"},
            "spec": {"taints": [{"key": "a", "effect": "NoSchedule"}]},
            "status": {"conditions": [{"type": "Ready", "status": "False"}]},
        }
    )
    code, node = await send_patch(
        server.url,
        "/api/v1/nodes/n/status",
        "application/strategic-merge-patch+json",
        {"status": {"conditions": [{"type": "DiskPressure", "status": "False"}]}},
    )
    assert code == 200
    assert [c["type"] for c in node["status"]["conditions"]] == ["Ready", "DiskPressure"]
    code, node = await send_patch(
        server.url,
        "/api/v1/nodes/n",
        "application/merge-patch+json",
        {"spec": {"taints": [{"key": "b", "effect": "NoExecute"}]}},
    )
    assert code == 200
    assert node["spec"]["taints"] == [{"key": "b", "effect": "NoExecute"}]
    code, node = await send_patch(
        server.url,
        "/api/v1/nodes/n",
        "application/json-patch+json",
        [{"op": "add", "path": "/spec/unschedulable", "value": True}],
    )
    assert code == 200
    assert node["spec"]["unschedulable"] is True
    code, status = await send_patch(
        server.url,
        "/api/v1/nodes/n",
        "application/json-patch+json",
        [{"op": "test", "path": "/spec/unschedulable", "value": False}],
    )
    assert code == 422
    assert status["reason"] == "Invalid"
    code, status = await send_patch(
        server.url, "/api/v1/nodes/n", "application/json-patch+json", {"spec": {}}
    )
    assert code == 400
    code, status = await send_patch(server.url, "/api/v1/nodes/n", "application/apply-patch+yaml", {})
    assert code == 422  # server-side apply needs a fieldManager
    assert "fieldManager: Required value" in status["message"]
    code, status = await send_patch(
        server.url,
        "/api/v1/nodes/n",
        "application/merge-patch+json",
        {"metadata": {"resourceVersion": "1"}, "spec": {"unschedulable": False}},
    )
    assert code == 409
    tainted = await v1.patch_node("n", {"spec": {"taints": [{"key": "c", "effect": "NoSchedule"}]}})
    assert [t.key for t in tainted.spec.taints] == ["c"]
