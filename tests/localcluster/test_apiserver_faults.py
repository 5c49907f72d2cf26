# mypy: disable-error-code="arg-type, call-arg"
"""The API server's injected faults, seen on the wire as a client of a real kube-apiserver sees them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from localcluster.apiserver import APIServer
from localcluster.apiserver.testing import running_apiserver
from shared.informer import Informer, Obj

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"


@pytest.fixture
async def kube() -> AsyncIterator[tuple[APIServer, client.ApiClient]]:
    async with running_apiserver(bookmark_interval=0.2) as pair:
        yield pair


async def _configmap(api: client.ApiClient, name: str) -> Any:
    return await client.CoreV1Api(api).create_namespaced_config_map("default", {"metadata": {"name": name}})


async def _until(predicate: Any, polls: int = 500) -> None:
    """Poll ``predicate`` every 10 ms, failing after ``polls`` tries (5 s)."""
    for _ in range(polls):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"still false after {polls} polls")


class _Seen:
    def __init__(self) -> None:
        self.names: list[str] = []

    def on_added(self, obj: Obj) -> None:
        self.names.append(obj["metadata"]["name"])

    def on_modified(self, old: Obj, new: Obj) -> None:
        pass

    def on_deleted(self, obj: Obj) -> None:
        pass


async def test_nothing_armed_by_default(kube: tuple[APIServer, client.ApiClient]) -> None:
    server, api = kube
    assert not server.faults.armed
    await _configmap(api, "plain")
    assert server.faults.fired == {}


async def test_failing_writes_answer_real_status_bodies_then_stop(
    kube: tuple[APIServer, client.ApiClient],
) -> None:
    server, _ = kube
    expected = {500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout", 429: "TooManyRequests"}
    async with aiohttp.ClientSession() as http:
        for status, reason in expected.items():
            server.faults.failing_writes(status, count=1, retry_after=2)
            assert server.faults.armed
            async with http.get(f"{server.url}{CONFIGMAPS}") as read:
                assert read.status == 200  # reads are untouched
            async with http.post(f"{server.url}{CONFIGMAPS}", json={"metadata": {"name": f"c{status}"}}) as r:
                assert r.status == status
                body = await r.json()
                assert body["kind"] == "Status"
                assert body["status"] == "Failure"
                assert (body["code"], body["reason"]) == (status, reason)
                if status in (429, 504):
                    assert r.headers["Retry-After"] == "2"
                    assert body["details"]["retryAfterSeconds"] == 2
            assert not server.faults.armed  # one write spent it
            async with http.post(f"{server.url}{CONFIGMAPS}", json={"metadata": {"name": f"c{status}"}}) as r:
                assert r.status == 201
    assert server.faults.fired == {"write_500": 1, "write_503": 1, "write_504": 1, "write_429": 1}


async def test_failing_writes_narrowed_to_resources_and_refused_statuses(
    kube: tuple[APIServer, client.ApiClient],
) -> None:
    server, api = kube
    with pytest.raises(ValueError, match="HTTP 418"):
        server.faults.failing_writes(418)
    server.faults.failing_writes(500, count=1, resources=("secrets",))
    await _configmap(api, "spared")
    with pytest.raises(ApiException) as refused:
        await client.CoreV1Api(api).create_namespaced_secret("default", {"metadata": {"name": "s"}})
    assert refused.value.status == 500
    assert server.faults.struck == {("write_500", "POST secrets"): 1}


async def test_slow_writes_delay_only_writes_and_only_count_of_them(
    kube: tuple[APIServer, client.ApiClient],
) -> None:
    server, api = kube
    server.faults.slow_writes(0.3, count=1)
    started = time.monotonic()
    await client.CoreV1Api(api).list_namespaced_config_map("default")
    assert time.monotonic() - started < 0.2
    await _configmap(api, "slow")
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    await _configmap(api, "fast")
    assert time.monotonic() - started < 0.2
    assert server.faults.fired["slow_write"] == 1


async def test_conflict_is_a_real_race_on_guarded_updates_only(
    kube: tuple[APIServer, client.ApiClient],
) -> None:
    server, api = kube
    v1 = client.CoreV1Api(api)
    created = await _configmap(api, "raced")
    rv = created.metadata.resource_version
    server.faults.conflicts(1)
    # An unguarded merge patch is retried inside a real server: never a 409, and not spent.
    await v1.patch_namespaced_config_map("raced", "default", {"data": {"a": "1"}})
    assert server.faults.pending["conflicts"] == 1
    current = await v1.read_namespaced_config_map("raced", "default")
    assert current.metadata.resource_version != rv
    body = {"metadata": {"name": "raced", "resourceVersion": current.metadata.resource_version}}
    with pytest.raises(ApiException) as lost:
        await v1.replace_namespaced_config_map("raced", "default", body)
    assert lost.value.status == 409
    status = orjson.loads(lost.value.body)
    assert status["reason"] == "Conflict"
    # Another writer really wrote: the object moved on, and the retry with it succeeds.
    latest = await v1.read_namespaced_config_map("raced", "default")
    assert int(latest.metadata.resource_version) > int(current.metadata.resource_version)
    body["metadata"]["resourceVersion"] = latest.metadata.resource_version
    await v1.replace_namespaced_config_map("raced", "default", body)
    assert server.faults.fired["conflict"] == 1
    assert not server.faults.armed


async def test_guarded_merge_patch_conflicts(kube: tuple[APIServer, client.ApiClient]) -> None:
    server, api = kube
    created = await _configmap(api, "patched")
    server.faults.conflicts(1)
    async with aiohttp.ClientSession() as http:
        patch = {"metadata": {"resourceVersion": created.metadata.resource_version}, "data": {"k": "v"}}
        async with http.patch(
            f"{server.url}{CONFIGMAPS}/patched",
            data=orjson.dumps(patch),
            headers={"Content-Type": "application/merge-patch+json"},
        ) as r:
            assert r.status == 409
            assert (await r.json())["reason"] == "Conflict"


async def test_gone_watches_end_open_ones_and_refuse_resumptions(
    kube: tuple[APIServer, client.ApiClient],
) -> None:
    server, api = kube
    created = await _configmap(api, "before")
    rv = created.metadata.resource_version
    async with aiohttp.ClientSession() as http:
        async with http.get(
            f"{server.url}{CONFIGMAPS}", params={"watch": "1", "resourceVersion": rv}
        ) as open_:
            await _until(lambda: server.store.watcher_count() == 1)
            assert server.faults.gone_watches(count=2) == 1
            events = [orjson.loads(line) async for line in open_.content if line.strip()]
        assert [(e["type"], e["object"]["code"], e["object"]["reason"]) for e in events] == [
            ("ERROR", 410, "Expired")
        ]
        for _ in range(2):
            async with http.get(
                f"{server.url}{CONFIGMAPS}", params={"watch": "1", "resourceVersion": rv}
            ) as r:
                assert r.status == 200  # the watch cache answers with one ERROR event, not an HTTP 410
                lines = [orjson.loads(line) async for line in r.content if line.strip()]
            assert [(e["type"], e["object"]["code"]) for e in lines] == [("ERROR", 410)]
        params = {"watch": "1", "resourceVersion": rv, "timeoutSeconds": "1"}
        async with http.get(f"{server.url}{CONFIGMAPS}", params=params) as r:
            lines = [orjson.loads(line) async for line in r.content if line.strip()]
        assert lines == []  # spent: resuming works again
    assert server.faults.fired == {"watch_expired": 1, "watch_gone": 2}


async def test_an_informer_relists_after_gone_watches(kube: tuple[APIServer, client.ApiClient]) -> None:
    server, api = kube
    seen = _Seen()
    informer = Informer(
        client.CoreV1Api(api).list_namespaced_config_map,
        seen,
        name="cm",
        list_kwargs={"namespace": "default"},
    )
    informer.start()
    try:
        await asyncio.wait_for(informer.wait_synced(), 5)
        await _until(lambda: server.store.watcher_count() == 1)
        server.faults.gone_watches(count=1)
        await _configmap(api, "after")
        # The first list, one after the watch ended with 410, one after its resumption got 410;
        # then the informer watches again as usual.
        await _until(lambda: informer.relists == 3 and server.store.watcher_count() == 1)
        await _until(lambda: "after" in seen.names)
        assert server.faults.fired == {"watch_expired": 1, "watch_gone": 1}
    finally:
        await informer.stop()


async def test_restart_resets_connections_keeps_the_store_and_serves_again(
    kube: tuple[APIServer, client.ApiClient],
) -> None:
    server, api = kube
    await _configmap(api, "kept")
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}{CONFIGMAPS}", params={"watch": "1"}) as open_:
            await open_.content.readline()  # the ADDED of "kept": the watch is live
            restart = asyncio.create_task(server.faults.restart(downtime=0.3))
            with pytest.raises((aiohttp.ClientPayloadError, aiohttp.ClientConnectionError)):
                async for _ in open_.content:
                    pass
        await asyncio.sleep(0.05)
        with pytest.raises(aiohttp.ClientConnectionError):
            async with aiohttp.ClientSession() as fresh, fresh.get(f"{server.url}{CONFIGMAPS}"):
                pass
        await restart
    assert server.store.watcher_count() == 0
    listed = await client.CoreV1Api(api).list_namespaced_config_map("default")
    assert [c.metadata.name for c in listed.items] == ["kept"]
    await _configmap(api, "after-restart")
    assert server.faults.fired["restart"] == 1
