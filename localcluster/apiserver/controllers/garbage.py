"""Garbage collection by ownerReferences, namespace termination, and pods of deleted nodes."""

from __future__ import annotations

from localcluster.apiserver.errors import APIError
from localcluster.apiserver.service import API, NS_KEY, POD_KEY


def collect_dependents(api: API, owner_uid: str) -> None:
    """Background propagation: delete dependents whose owners are all gone, else drop the dead ref."""
    for key, ns, name in api.store.dependents(owner_uid):
        dep = api.store.get(key, ns, name)
        rt = api.registry.by_key(key)
        if dep is None or rt is None:
            continue
        refs = dep["metadata"].get("ownerReferences") or []
        live = [r for r in refs if r.get("uid") != owner_uid and api.store.by_uid(str(r.get("uid")))]
        try:
            if live:
                new = dict(dep)
                new["metadata"] = {**dep["metadata"], "ownerReferences": live}
                api.write(key, dep, new)
            else:
                api.delete(rt, ns, name)
        except APIError:
            continue


def finish_namespace(api: API, namespace: str) -> None:
    """Delete everything in a terminating namespace, then the namespace itself once it is empty."""
    ns = api.store.get(NS_KEY, "", namespace)
    if ns is None or not ns["metadata"].get("deletionTimestamp"):
        return
    for key in api.store.namespaces_holding(namespace):
        rt = api.registry.by_key(key)
        if rt is None or not rt.namespaced:
            continue
        for obj in list(api.store.iter(key, namespace)):
            if obj["metadata"].get("deletionTimestamp"):
                continue
            try:
                api.delete(rt, namespace, obj["metadata"]["name"])
            except APIError:
                continue
    if not api.store.namespaces_holding(namespace) and not ns["metadata"].get("finalizers"):
        api.store.remove(NS_KEY, ns)


def evict_pods_of_node(api: API, node: str) -> None:
    """Pod GC: pods bound to a node that no longer exists are deleted."""
    rt = api.registry.by_key(POD_KEY)
    assert rt is not None
    for pod in list(api.store.iter(POD_KEY)):
        if (pod.get("spec") or {}).get("nodeName") == node:
            try:
                api.delete(rt, pod["metadata"]["namespace"], pod["metadata"]["name"])
            except APIError:
                continue
