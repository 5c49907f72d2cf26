"""Faults a test switches on in the running API server, each as a real kube-apiserver shows it.

- :meth:`ApiFaults.restart`: the server goes away and comes back on the same address with the
  same store (etcd outlives kube-apiserver): every open connection, watches included, is reset,
  new ones are refused meanwhile, clients reconnect and resume their watches.
- :meth:`ApiFaults.gone_watches`: what an etcd compaction that outran the watchers leaves: every
  open watch ends with an ``ERROR`` event (``410``, reason ``Expired``), and the next watches that
  resume from a resourceVersion get the same answer (HTTP 200 and that one event, as the watch
  cache sends it), so clients must list again.
- :meth:`ApiFaults.slow_writes`, :meth:`ApiFaults.failing_writes`: writes delayed, or refused
  with the ``Status`` bodies the real server sends for 500 (``InternalError``), 503
  (``ServiceUnavailable``), 504 (``Timeout``) and 429 (``TooManyRequests``, with ``Retry-After``,
  as while its storage re-initializes after a restart).
- :meth:`ApiFaults.conflicts`: updates guarded by a resourceVersion lose a race with another
  writer: the object is rewritten just before (a new resourceVersion, a ``MODIFIED`` event to
  every watcher), and the server's own optimistic-concurrency check answers ``409 Conflict``.

Every fault is bounded by a count, so it stops by itself; :attr:`ApiFaults.fired` counts what
was injected (and :attr:`ApiFaults.struck` which writes it struck), so a test tells a fault it
survived from one that never happened. With nothing armed a request pays one attribute check.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Any, Final

import orjson
from aiohttp import web

from localcluster.apiserver.errors import APIError, gone
from localcluster.apiserver.handlers import Target
from localcluster.apiserver.store import ERROR, Store, deep_copy, encode_event

WRITES: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
TRUE_VALUES: Final = ("true", "True", "1")
# Patch types whose body is the object's shape, so a resourceVersion in it is a precondition.
OBJECT_PATCHES: Final = ("application/merge-patch+json", "application/strategic-merge-patch+json")
INJECTED: Final = "injected fault"


def failure_status(status: int, retry_after: int) -> APIError:
    """The error the real server answers a failed write with, for each status it uses."""
    if status == 429:
        return APIError(
            429,
            "TooManyRequests",
            "storage is (re)initializing",
            {"retryAfterSeconds": retry_after},
        )
    if status == 503:
        return APIError(503, "ServiceUnavailable", f"service unavailable: {INJECTED}")
    if status == 504:
        return APIError(
            504,
            "Timeout",
            "Timeout: request did not complete within requested timeout - context deadline exceeded",
            {"retryAfterSeconds": retry_after},
        )
    if status == 500:
        return APIError(
            500, "InternalError", f"Internal error occurred: {INJECTED}", {"causes": [{"message": INJECTED}]}
        )
    raise ValueError(f"no injected failure for HTTP {status}: use 429, 500, 503 or 504")


def error_response(error: APIError) -> web.Response:
    """``error`` as the server renders it; ``Retry-After`` when the Status asks for a delay."""
    body = orjson.dumps(error.status())
    response = web.Response(body=body, status=error.code, content_type="application/json")
    retry = (error.details or {}).get("retryAfterSeconds")
    if retry:
        response.headers["Retry-After"] = str(retry)
    return response


@dataclass
class _Failing:
    status: int
    remaining: int
    fraction: float
    retry_after: int
    resources: frozenset[str]


@dataclass
class _Slow:
    seconds: float
    remaining: int


class ApiFaults:
    """The faults armed on one API server (see the module docstring); reached as ``server.faults``."""

    def __init__(self, store: Store, restart: Callable[[float], Awaitable[None]], *, seed: int = 0) -> None:
        self._store = store
        self._restart = restart
        self._rng = random.Random(seed)
        self._gone = 0
        self._conflicts = 0
        self._conflict_resources: frozenset[str] = frozenset()
        self._slow: _Slow | None = None
        self._failing: _Failing | None = None
        self.armed = False
        self.fired: Counter[str] = Counter()
        # (fault, "VERB resource[/subresource]") of each write a fault struck: whose writes it hit.
        self.struck: Counter[tuple[str, str]] = Counter()

    # Arming ---------------------------------------------------------------------------------

    async def restart(self, downtime: float = 0.2) -> None:
        """Reset every connection and refuse new ones for ``downtime`` seconds; the store stays."""
        self.fired["restart"] += 1
        await self._restart(downtime)

    def gone_watches(self, count: int = 1) -> int:
        """End every open watch with ``410 Expired``; answer the next ``count`` resumed watches so.

        Returns how many open watches were ended.
        """
        self._gone += count
        ended = self._store.close_watchers(gone("The resourceVersion for the provided watch is too old."))
        self.fired["watch_expired"] += ended
        self._rearm()
        return ended

    def slow_writes(self, seconds: float, count: int) -> None:
        """Delay each of the next ``count`` writes by ``seconds`` before the server handles it."""
        self._slow = _Slow(seconds, count)
        self._rearm()

    def failing_writes(
        self,
        status: int = 500,
        count: int = 1,
        *,
        fraction: float = 1.0,
        retry_after: int = 1,
        resources: Collection[str] = (),
    ) -> None:
        """Refuse ``count`` writes with ``status``, each write failing with chance ``fraction``.

        ``resources`` (plurals such as ``nodeclaims``) narrows the fault to those resources.
        """
        failure_status(status, retry_after)  # refuse an unknown status now, not mid-request
        self._failing = _Failing(status, count, fraction, retry_after, frozenset(resources))
        self._rearm()

    def conflicts(self, count: int = 1, *, resources: Collection[str] = ()) -> None:
        """The next ``count`` updates guarded by a resourceVersion lose a race with another writer.

        ``resources`` (plurals) narrows the fault to those resources.
        """
        self._conflicts += count
        self._conflict_resources = frozenset(resources)
        self._rearm()

    def clear(self) -> None:
        """Disarm everything still pending (``fired`` is kept)."""
        self._gone = self._conflicts = 0
        self._conflict_resources = frozenset()
        self._slow = self._failing = None
        self.armed = False

    @property
    def pending(self) -> dict[str, int]:
        """What is armed and not yet spent, by fault."""
        return {
            "gone_watches": self._gone,
            "conflicts": self._conflicts,
            "slow_writes": self._slow.remaining if self._slow else 0,
            "failing_writes": self._failing.remaining if self._failing else 0,
        }

    def _rearm(self) -> None:
        self.armed = any(self.pending.values())

    # The request path -----------------------------------------------------------------------

    async def intercept(self, request: web.Request, target: Target) -> web.StreamResponse | None:
        """The faulty answer to this request, or None to serve it normally."""
        try:
            watch = target.watch_path or request.query.get("watch") in TRUE_VALUES
            if request.method == "GET" and target.name is None and watch:
                return await self._watch(request)
            if request.method not in WRITES:
                return None
            await self._maybe_slow(request, target)
            failed = self._maybe_fail(request, target)
            if failed is not None:
                return failed
            resources = self._conflict_resources
            if (
                self._conflicts
                and target.name
                and request.method in ("PUT", "PATCH")
                and (not resources or target.rt.plural in resources)
            ):
                await self._maybe_race(request, target)
            return None
        finally:
            self._rearm()

    def _strike(self, fault: str, request: web.Request, target: Target) -> None:
        self.fired[fault] += 1
        resource = target.rt.plural + (f"/{target.subresource}" if target.subresource else "")
        self.struck[(fault, f"{request.method} {resource}")] += 1

    async def _maybe_slow(self, request: web.Request, target: Target) -> None:
        slow = self._slow
        if slow is None:
            return
        slow.remaining -= 1
        if slow.remaining <= 0:
            self._slow = None
        self._strike("slow_write", request, target)
        await asyncio.sleep(slow.seconds)

    def _maybe_fail(self, request: web.Request, target: Target) -> web.Response | None:
        failing = self._failing
        if failing is None or (failing.resources and target.rt.plural not in failing.resources):
            return None
        if self._rng.random() >= failing.fraction:
            return None
        failing.remaining -= 1
        if failing.remaining <= 0:
            self._failing = None
        self._strike(f"write_{failing.status}", request, target)
        return error_response(failure_status(failing.status, failing.retry_after))

    async def _watch(self, request: web.Request) -> web.StreamResponse | None:
        since = request.query.get("resourceVersion", "")
        if not self._gone or since in ("", "0"):
            return None
        self._gone -= 1
        self.fired["watch_gone"] += 1
        error = gone(f"too old resource version: {since} ({self._store.resource_version})")
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(encode_event(ERROR, error.status()))
        await response.write_eof()
        return response

    async def _maybe_race(self, request: web.Request, target: Target) -> None:
        """Rewrite the object when this update is guarded by its current resourceVersion."""
        if request.method == "PATCH" and not request.content_type.startswith(OBJECT_PATCHES):
            return
        try:
            body: Any = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return
        meta = body.get("metadata") if isinstance(body, dict) else None
        if not isinstance(meta, dict) or not meta.get("resourceVersion"):
            return
        rt = target.rt
        namespace = (target.namespace or "") if rt.namespaced else ""
        current = self._store.get(rt.key, namespace, target.name or "")
        if current is None or current["metadata"].get("resourceVersion") != str(meta["resourceVersion"]):
            return  # already stale or absent: the server refuses it without help
        self._store.put(rt.key, deep_copy(current), current)
        self._conflicts -= 1
        self._strike("conflict", request, target)
