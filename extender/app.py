"""The extender's HTTP surface (aiohttp): filter, prioritize, health, readiness, metrics.

Handlers are thin: parse (:mod:`extender.protocol`), decide from the cache
(:mod:`extender.decisions`), answer. Bad input gets a 400 with a JSON error naming the problem;
an internal failure on filter answers 200 with ``Error`` set (and every candidate passed), on
prioritize neutral zero scores, so kube-scheduler never sees an HTML 500 and never loses
scheduling because of us.

Filter's answer path reads only the candidate names (:func:`protocol.node_names_only`) and the
disrupted-node set, so it costs about what a passthrough costs whatever the pod. After the
answer is written the raw body is handed to shortfall prediction (``on_filtered``, which must
only enqueue: :meth:`extender.predict.Predictor.offer_body`); the pod is decoded there, in the
predictor's batches. Nothing per pod is scheduled on the event loop: on a small machine
whatever CPU a filter call leaves behind is paid by the next call (see the README's figures).
Prioritize parses its own body, once, and remembers the parse for a repeat of the same bytes.
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
from shared.memo import ClearingMemo
from shared.pods import effective_requests
from shared.resources import CPU, MEMORY, Resources

_log = get_logger(__name__)
JSON: Final = "application/json"
_POD_CACHE_SIZE: Final = 4096

BodyCallback = Callable[[bytes], None]


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
        on_filtered: BodyCallback | None = None,
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
        self._pod_requests: ClearingMemo[tuple[str, str], tuple[int, int]] = ClearingMemo(_POD_CACHE_SIZE)
        # A full parse is remembered by its bytes: a repeat of the same body (a retry, or a
        # prioritize after a filter that needed the full parse) is not parsed again.
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
        # On the wire first: only then is the pod handed on (prediction decodes it in its batch).
        await response.prepare(request)
        await response.write_eof()
        if self.on_filtered is not None:
            self.on_filtered(body)
        return response

    async def prioritize(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
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

    def _requests_of(self, pod: Mapping[str, Any]) -> tuple[int, int]:
        meta = pod.get("metadata")
        if meta is None:
            meta = {}
        elif not isinstance(meta, Mapping):  # a 400 that names the field, not an AttributeError
            raise ValidationError([FieldError("metadata", "expected an object")], "pod")
        key = (pod_uid(pod), str(meta.get("resourceVersion") or ""))
        return self._pod_requests.get(key, lambda: _cpu_and_memory(effective_requests(pod)))

    def _bad_request(self, verb: str, problem: str, started: float) -> web.Response:
        _log.warning("extender.bad_request", verb=verb, problem=problem)
        return self._answer(verb, "bad_request", protocol.error_body(problem), started, status=400)

    def _answer(
        self, verb: str, outcome: str, body: bytes, started: float, status: int = 200
    ) -> web.Response:
        self.metrics.requests_by[verb, outcome].inc()
        self.metrics.latency_by_verb[verb].observe(time.perf_counter() - started)
        return web.Response(body=body, status=status, content_type=JSON)


def _cpu_and_memory(requests: Resources) -> tuple[int, int]:
    return requests.amount(CPU), requests.amount(MEMORY)
