"""The extender cache's pods-by-node index against a grouping of every pod record."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from extender.cache import ClusterCache

Obj = dict[str, Any]


@st.composite
def pods_(draw: st.DrawFn) -> Obj:
    uid = draw(st.sampled_from(["u1", "u2", "u3", "u4"]))
    pod: Obj = {
        "metadata": {"name": uid, "namespace": "default", "uid": uid, "labels": {"app": "web"}},
        "spec": {
            "containers": [
                {"name": "c", "resources": {"requests": {"cpu": draw(st.sampled_from(["1", "x"]))}}}
            ]
        },
        "status": {"phase": draw(st.sampled_from(["Running", "Succeeded"]))},
    }
    node = draw(st.sampled_from([None, "n1", "n2"]))
    if node:
        pod["spec"]["nodeName"] = node
    return pod


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), pods_()), max_size=30))
def test_pods_by_node_groups_every_record(events: list[tuple[bool, Obj]]) -> None:
    cache = ClusterCache()
    for upsert, pod in events:
        if upsert:
            cache.upsert_pod(pod)
        else:
            cache.delete_pod(pod)
    grouped: dict[str, dict[str, Any]] = {}
    for uid, record in cache.pods.items():
        grouped.setdefault(record.node_name, {})[uid] = record
    assert cache.pods_by_node == grouped
