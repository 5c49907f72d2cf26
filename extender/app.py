"""The extender's HTTP surface (aiohttp): filter, prioritize, health, readiness, metrics.

Handlers are thin: parse (:mod:`extender.protocol`), decide from the cache
(:mod:`extender.decisions`), answer. Bad input gets a 400 with a JSON error naming the problem;
an internal failure on filter answers 200 with ``Error`` set (and every candidate passed), on
prioritize neutral zero scores, so kube-scheduler never sees an HTML 500 and never loses
scheduling because of us. Shortfall prediction is handed off after the answer is built, to a
callback that must only enqueue.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, Final

from aiohttp import web

from extender import decisions, protocol
from extender.cache import ClusterCache, pod_uid
from extender.metrics import ExtenderMetrics
from extender.recent import RecentBodies
from shared.errors import FieldError, ValidationError
from shared.logs import get_logger
from shared.pods import effective_requests
from shared.resources import CPU, MEMORY

_log = get_logger(__name__)
JSON: Final = "application/json"
_POD_CACHE_SIZE: Final = 4096

PodCallback = Callable[[Mapping[str, Any]], None]


class ExtenderApp:
    """Routes and handlers over one :class:`ClusterCache`."""

    def __init__(
        self,
        cache: ClusterCache,
        metrics: ExtenderMetrics,
        *,
        prefix: str = "",
        max_body_bytes: int = 16 * 2**20,
        expiry_window: float = 600.0,
        ready: Callable[[], bool] = lambda: True,
        on_filtered: PodCallback | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cache = cache
        self.metrics = metrics
        self.prefix = prefix.rstrip("/")
        self.max_body_bytes = max_body_bytes
        self.expiry_window = expiry_window
        self.ready = ready
        self.on_filtered = on_filtered
        self.clock = clock
        # (uid, resourceVersion) -> (cpu, memory): prioritize follows filter for the same pod.
        self._pod_requests: dict[tuple[str, str], tuple[int, int]] = {}
        # prioritize usually gets the very bytes filter got for the same pod: parse them once.
        self._recent: RecentBodies[protocol.ExtenderArgs] = RecentBodies()

    def build(self) -> web.Application:
        # aiohttp refuses bigger bodies with 413 before we see them; we turn that into our 400.
        app = web.Application(client_max_size=self.max_body_bytes)
        app.router.add_post(f"{self.prefix}/filter", self.filter)
        app.router.add_post(f"{self.prefix}/prioritize", self.prioritize)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        app.router.add_get("/metrics", self.metrics_handler)
        return app

    # Extender verbs -----------------------------------------------------------------------

    async def filter(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        args, problem = await self._read_args(request, "filter")
        if args is None:
            return self._bad_request("filter", problem, started)
        outcome = "ok"
        try:
            passed, unresolvable = decisions.filter_nodes(args.candidate_names(), self.cache.disrupted)
            body = protocol.filter_result(args, passed, unresolvable=unresolvable)
        except Exception as exc:
            outcome = "error"
            _log.exception("extender.filter_failed", error=repr(exc))
            body = protocol.filter_error(args, f"jitnode extender internal error: {exc!r}")
        if self.on_filtered is not None:
            try:
                self.on_filtered(args.pod)
            except Exception as exc:  # prediction is best effort; the answer stands
                _log.warning("extender.predict_enqueue_failed", error=repr(exc))
        return self._answer("filter", outcome, body, started)

    async def prioritize(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        args, problem = await self._read_args(request, "prioritize")
        if args is None:
            return self._bad_request("prioritize", problem, started)
        names = args.candidate_names()
        try:
            cpu, memory = self._requests_of(args.pod)
        except (FieldError, ValidationError, TypeError, ValueError, AttributeError) as exc:
            return self._bad_request("prioritize", f"Pod: {exc}", started)
        try:
            body = self.cache.table.priority_list(names, cpu, memory, self.clock(), self.expiry_window)
        except Exception as exc:
            _log.exception("extender.prioritize_failed", error=repr(exc))
            body = protocol.priority_list(names, [0] * len(names))
            return self._answer("prioritize", "error", body, started)
        return self._answer("prioritize", "ok", body, started)

    # Probes -------------------------------------------------------------------------------

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def readyz(self, request: web.Request) -> web.Response:
        if self.ready():
            return web.Response(text="ok")
        return web.Response(status=503, text="not ready: caches not synced or demand stream down")

    async def metrics_handler(self, request: web.Request) -> web.Response:
        body, content_type = self.metrics.render()
        return web.Response(body=body, headers={"Content-Type": content_type})

    # Helpers ------------------------------------------------------------------------------

    async def _read_args(self, request: web.Request, verb: str) -> tuple[protocol.ExtenderArgs | None, str]:
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return None, f"body: over the limit of {self.max_body_bytes} bytes"
        args = self._recent.get(body)
        if args is not None:
            return args, ""
        try:
            args = protocol.parse_args(body, self.max_body_bytes)
        except protocol.ProtocolError as exc:
            return None, str(exc)
        self._recent.put(body, args)
        return args, ""

    def _requests_of(self, pod: Mapping[str, Any]) -> tuple[int, int]:
        meta = pod.get("metadata") or {}
        key = (pod_uid(pod), str(meta.get("resourceVersion") or ""))
        cached = self._pod_requests.get(key)
        if cached is not None:
            return cached
        requests = effective_requests(pod)
        value = (requests.amount(CPU), requests.amount(MEMORY))
        if len(self._pod_requests) >= _POD_CACHE_SIZE:
            self._pod_requests.clear()
        self._pod_requests[key] = value
        return value

    def _bad_request(self, verb: str, problem: str, started: float) -> web.Response:
        _log.warning("extender.bad_request", verb=verb, problem=problem)
        return self._answer(verb, "bad_request", protocol.error_body(problem), started, status=400)

    def _answer(
        self, verb: str, outcome: str, body: bytes, started: float, status: int = 200
    ) -> web.Response:
        self.metrics.requests_by[verb, outcome].inc()
        self.metrics.latency_by_verb[verb].observe(time.perf_counter() - started)
        return web.Response(body=body, status=status, content_type=JSON)
