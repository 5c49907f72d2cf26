"""Objects by resource, namespace and name, one cluster-wide resourceVersion, and watch fan-out.

Every write gets the next integer resourceVersion and is appended to a bounded history, so a
watch can resume from any version still retained and gets ``410 Gone`` otherwise. Stored
objects are never mutated in place: writers build a new dict, readers share the stored one
(which makes list and watch O(n) without copies). Each watcher owns a bounded buffer; a watcher
that falls behind is closed with ``410 Gone`` rather than slowing the writer or the others.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from localcluster.apiserver.errors import APIError, gone
from shared.tasks import within

Obj = dict[str, Any]
Key = tuple[str, str]
Ref = tuple[Key, str, str]
Filter = Callable[[Obj], bool]

ADDED, MODIFIED, DELETED, BOOKMARK, ERROR = "ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"


def encode_event(kind: str, obj: Obj) -> bytes:
    return orjson.dumps({"type": kind, "object": obj}) + b"\n"


def deep_copy(obj: Obj) -> Obj:
    """A private deep copy of a stored object, to build its next version from."""
    copied: Obj = orjson.loads(orjson.dumps(obj))
    return copied


def meta(obj: Obj) -> dict[str, Any]:
    m: dict[str, Any] = obj.setdefault("metadata", {})
    return m


@dataclass
class Event:
    """One committed write; ``old`` lets selector-filtered watchers see objects enter or leave."""

    rv: int
    key: Key
    type: str
    obj: Obj
    old: Obj | None
    _line: bytes | None = None

    def line(self) -> bytes:
        """The wire line, encoded once and shared by every watcher that sees it unchanged."""
        if self._line is None:
            self._line = encode_event(self.type, self.obj)
        return self._line

    def as_seen_by(self, accept: Filter) -> bytes | None:
        """What a watcher with this filter receives: the event, a transition, or nothing."""
        now = accept(self.obj)
        if self.type != MODIFIED:
            return self.line() if now else None
        before = self.old is not None and accept(self.old)
        if now and before:
            return self.line()
        if now:
            return encode_event(ADDED, self.obj)
        if before:
            return encode_event(DELETED, self.obj)
        return None


class Watcher:
    """A buffered stream of encoded watch lines for one client."""

    def __init__(self, store: Store, key: Key, accept: Filter, limit: int) -> None:
        self.store = store
        self.key = key
        self.accept = accept
        self.limit = limit
        self.error: APIError | None = None
        self.closed = False
        self._lines: deque[bytes] = deque()
        self._wake = asyncio.Event()

    def push(self, line: bytes) -> None:
        if self.closed:
            return
        if len(self._lines) >= self.limit:
            self.close(gone("watcher fell too far behind; resume with a fresh list"))
            return
        self._lines.append(line)
        self._wake.set()

    def close(self, error: APIError | None = None) -> None:
        if not self.closed:
            self.closed = True
            self.error = error
            self.store.unwatch(self)
            self._wake.set()

    async def next_batch(self, wait: float) -> list[bytes]:
        """Lines buffered so far, waiting up to ``wait`` seconds for the first one."""
        if not self._lines and not self.closed:
            self._wake.clear()
            try:
                await within(self._wake.wait(), wait)
            except TimeoutError:
                return []
        batch = list(self._lines)
        self._lines.clear()
        return batch


@dataclass
class Store:
    """The whole cluster state; single-threaded (the event loop's), so writes are atomic."""

    history_limit: int = 10_000
    watcher_buffer: int = 20_000
    _rv: int = 0
    _compacted_rv: int = 0
    _objects: dict[Key, dict[str, dict[str, Obj]]] = field(default_factory=dict)
    _history: deque[Event] = field(default_factory=deque)
    _watchers: dict[Key, set[Watcher]] = field(default_factory=dict)
    _listeners: list[Callable[[Event], None]] = field(default_factory=list)
    _dependents: dict[str, set[Ref]] = field(default_factory=dict)
    _by_uid: dict[str, Ref] = field(default_factory=dict)
    # (namespace, name) of every object by resource, sorted lazily: paginated lists read pages
    # from it by bisection instead of sorting the resource on every page. Names created or
    # deleted since the last sort wait in the two pending sets (updates change no name).
    _order: dict[Key, list[tuple[str, str]]] = field(default_factory=dict)
    _order_added: dict[Key, set[tuple[str, str]]] = field(default_factory=dict)
    _order_removed: dict[Key, set[tuple[str, str]]] = field(default_factory=dict)

    @property
    def resource_version(self) -> int:
        return self._rv

    def get(self, key: Key, namespace: str, name: str) -> Obj | None:
        return self._objects.get(key, {}).get(namespace, {}).get(name)

    def by_uid(self, uid: str) -> Obj | None:
        ref = self._by_uid.get(uid)
        return self.get(*ref) if ref else None

    def iter(self, key: Key, namespace: str | None = None) -> Iterator[Obj]:
        """Objects of one resource, in one namespace or all; do not mutate what it yields."""
        spaces = self._objects.get(key, {})
        if namespace is not None:
            yield from list(spaces.get(namespace, {}).values())
            return
        for objs in list(spaces.values()):
            yield from list(objs.values())

    def count(self, key: Key, namespace: str | None = None) -> int:
        spaces = self._objects.get(key, {})
        if namespace is not None:
            return len(spaces.get(namespace, {}))
        return sum(len(v) for v in spaces.values())

    def namespaces_holding(self, namespace: str) -> list[Key]:
        return [k for k, spaces in self._objects.items() if spaces.get(namespace)]

    def dependents(self, owner_uid: str) -> list[Ref]:
        return sorted(self._dependents.get(owner_uid, ()))

    def add_listener(self, listener: Callable[[Event], None]) -> None:
        """Call ``listener`` synchronously after every commit (controllers enqueue work here)."""
        self._listeners.append(listener)

    def put(self, key: Key, obj: Obj, old: Obj | None) -> Obj:
        """Commit a new or changed object (which the caller must not touch afterwards)."""
        self._rv += 1
        m = meta(obj)
        m["resourceVersion"] = str(self._rv)
        namespace, name = m.get("namespace", ""), m["name"]
        objs = self._objects.setdefault(key, {}).setdefault(namespace, {})
        if name not in objs:
            self._order_changed(key, (namespace, name), added=True)
        objs[name] = obj
        self._index(key, old, remove=True)
        self._index(key, obj, remove=False)
        self._commit(Event(self._rv, key, MODIFIED if old is not None else ADDED, obj, old))
        return obj

    def remove(self, key: Key, obj: Obj) -> Obj:
        """Delete an object; the DELETED event carries it with a fresh resourceVersion."""
        m = obj.get("metadata", {})
        namespace, name = m.get("namespace", ""), m["name"]
        spaces = self._objects.get(key, {})
        objs = spaces.get(namespace, {})
        old = objs.pop(name, None)
        if old is not None:
            self._order_changed(key, (namespace, name), added=False)
        if not objs:
            spaces.pop(namespace, None)
        self._index(key, old, remove=True)
        self._rv += 1
        final = dict(obj)
        final["metadata"] = {**m, "resourceVersion": str(self._rv)}
        self._commit(Event(self._rv, key, DELETED, final, old))
        return final

    def ordered(
        self, key: Key, namespace: str | None = None, after: tuple[str, str] | None = None
    ) -> Iterator[Obj]:
        """Objects of one resource in (namespace, name) order, the order a paginated list pages
        through; only those after ``after`` (a continue token's last key). Cost: a bisection, then
        only what the caller reads, plus one sort of the names created since the last call."""
        order = self._sorted_refs(key)
        if namespace is None:
            start = 0 if after is None else bisect_right(order, after)
        else:
            first = (namespace, "")
            start = (
                bisect_right(order, after)
                if after is not None and after >= first
                else bisect_left(order, first)
            )
        spaces = self._objects.get(key, {})
        for index in range(start, len(order)):
            ns, name = order[index]
            if namespace is not None and ns != namespace:
                return
            obj = spaces.get(ns, {}).get(name)
            if obj is not None:  # deleted while the caller was reading
                yield obj

    def count_after(self, key: Key, namespace: str | None, after: tuple[str, str]) -> int:
        """How many objects :meth:`ordered` would yield after ``after`` (by bisection)."""
        order = self._sorted_refs(key)
        start = bisect_right(order, after)
        if namespace is None:
            return len(order) - start
        start = max(start, bisect_left(order, (namespace, "")))
        return max(0, bisect_left(order, (namespace + "\0", "")) - start)

    def _order_changed(self, key: Key, ref: tuple[str, str], *, added: bool) -> None:
        added_refs = self._order_added.setdefault(key, set())
        removed_refs = self._order_removed.setdefault(key, set())
        if added:
            if ref in removed_refs:  # deleted and created again: still in the sorted list
                removed_refs.discard(ref)
            else:
                added_refs.add(ref)
        elif ref in added_refs:  # created and deleted before any sort
            added_refs.discard(ref)
        else:
            removed_refs.add(ref)

    def _sorted_refs(self, key: Key) -> list[tuple[str, str]]:
        """The sorted names, brought up to date: a filter and a sort of a sorted run plus the new
        names (Timsort merges those in linear time). A new list, so readers of the old one are safe."""
        order = self._order.get(key, [])
        added = self._order_added.pop(key, None)
        removed = self._order_removed.pop(key, None)
        if added or removed:
            kept = [ref for ref in order if ref not in removed] if removed else list(order)
            kept.extend(sorted(added or ()))
            kept.sort()
            self._order[key] = order = kept
        return order

    def _index(self, key: Key, obj: Obj | None, *, remove: bool) -> None:
        if obj is None:
            return
        m = obj.get("metadata", {})
        ref: Ref = (key, m.get("namespace", ""), m["name"])
        uid = m.get("uid")
        if uid:
            if remove:
                self._by_uid.pop(uid, None)
            else:
                self._by_uid[uid] = ref
        for owner in m.get("ownerReferences") or []:
            owner_uid = owner.get("uid")
            if not owner_uid:
                continue
            if remove:
                deps = self._dependents.get(owner_uid)
                if deps is not None:
                    deps.discard(ref)
                    if not deps:
                        del self._dependents[owner_uid]
            else:
                self._dependents.setdefault(owner_uid, set()).add(ref)

    def _commit(self, event: Event) -> None:
        self._history.append(event)
        while len(self._history) > self.history_limit:
            self._compacted_rv = self._history.popleft().rv
        for watcher in list(self._watchers.get(event.key, ())):
            line = event.as_seen_by(watcher.accept)
            if line is not None:
                watcher.push(line)
        for listener in self._listeners:
            listener(event)

    def watch(self, key: Key, accept: Filter, since: int | None) -> tuple[Watcher, list[bytes]]:
        """Register a watcher and return it with its initial lines.

        ``since`` None means "now": every current object as ADDED, then changes. Otherwise replay
        the retained history after ``since``, or raise 410 if part of it was compacted away.
        """
        watcher = Watcher(self, key, accept, self.watcher_buffer)
        initial: list[bytes] = []
        if since is None:
            initial = [encode_event(ADDED, obj) for obj in self.iter(key) if accept(obj)]
        else:
            if since < self._compacted_rv:
                raise gone(f"too old resource version: {since} ({self._compacted_rv + 1})")
            for event in self._history:
                if event.rv > since and event.key == key:
                    line = event.as_seen_by(accept)
                    if line is not None:
                        initial.append(line)
        self._watchers.setdefault(key, set()).add(watcher)
        return watcher, initial

    def unwatch(self, watcher: Watcher) -> None:
        self._watchers.get(watcher.key, set()).discard(watcher)

    def close_watchers(self, error: APIError | None = None) -> int:
        """End every watch, with ``error`` as its last event when given; returns how many ended."""
        ended = 0
        for watchers in list(self._watchers.values()):
            for watcher in list(watchers):
                watcher.close(error)
                ended += 1
        return ended

    def watcher_count(self) -> int:
        return sum(len(w) for w in self._watchers.values())
