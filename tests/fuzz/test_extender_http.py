"""Fuzzing the extender's HTTP surface: ``/filter``, ``/prioritize`` and the webhook's ``/mutate``.

One in-process app built as :class:`extender.service.ExtenderService` builds it (the extender's
verbs plus the webhook's route), its cache seeded with the nodes of the captured kube-scheduler
bodies. Whatever arrives, the answer is never a 5xx nor a dropped connection: filter and
prioritize answer their protocol's shape or a 400 whose JSON ``error`` starts with the path
of the field at fault; the webhook always answers an AdmissionReview that allows the request.
"""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator, Mapping
from typing import Any, Final

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given
from hypothesis import strategies as st

from extender.app import ExtenderApp
from extender.cache import ClusterCache
from extender.metrics import ExtenderMetrics
from extender.webhook import webhook_routes
from shared import labels
from tests.fuzz.strategies import (
    CONTENT_TYPES,
    FUZZ,
    SCHEDULER_BODIES,
    any_json_body,
    bodies_from,
    damaged,
    encode,
    mutated,
)

pytestmark = pytest.mark.fuzz

Client = TestClient[Any, Any]
PREFIX: Final = "/jitnode"
MAX_BODY: Final = 256 * 1024
ENABLED: Final = {labels.SCHEDULING_LABEL: labels.SCHEDULING_ENABLED}
NAMESPACES: Final[dict[str, Mapping[str, str]]] = {"team-a": ENABLED, "team-b": {}}
# A 400 names the field at fault first: a top-level key of ExtenderArgs, then a path into it.
FIELD_PATH: Final = re.compile(r"^(body|Pod|NodeNames|Nodes)(\.[\w\-/.]+|\[\d+\])*: \S")
# What a Python exception's message says, which names no field: a 400 must not be one of these.
PYTHON_ERROR: Final = re.compile(
    r"object has no attribute|object is not|unhashable|not supported between|positional argument"
    r"|index out of range|can't|cannot convert|invalid literal|maximum recursion|Error\(|'(str|int|float"
    r"|list|dict|bool)' object"
)


def fixture_nodes() -> list[dict[str, Any]]:
    nodes: dict[str, dict[str, Any]] = {}
    for body in SCHEDULER_BODIES.values():
        for item in (body.get("Nodes") or {}).get("items") or []:
            nodes[item["metadata"]["name"]] = item
    return list(nodes.values())


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    cache = ClusterCache()
    for node in fixture_nodes():
        cache.upsert_node(node)
    app = ExtenderApp(cache, ExtenderMetrics(), prefix=PREFIX, max_body_bytes=MAX_BODY).build()
    app.add_routes(webhook_routes(NAMESPACES.get))
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


def headers(content_type: str | None) -> dict[str, str]:
    return {} if content_type is None else {"Content-Type": content_type}


def check_error(answer: Any) -> None:
    assert isinstance(answer, dict), answer
    assert set(answer) == {"error"}, answer
    error = answer["error"]
    assert isinstance(error, str), answer
    assert FIELD_PATH.match(error), f"the 400 does not name the field at fault: {error!r}"
    assert not PYTHON_ERROR.search(error), f"the 400 is a Python error, not a field: {error!r}"


def check_filter_result(answer: Any) -> None:
    assert isinstance(answer, dict), answer
    assert set(answer) >= {"NodeNames", "Nodes", "FailedNodes", "Error"}, answer
    assert isinstance(answer["Error"], str)
    assert isinstance(answer["FailedNodes"], dict)
    assert all(isinstance(v, str) for v in answer["FailedNodes"].values())
    unresolvable = answer.get("FailedAndUnresolvableNodes", {})
    assert isinstance(unresolvable, dict)
    assert all(isinstance(v, str) for v in unresolvable.values())
    names, nodes = answer["NodeNames"], answer["Nodes"]
    assert (names is None) != (nodes is None), answer
    if names is not None:
        assert isinstance(names, list)
        assert all(isinstance(name, str) for name in names)
    else:
        assert isinstance(nodes, dict)
        assert isinstance(nodes["items"], list)
        assert all(isinstance(n, dict) and n["metadata"]["name"] for n in nodes["items"])


def check_priority_list(answer: Any) -> None:
    assert isinstance(answer, list), answer
    for entry in answer:
        assert isinstance(entry, dict)
        assert set(entry) == {"Host", "Score"}, entry
        assert isinstance(entry["Host"], str)
        assert isinstance(entry["Score"], int)
        assert 0 <= entry["Score"] <= 10


async def call_verb(client: Client, verb: str, body: bytes, content_type: str | None) -> None:
    async with client.post(f"{PREFIX}/{verb}", data=body, headers=headers(content_type)) as response:
        raw = await response.read()
        assert response.status < 500, (response.status, raw[:500])
        assert response.status in (200, 400), (response.status, raw[:500])
        assert response.content_type == "application/json", response.content_type
        answer = orjson.loads(raw)
    if response.status == 400:
        check_error(answer)
    elif verb == "filter":
        check_filter_result(answer)
    else:
        check_priority_list(answer)


VERBS: Final = st.sampled_from(["filter", "prioritize"])
CAPTURED: Final = st.sampled_from(sorted(SCHEDULER_BODIES))


@FUZZ
@given(name=CAPTURED, data=st.data(), verb=VERBS, content_type=CONTENT_TYPES)
async def test_mutated_scheduler_bodies(
    client: Client, name: str, data: st.DataObject, verb: str, content_type: str | None
) -> None:
    await call_verb(client, verb, data.draw(bodies_from(SCHEDULER_BODIES[name])), content_type)


@FUZZ
@given(body=any_json_body(), verb=VERBS, content_type=CONTENT_TYPES)
async def test_random_json_bodies(client: Client, body: bytes, verb: str, content_type: str | None) -> None:
    await call_verb(client, verb, body, content_type)


@FUZZ
@given(name=CAPTURED, verb=VERBS, data=st.data())
async def test_mutated_pods_in_kube_scheduler_encoding(
    client: Client, name: str, verb: str, data: st.DataObject
) -> None:
    """The pod alone mutated, the body keeping Go's exact encoding: filter's fast path reads
    such bodies from their names only, prioritize parses the pod."""
    captured = SCHEDULER_BODIES[name]
    if captured.get("NodeNames") is None:
        captured = {"Pod": captured["Pod"], "Nodes": None, "NodeNames": ["ip-10-0-1-1", "ghost"]}
    pod = data.draw(mutated(captured["Pod"]))
    body = b'{"Pod":' + encode(pod) + b',"Nodes":null,"NodeNames":' + encode(captured["NodeNames"]) + b"}"
    await call_verb(client, verb, body, "application/json")


@pytest.mark.parametrize("verb", ["filter", "prioritize"])
@pytest.mark.parametrize(
    "body",
    [b"", b"{}", b"[]", b"null", b"\xff\xfe", b"{" * 5000, b"[" * 2000 + b"]" * 2000, b" " * 100],
    ids=lambda b: repr(b[:8]),
)
async def test_degenerate_bodies(client: Client, verb: str, body: bytes) -> None:
    await call_verb(client, verb, body, "application/json")


@pytest.mark.parametrize("verb", ["filter", "prioritize"])
async def test_oversized_body_names_the_body(client: Client, verb: str) -> None:
    body = orjson.dumps({"Pod": {}, "NodeNames": ["n" * 100] * (MAX_BODY // 50)})
    await call_verb(client, verb, body, "application/json")


# The mutating webhook -------------------------------------------------------------------------


def admission_review(namespace: str = "team-a") -> dict[str, Any]:
    """An AdmissionReview v1 as kube-apiserver sends it for a pod CREATE."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"generateName": "web-", "namespace": namespace, "labels": {"app": "web"}},
        "spec": {
            "containers": [{"name": "web", "image": "nginx", "resources": {"requests": {"cpu": "100m"}}}],
            "schedulerName": "default-scheduler",
        },
        "status": {},
    }
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "b1f5b1b6-0e0a-4c4e-9f55-1c2d3e4f5a6b",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            "object": pod,
            "oldObject": None,
            "dryRun": False,
        },
    }


async def call_mutate(client: Client, body: bytes, content_type: str | None) -> dict[str, Any]:
    async with client.post("/mutate", data=body, headers=headers(content_type)) as response:
        raw = await response.read()
        assert response.status == 200, (response.status, raw[:500])
        assert response.content_type == "application/json"
        answer = orjson.loads(raw)
    assert isinstance(answer, dict)
    assert answer["apiVersion"] == "admission.k8s.io/v1"
    assert answer["kind"] == "AdmissionReview"
    review = answer["response"]
    assert isinstance(review["uid"], str)
    assert review["allowed"] is True
    assert set(review) <= {"uid", "allowed", "patchType", "patch", "warnings"}, review
    if "patch" in review:
        assert review["patchType"] == "JSONPatch"
        patch = orjson.loads(base64.b64decode(review["patch"], validate=True))
        assert patch == [{"op": "add", "path": "/spec/schedulerName", "value": labels.SCHEDULER_NAME}]
    if "warnings" in review:
        assert all(isinstance(w, str) and w for w in review["warnings"])
    return answer


@FUZZ
@given(namespace=st.sampled_from(["team-a", "team-b", "unknown"]), data=st.data(), content_type=CONTENT_TYPES)
async def test_mutated_admission_reviews(
    client: Client, namespace: str, data: st.DataObject, content_type: str | None
) -> None:
    body = data.draw(bodies_from(admission_review(namespace)))
    await call_mutate(client, body, content_type)


@FUZZ
@given(body=any_json_body(), content_type=CONTENT_TYPES)
async def test_random_admission_bodies(client: Client, body: bytes, content_type: str | None) -> None:
    await call_mutate(client, body, content_type)


@FUZZ
@given(name=CAPTURED, data=st.data())
async def test_scheduler_bodies_sent_to_the_webhook(client: Client, name: str, data: st.DataObject) -> None:
    """A pod as kube-scheduler captured it, inside a review: real pods' shapes, mutated."""
    review = admission_review()
    review["request"]["object"] = data.draw(mutated(SCHEDULER_BODIES[name]["Pod"]))
    await call_mutate(client, data.draw(damaged(encode(review))), "application/json")


@pytest.mark.parametrize(
    "body", [b"", b"{}", b"null", b"\xff", b"{" * 5000, b"[" * 2000 + b"]" * 2000], ids=lambda b: repr(b[:8])
)
async def test_degenerate_admission_bodies(client: Client, body: bytes) -> None:
    await call_mutate(client, body, "application/json")


async def test_the_unmutated_review_is_patched(client: Client) -> None:
    """The property above can fail: the generators' starting point is a review that is patched."""
    answer = await call_mutate(client, orjson.dumps(admission_review("team-a")), "application/json")
    assert "patch" in answer["response"]
