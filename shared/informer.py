"""A generic list+watch informer over any kubernetes-asyncio list function, on plain dicts.

Objects are decoded straight from the API's JSON with orjson (``_preload_content=False``), so
handlers see them exactly as the API sends them (camelCase keys) without the generated model
classes, which are slow to build and lossy for custom objects. The loop is client-go's reflector:
list (paged), watch from the list's resourceVersion with bookmarks, resume from the last seen
resourceVersion when a watch ends or breaks, relist when the API says 410 Gone, back off with
jitter on errors. A relist is diffed against the store so handlers see only real changes,
including deletions missed while disconnected.

An optional ``transform`` (client-go's ``SetTransform``; :mod:`shared.slim`) cuts every object
down as it is decoded, before the store or a handler sees it: a listed page's objects are
transformed one by one and each whole object is let go as soon as its slim form exists, so the
informer never holds more than one page of whole objects; on a relist, objects whose
resourceVersion the store already holds are not transformed again (the held one is kept).

A service's entry point calls :func:`freeze_listed_pages`: each listed page is then moved out of
the cyclic garbage collector's reach (``gc.freeze``) once it is stored. Without it, the
collections that decoding sets off walk the growing cache again and again: at 150,000 pods they
took half of the first sync. Cached objects are plain acyclic JSON, freed by reference counting
when replaced, so freezing them costs nothing later; it is process-wide, hence opt-in, never on
in a library user's or the test suite's process.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import aiohttp
import orjson

from shared.backoff import Backoff
from shared.logs import get_logger
from shared.tasks import cancel_and_wait

Obj = dict[str, Any]
ListFunc = Callable[..., Awaitable[Any]]
Transform = Callable[[Obj], Obj]

_log = get_logger(__name__)
_freeze_pages = False


def freeze_listed_pages(enabled: bool = True) -> None:
    """Freeze the heap after every listed page of every informer of this process (module doc)."""
    global _freeze_pages
    _freeze_pages = enabled


class EventHandler(Protocol):
    """What an informer tells its owner; called on the event loop, must not block."""

    def on_added(self, obj: Obj) -> None: ...

    def on_modified(self, old: Obj, new: Obj) -> None: ...

    def on_deleted(self, obj: Obj) -> None: ...


class GoneError(Exception):
    """The API no longer has the requested resourceVersion (HTTP 410): relist."""


class ApiStatusError(Exception):
    """The API answered a list or watch with an error status."""

    def __init__(self, status: int, body: bytes) -> None:
        self.status = status
        super().__init__(f"HTTP {status}: {body[:300]!r}")


def object_key(obj: Mapping[str, Any]) -> str:
    """``namespace/name`` (or ``name`` for cluster-scoped objects), as client-go keys its store."""
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace")
    name = meta.get("name", "")
    return f"{namespace}/{name}" if namespace else str(name)


def _resource_version(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


class Informer:
    """Keeps a store of every object a list function returns, and tells ``handler`` of changes.

    ``list_func`` is a kubernetes-asyncio list call (``CoreV1Api.list_node``, or a
    ``functools.partial`` of ``CustomObjectsApi.list_cluster_custom_object`` with its group,
    version and plural); ``list_kwargs`` go to every list and watch call (selectors);
    ``transform`` is applied to every listed and watched object (see the module doc).
    """

    def __init__(
        self,
        list_func: ListFunc,
        handler: EventHandler,
        *,
        name: str,
        list_kwargs: Mapping[str, Any] | None = None,
        page_size: int = 500,
        watch_timeout: int = 300,
        backoff: Backoff | None = None,
        transform: Transform | None = None,
    ) -> None:
        self._list = list_func
        self._transform = transform
        self._handler = handler
        self.name = name
        self._kwargs = dict(list_kwargs or {})
        self._page_size = page_size
        self._watch_timeout = watch_timeout
        self._backoff = backoff or Backoff(base=0.2, cap=10.0)
        self._store: dict[str, Obj] = {}
        self._rv = ""
        self._synced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.relists = 0
        self.errors = 0

    # Public state -------------------------------------------------------------------------

    @property
    def has_synced(self) -> bool:
        """True once the first full list has been delivered to the handler."""
        return self._synced.is_set()

    async def wait_synced(self) -> None:
        """Wait until :attr:`has_synced` (bound it with ``asyncio.timeout``)."""
        await self._synced.wait()

    @property
    def resource_version(self) -> str:
        """The last resourceVersion seen (from a list, an event or a bookmark)."""
        return self._rv

    def store(self) -> Mapping[str, Obj]:
        """Every object currently known, by :func:`object_key` (read-only view)."""
        return self._store

    # Lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Run the list+watch loop as a background task on the running loop."""
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self.run(), name=f"informer-{self.name}")

    async def stop(self) -> None:
        """Cancel the loop and wait for it; safe to call twice."""
        self._stopping = True
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def run(self) -> None:
        """List, then watch forever; only cancellation ends it."""
        need_list = True
        while not self._stopping:
            try:
                if need_list:
                    await self._relist()
                    need_list = False
                await self._watch_once()
            except asyncio.CancelledError:
                raise
            except GoneError:
                _log.info("informer.gone", informer=self.name, resource_version=self._rv)
                need_list = True
                continue
            except Exception as exc:
                self.errors += 1
                delay = self._backoff.next_delay()
                _log.warning("informer.error", informer=self.name, error=repr(exc), retry_in=round(delay, 3))
                # Without a resourceVersion to resume from there is nothing to watch from.
                need_list = need_list or not self._rv
                await asyncio.sleep(delay)

    # List ---------------------------------------------------------------------------------

    async def _call(self, **kwargs: Any) -> aiohttp.ClientResponse:
        response: aiohttp.ClientResponse = await self._list(**self._kwargs, **kwargs, _preload_content=False)
        if response.status == 410:
            response.release()
            raise GoneError()
        if response.status != 200:
            body = await response.read()
            response.release()
            raise ApiStatusError(response.status, body)
        return response

    async def _relist(self) -> None:
        items: list[Obj] = []
        continue_token = ""
        while True:
            kwargs: dict[str, Any] = {"limit": self._page_size}
            if continue_token:
                kwargs["_continue"] = continue_token
            response = await self._call(**kwargs)
            try:
                page = orjson.loads(await response.read())
            finally:
                response.release()
            items.extend(self._slimmed(page.get("items") or []))
            meta = page.get("metadata") or {}
            del page
            if _freeze_pages:
                gc.freeze()
            continue_token = meta.get("continue") or ""
            if not continue_token:
                self._rv = str(meta.get("resourceVersion") or "")
                break
        self.relists += 1
        self._replace(items)
        self._synced.set()
        _log.debug("informer.listed", informer=self.name, count=len(items), resource_version=self._rv)

    def _slimmed(self, raw: list[Obj]) -> list[Obj]:
        """The page's objects transformed, each whole one dropped from ``raw`` once it is done.

        An object the store holds at the same resourceVersion is unchanged: the one held is kept
        and the listed copy dropped, so a relist holds the store once, not twice, and transforms
        only what changed."""
        transform = self._transform
        raw.reverse()
        out: list[Obj] = []
        while raw:
            obj = raw.pop()
            rv = _resource_version(obj)
            held = self._store.get(object_key(obj)) if rv else None
            if held is not None and _resource_version(held) == rv:
                out.append(held)
            else:
                out.append(transform(obj) if transform is not None else obj)
        return out

    def _replace(self, items: list[Obj]) -> None:
        fresh = {object_key(obj): obj for obj in items}
        old_store, self._store = self._store, fresh
        for key, old in old_store.items():
            if key not in fresh:
                self._handler.on_deleted(old)
        for key, obj in fresh.items():
            previous = old_store.get(key)
            if previous is None:
                self._handler.on_added(obj)
            elif _resource_version(previous) != _resource_version(obj) or not _resource_version(obj):
                self._handler.on_modified(previous, obj)

    # Watch --------------------------------------------------------------------------------

    async def _watch_once(self) -> None:
        response = await self._call(
            watch=True,
            resource_version=self._rv,
            allow_watch_bookmarks=True,
            timeout_seconds=self._watch_timeout,
            _request_timeout=aiohttp.ClientTimeout(sock_connect=10, sock_read=self._watch_timeout + 30),
        )
        try:
            buffer = b""
            async for chunk in response.content.iter_any():
                buffer += chunk
                if b"\n" not in buffer:
                    continue
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.strip():
                        self._apply(orjson.loads(line))
            if buffer.strip():
                self._apply(orjson.loads(buffer))
        finally:
            response.release()

    def _apply(self, event: Mapping[str, Any]) -> None:
        kind = event.get("type")
        obj = event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise GoneError()
            raise ApiStatusError(int(obj.get("code") or 0), orjson.dumps(obj))
        rv = _resource_version(obj)
        if rv:
            self._rv = rv
        # A watch that delivers anything is healthy: later errors start from a short delay.
        self._backoff.reset()
        if kind == "BOOKMARK":
            return
        if self._transform is not None:
            obj = self._transform(obj)
        key = object_key(obj)
        if kind == "DELETED":
            self._store.pop(key, None)
            self._handler.on_deleted(obj)
            return
        previous = self._store.get(key)
        self._store[key] = obj
        if previous is None:
            self._handler.on_added(obj)
        else:
            self._handler.on_modified(previous, obj)


class Fanout:
    """One informer, several handlers (each sees every event, in the order given)."""

    def __init__(self, *handlers: EventHandler) -> None:
        self._handlers = handlers

    def on_added(self, obj: Obj) -> None:
        for handler in self._handlers:
            handler.on_added(obj)

    def on_modified(self, old: Obj, new: Obj) -> None:
        for handler in self._handlers:
            handler.on_modified(old, new)

    def on_deleted(self, obj: Obj) -> None:
        for handler in self._handlers:
            handler.on_deleted(obj)
