"""The list+watch informer against a small fake API server that can cut, expire and page.

The fake speaks the API's wire format for nodes (paged list, chunked watch stream with
bookmarks and 410 ERROR events), which is all the informer relies on.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp import web
from kubernetes_asyncio.client import ApiClient, Configuration, CoreV1Api

from shared.backoff import Backoff
from shared.informer import Informer, Obj, freeze_listed_pages
from tests.extender.helpers import eventually


class FakeNodes:
    """Nodes with a history of events, so watches can resume from any resourceVersion."""

    def __init__(self) -> None:
        self.rv = 0
        self.objects: dict[str, Obj] = {}
        self.history: list[tuple[int, str, Obj]] = []
        self.changed = asyncio.Condition()
        self.compacted_below = 0  # watches from an RV below this get 410
        self.lists = 0
        self.watches: list[str] = []
        self.fail_next_watches = 0  # answer 500 to this many watch requests
        self.cut_after = 0  # close each watch stream after this many events (0: never)

    async def mutate(self, kind: str, name: str, labels: dict[str, str] | None = None) -> None:
        self.rv += 1
        obj = {"metadata": {"name": name, "resourceVersion": str(self.rv), "labels": labels or {}}}
        if kind == "DELETED":
            obj = dict(self.objects.pop(name))
            obj["metadata"] = {**obj["metadata"], "resourceVersion": str(self.rv)}
        else:
            self.objects[name] = obj
        self.history.append((self.rv, kind, obj))
        async with self.changed:
            self.changed.notify_all()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        query = request.query
        if query.get("watch") in ("true", "True", "1"):
            return await self._watch(request)
        self.lists += 1
        items = sorted(self.objects.values(), key=lambda o: o["metadata"]["name"])
        limit = int(query.get("limit", "0") or 0)
        start = int(query.get("continue", "0") or 0)
        page = items[start : start + limit] if limit else items[start:]
        meta: dict[str, Any] = {"resourceVersion": str(self.rv)}
        if limit and start + limit < len(items):
            meta["continue"] = str(start + limit)
        return web.Response(
            body=orjson.dumps({"metadata": meta, "items": page}), content_type="application/json"
        )

    async def _watch(self, request: web.Request) -> web.StreamResponse:
        since = int(request.query.get("resourceVersion", "0") or 0)
        self.watches.append(str(since))
        if self.fail_next_watches:
            self.fail_next_watches -= 1
            return web.Response(status=500, text="boom")
        response = web.StreamResponse()
        response.content_type = "application/json"
        await response.prepare(request)
        if since < self.compacted_below:
            status = {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"}
            await response.write(orjson.dumps({"type": "ERROR", "object": status}) + b"\n")
            return response
        sent = 0
        timeout = float(request.query.get("timeoutSeconds", "30"))
        deadline = asyncio.get_running_loop().time() + min(timeout, 5.0)
        while True:
            for rv, kind, obj in self.history:
                if rv > since:
                    await response.write(orjson.dumps({"type": kind, "object": obj}) + b"\n")
                    since = rv
                    sent += 1
                    if self.cut_after and sent >= self.cut_after:
                        return response
            if since < self.rv:
                continue
            bookmark = {"metadata": {"resourceVersion": str(self.rv)}}
            await response.write(orjson.dumps({"type": "BOOKMARK", "object": bookmark}) + b"\n")
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return response
            async with self.changed:
                try:
                    await asyncio.wait_for(self.changed.wait(), remaining)
                except TimeoutError:
                    return response


class Recorder:
    def __init__(self) -> None:
        self.view: dict[str, Obj] = {}
        self.log: list[tuple[str, str]] = []

    def on_added(self, obj: Obj) -> None:
        name = obj["metadata"]["name"]
        assert name not in self.view, f"added twice: {name}"
        self.view[name] = obj
        self.log.append(("added", name))

    def on_modified(self, old: Obj, new: Obj) -> None:
        name = new["metadata"]["name"]
        assert old["metadata"]["name"] == name
        self.view[name] = new
        self.log.append(("modified", name))

    def on_deleted(self, obj: Obj) -> None:
        name = obj["metadata"]["name"]
        self.view.pop(name, None)
        self.log.append(("deleted", name))


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeNodes, CoreV1Api]]:
    nodes = FakeNodes()
    app = web.Application()
    app.router.add_get("/api/v1/nodes", nodes.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    config = Configuration(host=f"http://127.0.0.1:{port}")
    async with ApiClient(config) as client:
        yield nodes, CoreV1Api(client)
    await runner.cleanup()


def names(store: dict[str, Obj]) -> set[str]:
    return set(store)


def quick() -> Backoff:
    return Backoff(base=0.01, cap=0.05)


async def test_lists_in_pages_then_follows_watch(fake: tuple[FakeNodes, CoreV1Api]) -> None:
    nodes, api = fake
    for i in range(7):
        await nodes.mutate("ADDED", f"n{i}")
    rec = Recorder()
    informer = Informer(api.list_node, rec, name="nodes", page_size=3, backoff=quick())
    assert not informer.has_synced
    informer.start()
    async with asyncio.timeout(5):
        await informer.wait_synced()
    assert names(rec.view) == {f"n{i}" for i in range(7)}
    assert informer.resource_version == "7"
    await nodes.mutate("ADDED", "late")
    await nodes.mutate("MODIFIED", "n1", {"x": "y"})
    await nodes.mutate("DELETED", "n2")
    await eventually(lambda: "late" in rec.view and "n2" not in rec.view)
    await eventually(lambda: rec.view["n1"]["metadata"]["labels"] == {"x": "y"})
    assert set(informer.store()) == set(rec.view)
    assert nodes.watches[0] == "7"
    await informer.stop()
    await informer.stop()  # idempotent


async def test_resumes_from_last_resource_version_after_a_cut(fake: tuple[FakeNodes, CoreV1Api]) -> None:
    nodes, api = fake
    nodes.cut_after = 2
    rec = Recorder()
    informer = Informer(api.list_node, rec, name="nodes", backoff=quick())
    informer.start()
    async with asyncio.timeout(5):
        await informer.wait_synced()
    for i in range(9):
        await nodes.mutate("ADDED", f"n{i}")
    await eventually(lambda: len(rec.view) == 9)
    # Each cut resumed from where the last stream stopped: no relist, nothing added twice.
    assert nodes.lists == 1
    assert len(nodes.watches) >= 4
    assert [int(rv) for rv in nodes.watches] == sorted(int(rv) for rv in nodes.watches)
    assert [kind for kind, _ in rec.log].count("added") == 9
    await informer.stop()


async def test_relists_on_410_and_diffs_the_store(fake: tuple[FakeNodes, CoreV1Api]) -> None:
    nodes, api = fake
    for name in ("keep", "change", "gone"):
        await nodes.mutate("ADDED", name)
    rec = Recorder()
    informer = Informer(api.list_node, rec, name="nodes", backoff=quick())
    informer.start()
    async with asyncio.timeout(5):
        await informer.wait_synced()
    await informer.stop()
    # While disconnected: history is compacted past our resourceVersion.
    await nodes.mutate("MODIFIED", "change", {"v": "2"})
    await nodes.mutate("DELETED", "gone")
    await nodes.mutate("ADDED", "new")
    nodes.compacted_below = nodes.rv
    rec.log.clear()
    informer.start()
    await eventually(lambda: nodes.lists == 2 and "new" in rec.view)
    assert sorted(rec.log) == [("added", "new"), ("deleted", "gone"), ("modified", "change")]
    assert rec.view["change"]["metadata"]["labels"] == {"v": "2"}
    await informer.stop()


async def test_backs_off_on_errors_and_recovers(fake: tuple[FakeNodes, CoreV1Api]) -> None:
    nodes, api = fake
    nodes.fail_next_watches = 3
    rec = Recorder()
    informer = Informer(api.list_node, rec, name="nodes", backoff=quick())
    informer.start()
    async with asyncio.timeout(5):
        await informer.wait_synced()
    await nodes.mutate("ADDED", "after-errors")
    await eventually(lambda: "after-errors" in rec.view)
    assert informer.errors == 3
    assert nodes.lists == 1  # errors resumed the watch; only 410 relists
    await informer.stop()


async def test_custom_objects_through_a_partial(fake: tuple[FakeNodes, CoreV1Api]) -> None:
    """Any list function works, e.g. a partial with positional args as for custom objects."""
    nodes, api = fake
    await nodes.mutate("ADDED", "a")
    seen: list[dict[str, Any]] = []

    async def list_func(**kwargs: Any) -> Any:
        seen.append(kwargs)
        return await api.list_node(**kwargs)

    rec = Recorder()
    informer = Informer(list_func, rec, name="custom", list_kwargs={"label_selector": "x=y"}, backoff=quick())
    informer.start()
    async with asyncio.timeout(5):
        await informer.wait_synced()
    assert rec.view.keys() == {"a"}
    assert all(kwargs["label_selector"] == "x=y" for kwargs in seen)
    assert all(kwargs["_preload_content"] is False for kwargs in seen)
    await informer.stop()


async def test_transform_cuts_every_listed_and_watched_object(fake: tuple[FakeNodes, CoreV1Api]) -> None:
    nodes, api = fake
    for i in range(5):
        await nodes.mutate("ADDED", f"n{i}", {"big": "x" * 100, "keep": str(i)})
    seen: list[str] = []

    def slim(obj: Obj) -> Obj:
        seen.append(obj["metadata"]["name"])
        meta = obj["metadata"]
        kept = {"keep": meta["labels"]["keep"]} if "keep" in (meta.get("labels") or {}) else {}
        return {
            "metadata": {"name": meta["name"], "resourceVersion": meta["resourceVersion"], "labels": kept}
        }

    rec = Recorder()
    informer = Informer(api.list_node, rec, name="nodes", page_size=2, backoff=quick(), transform=slim)
    informer.start()
    async with asyncio.timeout(5):
        await informer.wait_synced()
    assert sorted(seen) == [f"n{i}" for i in range(5)]  # each listed object once, over three pages
    await nodes.mutate("MODIFIED", "n1", {"big": "y" * 100, "keep": "changed"})
    await nodes.mutate("DELETED", "n2")
    await eventually(lambda: rec.view.get("n1", {}).get("metadata", {}).get("labels") == {"keep": "changed"})
    await eventually(lambda: "n2" not in rec.view)
    assert seen[5:] == ["n1", "n2"]  # the watch's objects too, deletions included
    for obj in [*informer.store().values(), *rec.view.values()]:
        assert "big" not in obj["metadata"]["labels"]
    await informer.stop()


async def test_a_relist_keeps_unchanged_objects_and_transforms_only_changed_ones(
    fake: tuple[FakeNodes, CoreV1Api],
) -> None:
    nodes, api = fake
    for name in ("keep", "change"):
        await nodes.mutate("ADDED", name)
    transformed: list[str] = []

    def mark(obj: Obj) -> Obj:
        transformed.append(obj["metadata"]["name"])
        return {**obj, "slim": True}

    informer = Informer(api.list_node, Recorder(), name="nodes", backoff=quick(), transform=mark)
    informer.start()
    async with asyncio.timeout(5):
        await informer.wait_synced()
    await informer.stop()
    held = informer.store()["keep"]
    await nodes.mutate("MODIFIED", "change", {"v": "2"})
    nodes.compacted_below = nodes.rv
    transformed.clear()
    informer.start()
    await eventually(
        lambda: nodes.lists == 2 and informer.store()["change"]["metadata"]["labels"] == {"v": "2"}
    )
    assert transformed == ["change"]
    assert informer.store()["keep"] is held
    assert informer.store()["change"]["slim"] is True
    await informer.stop()


async def test_listed_pages_are_frozen_out_of_the_collector_only_when_switched_on(
    fake: tuple[FakeNodes, CoreV1Api],
) -> None:
    """Each listed page's objects leave the cyclic GC's generations as soon as they are stored."""
    nodes, api = fake
    for i in range(7):
        await nodes.mutate("ADDED", f"n{i}")

    async def listed_objects_frozen() -> list[bool]:
        informer = Informer(api.list_node, Recorder(), name="nodes", page_size=3, backoff=quick())
        informer.start()
        async with asyncio.timeout(5):
            await informer.wait_synced()
        held = list(informer.store().values())
        await informer.stop()
        # gc.get_objects() lists the collector's generations; frozen objects are not in them.
        tracked = {id(o) for o in gc.get_objects()}
        return [id(obj) not in tracked for obj in held]

    try:
        assert not any(await listed_objects_frozen())
        freeze_listed_pages()
        assert all(await listed_objects_frozen())
    finally:
        freeze_listed_pages(False)
        gc.unfreeze()
