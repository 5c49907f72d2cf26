# mypy: disable-error-code="arg-type, call-arg"
"""The local API server enforces CRD rules as a real one does: on the CRD and on its objects."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from localcluster.apiserver import APIServer
from localcluster.apiserver.testing import running_apiserver
from tests.manifests.test_crd_cel import OLD_EBS_RULE
from tests.shared import test_api_nodeclaim, test_api_nodeclass, test_api_nodepool

CRDS = Path(__file__).resolve().parents[2] / "manifests" / "crds"
GROUP, VERSION = "jitnode.io", "v1"
MERGE = "application/merge-patch+json"


def manifest_crds() -> list[dict[str, Any]]:
    return [d for p in sorted(CRDS.glob("*.yaml")) for d in yaml.safe_load_all(p.read_text()) if d]


@pytest.fixture
async def kube() -> AsyncIterator[tuple[APIServer, client.ApiClient]]:
    async with running_apiserver() as pair:
        ext = client.ApiextensionsV1Api(pair[1])
        for crd in manifest_crds():
            await ext.create_custom_resource_definition(crd)
        yield pair


def causes(exc: ApiException) -> list[tuple[str, str]]:
    body = orjson.loads(exc.body)
    return [(c["field"], c["message"]) for c in body["details"]["causes"]]


def nodeclass_crd() -> dict[str, Any]:
    """The shipped EC2NodeClass CRD (its rules are the ones these tests break)."""
    return next(c for c in manifest_crds() if c["spec"]["names"]["kind"] == "EC2NodeClass")


async def test_crd_whose_rule_does_not_compile_is_refused() -> None:
    crd = copy.deepcopy(nodeclass_crd())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    spec["x-kubernetes-validations"].append({"rule": "semver(self.role).major() > 0"})
    async with running_apiserver() as (_, api):
        with pytest.raises(ApiException) as info:
            await client.ApiextensionsV1Api(api).create_custom_resource_definition(crd)
    assert info.value.status == 422
    ((path, message),) = causes(info.value)
    index = len(spec["x-kubernetes-validations"]) - 1
    assert path == f"spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations[{index}].rule"
    assert (
        "compilation failed: ERROR: <input>:1:7: undeclared reference to 'semver' (in container '')"
        in message
    )


async def test_crd_over_the_cost_budget_is_refused() -> None:
    crd = copy.deepcopy(nodeclass_crd())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    ebs = spec["properties"]["blockDeviceMappings"]["items"]["properties"]["ebs"]
    del ebs["properties"]["volumeSize"]["maxLength"]
    assert ebs["x-kubernetes-validations"][0]["rule"] == OLD_EBS_RULE
    async with running_apiserver() as (_, api):
        ext = client.ApiextensionsV1Api(api)
        with pytest.raises(ApiException) as info:
            await ext.create_custom_resource_definition(crd)
        assert info.value.status == 422
        ((path, message),) = causes(info.value)
        assert path.endswith("properties[ebs].x-kubernetes-validations[0].rule")
        assert "estimated rule cost exceeds budget by factor of 3.1x" in message
        ebs["properties"]["volumeSize"]["maxLength"] = 20
        await ext.create_custom_resource_definition(crd)


async def test_nodepool_violating_a_rule_is_refused_and_a_valid_one_accepted(
    kube: tuple[APIServer, client.ApiClient],
) -> None:
    co = client.CustomObjectsApi(kube[1])
    bad = test_api_nodepool.minimal()
    bad["spec"]["template"]["spec"]["requirements"] = [
        {"key": "node.kubernetes.io/instance-type", "operator": "In"}
    ]
    with pytest.raises(ApiException) as info:
        await co.create_cluster_custom_object(GROUP, VERSION, "nodepools", bad)
    assert info.value.status == 422
    message = orjson.loads(info.value.body)["message"]
    assert message == (
        'NodePool.jitnode.io "default" is invalid: spec.template.spec.requirements[0]: Invalid value: '
        "\"object\": requirements with operator 'In' or 'NotIn' must have a value defined"
    )
    created = await co.create_cluster_custom_object(GROUP, VERSION, "nodepools", test_api_nodepool.FULL)
    assert created["metadata"]["generation"] == 1
    with pytest.raises(ApiException) as info:
        await co.patch_cluster_custom_object(
            GROUP,
            VERSION,
            "nodepools",
            created["metadata"]["name"],
            {"spec": {"weight": 500}},
            _content_type=MERGE,
        )
    assert causes(info.value) == [
        ("spec.weight", "Invalid value: 500: spec.weight in body should be less than or equal to 100")
    ]


async def test_a_stabilization_window_over_an_hour_is_refused(
    kube: tuple[APIServer, client.ApiClient],
) -> None:
    co = client.CustomObjectsApi(kube[1])
    pool = test_api_nodepool.minimal()
    pool["spec"]["disruption"] = {"stabilizationWindow": "1h30m"}
    with pytest.raises(ApiException) as info:
        await co.create_cluster_custom_object(GROUP, VERSION, "nodepools", pool)
    assert causes(info.value) == [
        ("spec.disruption.stabilizationWindow", 'Invalid value: "string": must be at most 1h, as the HPA\'s')
    ]
    pool["spec"]["disruption"] = {"stabilizationWindow": "59m60s"}
    created = await co.create_cluster_custom_object(GROUP, VERSION, "nodepools", pool)
    assert created["spec"]["disruption"]["stabilizationWindow"] == "59m60s"


async def test_ec2nodeclass_rules_and_schema(kube: tuple[APIServer, client.ApiClient]) -> None:
    co = client.CustomObjectsApi(kube[1])
    good = copy.deepcopy(test_api_nodeclass.FULL)
    await co.create_cluster_custom_object(GROUP, VERSION, "ec2nodeclasses", good)
    bad = copy.deepcopy(test_api_nodeclass.minimal())
    bad["metadata"]["name"] = "bad"
    bad["spec"]["blockDeviceMappings"] = [{"deviceName": "/dev/xvda", "ebs": {"volumeSize": "100Ti"}}]
    bad["spec"]["tags"] = {"kubernetes.io/cluster/x": "owned"}
    with pytest.raises(ApiException) as info:
        await co.create_cluster_custom_object(GROUP, VERSION, "ec2nodeclasses", bad)
    assert sorted(causes(info.value)) == [
        (
            "spec.blockDeviceMappings[0].ebs",
            'Invalid value: "object": volumeSize must be between 1Gi and 64Ti',
        ),
        (
            "spec.tags",
            'Invalid value: "object": tag contains a restricted tag matching kubernetes.io/cluster/',
        ),
    ]


async def test_nodeclaim_spec_is_immutable(kube: tuple[APIServer, client.ApiClient]) -> None:
    co = client.CustomObjectsApi(kube[1])
    claim = copy.deepcopy(test_api_nodeclaim.FULL)
    name = claim["metadata"]["name"]
    await co.create_cluster_custom_object(GROUP, VERSION, "nodeclaims", claim)
    labelled = await co.patch_cluster_custom_object(
        GROUP, VERSION, "nodeclaims", name, {"metadata": {"labels": {"a": "b"}}}, _content_type=MERGE
    )
    assert labelled["metadata"]["labels"]["a"] == "b"
    with pytest.raises(ApiException) as info:
        await co.patch_cluster_custom_object(
            GROUP, VERSION, "nodeclaims", name, {"spec": {"expireAfter": "1h"}}, _content_type=MERGE
        )
    assert info.value.status == 422
    assert causes(info.value) == [("spec", 'Invalid value: "object": spec is immutable')]
