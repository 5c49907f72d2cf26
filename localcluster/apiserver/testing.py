"""Helpers for tests and the demo: a started :class:`APIServer` with a kubernetes-asyncio client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from kubernetes_asyncio import client

from localcluster.apiserver.app import APIServer


def client_configuration(url: str) -> client.Configuration:
    """A kubernetes-asyncio configuration for ``url`` (no TLS, any token)."""
    config = client.Configuration(host=url)
    config.api_key = {"authorization": "Bearer localcluster"}
    return config


@asynccontextmanager
async def running_apiserver(
    **settings: float | int | bool,
) -> AsyncIterator[tuple[APIServer, client.ApiClient]]:
    """Start a server on 127.0.0.1:0 and yield it with a connected ``ApiClient``."""
    server = APIServer(**settings)  # type: ignore[arg-type]
    await server.start()
    try:
        async with client.ApiClient(client_configuration(server.url)) as api_client:
            yield server, api_client
    finally:
        await server.stop()
