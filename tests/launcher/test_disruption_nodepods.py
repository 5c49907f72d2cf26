"""The disruption round's per-node pod summaries: equal to a fresh read, reused until a pod on
the node changes or a do-not-disrupt duration runs out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from launcher.disruption.decisions import PodInfo
from launcher.disruption.inputs import NodePodsCache, node_info, node_pods
from launcher.podindex import PodIndex
from shared.informer import object_key

Obj = dict[str, Any]
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
NODES = ("n1", "n2")


def pod(name: str, node: str | None, cpu: str = "500m", **meta: Any) -> Obj:
    out: Obj = {
        "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}", **meta},
        "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]},
        "status": {
            "phase": "Running",
            "startTime": "2026-12-01T12:00:00Z",
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }
    if node:
        out["spec"]["nodeName"] = node
    return out


def by_uid(info: PodInfo) -> str:
    return info.demand.uid


NODE = {"metadata": {"name": "n1"}, "spec": {}, "status": {"allocatable": {"cpu": "4", "pods": "10"}}}


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["p1", "p2", "p3"]),
            st.sampled_from([None, *NODES]),
            st.sampled_from(["100m", "1"]),
            st.booleans(),
        ),
        max_size=20,
    )
)
def test_cached_summaries_equal_a_fresh_read_after_any_events(
    changes: list[tuple[str, str | None, str, bool]],
) -> None:
    index = PodIndex()
    cache = NodePodsCache(index)
    store: dict[str, Obj] = {}
    for step, (name, node, cpu, delete) in enumerate(changes):
        now = T0 + timedelta(seconds=step)
        new = pod(name, node, cpu)
        key = object_key(new)
        if delete and key in store:
            index.on_deleted(store.pop(key))
        elif key in store:
            index.on_modified(store[key], new)
            store[key] = new
        else:
            index.on_added(new)
            store[key] = new
        for n in NODES:
            here = [p for p in store.values() if p["spec"].get("nodeName") == n]
            fresh = node_pods(here, now)
            cached = cache.get(n, now)
            # The same pods, in the order the node gained them (decisions sort them anyway).
            assert sorted(cached.moving, key=by_uid) == sorted(fresh.moving, key=by_uid)
            assert (cached.used, cached.terminating, cached.present) == (
                fresh.used,
                fresh.terminating,
                fresh.present,
            )


def test_a_summary_is_reused_until_a_pod_on_its_node_changes() -> None:
    index = PodIndex.of([pod("a", "n1"), pod("b", "n2")])
    cache = NodePodsCache(index)
    first = cache.get("n1", T0)
    assert cache.get("n1", T0 + timedelta(seconds=5)) is first
    index.on_added(pod("c", "n2"))
    assert cache.get("n1", T0 + timedelta(seconds=6)) is first  # another node's pod
    index.on_added(pod("d", "n1"))
    again = cache.get("n1", T0 + timedelta(seconds=7))
    assert again is not first
    assert again.present == {"uid-a", "uid-d"}


def test_a_summary_is_current_until_a_pod_on_its_node_changes() -> None:
    index = PodIndex.of([pod("a", "n1")])
    cache = NodePodsCache(index)
    assert not cache.is_current("n1", T0)  # never read
    cache.get("n1", T0)
    assert cache.is_current("n1", T0 + timedelta(seconds=1))
    index.on_added(pod("b", "n1"))
    assert not cache.is_current("n1", T0 + timedelta(seconds=2))
    cache.get("n1", T0 + timedelta(seconds=2))
    assert cache.is_current("n1", T0 + timedelta(seconds=2))


def test_a_do_not_disrupt_duration_running_out_renews_the_summary() -> None:
    index = PodIndex.of([pod("a", "n1", annotations={"jitnode.io/do-not-disrupt": "30m"})])
    cache = NodePodsCache(index)
    assert cache.get("n1", T0 + timedelta(minutes=10)).moving[0].do_not_disrupt
    assert not cache.get("n1", T0 + timedelta(minutes=31)).moving[0].do_not_disrupt


def test_node_info_from_a_summary_equals_node_info_from_the_pods() -> None:
    here = [pod("a", "n1"), pod("b", "n1", cpu="1", deletionTimestamp="2026-12-01T12:00:00Z")]
    direct = node_info(NODE, None, here, {}, T0)
    assert node_info(NODE, None, [], {}, T0, summary=node_pods(here, T0)) == direct
    assert direct.terminating == 1
    assert len(direct.pods) == 1


def test_a_status_update_reads_no_pod_needs_again_a_spec_change_does() -> None:
    before = pod("a", "n1")
    index = PodIndex.of([before])
    cache = NodePodsCache(index)
    first = cache.get("n1", T0).moving[0]
    restarted = pod("a", "n1")
    restarted["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
    index.on_modified(before, restarted)
    second = cache.get("n1", T0).moving[0]
    assert not second.ready
    assert second.demand is first.demand  # the same needs, not read again
    resized = pod("a", "n1", cpu="2")
    index.on_modified(restarted, resized)
    third = cache.get("n1", T0).moving[0]
    assert third.demand.requests.amount("cpu") == 2000
