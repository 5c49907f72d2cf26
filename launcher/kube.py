"""The launcher's writes to the Kubernetes API: NodeClaims, Nodes, and jitnode objects' status.

Custom objects are patched with ``application/merge-patch+json``: kubernetes-asyncio would
otherwise send a dict body as a JSON patch, which a real API server rejects for custom
resources. Reads never happen here: they come from informers (``launcher.state``).
"""

from __future__ import annotations

from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from shared.api.group import API_GROUP, API_VERSION, NODECLAIM_PLURAL, NODECLASS_PLURAL, NODEPOOL_PLURAL

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"


def _raw(response: Any) -> dict[str, Any]:
    return response if isinstance(response, dict) else {}


class NodeClaimWriter:
    """Create, patch and delete NodeClaims (cluster-scoped custom objects)."""

    def __init__(self, api: client.ApiClient) -> None:
        self._custom = client.CustomObjectsApi(api)

    async def create(self, body: dict[str, Any]) -> dict[str, Any]:
        return _raw(
            await self._custom.create_cluster_custom_object(API_GROUP, API_VERSION, NODECLAIM_PLURAL, body)
        )

    async def patch(self, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        return _raw(
            await self._custom.patch_cluster_custom_object(
                API_GROUP, API_VERSION, NODECLAIM_PLURAL, name, patch, _content_type=MERGE_PATCH
            )  # type: ignore[call-arg]  # the bundled stubs omit _content_type; the client accepts it
        )

    async def patch_status(self, name: str, status: dict[str, Any]) -> dict[str, Any]:
        return _raw(
            await self._custom.patch_cluster_custom_object_status(
                API_GROUP, API_VERSION, NODECLAIM_PLURAL, name, {"status": status}, _content_type=MERGE_PATCH
            )  # type: ignore[call-arg]
        )

    async def delete(self, name: str) -> None:
        """Delete the claim (its finalizer keeps it until its instance is gone); 404 is fine."""
        try:
            await self._custom.delete_cluster_custom_object(API_GROUP, API_VERSION, NODECLAIM_PLURAL, name)
        except ApiException as error:
            if error.status != 404:
                raise

    async def remove_finalizer(self, name: str, finalizers: tuple[str, ...], finalizer: str, rv: str) -> None:
        """Drop ``finalizer``; the resourceVersion guard makes a concurrent change fail with 409."""
        remaining = [f for f in finalizers if f != finalizer]
        try:
            await self.patch(name, {"metadata": {"finalizers": remaining, "resourceVersion": rv}})
        except ApiException as error:
            if error.status != 404:
                raise


class StatusWriter:
    """Merge-patch the status subresource of NodePools, EC2NodeClasses and NodeClaims.

    The patch carries the resourceVersion the status was computed from: a merge patch replaces
    ``conditions`` whole, so a concurrent writer's change must fail this one (409), not be lost.
    One method a kind, each naming its plural as a constant: ``tests/manifests/test_rbac.py``
    derives the launcher's RBAC from these calls.
    """

    def __init__(self, api: client.ApiClient) -> None:
        self._custom = client.CustomObjectsApi(api)

    async def nodepool(self, name: str, status: dict[str, Any], resource_version: str) -> None:
        await self._custom.patch_cluster_custom_object_status(
            API_GROUP,
            API_VERSION,
            NODEPOOL_PLURAL,
            name,
            _status_body(status, resource_version),
            _content_type=MERGE_PATCH,
        )  # type: ignore[call-arg]

    async def nodeclass(self, name: str, status: dict[str, Any], resource_version: str) -> None:
        await self._custom.patch_cluster_custom_object_status(
            API_GROUP,
            API_VERSION,
            NODECLASS_PLURAL,
            name,
            _status_body(status, resource_version),
            _content_type=MERGE_PATCH,
        )  # type: ignore[call-arg]

    async def nodeclaim(self, name: str, status: dict[str, Any], resource_version: str) -> None:
        await self._custom.patch_cluster_custom_object_status(
            API_GROUP,
            API_VERSION,
            NODECLAIM_PLURAL,
            name,
            _status_body(status, resource_version),
            _content_type=MERGE_PATCH,
        )  # type: ignore[call-arg]


def _status_body(status: dict[str, Any], resource_version: str) -> dict[str, Any]:
    return {"metadata": {"resourceVersion": resource_version}, "status": status}


class NodeWriter:
    """Patch and delete Nodes."""

    def __init__(self, api: client.ApiClient) -> None:
        self._core = client.CoreV1Api(api)

    async def patch(self, name: str, patch: dict[str, Any]) -> None:
        await self._core.patch_node(name, patch, _content_type=STRATEGIC_MERGE_PATCH)  # type: ignore[call-arg]

    async def delete(self, name: str) -> None:
        try:
            await self._core.delete_node(name)
        except ApiException as error:
            if error.status != 404:
                raise
