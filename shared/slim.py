"""Informer transforms: keep of each Pod and Node only what jitnode's decisions read.

A realistic pod is ~6 KB of JSON and ~27 KiB once decoded into Python objects, and nearly all of
it (managedFields, env, probes, volumes, images, most of status) is read by nobody here. Like
client-go's ``SetTransform`` and Karpenter's stripped caches, the informers cut every object
down as it is decoded (:class:`shared.informer.Informer` ``transform``), so the store, the
handlers and every decision see the slim form only. What is kept is listed below, field by
field; ``tests/shared/test_slim.py`` runs the decisions on a full and a slim pod and fails if a
read field was dropped. A field is dropped only when nothing reads it: add it here first.

Strings that repeat across objects (label keys and values, namespaces, owner names, quantities,
condition types) are interned, and identical sub-trees of pods of one template (scheduling
constraints, container resources) are shared through a bounded table: the slim objects are
read-only, like every informer object. Every function here is pure and idempotent
(``slim(slim(x)) == slim(x)``).
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Mapping
from typing import Any, Final

import orjson

from shared.errors import FieldError
from shared.resources import Resources

Obj = dict[str, Any]

# Pods ----------------------------------------------------------------------------------------

# metadata: identity, what selectors match, owner (DaemonSet, controller), deletion, do-not-disrupt
# and mirror annotations. ``last-applied-configuration`` can be as large as the pod: dropped.
POD_METADATA: Final = (
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "labels",
    "annotations",
    "ownerReferences",
    "creationTimestamp",
    "deletionTimestamp",
)
DROPPED_ANNOTATIONS: Final = frozenset({"kubectl.kubernetes.io/last-applied-configuration"})
OWNER_REFERENCE: Final = ("apiVersion", "kind", "name", "uid", "controller")
# spec: everything kube-scheduler's filters read that jitnode mirrors (resources, node affinity,
# tolerations, pod affinity, topology spread, priority), where it is bound, and drain's order.
POD_SPEC: Final = (
    "nodeName",
    "nodeSelector",
    "affinity",
    "tolerations",
    "topologySpreadConstraints",
    "priority",
    "priorityClassName",
    "preemptionPolicy",
    "schedulerName",
    "overhead",
    "resources",
)
# Of each container only what its requests are computed from (``shared.pods.effective_requests``);
# ``restartPolicy: Always`` makes an init container a sidecar.
CONTAINER: Final = ("name", "resources")
INIT_CONTAINER: Final = ("name", "resources", "restartPolicy")
# status: phase (terminal pods), the conditions read (PodScheduled=False/Unschedulable is demand,
# Ready gates consolidation, PodResizePending and ``resize`` an in-place resize), the nominated
# node, when it started (a do-not-disrupt duration counts from it), and container requests that
# differ from the spec's (a resize in progress).
POD_STATUS: Final = ("phase", "nominatedNodeName", "startTime", "resize")
POD_CONDITIONS: Final = frozenset({"PodScheduled", "Ready", "PodResizePending", "DisruptionTarget"})
CONDITION: Final = ("type", "status", "reason", "message", "lastTransitionTime")

# Nodes ---------------------------------------------------------------------------------------

# Nodes are few (5,000 at Kubernetes' limit): all of metadata but managedFields, all of spec, and
# of status all but the big lists nobody reads (images, volumes, daemon endpoints).
NODE_METADATA: Final = (
    "name",
    "uid",
    "resourceVersion",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "creationTimestamp",
    "deletionTimestamp",
)
NODE_STATUS: Final = ("conditions", "allocatable", "capacity", "addresses", "nodeInfo", "phase")

# Identical sub-trees are shared while fewer than this many distinct ones are held.
_SHARED_LIMIT: Final = 8192
_shared: dict[bytes, Any] = {}


def slim_pod(pod: Mapping[str, Any]) -> Obj:
    """The pod as the informers keep it (see the module doc); anything malformed is kept as is,
    so the decision that reads it reports the bad field as it would on the full object."""
    out: Obj = {}
    meta = pod.get("metadata")
    if isinstance(meta, Mapping):
        out["metadata"] = _pod_metadata(meta)
    elif meta is not None:
        out["metadata"] = meta
    spec = pod.get("spec")
    if isinstance(spec, Mapping):
        out["spec"] = _pod_spec(spec)
    elif spec is not None:
        out["spec"] = spec
    status = pod.get("status")
    if isinstance(status, Mapping):
        out["status"] = _pod_status(status, spec if isinstance(spec, Mapping) else {})
    elif status is not None:
        out["status"] = status
    return out


def slim_node(node: Mapping[str, Any]) -> Obj:
    """The node as the informers keep it (see the module doc)."""
    out: Obj = {}
    meta = node.get("metadata")
    if isinstance(meta, Mapping):
        out["metadata"] = {k: _interned(meta[k]) for k in NODE_METADATA if meta.get(k) is not None}
    elif meta is not None:
        out["metadata"] = meta
    spec = node.get("spec")
    if spec is not None:
        out["spec"] = spec
    status = node.get("status")
    if isinstance(status, Mapping):
        out["status"] = {k: status[k] for k in NODE_STATUS if status.get(k) is not None}
    elif status is not None:
        out["status"] = status
    return out


def _pod_metadata(meta: Mapping[str, Any]) -> Obj:
    out: Obj = {}
    for key in POD_METADATA:
        value = meta.get(key)
        if value is None:
            continue
        if key in ("name", "uid", "resourceVersion"):
            out[key] = value  # unique per pod: nothing to share
        elif key == "annotations" and isinstance(value, Mapping):
            kept = {k: v for k, v in value.items() if k not in DROPPED_ANNOTATIONS}
            if kept:
                out[key] = _shared_tree(kept)
        elif key == "ownerReferences" and isinstance(value, list):
            out[key] = _shared_tree([_pick(ref, OWNER_REFERENCE) for ref in value])
        else:
            out[key] = _shared_tree(value)
    return out


def _pod_spec(spec: Mapping[str, Any]) -> Obj:
    out: Obj = {}
    for key in POD_SPEC:
        value = spec.get(key)
        if value is not None:
            out[key] = _interned(value) if key == "nodeName" else _shared_tree(value)
    for key, fields in (("containers", CONTAINER), ("initContainers", INIT_CONTAINER)):
        value = spec.get(key)
        if isinstance(value, list):
            out[key] = _shared_tree([_pick(c, fields) for c in value])
        elif value is not None:
            out[key] = value
    return out


def _pod_status(status: Mapping[str, Any], spec: Mapping[str, Any]) -> Obj:
    out: Obj = {key: _interned(status[key]) for key in POD_STATUS if status.get(key) is not None}
    conditions = status.get("conditions")
    if isinstance(conditions, list):
        kept = [
            _pick(c, CONDITION)
            for c in conditions
            if not isinstance(c, Mapping) or c.get("type") in POD_CONDITIONS
        ]
        if kept:  # times differ pod to pod: interned, not shared
            out["conditions"] = _intern_tree(kept)
    elif conditions is not None:
        out["conditions"] = conditions
    statuses = status.get("containerStatuses")
    if isinstance(statuses, list):
        resized = _resized_statuses(statuses, status, spec)
        if resized:
            out["containerStatuses"] = resized
    elif statuses is not None:
        out["containerStatuses"] = statuses
    return out


def _resized_statuses(statuses: list[Any], status: Mapping[str, Any], spec: Mapping[str, Any]) -> list[Any]:
    """Container statuses whose reported requests change what ``effective_requests`` computes.

    A status whose requests are those its container declares changes nothing (the larger of the
    two is the declared one) unless the resize is infeasible (then the status alone counts), so
    it is dropped; every other status is kept as the requests it reports.
    """
    declared: dict[Any, list[Any]] = {}
    containers = spec.get("containers")
    if isinstance(containers, list):
        for c in containers:
            if isinstance(c, Mapping):
                resources = c.get("resources")
                declared.setdefault(c.get("name"), []).append(
                    resources.get("requests") if isinstance(resources, Mapping) else None
                )
    infeasible = _infeasible(status)
    names = Counter(cs.get("name") for cs in statuses if isinstance(cs, Mapping))
    repeated = {n for n, count in names.items() if count > 1}  # the last one counts: keep all
    out: list[Any] = []
    for cs in statuses:
        if not isinstance(cs, Mapping):
            out.append(cs)
            continue
        resources = cs.get("resources")
        if resources is None:
            continue
        if not isinstance(resources, Mapping):
            out.append({"name": cs.get("name"), "resources": resources})
            continue
        requests = resources.get("requests")
        if requests is None:
            continue
        same = declared.get(cs.get("name"))
        redundant = not infeasible and bool(same) and cs.get("name") not in repeated
        if redundant and all(r == requests for r in same or ()) and _parses(requests):
            continue
        out.append({"name": cs.get("name"), "resources": {"requests": _shared_tree(requests)}})
    return out


def _infeasible(status: Mapping[str, Any]) -> bool:
    if status.get("resize") == "Infeasible":
        return True
    conditions = status.get("conditions")
    return isinstance(conditions, list) and any(
        isinstance(c, Mapping) and c.get("type") == "PodResizePending" and c.get("reason") == "Infeasible"
        for c in conditions
    )


def _parses(requests: object) -> bool:
    """Whether the requests read without error (a bad one is kept, so its error is reported)."""
    try:
        Resources.parse(requests, "requests")  # type: ignore[arg-type]
    except FieldError:
        return False
    return True


def _pick(obj: Any, fields: tuple[str, ...]) -> Any:
    if not isinstance(obj, Mapping):
        return obj
    return {k: obj[k] for k in fields if obj.get(k) is not None}


def _interned(value: Any) -> Any:
    return sys.intern(value) if type(value) is str and len(value) <= 128 else value


def _shared_tree(value: Any) -> Any:
    """``value`` with repeating strings interned, the same object for the same content while the
    table has room (pods of one template share their constraints and resources)."""
    if type(value) is str:
        return _interned(value)
    if not isinstance(value, Mapping | list) or not value:
        return value
    try:
        key = orjson.dumps(value)  # key order kept: it is the order readers see
    except TypeError:
        return value
    held = _shared.get(key)
    if held is not None:
        return held
    fresh = _intern_tree(value)
    if len(_shared) >= _SHARED_LIMIT:
        _shared.clear()
    _shared[key] = fresh
    return fresh


def _intern_tree(value: Any) -> Any:
    if type(value) is str:
        return _interned(value)
    if isinstance(value, Mapping):
        return {_interned(k): _intern_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_intern_tree(v) for v in value]
    return value
