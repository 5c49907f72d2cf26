# mypy: disable-error-code="arg-type, call-arg"
"""Watch semantics through kubernetes-asyncio and raw HTTP: resume, 410, bookmarks, timeouts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from kubernetes_asyncio import client, watch
from kubernetes_asyncio.client.exceptions import ApiException

from localcluster.apiserver import APIServer
from localcluster.apiserver.testing import running_apiserver


@pytest.fixture
async def kube() -> AsyncIterator[tuple[APIServer, client.ApiClient]]:
    async with running_apiserver(history_limit=50, bookmark_interval=0.2) as pair:
        yield pair


async def raw_watch(url: str, path: str, **params: str) -> list[dict[str, Any]]:
    """Every event of a watch that the server ends (it must be bounded by timeoutSeconds)."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{url}{path}", params={"watch": "true", **params}) as resp,
    ):
        assert resp.status == 200
        return [orjson.loads(line) async for line in resp.content if line.strip()]


async def test_watch_without_rv_lists_then_streams(kube: tuple[APIServer, client.ApiClient]) -> None:
    _, api = kube
    v1 = client.CoreV1Api(api)
    await v1.create_namespaced_config_map("default", {"metadata": {"name": "before"}})
    w = watch.Watch()
    seen: list[tuple[str, str]] = []

    async def later() -> None:
        await asyncio.sleep(0.05)
        await v1.create_namespaced_config_map("default", {"metadata": {"name": "after"}})
        await v1.delete_namespaced_config_map("before", "default")

    task = asyncio.create_task(later())
    async with asyncio.timeout(5):
        async for ev in w.stream(v1.list_namespaced_config_map, "default", timeout_seconds=2):
            seen.append((ev["type"], ev["object"].metadata.name))
            if len(seen) == 3:
                w.stop()
    await task
    assert seen == [("ADDED", "before"), ("ADDED", "after"), ("DELETED", "before")]


async def test_watch_resumes_from_resource_version(kube: tuple[APIServer, client.ApiClient]) -> None:
    server, api = kube
    v1 = client.CoreV1Api(api)
    first = await v1.create_namespaced_config_map("default", {"metadata": {"name": "a"}})
    await v1.create_namespaced_config_map("default", {"metadata": {"name": "b"}})
    await v1.patch_namespaced_config_map("a", "default", {"data": {"k": "v"}})
    events = await raw_watch(
        server.url,
        "/api/v1/namespaces/default/configmaps",
        resourceVersion=first.metadata.resource_version,
        timeoutSeconds="1",
    )
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "b"),
        ("MODIFIED", "a"),
    ]
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert rvs == sorted(rvs)
    assert rvs[0] > int(first.metadata.resource_version)


async def test_compacted_history_answers_410(kube: tuple[APIServer, client.ApiClient]) -> None:
    server, api = kube
    v1 = client.CoreV1Api(api)
    first = await v1.create_namespaced_config_map("default", {"metadata": {"name": "a"}})
    for n in range(60):  # history_limit is 50
        await v1.patch_namespaced_config_map("a", "default", {"data": {"n": str(n)}})
    events = await raw_watch(
        server.url,
        "/api/v1/namespaces/default/configmaps",
        resourceVersion=first.metadata.resource_version,
        timeoutSeconds="1",
    )
    assert len(events) == 1
    assert events[0]["type"] == "ERROR"
    status = events[0]["object"]
    assert isinstance(status, dict)
    assert status["code"] == 410
    assert status["reason"] == "Expired"
    w = watch.Watch()
    with pytest.raises(ApiException) as gone:
        async for _ in w.stream(
            v1.list_namespaced_config_map,
            "default",
            resource_version=first.metadata.resource_version,
            timeout_seconds=1,
        ):
            pass
    assert gone.value.status == 410


async def test_bookmarks_and_timeout(kube: tuple[APIServer, client.ApiClient]) -> None:
    server, _ = kube
    started = time.monotonic()
    events = await raw_watch(server.url, "/api/v1/pods", allowWatchBookmarks="true", timeoutSeconds="1")
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 3
    bookmarks = [e for e in events if e["type"] == "BOOKMARK"]
    assert len(bookmarks) >= 2
    obj = bookmarks[-1]["object"]
    assert isinstance(obj, dict)
    assert obj["kind"] == "Pod"
    assert int(obj["metadata"]["resourceVersion"]) > 0
    plain = await raw_watch(server.url, "/api/v1/pods", timeoutSeconds="1")
    assert plain == []


async def test_selectors_filter_watch_and_report_transitions(
    kube: tuple[APIServer, client.ApiClient],
) -> None:
    server, api = kube
    v1 = client.CoreV1Api(api)
    start = await v1.create_namespaced_config_map(
        "default", {"metadata": {"name": "x", "labels": {"team": "a"}}}
    )
    await v1.create_namespaced_config_map("default", {"metadata": {"name": "y", "labels": {"team": "b"}}})
    await v1.patch_namespaced_config_map("x", "default", {"metadata": {"labels": {"team": "b"}}})
    await v1.patch_namespaced_config_map("x", "default", {"metadata": {"labels": {"team": "a"}}})
    events = await raw_watch(
        server.url,
        "/api/v1/configmaps",
        labelSelector="team in (a)",
        resourceVersion=str(int(start.metadata.resource_version) - 1),
        timeoutSeconds="1",
    )
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "x"),
        ("DELETED", "x"),
        ("ADDED", "x"),
    ]
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/api/v1/configmaps", params={"labelSelector": "team in (a"}) as r:
            assert r.status == 400
        async with http.get(f"{server.url}/api/v1/pods", params={"fieldSelector": "spec.bogus=1"}) as r:
            assert r.status == 400


async def test_slow_watcher_is_dropped_with_410_without_blocking_writers() -> None:
    async with running_apiserver(watcher_buffer=5) as (server, api):
        v1 = client.CoreV1Api(api)
        watcher, _ = server.store.watch(("", "configmaps"), lambda _: True, None)
        for n in range(10):
            await v1.create_namespaced_config_map("default", {"metadata": {"name": f"c{n}"}})
        assert watcher.closed
        assert watcher.error is not None
        assert watcher.error.code == 410
        assert len((await v1.list_namespaced_config_map("default")).items) == 10


async def test_many_concurrent_watchers_all_see_each_event(kube: tuple[APIServer, client.ApiClient]) -> None:
    server, api = kube
    v1 = client.CoreV1Api(api)

    async def one() -> list[str]:
        async with (
            aiohttp.ClientSession() as http,
            http.get(
                f"{server.url}/api/v1/namespaces/default/configmaps",
                params={"watch": "1", "timeoutSeconds": "2"},
            ) as resp,
        ):
            names = []
            async for line in resp.content:
                names.append(orjson.loads(line)["object"]["metadata"]["name"])
                if len(names) == 3:
                    return names
        return names

    tasks = [asyncio.create_task(one()) for _ in range(30)]
    for _ in range(100):
        if server.store.watcher_count() >= 30:
            break
        await asyncio.sleep(0.01)
    for name in ("a", "b", "c"):
        await v1.create_namespaced_config_map("default", {"metadata": {"name": name}})
    results = await asyncio.gather(*tasks)
    assert all(r == ["a", "b", "c"] for r in results)
