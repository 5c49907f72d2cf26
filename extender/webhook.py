"""Mutating admission webhook: route opted-in namespaces' pods to the jitnode scheduler.

EKS runs kube-scheduler in a managed control plane where no extender can be configured, so
jitnode ships a second scheduler (``jitnode-scheduler``) and this webhook points pods at it:
pods created in a namespace labelled ``jitnode.io/scheduling: enabled`` get
``spec.schedulerName: jitnode-scheduler``. The webhook must never stand between a user and
their pod, so every answer allows the request: a malformed review, an unexpected object or an
internal error yields ``allowed: true`` with no patch (and a warning), and the
MutatingWebhookConfiguration uses ``failurePolicy: Ignore`` for when we are not reachable.

Decisions, in order (the first that applies wins):

* the namespace cache has not finished its first list (a replica just started): no patch and a
  warning, exactly what the API server does when the webhook is down (``failurePolicy:
  Ignore``). A replica that has not listed cannot vouch for any namespace; the pod keeps the
  default scheduler and still gets capacity through the unschedulable watch;
* not a CREATE of a core/v1 Pod: no patch (``schedulerName`` is immutable after creation);
* the pod is already bound (``spec.nodeName`` set): no patch, no scheduler will see it;
* the pod's annotation ``jitnode.io/scheduling: disabled``: no patch (per-pod opt-out);
* ``spec.schedulerName`` names a third scheduler: no patch, an explicit choice is respected.
  The API server defaults an unset name to ``default-scheduler`` before admission, so that
  value cannot be told from "unset" and is replaced;
* already ``jitnode-scheduler``: no patch (idempotent under reinvocation);
* the namespace's labels are known and not opted in: no patch. Unknown labels (``None``, the
  extender's cache has not seen the namespace yet) defer to the API server, which only sends
  us pods its ``namespaceSelector`` matched;
* otherwise: a JSONPatch ``add /spec/schedulerName`` (``add`` replaces an existing member).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from typing import Any, Final

import orjson
from aiohttp import web

from shared import labels
from shared.logs import get_logger

_log = get_logger(__name__)

REVIEW_API_VERSION: Final = "admission.k8s.io/v1"
REVIEW_KIND: Final = "AdmissionReview"
DEFAULT_SCHEDULER: Final = "default-scheduler"
MUTATE_PATH: Final = "/mutate"
# Pod specs are small; a review is the pod (twice at most, with oldObject) plus metadata.
MAX_REVIEW_BYTES: Final = 4 * 2**20

NamespaceLabels = Callable[[str], Mapping[str, str] | None]


def mutate(review: Any, namespace_labels: Mapping[str, str] | None) -> dict[str, Any]:
    """The AdmissionReview v1 answer to ``review`` (decoded JSON), given its namespace's labels.

    Pure and total: whatever ``review`` holds, the answer allows the request.
    """
    request = review.get("request") if isinstance(review, Mapping) else None
    if not isinstance(request, Mapping):
        return _answer("", warning="jitnode webhook: malformed AdmissionReview (no request); pod unchanged")
    uid = request.get("uid")
    uid = uid if isinstance(uid, str) else ""
    try:
        patch = _patch_for(request, namespace_labels)
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        return _answer(uid, warning=f"jitnode webhook: malformed pod ({exc}); pod unchanged")
    return _answer(uid, patch=patch)


def _patch_for(request: Mapping[str, Any], namespace_labels: Mapping[str, str] | None) -> list[Any] | None:
    if request.get("operation") != "CREATE" or not _is_pod(request):
        return None
    pod = request.get("object")
    if not isinstance(pod, Mapping):
        raise ValueError("request.object is not a Pod")
    spec = pod.get("spec")
    if not isinstance(spec, Mapping):
        raise ValueError("request.object.spec is missing")
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    current = spec.get("schedulerName") or DEFAULT_SCHEDULER
    if (
        spec.get("nodeName")
        or annotations.get(labels.SCHEDULING_LABEL) == labels.SCHEDULING_DISABLED
        or current not in (DEFAULT_SCHEDULER, labels.SCHEDULER_NAME)
        or current == labels.SCHEDULER_NAME
    ):
        return None
    if namespace_labels is not None and namespace_labels.get(labels.SCHEDULING_LABEL) != (
        labels.SCHEDULING_ENABLED
    ):
        return None
    return [{"op": "add", "path": "/spec/schedulerName", "value": labels.SCHEDULER_NAME}]


def _is_pod(request: Mapping[str, Any]) -> bool:
    kind = request.get("kind") or {}
    resource = request.get("resource") or {}
    return (
        kind.get("group", "") == ""
        and kind.get("kind") == "Pod"
        and resource.get("resource", "pods") == "pods"
        and not request.get("subResource")
    )


def _answer(uid: str, *, patch: list[Any] | None = None, warning: str | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"uid": uid, "allowed": True}
    if patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(orjson.dumps(patch)).decode("ascii")
    if warning:
        response["warnings"] = [warning]
    return {"apiVersion": REVIEW_API_VERSION, "kind": REVIEW_KIND, "response": response}


NOT_SYNCED_WARNING: Final = "jitnode webhook: namespace cache not synced yet; pod unchanged"


def not_synced(review: Any) -> dict[str, Any]:
    """The answer while the namespace cache is still listing: allowed, no patch, a warning."""
    request = review.get("request") if isinstance(review, Mapping) else None
    uid = request.get("uid") if isinstance(request, Mapping) else None
    return _answer(uid if isinstance(uid, str) else "", warning=NOT_SYNCED_WARNING)


def webhook_routes(
    get_namespace_labels: NamespaceLabels, synced: Callable[[], bool] = lambda: True
) -> list[web.RouteDef]:
    """``POST /mutate`` for the extender's app; labels come from the extender's namespace cache.

    ``get_namespace_labels(name)`` must be cheap and non-blocking (a dict lookup) and return
    ``None`` for a namespace it does not know; ``synced()`` says whether the cache has listed.
    """

    async def handle(request: web.Request) -> web.Response:
        try:
            body = await request.read()
            review: Any = orjson.loads(body) if len(body) <= MAX_REVIEW_BYTES else None
        except (orjson.JSONDecodeError, web.HTTPException) as exc:
            _log.warning("webhook.malformed_review", error=repr(exc))
            review = None
        if synced():
            answer = _respond(review, get_namespace_labels)
        else:
            _log.warning("webhook.cache_not_synced")
            answer = not_synced(review)
        return web.Response(body=orjson.dumps(answer), content_type="application/json")

    return [web.post(MUTATE_PATH, handle)]


def _respond(review: Any, get_namespace_labels: NamespaceLabels) -> dict[str, Any]:
    """Look the namespace up and decide; a failing lookup defers to the API server's selector."""
    request = review.get("request") if isinstance(review, Mapping) else None
    namespace = request.get("namespace") if isinstance(request, Mapping) else None
    known: Mapping[str, str] | None = None
    if isinstance(namespace, str) and namespace:
        try:
            known = get_namespace_labels(namespace)
        except Exception as exc:  # a cache bug must not cost the pod its mutation, nor block it
            _log.warning("webhook.namespace_lookup_failed", namespace=namespace, error=repr(exc))
    answer = mutate(review, known)
    response = answer["response"]
    if response.get("warnings"):
        _log.warning("webhook.review_not_understood", warnings=response["warnings"])
    elif "patch" in response:
        pod = (request or {}).get("object") or {}
        name = (pod.get("metadata") or {}).get("name") or (pod.get("metadata") or {}).get("generateName")
        _log.debug("webhook.scheduler_set", pod=f"{namespace}/{name}", scheduler=labels.SCHEDULER_NAME)
    return answer
