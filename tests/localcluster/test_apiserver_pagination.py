"""Paginated lists (limit/continue) read from the store's sorted names: order, tokens, counts,
writes between pages, and the store's index against a full sort under random writes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from localcluster.apiserver import APIServer
from localcluster.apiserver.store import Store

KEY = ("", "configmaps")


@pytest.fixture
async def server() -> AsyncIterator[APIServer]:
    async with APIServer(controllers=False) as api:
        yield api


def config_map(namespace: str, name: str, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "data": {"k": name},
    }


async def get_json(http: aiohttp.ClientSession, url: str, **params: str) -> dict[str, Any]:
    async with http.get(url, params=params) as response:
        assert response.status == 200, await response.text()
        body: dict[str, Any] = orjson.loads(await response.read())
        return body


async def pages(http: aiohttp.ClientSession, url: str, limit: int, **params: str) -> list[dict[str, Any]]:
    """Every page of a list, following continue tokens."""
    out: list[dict[str, Any]] = []
    token = ""
    while True:
        query = {"limit": str(limit), **params, **({"continue": token} if token else {})}
        page = await get_json(http, url, **query)
        out.append(page)
        token = page["metadata"].get("continue", "")
        if not token:
            return out


def names(page: dict[str, Any]) -> list[tuple[str, str]]:
    return [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in page["items"]]


def fill(store: Store, count: int, namespaces: int) -> list[tuple[str, str]]:
    refs = []
    for i in range(count):
        namespace, name = f"ns-{i % namespaces}", f"cm-{i}"
        store.put(KEY, config_map(namespace, name, parity=str(i % 2)), None)
        refs.append((namespace, name))
    return sorted(refs)


async def test_pages_cover_everything_once_in_order_with_remaining_counts(server: APIServer) -> None:
    everything = fill(server.store, 53, namespaces=4)
    async with aiohttp.ClientSession() as http:
        listed = await pages(http, f"{server.url}/api/v1/configmaps", limit=10)
    assert [len(p["items"]) for p in listed] == [10, 10, 10, 10, 10, 3]
    assert [ref for p in listed for ref in names(p)] == everything
    assert [p["metadata"].get("remainingItemCount") for p in listed] == [43, 33, 23, 13, 3, None]


async def test_namespaced_pages_stay_in_their_namespace(server: APIServer) -> None:
    everything = fill(server.store, 40, namespaces=3)
    async with aiohttp.ClientSession() as http:
        listed = await pages(http, f"{server.url}/api/v1/namespaces/ns-1/configmaps", limit=4)
    wanted = [ref for ref in everything if ref[0] == "ns-1"]
    assert [ref for p in listed for ref in names(p)] == wanted
    assert listed[0]["metadata"]["remainingItemCount"] == len(wanted) - 4


async def test_selected_pages_match_and_leave_the_remaining_count_out(server: APIServer) -> None:
    everything = fill(server.store, 30, namespaces=2)
    async with aiohttp.ClientSession() as http:
        listed = await pages(http, f"{server.url}/api/v1/configmaps", limit=4, labelSelector="parity=1")
    odd = sorted(ref for ref in everything if int(ref[1].split("-")[1]) % 2 == 1)
    assert [ref for p in listed for ref in names(p)] == odd
    assert all("remainingItemCount" not in p["metadata"] for p in listed)


async def test_writes_between_pages_show_after_the_token_only(server: APIServer) -> None:
    fill(server.store, 12, namespaces=1)  # ns-0/cm-0 .. cm-11
    url = f"{server.url}/api/v1/configmaps"
    async with aiohttp.ClientSession() as http:
        first = await get_json(http, url, limit="5")
        assert names(first)[-1] == ("ns-0", "cm-2")  # cm-0, cm-1, cm-10, cm-11, cm-2: by name
        server.store.put(KEY, config_map("ns-0", "cm-0a"), None)  # before the token: not seen
        server.store.put(KEY, config_map("ns-0", "cm-9z"), None)  # after it: seen
        gone = server.store.get(KEY, "ns-0", "cm-5")
        assert gone is not None
        server.store.remove(KEY, gone)
        rest = await pages(http, url, limit=100, **{"continue": first["metadata"]["continue"]})
    seen = [ref[1] for p in rest for ref in names(p)]
    assert seen == ["cm-3", "cm-4", "cm-6", "cm-7", "cm-8", "cm-9", "cm-9z"]


async def test_a_bad_continue_token_is_a_bad_request(server: APIServer) -> None:
    params = {"limit": "1", "continue": "x"}
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{server.url}/api/v1/configmaps", params=params) as r,
    ):
        assert r.status == 400
        assert "continue" in (await r.json())["message"]


operations = st.lists(
    st.tuples(st.sampled_from(["put", "remove"]), st.sampled_from(["a", "b", ""]), st.integers(0, 12)),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(
    operations,
    st.sampled_from([None, "a", "b", ""]),
    st.none() | st.tuples(st.sampled_from(["a", "b", ""]), st.integers(0, 12)),
)
def test_ordered_equals_a_full_sort_after_any_writes(
    ops: list[tuple[str, str, int]], namespace: str | None, after: tuple[str, int] | None
) -> None:
    store = Store()
    live: set[tuple[str, str]] = set()
    for op, ns, n in ops:
        ref = (ns, f"o-{n}")
        current = store.get(KEY, *ref)
        if op == "put":
            store.put(KEY, config_map(*ref), current)
            live.add(ref)
        elif current is not None:
            store.remove(KEY, current)
            live.discard(ref)
        if n % 5 == 0:  # sometimes read between writes: the index is brought up to date then
            list(store.ordered(KEY))
    start = None if after is None else (after[0], f"o-{after[1]}")
    wanted = sorted(
        r for r in live if (namespace is None or r[0] == namespace) and (start is None or r > start)
    )
    got = [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in store.ordered(KEY, namespace, start)]
    assert got == wanted
    assert store.count_after(KEY, namespace, start or ("", "")) == len(wanted)
