# mypy: disable-error-code="arg-type, call-arg"
"""CRDs: registration, then custom objects over kubernetes-asyncio's CustomObjectsApi."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from kubernetes_asyncio import client, watch
from kubernetes_asyncio.client.exceptions import ApiException

from localcluster.apiserver import APIServer
from localcluster.apiserver.testing import running_apiserver

GROUP, VERSION, PLURAL = "jitnode.io", "v1", "nodeclaims"
CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"{PLURAL}.{GROUP}"},
    "spec": {
        "group": GROUP,
        "scope": "Cluster",
        "names": {"plural": PLURAL, "singular": "nodeclaim", "kind": "NodeClaim", "shortNames": ["nc"]},
        "versions": [
            {
                "name": VERSION,
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "properties": {
                                    "pool": {"type": "string"},
                                    "weight": {"type": "integer", "default": 10},
                                },
                            },
                            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                        },
                    }
                },
            }
        ],
    },
}
MERGE = "application/merge-patch+json"


@pytest.fixture
async def kube() -> AsyncIterator[tuple[APIServer, client.ApiClient]]:
    async with running_apiserver() as pair:
        ext = client.ApiextensionsV1Api(pair[1])
        created = await ext.create_custom_resource_definition(CRD)
        conditions = {c.type: c.status for c in created.status.conditions}
        assert conditions == {"Established": "True", "NamesAccepted": "True"}
        yield pair


def claim(name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "NodeClaim",
        "metadata": {"name": name},
        "spec": {"pool": "default"},
        "status": {"ignored": True},
    }


async def test_custom_object_crud_and_status_split(kube: tuple[APIServer, client.ApiClient]) -> None:
    _, api = kube
    co = client.CustomObjectsApi(api)
    created = await co.create_cluster_custom_object(GROUP, VERSION, PLURAL, claim("a"))
    assert created["spec"] == {"pool": "default", "weight": 10}  # schema default applied
    assert "status" not in created  # status only through /status
    got = await co.get_cluster_custom_object(GROUP, VERSION, PLURAL, "a")
    assert got["metadata"]["uid"] == created["metadata"]["uid"]
    listed = await co.list_cluster_custom_object(GROUP, VERSION, PLURAL)
    assert listed["kind"] == "NodeClaimList"
    assert [i["metadata"]["name"] for i in listed["items"]] == ["a"]
    assert listed["items"][0]["kind"] == "NodeClaim"  # custom resources keep kind in list items

    patched = await co.patch_cluster_custom_object(
        GROUP, VERSION, PLURAL, "a", {"spec": {"pool": "gpu"}, "status": {"x": 1}}, _content_type=MERGE
    )
    assert patched["spec"]["pool"] == "gpu"
    assert "status" not in patched
    assert patched["metadata"]["generation"] == 2
    status = await co.patch_cluster_custom_object_status(
        GROUP,
        VERSION,
        PLURAL,
        "a",
        {"spec": {"pool": "cpu"}, "status": {"phase": "Launched"}},
        _content_type=MERGE,
    )
    assert status["status"] == {"phase": "Launched"}
    assert status["spec"]["pool"] == "gpu"
    assert status["metadata"]["generation"] == 2

    with pytest.raises(ApiException) as smp:
        await co.patch_cluster_custom_object(
            GROUP,
            VERSION,
            PLURAL,
            "a",
            {"spec": {"pool": "x"}},
            _content_type="application/strategic-merge-patch+json",
        )
    assert smp.value.status == 415
    with pytest.raises(ApiException) as default_json_patch:  # a dict sent as JSON patch, the client default
        await co.patch_cluster_custom_object(GROUP, VERSION, PLURAL, "a", {"spec": {"pool": "x"}})
    assert default_json_patch.value.status in (400, 415, 422)
    with pytest.raises(ApiException) as not_object:
        await co.create_cluster_custom_object(GROUP, VERSION, PLURAL, ["not", "an", "object"])
    assert not_object.value.status == 400


async def test_custom_object_watch_and_crd_removal(kube: tuple[APIServer, client.ApiClient]) -> None:
    _, api = kube
    co = client.CustomObjectsApi(api)
    w = watch.Watch()
    seen: list[tuple[str, str]] = []

    async def writes() -> None:
        await asyncio.sleep(0.05)
        await co.create_cluster_custom_object(GROUP, VERSION, PLURAL, claim("w"))
        await co.patch_cluster_custom_object(
            GROUP, VERSION, PLURAL, "w", {"spec": {"pool": "p"}}, _content_type=MERGE
        )
        await co.delete_cluster_custom_object(GROUP, VERSION, PLURAL, "w")

    task = asyncio.create_task(writes())
    async with asyncio.timeout(5):
        async for ev in w.stream(co.list_cluster_custom_object, GROUP, VERSION, PLURAL, timeout_seconds=2):
            seen.append((ev["type"], ev["object"]["metadata"]["name"]))
            if len(seen) == 3:
                w.stop()
    await task
    assert seen == [("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]

    await co.create_cluster_custom_object(GROUP, VERSION, PLURAL, claim("left"))
    await client.ApiextensionsV1Api(api).delete_custom_resource_definition(f"{PLURAL}.{GROUP}")
    with pytest.raises(ApiException) as gone:
        await co.list_cluster_custom_object(GROUP, VERSION, PLURAL)
    assert gone.value.status == 404
