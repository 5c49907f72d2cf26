"""The extender process: informers feed the cache and the demand tracker, aiohttp serves the
scheduler and the admission webhook (HTTPS when a certificate is configured, reloaded in place),
the predictor and the demand stream run beside them.

Shutdown order matters for a graceful SIGTERM: first stop accepting requests and let in-flight
ones finish (the scheduler retries elsewhere or ignores us: ``ignorable: true``), then stop the
informers and the predictor, and last flush and close the demand stream so the launcher sees a
clean close rather than a timeout.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from pathlib import Path

from aiohttp import web
from kubernetes_asyncio import client as k8s

from extender.app import ExtenderApp
from extender.cache import ClusterCache, NodeEvents, PodEvents
from extender.config import ExtenderConfig
from extender.demand import DemandTracker
from extender.metrics import ExtenderMetrics
from extender.namespaces import NamespaceLabels
from extender.predict import Predictor
from extender.runtime import HeapFreezer
from extender.stream import DemandStream
from extender.webhook import webhook_routes
from shared.informer import Fanout, Informer
from shared.informerstats import InformerCollector
from shared.logs import get_logger
from shared.process import until_terminated
from shared.servingcert import ServingCertificate
from shared.slim import slim_node, slim_pod

_log = get_logger(__name__)


def stream_ssl_context(config: ExtenderConfig) -> ssl.SSLContext | None:
    """TLS settings for a ``wss://`` stream URL (None for ``ws://``: loopback tests)."""
    if not config.stream.url.startswith("wss://"):
        return None
    context = ssl.create_default_context(cafile=config.stream.ca_file or None)
    if config.stream.insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class ExtenderService:
    """Everything the extender runs, started and stopped as one."""

    def __init__(
        self, config: ExtenderConfig, api_client: k8s.ApiClient, *, manage_heap: bool = False
    ) -> None:
        """``manage_heap``: freeze the cached heap out of the GC's reach (:mod:`extender.runtime`);
        for a process of its own (``python -m extender``), not one shared with tests."""
        self.config = config
        self.api_client = api_client
        self.metrics = ExtenderMetrics()
        self.cache = ClusterCache()
        self.tracker = DemandTracker(self.metrics)
        self.predictor = Predictor(
            self.cache,
            self.tracker,
            headroom=config.prediction.headroom,
            ttl=config.prediction.ttl,
            queue_size=config.prediction.queue_size,
            recheck_interval=config.prediction.recheck_interval,
            metrics=self.metrics,
        )
        self.stream: DemandStream | None = None
        core = k8s.CoreV1Api(api_client)
        # Both cut down to what the cache and the tracker read as they are decoded (shared.slim).
        self.nodes = Informer(
            core.list_node,
            NodeEvents(self.cache),
            name="nodes",
            watch_timeout=config.watch_timeout,
            transform=slim_node,
        )
        self.pods = Informer(
            core.list_pod_for_all_namespaces,
            Fanout(PodEvents(self.cache), self.tracker),
            name="pods",
            watch_timeout=config.watch_timeout,
            transform=slim_pod,
        )
        # Small and rarely changing: the webhook's opt-in check reads it, never the API.
        self.namespace_labels = NamespaceLabels()
        self.namespaces = Informer(
            core.list_namespace, self.namespace_labels, name="namespaces", watch_timeout=config.watch_timeout
        )
        # Sync and lag of each informer, on /metrics (read at scrape time).
        self.metrics.registry.register(InformerCollector((self.nodes, self.pods, self.namespaces)))
        self.certificate = (
            ServingCertificate(
                config.server.tls_cert_file,
                config.server.tls_key_file,
                interval=config.server.tls_reload_interval,
                on_reload=lambda outcome: self.metrics.tls_reloads.labels(outcome).inc(),
            )
            if config.server.tls_cert_file
            else None
        )
        self.http = ExtenderApp(
            self.cache,
            self.metrics,
            prefix=config.server.prefix,
            max_body_bytes=config.server.max_body_bytes,
            expiry_window=config.expiry_window,
            ready=self.ready,
            on_filtered=self.predictor.offer_body if config.prediction.enabled else None,
        )
        self.heap = HeapFreezer(self.synced, interval=config.heap_freeze_interval) if manage_heap else None
        self._runner: web.AppRunner | None = None
        self._stopping = False
        self.port = 0

    async def synced(self) -> None:
        """Return once every informer has listed (bound it with ``asyncio.timeout``)."""
        await self.nodes.wait_synced()
        await self.pods.wait_synced()
        await self.namespaces.wait_synced()

    def ready(self) -> bool:
        """Caches synced and, when a launcher is configured, the demand stream connected."""
        if self._stopping or not (
            self.nodes.has_synced and self.pods.has_synced and self.namespaces.has_synced
        ):
            return False
        return self.stream is None or self.stream.connected

    @property
    def scheme(self) -> str:
        return "https" if self.certificate is not None else "http"

    def build_app(self) -> web.Application:
        """Extender verbs, probes and metrics, plus the admission webhook (``POST /mutate``)."""
        app = self.http.build()
        app.add_routes(webhook_routes(self.namespace_labels.get, lambda: self.namespaces.has_synced))
        return app

    async def start(self) -> None:
        ssl_context: ssl.SSLContext | None = None
        if self.certificate is not None:  # first: a bad certificate fails the start, not a call
            await self.certificate.load()
            ssl_context = self.certificate.context
        if self.config.stream.url:
            token = ""
            if self.config.stream.token_file:
                text = await asyncio.to_thread(Path(self.config.stream.token_file).read_text)
                token = text.strip()
            self.stream = DemandStream(
                self.config.stream.url,
                self.config.stream.source or socket.gethostname(),
                self.tracker.snapshot,
                token=token or None,
                ssl_context=stream_ssl_context(self.config),
                heartbeat_interval=self.config.stream.heartbeat,
                metrics=self.metrics,
            )
            self.tracker.add_sink(self.stream)
            self.stream.start()
        self.nodes.start()
        self.pods.start()
        self.namespaces.start()
        if self.config.prediction.enabled:
            self.predictor.start()
        if self.heap is not None:
            self.heap.start()
        self._runner = web.AppRunner(
            self.build_app(), shutdown_timeout=self.config.server.shutdown_grace, access_log=None
        )
        await self._runner.setup()
        site = web.TCPSite(
            self._runner, self.config.server.host, self.config.server.port, ssl_context=ssl_context
        )
        await site.start()
        self.port = self._runner.addresses[0][1]
        if self.certificate is not None:
            self.certificate.start()
        _log.info("extender.started", port=self.port, scheme=self.scheme, prefix=self.config.server.prefix)

    async def stop(self) -> None:
        self._stopping = True
        if self._runner is not None:
            await self._runner.cleanup()  # stops listening, waits for in-flight requests
            self._runner = None
        if self.certificate is not None:
            await self.certificate.stop()
        if self.heap is not None:
            await self.heap.stop()
        await self.predictor.stop()
        await self.namespaces.stop()
        await self.pods.stop()
        await self.nodes.stop()
        if self.stream is not None:
            await self.stream.stop()
        _log.info("extender.stopped")

    async def run_until_terminated(self) -> None:
        """Start, serve until SIGTERM or SIGINT, stop gracefully (readiness goes false first)."""
        await self.start()
        try:
            await until_terminated()
            _log.info("extender.stopping")
        finally:
            await self.stop()
