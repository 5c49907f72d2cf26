"""Pure tests of server-side apply, managedFields, field validation and the OpenAPI documents."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from localcluster.apiserver import apply as ssa
from localcluster.apiserver import builtin_schemas
from localcluster.apiserver.fieldvalidation import STRICT, FieldValidation, check, duplicate_fields
from localcluster.apiserver.managedfields import decode, encode, members
from localcluster.apiserver.openapi import OpenAPI
from localcluster.apiserver.registry import Registry
from localcluster.apiserver.schemas import Resolver, Schemas

pytestmark = pytest.mark.skipif(not builtin_schemas.available(), reason="kubernetes-validate not installed")


def deployment_resolver() -> Resolver:
    registry = Registry.with_builtins()
    rt = registry.get("apps", "v1", "deployments")
    assert rt is not None
    resolver = Schemas(registry, lambda _: None).for_type(rt)
    assert resolver is not None
    return resolver


def deployment(image: str = "nginx", replicas: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "template": {"spec": {"containers": [{"name": "c", "image": image, **extra}]}},
        },
    }


def who(manager: str) -> ssa.Write:
    return ssa.Write(manager, "apps/v1", "2025-01-01T00:00:00Z", "", True)


def test_members_key_associative_lists_by_their_merge_key() -> None:
    paths = set(members(deployment(), deployment_resolver()))
    item = (("f", "spec"), ("f", "template"), ("f", "spec"), ("f", "containers"), ("k", '{"name":"c"}'))
    assert item in paths
    assert (*item, ("f", "image")) in paths
    assert decode(encode(paths)) == paths
    fields = encode(paths)
    containers = fields["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert containers['k:{"name":"c"}'] == {".": {}, "f:image": {}, "f:name": {}}


def test_apply_conflicts_are_refused_then_forced() -> None:
    r = deployment_resolver()
    first = ssa.apply(None, deployment(), r, who("a"), force=False)
    with pytest.raises(ssa.ApplyConflicts) as info:
        ssa.apply(first, deployment(image="busybox"), r, who("b"), force=False)
    assert info.value.message() == (
        'Apply failed with 1 conflict: conflict with "a": .spec.template.spec.containers[name="c"].image'
    )
    # Applying the same value shares ownership: no conflict.
    shared = ssa.apply(first, deployment(), r, who("b"), force=False)
    assert [e["manager"] for e in shared["metadata"]["managedFields"]] == ["a", "b"]
    forced = ssa.apply(first, deployment(image="busybox"), r, who("b"), force=True)
    assert forced["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox"
    a_fields = forced["metadata"]["managedFields"][0]["fieldsV1"]
    assert "f:image" not in a_fields["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"c"}']


def test_fields_no_longer_applied_are_removed_unless_owned_elsewhere() -> None:
    r = deployment_resolver()
    first = ssa.apply(None, deployment(command=["sleep"]), r, who("a"), force=False)
    again = ssa.apply(first, deployment(), r, who("a"), force=False)
    assert "command" not in again["spec"]["template"]["spec"]["containers"][0]
    co_owned = ssa.apply(first, deployment(command=["sleep"]), r, who("b"), force=False)
    kept = ssa.apply(co_owned, deployment(), r, who("a"), force=False)
    assert kept["spec"]["template"]["spec"]["containers"][0]["command"] == ["sleep"]


def test_update_takes_ownership_of_what_it_changed() -> None:
    r = deployment_resolver()
    applied = ssa.apply(None, deployment(replicas=1), r, who("a"), force=False)
    scaled = orjson.loads(orjson.dumps(applied))
    scaled["spec"]["replicas"] = 5
    tracked = ssa.track_update(applied, scaled, r, who("scaler"))
    entries = {e["manager"]: e for e in tracked["metadata"]["managedFields"]}
    assert entries["scaler"]["operation"] == "Update"
    assert entries["scaler"]["fieldsV1"] == {"f:spec": {"f:replicas": {}}}
    assert "f:replicas" not in entries["a"]["fieldsV1"]["f:spec"]
    with pytest.raises(ssa.ApplyConflicts, match=r'"scaler" using apps/v1 at .*: \.spec\.replicas'):
        ssa.apply(tracked, deployment(replicas=2), r, who("a"), force=False)


def test_unknown_and_duplicate_fields() -> None:
    body = deployment()
    body["spec"]["bogus"] = 1
    body["spec"]["template"]["spec"]["containers"][0]["nope"] = 2
    fv = FieldValidation(STRICT)
    cleaned, problems = check(body, deployment_resolver(), fv)
    assert sorted(problems) == [
        'unknown field "spec.bogus"',
        'unknown field "spec.template.spec.containers[0].nope"',
    ]
    assert "bogus" not in cleaned["spec"]
    assert duplicate_fields(b'{"a": {"b": 1, "b": 2}}', yaml_body=False) == ["b"]
    assert duplicate_fields(b"a: 1\na: 2\n", yaml_body=True) == ["a"]


def test_openapi_v3_paths_offer_field_validation_and_hashes_change_with_crds() -> None:
    registry = Registry.with_builtins()
    docs = OpenAPI(registry, Schemas(registry, lambda _: None))
    root = docs.v3_root()["paths"]
    assert root["apis/apps/v1"]["serverRelativeURL"].startswith("/openapi/v3/apis/apps/v1?hash=")
    doc = docs.v3("apis/apps/v1")
    assert doc is not None
    body = orjson.loads(doc.body)
    patch = body["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert "fieldValidation" in {p["name"] for p in patch["parameters"]}
    assert patch["x-kubernetes-group-version-kind"] == {
        "group": "apps",
        "kind": "Deployment",
        "version": "v1",
    }
    schema = body["components"]["schemas"]["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert schema["x-kubernetes-patch-merge-key"] == "name"
    v2 = orjson.loads(docs.v2().body)
    assert (
        v2["definitions"]["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["replicas"]["type"] == "integer"
    )
    before = docs.v3("api/v1")
    registry.revision += 1  # what a CRD change does
    after = docs.v3("api/v1")
    assert before is not after
