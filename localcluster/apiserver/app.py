"""The API server process: store, registry, controllers and the aiohttp site on loopback."""

from __future__ import annotations

import asyncio
import socket
import struct
from pathlib import Path
from types import TracebackType

import yaml
from aiohttp import web

from localcluster.apiserver.controllers import ControllerManager
from localcluster.apiserver.faults import ApiFaults
from localcluster.apiserver.handlers import Handlers, WatchSettings
from localcluster.apiserver.objects import new_uid, now_rfc3339
from localcluster.apiserver.registry import Registry
from localcluster.apiserver.service import API, NS_KEY
from localcluster.apiserver.store import Store

INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


class APIServer:
    """An in-memory Kubernetes API server speaking the real REST wire format over HTTP.

    ``history_limit`` bounds the watch history (older resourceVersions answer 410 Gone);
    ``bookmark_interval`` is how often watches that allow bookmarks get one.
    """

    def __init__(
        self,
        *,
        history_limit: int = 10_000,
        watcher_buffer: int = 20_000,
        bookmark_interval: float = 5.0,
        controllers: bool = True,
    ) -> None:
        self.store = Store(history_limit=history_limit, watcher_buffer=watcher_buffer)
        self.registry = Registry.with_builtins()
        self.api = API(self.store, self.registry)
        self.handlers = Handlers(self.api, WatchSettings(bookmark_interval=bookmark_interval))
        self.controllers = ControllerManager(self.api) if controllers else None
        self.faults = ApiFaults(self.store, self.restart)
        self.handlers.faults = self.faults
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._url: str | None = None
        for name in INITIAL_NAMESPACES:
            self.store.put(
                NS_KEY,
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {
                        "name": name,
                        "uid": new_uid(),
                        "creationTimestamp": now_rfc3339(),
                        "labels": {"kubernetes.io/metadata.name": name},
                    },
                    "spec": {"finalizers": ["kubernetes"]},
                    "status": {"phase": "Active"},
                },
                None,
            )

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("APIServer is not started")
        return self._url

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handlers.dispatch)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=0.5)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, host, port)
        await self._site.start()
        server = self._site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        bound_port = sockets[0].getsockname()[1]
        self._url = f"http://{host}:{bound_port}"
        self.handlers.server_address = f"{host}:{bound_port}"
        if self.controllers is not None:
            self.controllers.start()
        return self._url

    async def restart(self, downtime: float = 0.2) -> None:
        """Go away and come back on the same address, keeping the store (etcd outlives the server).

        Listening stops first, then every open connection is reset (RST, not a clean close:
        in-flight requests and watches fail as on a crash), and ``downtime`` seconds later the
        same port listens again. Watch handlers end with their connections (handler cancellation).
        """
        runner, site = self._runner, self._site
        if runner is None or site is None or runner.server is None:
            raise RuntimeError("APIServer is not started")
        host, port = self.handlers.server_address.rsplit(":", 1)
        await site.stop()
        for handler in runner.server.connections:
            transport = handler.transport
            if transport is None:
                continue
            sock = transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        await asyncio.sleep(downtime)
        self._site = web.TCPSite(runner, host, int(port))
        await self._site.start()

    async def stop(self) -> None:
        self.store.close_watchers()
        if self.controllers is not None:
            await self.controllers.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            self._site = None

    async def __aenter__(self) -> APIServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def write_kubeconfig(self, path: str | Path) -> Path:
        """A kubeconfig for kubectl and kubernetes-asyncio (any bearer token is accepted)."""
        target = Path(path)
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "localcluster", "cluster": {"server": self.url}}],
            "users": [{"name": "localcluster", "user": {"token": "localcluster"}}],
            "contexts": [
                {
                    "name": "localcluster",
                    "context": {"cluster": "localcluster", "user": "localcluster", "namespace": "default"},
                }
            ],
            "current-context": "localcluster",
            "preferences": {},
        }
        target.write_text(yaml.safe_dump(config, sort_keys=False))
        return target
