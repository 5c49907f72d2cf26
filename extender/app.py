"""The extender's HTTP surface (aiohttp): filter, prioritize, health, readiness, metrics.

Handlers are thin: parse (:mod:`extender.protocol`), decide from the cache
(:mod:`extender.decisions`), answer. Bad input gets a 400 with a JSON error naming the problem;
an internal failure on filter answers 200 with ``Error`` set (and every candidate passed), on
prioritize neutral zero scores, so kube-scheduler never sees an HTML 500 and never loses
scheduling because of us.

Filter's answer path reads only the candidate names (:func:`protocol.node_names_only`) and the
disrupted-node set, so it costs about what a passthrough costs whatever the pod. The raw body
goes to :class:`~extender.afteranswer.AfterAnswer`, which after the answer parses it, keeps the
parse (and, once prioritize is in use, the pod's requests) for the prioritize call that follows
for the same pod, and hands the pod to shortfall prediction (``on_filtered``, which must only
enqueue).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

from aiohttp import web

from extender import decisions, protocol
from extender.afteranswer import AfterAnswer
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
_AFTER_ANSWER_SIZE: Final = 4096

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
        # Filter bodies (and their parse, when the answer path needed one) to read after the answer.
        self.after_answer: AfterAnswer[tuple[bytes, protocol.ExtenderArgs | None, list[str] | None]] = (
            AfterAnswer(self._after_filter, size=_AFTER_ANSWER_SIZE, dropped=metrics.after_answer_dropped)
        )
        self._prioritizing = False  # set by the first prioritize call: then filter's pods get requests

    def build(self) -> web.Application:
        # aiohttp refuses bigger bodies with 413 before we see them; we turn that into our 400.
        app = web.Application(client_max_size=self.max_body_bytes)
        app.router.add_post(f"{self.prefix}/filter", self.filter)
        app.router.add_post(f"{self.prefix}/prioritize", self.prioritize)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        app.router.add_get("/metrics", self.metrics_handler)
        app.on_cleanup.append(self._stop_after_answer)
        return app

    async def _stop_after_answer(self, app: web.Application) -> None:
        await self.after_answer.stop()

    # Extender verbs -----------------------------------------------------------------------

    async def filter(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        body, problem = await self._read_body(request)
        if body is None:
            return self._bad_request("filter", problem, started)
        names = protocol.node_names_only(body)
        args: protocol.ExtenderArgs | None = None
        if names is None:  # not kube-scheduler's usual shape: the full parse decides
            args, problem = self._parse(body)
            if args is None:
                return self._bad_request("filter", problem, started)
        outcome = "ok"
        try:
            if args is None:
                assert names is not None
                passed, unresolvable = decisions.filter_nodes(names, self.cache.disrupted)
                answer = protocol.names_filter_result(passed, unresolvable=unresolvable)
            else:
                passed, unresolvable = decisions.filter_nodes(args.candidate_names(), self.cache.disrupted)
                answer = protocol.filter_result(args, passed, unresolvable=unresolvable)
        except protocol.ProtocolError as exc:  # a node of the request that cannot be sent back
            return self._bad_request("filter", str(exc), started)
        except Exception as exc:
            outcome = "error"
            _log.exception("extender.filter_failed", error=repr(exc))
            error = f"jitnode extender internal error: {exc!r}"
            if args is None:
                answer = protocol.names_filter_result(names or (), error=error)
            else:
                answer = protocol.filter_error(args, error)
        response = self._answer("filter", outcome, answer, started)
        # On the wire first: only then is the pod read (prediction, demand, prioritize's parse).
        await response.prepare(request)
        await response.write_eof()
        self.after_answer.offer((body, args, names))
        return response

    async def prioritize(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        self._prioritizing = True
        body, problem = await self._read_body(request)
        if body is None:
            return self._bad_request("prioritize", problem, started)
        args = self._recent.get(body)
        if args is None:
            args, problem = self._parse(body)
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

    async def _read_body(self, request: web.Request) -> tuple[bytes | None, str]:
        try:
            return await request.read(), ""
        except web.HTTPRequestEntityTooLarge:
            return None, f"body: over the limit of {self.max_body_bytes} bytes"

    def _parse(self, body: bytes) -> tuple[protocol.ExtenderArgs | None, str]:
        """The full parse of ``body``, remembered for the next call with the same bytes."""
        try:
            args = protocol.parse_args(body, self.max_body_bytes)
        except protocol.ProtocolError as exc:
            return None, str(exc)
        self._recent.put(body, args)
        return args, ""

    def _after_filter(self, item: tuple[bytes, protocol.ExtenderArgs | None, list[str] | None]) -> None:
        """After filter's answer: parse its pod once, ready for prioritize, and offer it to prediction."""
        body, args, names = item
        if args is None:
            args = self._recent.get(body)
        if args is None and names is not None:
            pod = protocol.pod_only(body)  # the names are decoded already
            if pod is not None:
                args = protocol.ExtenderArgs(pod=pod, node_names=names, nodes=None)
                self._recent.put(body, args)
        if args is None:
            args, problem = self._parse(body)
            if args is None:  # answered from its names; the pod itself is unreadable
                _log.warning("extender.unreadable_filtered_pod", problem=problem)
                return
        if self._prioritizing:  # prioritize answers a pod with bad quantities 400 itself
            with contextlib.suppress(FieldError, ValidationError, TypeError, ValueError, AttributeError):
                self._requests_of(args.pod)
        if self.on_filtered is not None:
            self.on_filtered(args.pod)

    def _requests_of(self, pod: Mapping[str, Any]) -> tuple[int, int]:
        meta = pod.get("metadata")
        if meta is None:
            meta = {}
        elif not isinstance(meta, Mapping):  # a 400 that names the field, not an AttributeError
            raise ValidationError([FieldError("metadata", "expected an object")], "pod")
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
