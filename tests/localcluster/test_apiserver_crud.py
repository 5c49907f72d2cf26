# mypy: disable-error-code="arg-type, call-arg"
"""CRUD over HTTP through kubernetes-asyncio: status codes, metadata, concurrency, finalizers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from localcluster.apiserver import APIServer
from localcluster.apiserver.testing import running_apiserver


@pytest.fixture
async def kube() -> AsyncIterator[tuple[APIServer, client.ApiClient]]:
    async with running_apiserver() as pair:
        yield pair


def cm(name: str, **data: str) -> dict[str, object]:
    return {"metadata": {"name": name}, "data": data}


async def test_initial_namespaces_and_discovery(kube: tuple[APIServer, client.ApiClient]) -> None:
    _server, api = kube
    names = {n.metadata.name for n in (await client.CoreV1Api(api).list_namespace()).items}
    assert {"default", "kube-system", "kube-node-lease"} <= names
    version = await client.VersionApi(api).get_code()
    assert version.git_version.startswith("v1.")
    groups = await client.ApisApi(api).get_api_versions()
    assert {"apps", "policy", "coordination.k8s.io", "apiextensions.k8s.io"} <= {
        g.name for g in groups.groups
    }
    core = await client.CoreV1Api(api).get_api_resources()
    by_name = {r.name: r for r in core.resources}
    assert by_name["pods"].namespaced
    assert not by_name["nodes"].namespaced
    assert "pods/eviction" in by_name
    assert by_name["pods/eviction"].group == "policy"


async def test_create_get_list_codes(kube: tuple[APIServer, client.ApiClient]) -> None:
    _server, api = kube
    v1 = client.CoreV1Api(api)
    created, code, _ = await v1.create_namespaced_config_map_with_http_info("default", cm("a", k="v"))
    assert code == 201
    assert created.metadata.uid
    assert created.metadata.creation_timestamp is not None
    assert int(created.metadata.resource_version) > 0
    with pytest.raises(ApiException) as exists:
        await v1.create_namespaced_config_map("default", cm("a"))
    assert exists.value.status == 409
    assert orjson.loads(exists.value.body)["reason"] == "AlreadyExists"
    with pytest.raises(ApiException) as missing:
        await v1.read_namespaced_config_map("nope", "default")
    assert missing.value.status == 404
    assert orjson.loads(missing.value.body)["reason"] == "NotFound"
    with pytest.raises(ApiException) as invalid:
        await v1.create_namespaced_config_map("default", {"metadata": {}})
    assert invalid.value.status == 422
    with pytest.raises(ApiException) as no_ns:
        await v1.create_namespaced_config_map("nowhere", cm("b"))
    assert no_ns.value.status == 404
    got = await v1.read_namespaced_config_map("a", "default")
    assert got.data == {"k": "v"}
    listed = await v1.list_namespaced_config_map("default")
    assert [i.metadata.name for i in listed.items] == ["a"]
    assert int(listed.metadata.resource_version) >= int(created.metadata.resource_version)


async def test_generate_name_and_raw_list_shape(kube: tuple[APIServer, client.ApiClient]) -> None:
    server, api = kube
    v1 = client.CoreV1Api(api)
    pod = await v1.create_namespaced_pod(
        "default",
        {"metadata": {"generateName": "web-"}, "spec": {"containers": [{"name": "c", "image": "i"}]}},
    )
    assert pod.metadata.name.startswith("web-")
    assert len(pod.metadata.name) == len("web-") + 5
    assert pod.status.phase == "Pending"
    async with aiohttp.ClientSession() as http, http.get(f"{server.url}/api/v1/pods") as resp:
        body = await resp.json()
    assert body["kind"] == "PodList"
    assert body["apiVersion"] == "v1"
    assert "kind" not in body["items"][0]
    assert body["items"][0]["metadata"]["name"] == pod.metadata.name


async def test_resource_versions_increase_and_stale_put_conflicts(
    kube: tuple[APIServer, client.ApiClient],
) -> None:
    _, api = kube
    v1 = client.CoreV1Api(api)
    first = await v1.create_namespaced_config_map("default", cm("c", v="1"))
    first.data = {"v": "2"}
    second = await v1.replace_namespaced_config_map("c", "default", first)
    assert int(second.metadata.resource_version) > int(first.metadata.resource_version)
    first.data = {"v": "3"}  # still carries the old resourceVersion
    with pytest.raises(ApiException) as stale:
        await v1.replace_namespaced_config_map("c", "default", first)
    assert stale.value.status == 409
    assert orjson.loads(stale.value.body)["reason"] == "Conflict"
    unconditional = {"metadata": {"name": "c"}, "data": {"v": "4"}}
    assert (await v1.replace_namespaced_config_map("c", "default", unconditional)).data == {"v": "4"}


async def test_status_is_kept_apart_from_spec(kube: tuple[APIServer, client.ApiClient]) -> None:
    _, api = kube
    v1 = client.CoreV1Api(api)
    node = await v1.create_node({"metadata": {"name": "n1"}, "status": {"capacity": {"cpu": "4"}}})
    assert node.status.capacity == {"cpu": "4"}  # nodes register with their status
    patched = await v1.patch_node(
        "n1", {"metadata": {"labels": {"x": "y"}}, "status": {"capacity": {"cpu": "99"}}}
    )
    assert patched.metadata.labels == {"x": "y"}
    assert patched.status.capacity == {"cpu": "4"}
    status = await v1.patch_node_status(
        "n1", {"metadata": {"labels": {"x": "z"}}, "status": {"capacity": {"cpu": "8"}}}
    )
    assert status.status.capacity == {"cpu": "8"}
    assert status.metadata.labels == {"x": "y"}


async def test_generation_bumps_on_spec_change_only(kube: tuple[APIServer, client.ApiClient]) -> None:
    _, api = kube
    apps = client.AppsV1Api(api)
    body = {
        "metadata": {"name": "d"},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "d"}},
            "template": {
                "metadata": {"labels": {"app": "d"}},
                "spec": {"containers": [{"name": "c", "image": "i"}]},
            },
        },
    }
    d = await apps.create_namespaced_deployment("default", body)
    assert d.metadata.generation == 1
    d = await apps.patch_namespaced_deployment("d", "default", {"metadata": {"labels": {"a": "b"}}})
    assert d.metadata.generation == 1
    d = await apps.patch_namespaced_deployment("d", "default", {"spec": {"replicas": 2}})
    assert d.metadata.generation == 2
    with pytest.raises(ApiException) as bad:
        await apps.create_namespaced_deployment(
            "default", {**body, "metadata": {"name": "e"}, "spec": {"replicas": 1}}
        )
    assert bad.value.status == 422


async def test_finalizers_hold_deletion_until_removed(kube: tuple[APIServer, client.ApiClient]) -> None:
    _, api = kube
    v1 = client.CoreV1Api(api)
    await v1.create_namespaced_config_map("default", {"metadata": {"name": "f", "finalizers": ["x/y"]}})
    await v1.delete_namespaced_config_map("f", "default")
    held = await v1.read_namespaced_config_map("f", "default")
    assert held.metadata.deletion_timestamp is not None
    await v1.patch_namespaced_config_map("f", "default", {"metadata": {"finalizers": None}})
    with pytest.raises(ApiException) as gone:
        await v1.read_namespaced_config_map("f", "default")
    assert gone.value.status == 404


async def test_dry_run_stores_nothing(kube: tuple[APIServer, client.ApiClient]) -> None:
    _, api = kube
    v1 = client.CoreV1Api(api)
    dry = await v1.create_namespaced_config_map("default", cm("dry", a="b"), dry_run="All")
    assert dry.metadata.name == "dry"
    assert (await v1.list_namespaced_config_map("default")).items == []
    await v1.create_namespaced_config_map("default", cm("real"))
    await v1.delete_namespaced_config_map("real", "default", dry_run="All")
    assert (await v1.read_namespaced_config_map("real", "default")).metadata.name == "real"


async def test_binding_sets_node_and_refuses_rebinding(kube: tuple[APIServer, client.ApiClient]) -> None:
    server, api = kube
    v1 = client.CoreV1Api(api)
    await v1.create_namespaced_pod(
        "default", {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}}
    )
    binding = {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": "p"},
        "target": {"kind": "Node", "name": "n1"},
    }
    url = f"{server.url}/api/v1/namespaces/default/pods/p/binding"
    async with aiohttp.ClientSession() as http:
        async with http.post(
            url, data=orjson.dumps(binding), headers={"Content-Type": "application/json"}
        ) as r:
            assert r.status == 201
        async with http.post(
            url, data=orjson.dumps(binding), headers={"Content-Type": "application/json"}
        ) as r:
            assert r.status == 409
    pod = await v1.read_namespaced_pod("p", "default")
    assert pod.spec.node_name == "n1"
    assert any(c.type == "PodScheduled" and c.status == "True" for c in pod.status.conditions)
    on_node = await v1.list_pod_for_all_namespaces(field_selector="spec.nodeName=n1")
    assert [p.metadata.name for p in on_node.items] == ["p"]


async def test_namespace_deletion_removes_contents(kube: tuple[APIServer, client.ApiClient]) -> None:
    import asyncio

    _, api = kube
    v1 = client.CoreV1Api(api)
    await v1.create_namespace({"metadata": {"name": "team"}})
    await v1.create_namespaced_config_map("team", cm("x"))
    await v1.delete_namespace("team")
    for _ in range(100):
        names = {n.metadata.name for n in (await v1.list_namespace()).items}
        if "team" not in names:
            break
        await asyncio.sleep(0.01)
    assert "team" not in names
    assert (await v1.list_config_map_for_all_namespaces()).items == []
