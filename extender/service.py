"""The extender process: informers feed the cache and the demand tracker, aiohttp serves the
scheduler, the predictor and the demand stream run beside them.

Shutdown order matters for a graceful SIGTERM: first stop accepting requests and let in-flight
ones finish (the scheduler retries elsewhere or ignores us: ``ignorable: true``), then stop the
informers and the predictor, and last flush and close the demand stream so the launcher sees a
clean close rather than a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import ssl
from pathlib import Path

from aiohttp import web
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config

from extender.app import ExtenderApp
from extender.cache import ClusterCache, NodeEvents, PodEvents
from extender.config import ExtenderConfig
from extender.demand import DemandTracker
from extender.metrics import ExtenderMetrics
from extender.predict import Predictor
from extender.runtime import HeapFreezer
from extender.stream import DemandStream
from shared.informer import Fanout, Informer
from shared.logs import get_logger

_log = get_logger(__name__)


async def kubernetes_client(config: ExtenderConfig) -> k8s.ApiClient:
    """An API client from the kubeconfig file, else the in-cluster service account."""
    if config.kubeconfig:
        configuration = k8s.Configuration()
        await k8s_config.load_kube_config(config_file=config.kubeconfig, client_configuration=configuration)
        return k8s.ApiClient(configuration)
    k8s_config.load_incluster_config()  # type: ignore[no-untyped-call]
    return k8s.ApiClient()


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
        self.nodes = Informer(
            core.list_node, NodeEvents(self.cache), name="nodes", watch_timeout=config.watch_timeout
        )
        self.pods = Informer(
            core.list_pod_for_all_namespaces,
            Fanout(PodEvents(self.cache), self.tracker),
            name="pods",
            watch_timeout=config.watch_timeout,
        )
        self.http = ExtenderApp(
            self.cache,
            self.metrics,
            prefix=config.server.prefix,
            max_body_bytes=config.server.max_body_bytes,
            expiry_window=config.expiry_window,
            ready=self.ready,
            on_filtered=self.predictor.offer if config.prediction.enabled else None,
        )
        self.heap = HeapFreezer(self.synced, interval=config.heap_freeze_interval) if manage_heap else None
        self._runner: web.AppRunner | None = None
        self._stopping = False
        self.port = 0

    async def synced(self) -> None:
        """Return once both informers have listed (bound it with ``asyncio.timeout``)."""
        await self.nodes.wait_synced()
        await self.pods.wait_synced()

    def ready(self) -> bool:
        """Caches synced and, when a launcher is configured, the demand stream connected."""
        if self._stopping or not (self.nodes.has_synced and self.pods.has_synced):
            return False
        return self.stream is None or self.stream.connected

    async def start(self) -> None:
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
        if self.config.prediction.enabled:
            self.predictor.start()
        if self.heap is not None:
            self.heap.start()
        self._runner = web.AppRunner(
            self.http.build(), shutdown_timeout=self.config.server.shutdown_grace, access_log=None
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.server.host, self.config.server.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        _log.info("extender.started", port=self.port, prefix=self.config.server.prefix)

    async def stop(self) -> None:
        self._stopping = True
        if self._runner is not None:
            await self._runner.cleanup()  # stops listening, waits for in-flight requests
            self._runner = None
        if self.heap is not None:
            await self.heap.stop()
        await self.predictor.stop()
        await self.pods.stop()
        await self.nodes.stop()
        if self.stream is not None:
            await self.stream.stop()
        _log.info("extender.stopped")

    async def run_until_signal(self) -> None:
        """Start, serve until SIGTERM or SIGINT, stop gracefully."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await self.start()
        await stop.wait()
        _log.info("extender.stopping")
        await self.stop()
