"""A kubernetes-asyncio client from a kubeconfig file, else the in-cluster service account."""

from __future__ import annotations

from kubernetes_asyncio import client, config


async def api_client(kubeconfig: str | None) -> client.ApiClient:
    """The caller owns the client and must close it (``async with`` or ``await close()``)."""
    if kubeconfig:
        configuration = client.Configuration()
        await config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
        return client.ApiClient(configuration)
    config.load_incluster_config()  # type: ignore[no-untyped-call]
    return client.ApiClient()
