"""Demand from the pod watch and from prediction: one entry per pod, withdrawn when it resolves."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from extender.cache import ClusterCache
from extender.demand import DemandTracker
from extender.metrics import ExtenderMetrics
from extender.predict import Predictor
from shared.demand import PodDemand
from tests.extender.helpers import eventually, node, pod


class Sink:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def upsert(self, demand: PodDemand) -> None:
        self.events.append(("upsert", demand.uid, demand.reason))

    def withdraw(self, uid: str, reason: str) -> None:
        self.events.append(("withdraw", uid, reason))


def tracked() -> tuple[DemandTracker, Sink, ExtenderMetrics]:
    metrics = ExtenderMetrics()
    tracker = DemandTracker(metrics, clock=lambda: 100.0)
    sink = Sink()
    tracker.add_sink(sink)
    return tracker, sink, metrics


def gauge(metrics: ExtenderMetrics, reason: str) -> float:
    return float(metrics.demand.labels(reason)._value.get())


def test_unschedulable_pod_lifecycle() -> None:
    tracker, sink, metrics = tracked()
    pending = pod("p", unschedulable=True)
    tracker.on_added(pending)
    tracker.on_modified(pending, pending)  # repeated events: reported once
    assert sink.events == [("upsert", "uid-p", "unschedulable")]
    held = tracker.get("uid-p")
    assert held is not None
    assert held.first_seen == datetime(2026, 11, 25, 5, tzinfo=UTC).timestamp()  # lastTransitionTime
    assert gauge(metrics, "unschedulable") == 1
    tracker.on_modified(pending, pod("p", node_name="n1"))
    assert sink.events[-1] == ("withdraw", "uid-p", "bound")
    assert len(tracker) == 0
    assert gauge(metrics, "unschedulable") == 0


def test_withdrawn_when_no_longer_unschedulable_or_deleted() -> None:
    tracker, sink, _ = tracked()
    tracker.on_added(pod("a", unschedulable=True))
    tracker.on_added(pod("b", unschedulable=True))
    tracker.on_modified(pod("a"), pod("a"))  # condition cleared (scheduler retrying)
    tracker.on_deleted(pod("b", unschedulable=True))
    assert [e[0] for e in sink.events] == ["upsert", "upsert", "withdraw", "withdraw"]
    assert len(tracker) == 0


def test_daemonset_and_terminal_pods_are_not_demand() -> None:
    tracker, _, _ = tracked()
    ds: dict[str, Any] = pod("ds", unschedulable=True)
    ds["metadata"]["ownerReferences"] = [{"kind": "DaemonSet", "name": "x", "controller": True, "uid": "1"}]
    tracker.on_added(ds)
    tracker.on_added(pod("done", unschedulable=True, phase="Failed"))
    assert len(tracker) == 0


def test_prediction_never_overrides_unschedulable_and_is_replaced_by_it() -> None:
    tracker, sink, _ = tracked()
    predicted = PodDemand.from_pod(pod("p"), "predicted", 1.0)
    assert tracker.upsert(predicted)
    tracker.on_added(pod("p", unschedulable=True))
    held = tracker.get("uid-p")
    assert held is not None
    assert held.reason == "unschedulable"
    assert not tracker.upsert(predicted)
    assert not tracker.withdraw("uid-p", "capacity", only="predicted")
    assert len(tracker) == 1
    assert [e[2] for e in sink.events if e[0] == "upsert"] == ["predicted", "unschedulable"]


async def run_predictor(predictor: Predictor, until: Any) -> None:
    predictor.start()
    try:
        await eventually(until, within=3.0)
    finally:
        await predictor.stop()


async def test_predicts_shortfall_and_withdraws_when_a_node_joins() -> None:
    cache = ClusterCache()
    cache.upsert_node(node("a", cpu="2", labels={"intent": "apps"}))
    cache.upsert_node(node("other", cpu="64", labels={"intent": "batch"}))  # not eligible
    tracker, sink, _ = tracked()
    predictor = Predictor(cache, tracker, headroom=1, recheck_interval=0.01)
    first = pod("p1", node_selector={"intent": "apps"})
    predictor.offer(first)
    await run_predictor(predictor, lambda: predictor.evaluations >= 1)
    assert len(tracker) == 0  # room 2: after placing, room for one more
    cache.upsert_pod(pod("p1", node_selector={"intent": "apps"}, node_name="a"))
    second = pod("p2", node_selector={"intent": "apps"})
    predictor.offer(second)
    await run_predictor(predictor, lambda: tracker.get("uid-p2") is not None)
    assert sink.events == [("upsert", "uid-p2", "predicted")]
    # Five more pods of the shape while one slot is left: four won't fit, plus the headroom.
    for i in range(3, 8):
        predictor.offer(pod(f"p{i}", node_selector={"intent": "apps"}))
    await run_predictor(predictor, lambda: predictor.backlog == 0 and predictor.evaluations > 6)
    assert len(tracker) == 6
    # Repeated filter calls for the same pods don't add to it.
    predictor.offer(pod("p3", node_selector={"intent": "apps"}))
    await run_predictor(predictor, lambda: predictor.backlog == 0 and predictor.evaluations > 7)
    assert len(tracker) == 6
    # A node joins: room comes back and the prediction is withdrawn.
    cache.upsert_node(node("new", cpu="8", labels={"intent": "apps"}))
    await run_predictor(predictor, lambda: len(tracker) == 0)
    assert sink.events[-1][0] == "withdraw"
    assert sink.events[-1][2] == "capacity available"


async def test_prediction_expires_after_ttl() -> None:
    cache = ClusterCache()
    cache.upsert_node(node("a", cpu="1"))
    now = [1000.0]
    tracker = DemandTracker(clock=lambda: now[0])
    predictor = Predictor(cache, tracker, headroom=1, ttl=30, recheck_interval=0.01, clock=lambda: now[0])
    predictor.offer(pod("p"))
    await run_predictor(predictor, lambda: len(tracker) == 1)
    now[0] += 31
    await run_predictor(predictor, lambda: len(tracker) == 0)


async def test_full_queue_drops_and_counts() -> None:
    metrics = ExtenderMetrics()
    predictor = Predictor(ClusterCache(), DemandTracker(), queue_size=2, metrics=metrics)
    for i in range(5):
        predictor.offer(pod(f"p{i}"))
    assert metrics.predictions_dropped._value.get() == 3


async def test_a_roomy_shape_costs_no_evaluation_until_the_cache_changes() -> None:
    """Pods of a shape with room to spare at this cache version are settled by one lookup; the
    first pod after a cache change counts the room again (and can then predict)."""
    cache = ClusterCache()
    cache.upsert_node(node("a", cpu="4"))
    tracker, _, _ = tracked()
    predictor = Predictor(cache, tracker, headroom=1, recheck_interval=0.01)
    predictor.offer(pod("p0", cpu="1"))
    await run_predictor(predictor, lambda: predictor.evaluations == 1 and predictor.backlog == 0)
    for i in range(1, 4):
        predictor.offer(pod(f"p{i}", cpu="1"))
    await run_predictor(predictor, lambda: predictor.backlog == 0)
    assert predictor.evaluations == 1  # room 4 > headroom 1 at the same version: nothing to judge
    assert len(tracker) == 0
    cache.upsert_pod(pod("tenant", cpu="3", node_name="a"))  # room 1 left: the next pod predicts
    predictor.offer(pod("p4", cpu="1"))
    await run_predictor(predictor, lambda: tracker.get("uid-p4") is not None)
    assert predictor.evaluations >= 2
