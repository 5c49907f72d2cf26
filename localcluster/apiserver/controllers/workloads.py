"""Deployment and ReplicaSet reconciliation, in the shape of the real controllers (minus rollouts).

A Deployment owns one ReplicaSet per pod template, named ``<deployment>-<pod-template-hash>``;
the current one gets all replicas and older ones are scaled to zero (a Recreate-like rollout).
A ReplicaSet creates pods named ``<replicaset>-xxxxx`` and, scaling down, deletes unscheduled,
then pending, then not-ready pods first, newest first.
"""

from __future__ import annotations

from typing import Any

import orjson

from localcluster.apiserver.errors import APIError
from localcluster.apiserver.objects import controller_of, is_active, is_ready, now_rfc3339
from localcluster.apiserver.service import API, DEPLOY_KEY, POD_KEY, RS_KEY
from localcluster.apiserver.store import Obj, deep_copy

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
_SAFE = "bcdfghjklmnpqrstvwxz2456789"
MAX_BURST = 500


def template_hash(template: Obj) -> str:
    """FNV-1a 32 of the template, spelt with Kubernetes' safe alphabet like the real hash label."""
    h = 0x811C9DC5
    for byte in orjson.dumps(template, option=orjson.OPT_SORT_KEYS):
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return "".join(_SAFE[ord(c) % len(_SAFE)] for c in str(h))


def owner_ref(obj: Obj) -> dict[str, Any]:
    return {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "name": obj["metadata"]["name"],
        "uid": obj["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def owned(api: API, owner: Obj, key: tuple[str, str]) -> list[Obj]:
    uid = owner["metadata"]["uid"]
    out = []
    for dep_key, ns, name in api.store.dependents(uid):
        if dep_key != key:
            continue
        obj = api.store.get(dep_key, ns, name)
        ref = controller_of(obj) if obj else None
        if obj is not None and ref is not None and ref.get("uid") == uid:
            out.append(obj)
    return out


def _condition(old: list[Obj], ctype: str, status: str, reason: str, message: str) -> Obj:
    prev = next((c for c in old if c.get("type") == ctype), None)
    if prev and prev.get("status") == status and prev.get("reason") == reason:
        return dict(prev)
    at = now_rfc3339()
    return {
        "type": ctype,
        "status": status,
        "reason": reason,
        "message": message,
        "lastUpdateTime": at,
        "lastTransitionTime": at,
    }


def _nonzero(status: Obj) -> Obj:
    """Drop zero counts, as the real API (``omitempty``) does."""
    return {k: v for k, v in status.items() if v != 0 or k == "observedGeneration"}


def reconcile_deployment(api: API, namespace: str, name: str) -> None:
    deploy = api.store.get(DEPLOY_KEY, namespace, name)
    if deploy is None or deploy["metadata"].get("deletionTimestamp"):
        return
    spec = deploy.get("spec") or {}
    desired = int(spec.get("replicas", 1))
    template = spec.get("template") or {}
    pod_hash = template_hash(template)
    sets = owned(api, deploy, RS_KEY)
    current = next((rs for rs in sets if rs["metadata"].get("labels", {}).get(HASH_LABEL) == pod_hash), None)
    if not spec.get("paused"):
        if current is None:
            current = _create_replicaset(api, deploy, pod_hash, desired, sets)
        elif (current.get("spec") or {}).get("replicas") != desired:
            new = deep_copy(current)
            new["spec"]["replicas"] = desired
            current = api.write(RS_KEY, current, new)
        for rs in sets:
            if current is not None and rs["metadata"]["uid"] == current["metadata"]["uid"]:
                continue
            if (rs.get("spec") or {}).get("replicas", 0) != 0:
                new = deep_copy(rs)
                new["spec"]["replicas"] = 0
                api.write(RS_KEY, rs, new)
    sets = owned(api, deploy, RS_KEY)

    def total(field: str) -> int:
        return sum(int((rs.get("status") or {}).get(field, 0)) for rs in sets)

    updated = int(((current or {}).get("status") or {}).get("replicas", 0)) if current else 0
    available = total("availableReplicas")
    old_conditions = (deploy.get("status") or {}).get("conditions") or []
    complete = updated == desired and total("replicas") == desired and available >= desired
    status = _nonzero(
        {
            "observedGeneration": deploy["metadata"].get("generation", 1),
            "replicas": total("replicas"),
            "updatedReplicas": updated,
            "readyReplicas": total("readyReplicas"),
            "availableReplicas": available,
            "unavailableReplicas": max(0, desired - available),
        }
    )
    status["conditions"] = [
        _condition(
            old_conditions,
            "Available",
            "True" if available >= desired else "False",
            "MinimumReplicasAvailable" if available >= desired else "MinimumReplicasUnavailable",
            "Deployment has minimum availability."
            if available >= desired
            else "Deployment does not have minimum availability.",
        ),
        _condition(
            old_conditions,
            "Progressing",
            "True",
            "NewReplicaSetAvailable" if complete else "ReplicaSetUpdated",
            f'ReplicaSet "{name}-{pod_hash}" has successfully progressed.'
            if complete
            else f'ReplicaSet "{name}-{pod_hash}" is progressing.',
        ),
    ]
    api.write_status(DEPLOY_KEY, deploy, status)


def _create_replicaset(api: API, deploy: Obj, pod_hash: str, replicas: int, sets: list[Obj]) -> Obj | None:
    spec = deploy["spec"]
    template = deep_copy(spec.get("template") or {})
    tmeta = template.setdefault("metadata", {})
    tmeta.setdefault("labels", {})[HASH_LABEL] = pod_hash
    selector = deep_copy(spec.get("selector") or {})
    selector.setdefault("matchLabels", {})[HASH_LABEL] = pod_hash
    revision = 1 + max(
        (int(rs["metadata"].get("annotations", {}).get(REVISION, "0") or 0) for rs in sets), default=0
    )
    body: Obj = {
        "metadata": {
            "name": f"{deploy['metadata']['name']}-{pod_hash}",
            "labels": dict(tmeta["labels"]),
            "annotations": {REVISION: str(revision)},
            "ownerReferences": [owner_ref(deploy)],
        },
        "spec": {
            "replicas": replicas,
            "minReadySeconds": spec.get("minReadySeconds", 0),
            "selector": selector,
            "template": template,
        },
    }
    rt = api.registry.by_key(RS_KEY)
    assert rt is not None
    try:
        return api.create(rt, deploy["metadata"]["namespace"], body)
    except APIError:
        return None


def _deletion_rank(pod: Obj) -> tuple[int, int, int]:
    phase = (pod.get("status") or {}).get("phase")
    return (
        1 if (pod.get("spec") or {}).get("nodeName") else 0,
        {"Pending": 0, "Unknown": 1, "Running": 2}.get(str(phase), 0),
        1 if is_ready(pod) else 0,
    )


def reconcile_replicaset(api: API, namespace: str, name: str) -> None:
    rs = api.store.get(RS_KEY, namespace, name)
    if rs is None:
        return
    pods_rt = api.registry.by_key(POD_KEY)
    assert pods_rt is not None
    spec = rs.get("spec") or {}
    desired = int(spec.get("replicas", 1))
    active = [p for p in owned(api, rs, POD_KEY) if is_active(p)]
    diff = desired - len(active)
    if diff > 0 and not rs["metadata"].get("deletionTimestamp"):
        template = spec.get("template") or {}
        tmeta = template.get("metadata") or {}
        for _ in range(min(diff, MAX_BURST)):
            body: Obj = {
                "metadata": {
                    "generateName": f"{name}-",
                    "labels": dict(tmeta.get("labels") or {}),
                    "ownerReferences": [owner_ref(rs)],
                },
                "spec": deep_copy(template.get("spec") or {}),
            }
            if tmeta.get("annotations"):
                body["metadata"]["annotations"] = dict(tmeta["annotations"])
            try:
                active.append(api.create(pods_rt, namespace, body))
            except APIError:
                break
    elif diff < 0:
        newest_first = sorted(active, key=lambda p: p["metadata"].get("creationTimestamp", ""), reverse=True)
        victims = sorted(newest_first, key=_deletion_rank)[:-diff]
        for pod in victims:
            try:
                api.delete(pods_rt, namespace, pod["metadata"]["name"])
            except APIError:
                continue
        active = [p for p in owned(api, rs, POD_KEY) if is_active(p)]
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    ready = sum(1 for p in active if is_ready(p))
    status = _nonzero(
        {
            "observedGeneration": rs["metadata"].get("generation", 1),
            "replicas": len(active),
            "fullyLabeledReplicas": sum(
                1
                for p in active
                if all(p["metadata"].get("labels", {}).get(k) == v for k, v in labels.items())
            ),
            "readyReplicas": ready,
            "availableReplicas": ready,
        }
    )
    if "replicas" not in status:
        status["replicas"] = 0
    current = api.store.get(RS_KEY, namespace, name)
    if current is not None:
        api.write_status(RS_KEY, current, status)
