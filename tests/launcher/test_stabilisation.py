"""Scale-down stabilisation: workloads counted by the pod index, their peaks kept for the window,
and disruption keeping room for them on the pools that ask for it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from launcher.disruption.decisions import decide
from launcher.disruption.mark import EMPTY, UNDERUTILIZED
from launcher.disruption.stabilisation import (
    MAX_RETAINED_PER_WORKLOAD,
    RetainedChunk,
    WorkloadPeaks,
    WorkloadSample,
    chunks,
    workload_of,
)
from launcher.planner import PoolView
from launcher.podindex import PodIndex
from shared.api.nodepool import NodePool
from shared.errors import ValidationError
from tests.launcher.test_disruption_decisions import NOW, chosen, demand, node, pod, pool, snap

# Pods ---------------------------------------------------------------------------------------------


def api_pod(
    name: str,
    *,
    owner: tuple[str, str] | None = ("ReplicaSet", "web-5d8f"),
    template_hash: str | None = "5d8f",
    namespace: str = "shop",
    cpu: str = "500m",
    node_name: str | None = None,
    phase: str = "Pending",
    deleting: bool = False,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "uid": f"uid-{name}"}
    if owner is not None:
        meta["ownerReferences"] = [{"kind": owner[0], "name": owner[1], "controller": True, "uid": "o"}]
    if template_hash is not None:
        meta["labels"] = {"pod-template-hash": template_hash}
    if deleting:
        meta["deletionTimestamp"] = "2025-01-01T12:00:00Z"
    spec: dict[str, Any] = {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]}
    if node_name:
        spec["nodeName"] = node_name
    return {"metadata": meta, "spec": spec, "status": {"phase": phase}}


def test_a_deployments_replicasets_are_one_workload() -> None:
    assert workload_of(api_pod("a")) == "shop/Deployment/web"
    other_revision = api_pod("b", owner=("ReplicaSet", "web-77aa"), template_hash="77aa")
    assert workload_of(other_revision) == "shop/Deployment/web"
    assert workload_of(api_pod("c", template_hash=None)) == "shop/ReplicaSet/web-5d8f"
    assert workload_of(api_pod("d", owner=("StatefulSet", "db"), template_hash=None)) == "shop/StatefulSet/db"


@pytest.mark.parametrize(
    "pod",
    [
        api_pod("job", owner=("Job", "batch-1")),
        api_pod("daemon", owner=("DaemonSet", "agent")),
        api_pod("bare", owner=None),
        api_pod("done", phase="Succeeded"),
        api_pod("going", deleting=True),
    ],
)
def test_pods_that_count_for_no_workload(pod: dict[str, Any]) -> None:
    assert workload_of(pod) is None


def test_the_index_hands_over_counts_and_the_peak_between_hand_overs() -> None:
    index = PodIndex()
    for i in range(3):
        index.on_added(api_pod(f"p{i}"))
    (sample,) = index.drain_workloads()
    assert (sample.workload, sample.count, sample.peak) == ("shop/Deployment/web", 3, 3)
    assert index.drain_workloads() == []  # nothing changed
    # Up to 5 and back to 2 between two hand-overs: the peak is remembered.
    index.on_added(api_pod("p3"))
    index.on_added(api_pod("p4"))
    for i in (0, 1, 4):
        index.on_deleted(api_pod(f"p{i}"))
    (sample,) = index.drain_workloads()
    assert (sample.count, sample.peak) == (2, 5)
    # Binding a pod (a modification) changes no count; deletion starts when it is marked.
    index.on_modified(api_pod("p2"), api_pod("p2", node_name="n1"))
    (sample,) = index.drain_workloads()
    assert (sample.count, sample.peak) == (2, 2)
    index.on_modified(api_pod("p2", node_name="n1"), api_pod("p2", node_name="n1", deleting=True))
    index.on_deleted(api_pod("p3"))
    (sample,) = index.drain_workloads()
    assert (sample.count, sample.peak) == (0, 2)
    index.on_deleted(api_pod("p2", node_name="n1", deleting=True))  # counted once only
    assert index.drain_workloads() == []


# Peaks --------------------------------------------------------------------------------------------


def sample(count: int, peak: int, workload: str = "shop/Deployment/web") -> WorkloadSample:
    return WorkloadSample(workload, count, peak, api_pod("p"))


def test_each_level_above_the_count_is_retained_with_the_last_time_it_was_needed() -> None:
    peaks = WorkloadPeaks()
    peaks.record(0.0, [sample(10, 10)], 300.0)
    peaks.record(10.0, [sample(4, 10)], 300.0)  # fell from 10 to 4
    peaks.record(20.0, [sample(6, 7)], 300.0)  # back up to 7 briefly, now 6
    levels = {r.level: r.needed_at for r in peaks.retained(30.0, 300.0)}
    assert levels == {7: 20.0, 8: 10.0, 9: 10.0, 10: 10.0}
    # After the window, the old peak is forgotten level by level.
    assert {r.level for r in peaks.retained(315.0, 300.0)} == {7}
    peaks.record(400.0, [], 300.0)
    assert peaks.retained(400.0, 300.0) == []
    assert len(peaks) == 0


def test_a_workload_back_at_its_peak_retains_nothing() -> None:
    peaks = WorkloadPeaks()
    peaks.record(0.0, [sample(2, 8)], 300.0)
    peaks.record(10.0, [sample(8, 8)], 300.0)
    assert peaks.retained(20.0, 300.0) == []


def test_no_window_keeps_nothing_and_a_huge_scale_down_is_capped() -> None:
    peaks = WorkloadPeaks()
    peaks.record(0.0, [sample(0, 5)], 0.0)
    assert peaks.retained(0.0, 0.0) == []
    assert len(peaks) == 0
    peaks.record(0.0, [sample(0, 50_000)], 300.0)
    assert len(peaks.retained(1.0, 300.0)) == MAX_RETAINED_PER_WORKLOAD


def test_chunks_take_the_workloads_pod_shape_and_skip_unreadable_pods() -> None:
    peaks = WorkloadPeaks()
    bad = api_pod("bad", owner=("StatefulSet", "db"), template_hash=None, cpu="lots")
    peaks.record(NOW.timestamp(), [sample(1, 3), WorkloadSample("shop/StatefulSet/db", 0, 2, bad)], 300.0)
    made = chunks(peaks.retained(NOW.timestamp(), 300.0))
    assert [c.demand.uid for c in made] == [
        "retained/shop/Deployment/web/2",
        "retained/shop/Deployment/web/3",
    ]
    assert all(c.demand.requests.amount("cpu") == 500 and c.needed_at == NOW for c in made)


# Disruption ---------------------------------------------------------------------------------------


def windowed(name: str = "default") -> PoolView:
    return pool(name, window="5m")


def peak(level: int, cpu_m: int = 1000, ago: timedelta = timedelta(minutes=1)) -> RetainedChunk:
    return RetainedChunk(demand(f"retained/shop/Deployment/web/{level}", cpu_m), NOW - ago)


def test_an_empty_node_holding_a_recent_peak_stays_until_the_window_has_passed() -> None:
    retained = [peak(i) for i in range(4)]
    decisions = decide(snap(node("a"), pools=[windowed()], retained=retained))
    assert decisions.actions == ()
    assert "recent peaks" in decisions.blocked["a"]
    assert decisions.recheck_at == NOW + timedelta(minutes=4)  # needed a minute ago, 5 m window
    old = [peak(i, ago=timedelta(minutes=6)) for i in range(4)]
    assert chosen(snap(node("a"), pools=[windowed()], retained=old)) == {"a": EMPTY}


def test_a_pool_without_a_window_keeps_no_room_for_peaks() -> None:
    assert chosen(snap(node("a"), retained=[peak(0)])) == {"a": EMPTY}


def test_a_peak_that_fits_on_another_kept_node_lets_the_empty_one_go() -> None:
    busy = node("b", pod("p1", 2000))
    assert chosen(snap(node("a"), busy, pools=[windowed()], retained=[peak(0), peak(1)])) == {"a": EMPTY}
    # Room on a node of a pool without a window does not count: it may go itself.
    other = node("b", pod("p1", 2000), pool_name="spare")
    decisions = decide(snap(node("a"), other, pools=[windowed(), pool("spare")], retained=[peak(0)]))
    assert "a" in decisions.blocked
    # Room on a node jitnode does not manage counts: it is never removed.
    unmanaged = node("b", pod("p1", 2000), pool_name=None, nodeclaim=None)
    assert chosen(snap(node("a"), unmanaged, pools=[windowed()], retained=[peak(0)])) == {"a": EMPTY}


def test_an_underutilized_node_is_kept_for_the_peak_or_replaced_with_room_for_it() -> None:
    a = node("a", pod("p1", 2000))
    b = node("b", pod("p2", 500))
    assert chosen(snap(a, b, pools=[windowed()])) == {"b": UNDERUTILIZED}
    # A peak of 12 cpu needs both nodes' free room.
    decisions = decide(snap(a, b, pools=[windowed()], retained=[peak(i) for i in range(12)]))
    assert "b" not in {x.node for x in decisions.actions}


def test_the_window_is_parsed_bounded_and_written_back() -> None:
    def parse(window: object) -> NodePool:
        return pool(window=window).pool

    assert parse("5m").disruption.stabilization_window == timedelta(minutes=5)
    assert parse("5m").to_api()["spec"]["disruption"]["stabilizationWindow"] == "5m"
    assert parse("0s").disruption.stabilization_window is None
    with pytest.raises(ValidationError, match="at most 1h"):
        parse("2h")
    with pytest.raises(ValidationError, match="stabilizationWindow"):
        parse("soon")
