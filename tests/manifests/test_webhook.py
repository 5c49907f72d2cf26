"""The mutating webhook: who gets ``jitnode-scheduler``, and that nothing is ever refused."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given
from hypothesis import strategies as st

from extender.webhook import mutate, webhook_routes
from shared import labels

ENABLED = {labels.SCHEDULING_LABEL: labels.SCHEDULING_ENABLED}


def review(
    *,
    namespace: str = "team-a",
    scheduler: str | None = "default-scheduler",
    node_name: str | None = None,
    annotations: Mapping[str, str] | None = None,
    operation: str = "CREATE",
    kind: str = "Pod",
) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "app", "image": "nginx"}]}
    if scheduler is not None:
        spec["schedulerName"] = scheduler
    if node_name is not None:
        spec["nodeName"] = node_name
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "", "version": "v1", "kind": kind},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": namespace,
            "operation": operation,
            "object": {
                "metadata": {"generateName": "web-", "annotations": dict(annotations or {})},
                "spec": spec,
            },
        },
    }


def patch_of(answer: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    response = answer["response"]
    if "patch" not in response:
        return None
    assert response["patchType"] == "JSONPatch"
    patch: list[dict[str, Any]] = orjson.loads(base64.b64decode(response["patch"]))
    return patch


def apply(patch: list[dict[str, Any]], spec: dict[str, Any]) -> dict[str, Any]:
    out = dict(spec)
    for op in patch:
        assert op["op"] in ("add", "replace")
        assert op["path"].startswith("/spec/")
        out[op["path"].removeprefix("/spec/")] = op["value"]
    return out


def test_enabled_namespace_gets_jitnode_scheduler() -> None:
    answer = mutate(review(), ENABLED)
    assert answer["apiVersion"] == "admission.k8s.io/v1"
    assert answer["kind"] == "AdmissionReview"
    assert answer["response"]["uid"] == "705ab4f5-6393-11e8-b7cc-42010a800002"
    assert answer["response"]["allowed"] is True
    patch = patch_of(answer)
    assert patch == [{"op": "add", "path": "/spec/schedulerName", "value": "jitnode-scheduler"}]


def test_unset_scheduler_name_is_added() -> None:
    patch = patch_of(mutate(review(scheduler=None), ENABLED))
    assert patch is not None
    assert apply(patch, {})["schedulerName"] == labels.SCHEDULER_NAME


def test_other_namespace_is_allowed_unchanged() -> None:
    for ns_labels in ({}, {labels.SCHEDULING_LABEL: "disabled"}, {"team": "a"}):
        answer = mutate(review(), ns_labels)
        assert answer["response"]["allowed"] is True
        assert patch_of(answer) is None
        assert "warnings" not in answer["response"]


def test_unknown_namespace_defers_to_the_api_servers_selector() -> None:
    assert patch_of(mutate(review(), None)) is not None


def test_explicit_third_scheduler_is_respected() -> None:
    assert patch_of(mutate(review(scheduler="volcano"), ENABLED)) is None


def test_already_jitnode_is_idempotent() -> None:
    assert patch_of(mutate(review(scheduler=labels.SCHEDULER_NAME), ENABLED)) is None


def test_bound_pod_and_opted_out_pod_are_left_alone() -> None:
    assert patch_of(mutate(review(node_name="node-a"), ENABLED)) is None
    opt_out = {labels.SCHEDULING_LABEL: labels.SCHEDULING_DISABLED}
    assert patch_of(mutate(review(annotations=opt_out), ENABLED)) is None


def test_only_pod_creation_is_mutated() -> None:
    assert patch_of(mutate(review(operation="UPDATE"), ENABLED)) is None
    assert patch_of(mutate(review(kind="Deployment"), ENABLED)) is None


def test_malformed_reviews_are_allowed_with_a_warning() -> None:
    broken_object = review()
    broken_object["request"]["object"] = "not a pod"
    broken_meta = review()
    broken_meta["request"]["object"]["metadata"] = ["x"]
    bad_reviews: list[Any] = [None, "x", 3, [], {}, {"request": None}, {"request": []}]
    for bad in [*bad_reviews, broken_object, broken_meta]:
        answer = mutate(bad, ENABLED)
        assert answer["response"]["allowed"] is True, bad
        assert "patch" not in answer["response"]
        assert answer["response"]["warnings"], bad


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)


@given(
    junk=json_values,
    where=st.sampled_from(["request", "object", "spec", "metadata", "kind", "uid"]),
)
def test_never_refuses_whatever_the_input(junk: Any, where: str) -> None:
    doc = review()
    request = doc["request"]
    target = {
        "request": doc,
        "object": request,
        "spec": request["object"],
        "metadata": request["object"],
        "kind": request,
        "uid": request,
    }[where]
    target[where] = junk
    answer = mutate(doc, ENABLED)
    assert answer["response"]["allowed"] is True
    patch = patch_of(answer)
    if patch is not None:
        assert patch == [{"op": "add", "path": "/spec/schedulerName", "value": labels.SCHEDULER_NAME}]


async def serve(get_labels: Any) -> TestClient[web.Request, web.Application]:
    app = web.Application()
    app.add_routes(webhook_routes(get_labels))
    client: TestClient[web.Request, web.Application] = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    return client


async def test_handler_uses_namespace_labels_from_the_callable() -> None:
    seen: list[str] = []

    def get_labels(namespace: str) -> Mapping[str, str] | None:
        seen.append(namespace)
        return ENABLED if namespace == "team-a" else {}

    client = await serve(get_labels)
    try:
        enabled = await client.post("/mutate", data=orjson.dumps(review(namespace="team-a")))
        other = await client.post("/mutate", data=orjson.dumps(review(namespace="team-b")))
        assert enabled.status == other.status == 200
        assert patch_of(await enabled.json()) is not None
        assert patch_of(await other.json()) is None
        assert seen == ["team-a", "team-b"]
    finally:
        await client.close()


async def test_handler_never_blocks_on_garbage_or_a_failing_cache() -> None:
    def broken(namespace: str) -> Mapping[str, str] | None:
        raise RuntimeError("cache exploded")

    client = await serve(broken)
    try:
        garbage = await client.post("/mutate", data=b"{not json")
        assert garbage.status == 200
        body = await garbage.json()
        assert body["response"]["allowed"] is True
        assert body["response"]["warnings"]
        # The cache failed: defer to the API server's namespaceSelector and still mutate.
        ok = await client.post("/mutate", data=orjson.dumps(review()))
        assert patch_of(await ok.json()) is not None
    finally:
        await client.close()
