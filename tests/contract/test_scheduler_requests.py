"""The local scheduler's extender requests have the shape real kube-schedulers send.

Each captured request in the reference fixtures is replayed: the same nodes and the same pod
are created in the local API server, the scheduler calls a recording extender configured like
the captured one, and the recorded body is compared with the capture key by key.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import orjson
import pytest
from kubernetes_asyncio import client

from localcluster.apiserver.testing import running_apiserver
from localcluster.scheduler import Scheduler, load_scheduler_config
from localcluster.scheduler.testing import RecordingExtender, node, wait_for

CAPTURES = [
    "v1.24-filter-nodecache-request.json",
    "v1.24-prioritize-nodecache-request.json",
    "v1.24-filter-fullnodes-request.json",
    "v1.24-prioritize-fullnodes-request.json",
    "v1.28-filter-nodecache-request.json",
    "v1.28-prioritize-nodecache-request.json",
]
SERVER_SET = ("uid", "resourceVersion", "creationTimestamp", "managedFields", "ownerReferences")


def load(folder: Path, name: str) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads((folder / name).read_bytes())
    return data


def nodes_for(folder: Path, capture: dict[str, Any], version: str) -> list[dict[str, Any]]:
    """The captured cluster's nodes: full objects where a capture has them, else 4-CPU nodes."""
    full = load(folder, f"{version}-filter-fullnodes-request.json") if version == "v1.24" else None
    by_name = {n["metadata"]["name"]: n for n in (full["Nodes"]["items"] if full else [])}
    names = capture["NodeNames"] or [n["metadata"]["name"] for n in capture["Nodes"]["items"]]
    out = []
    for name in names:
        if name in by_name:
            raw = by_name[name]
            meta = {k: v for k, v in raw["metadata"].items() if k not in SERVER_SET}
            out.append({"apiVersion": "v1", "kind": "Node", **raw, "metadata": meta})
        else:
            out.append(node(name, cpu="4", memory="16Gi"))
    return out


def pod_for(capture: dict[str, Any]) -> dict[str, Any]:
    """The captured pod as its controller would create it (no server-set fields, no status)."""
    meta = {k: v for k, v in capture["Pod"]["metadata"].items() if k not in (*SERVER_SET, "generateName")}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": capture["Pod"]["spec"]}


def without_type_meta(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}


async def read_raw(call: Any) -> dict[str, Any]:
    response = await call
    try:
        data: dict[str, Any] = orjson.loads(await response.read())
    finally:
        response.release()
    return data


@pytest.mark.parametrize("capture_name", CAPTURES)
async def test_request_matches_capture(kube_scheduler_fixtures: Path, capture_name: str) -> None:
    capture = load(kube_scheduler_fixtures, capture_name)
    version, verb, mode = capture_name.removesuffix("-request.json").split("-")
    cache_capable = mode == "nodecache"
    async with running_apiserver() as (_, api), RecordingExtender() as ext:
        v1: Any = client.CoreV1Api(api)
        for n in nodes_for(kube_scheduler_fixtures, capture, version):
            await v1.create_node(n)
        p = pod_for(capture)
        await v1.create_namespaced_pod(p["metadata"]["namespace"], p)
        stored_pod = await read_raw(
            v1.read_namespaced_pod(p["metadata"]["name"], p["metadata"]["namespace"], _preload_content=False)
        )
        stored_nodes = (await read_raw(v1.list_node(_preload_content=False)))["items"]
        config = load_scheduler_config(
            "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n"
            f"extenders:\n- urlPrefix: {ext.url}\n  filterVerb: filter\n  prioritizeVerb: prioritize\n"
            f"  weight: 1\n  nodeCacheCapable: {str(cache_capable).lower()}\n"
        )
        async with Scheduler(api, config, rng=random.Random(0)) as scheduler:
            await wait_for(lambda: "prioritize" in ext.verbs())
            await scheduler.wait_idle()
    calls = {c.verb: c for c in ext.calls}
    assert all(c.content_type == "application/json" for c in ext.calls)
    body = calls[verb].json
    # Top level: same keys in the same order, the same one null.
    assert list(body) == list(capture) == ["Pod", "Nodes", "NodeNames"]
    assert (body["Nodes"] is None, body["NodeNames"] is None) == (
        capture["Nodes"] is None,
        capture["NodeNames"] is None,
    )
    # Pod: the object as the API returned it, without apiVersion/kind like the capture.
    assert body["Pod"] == without_type_meta(stored_pod)
    assert list(body["Pod"]) == list(capture["Pod"])
    assert set(capture["Pod"]["metadata"]) - {"managedFields", "ownerReferences", "generateName"} <= set(
        body["Pod"]["metadata"]
    )
    assert (
        body["Pod"]["spec"]["containers"][0]["resources"]
        == capture["Pod"]["spec"]["containers"][0]["resources"]
    )
    if cache_capable:
        assert body["NodeNames"] == capture["NodeNames"]
    else:
        assert list(body["Nodes"]) == list(capture["Nodes"]) == ["metadata", "items"]
        assert body["Nodes"]["metadata"] == capture["Nodes"]["metadata"] == {}
        assert [n["metadata"]["name"] for n in body["Nodes"]["items"]] == [
            n["metadata"]["name"] for n in capture["Nodes"]["items"]
        ]
        for sent, captured in zip(body["Nodes"]["items"], capture["Nodes"]["items"], strict=True):
            assert list(sent) == list(captured)
            assert sent["status"]["allocatable"] == captured["status"]["allocatable"]
        assert body["Nodes"]["items"] == [without_type_meta(n) for n in stored_nodes]
    # Filter and prioritize send the same body, as in the captures.
    assert calls["filter"].body == calls["prioritize"].body
