"""Scoring plugins, extender score scaling, host selection, and the scheduling queue."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from localcluster.scheduler.cache import ClusterCache, NodeInfo, PodUsage
from localcluster.scheduler.config import (
    DEFAULT_SCORE_WEIGHTS,
    LEAST_ALLOCATED,
    MOST_ALLOCATED,
    NODE_RESOURCES_FIT,
    TAINT_TOLERATION,
    Scoring,
)
from localcluster.scheduler.model import pod_facts
from localcluster.scheduler.queue import SchedulingQueue, Where
from localcluster.scheduler.scoring import (
    extender_score,
    least_allocated,
    most_allocated,
    normalize,
    plugin_scores,
    resource_allocation,
    select_host,
)
from localcluster.scheduler.testing import node, pod
from shared import labels


def infos(*nodes: dict[str, Any], used: dict[str, str] | None = None) -> list[NodeInfo]:
    cache = ClusterCache()
    for n in nodes:
        cache.set_node(n)
    for i, (name, cpu) in enumerate((used or {}).items()):
        p = pod(f"u{i}", cpu=cpu, memory="0")
        p["metadata"]["uid"] = f"used-{i}"
        cache.add_pod(name, PodUsage.of(pod_facts(p)))
    return cache.nodes()


def test_least_allocated_matches_kube_scheduler_arithmetic() -> None:
    (info,) = infos(node("n", cpu="4", memory="16Gi"))
    facts = pod_facts(pod("p", cpu="1", memory="4Gi"))
    # cpu (4000-1000)*100/4000 = 75, memory (16-4)*100/16 = 75.
    assert least_allocated(facts, info) == 75
    # A pod without requests counts as 100m / 200Mi for scoring.
    empty = pod_facts(pod("q", cpu=None, memory=None))
    assert (
        least_allocated(empty, info) == ((3900 * 100 // 4000) + ((16 * 1024 - 200) * 100 // (16 * 1024))) // 2
    )


def test_most_allocated_matches_kube_scheduler_arithmetic() -> None:
    (info,) = infos(node("n", cpu="4", memory="16Gi"), used={"n": "1"})
    facts = pod_facts(pod("p", cpu="1", memory="4Gi"))
    # cpu (1000+1000)*100/4000 = 50; memory: the used pod asks 0 (counted as 200Mi) + 4Gi.
    memory = (200 + 4 * 1024) * 100 // (16 * 1024)
    assert most_allocated(facts, info) == (50 + memory) // 2
    # Resource weights: cpu counts three times.
    assert (
        resource_allocation(facts, info, MOST_ALLOCATED, (("cpu", 3), ("memory", 1)))
        == (50 * 3 + memory) // 4
    )
    # Over capacity counts as full for MostAllocated, as empty for LeastAllocated.
    big = pod_facts(pod("big", cpu="8", memory="1Gi"))
    assert resource_allocation(big, info, MOST_ALLOCATED, (("cpu", 1),)) == 100
    assert resource_allocation(big, info, LEAST_ALLOCATED, (("cpu", 1),)) == 0
    # A resource the node has none of is left out of the mean.
    assert resource_allocation(facts, info, MOST_ALLOCATED, (("cpu", 1), ("example.com/gpu", 5))) == 50


def test_profile_strategy_and_weights_decide_packing_or_spreading() -> None:
    nodes = infos(node("busy"), node("idle"), used={"busy": "3"})
    p = pod_facts(pod("p", cpu="500m", memory="1Gi"))
    spread = plugin_scores(p, nodes)
    assert spread["idle"] > spread["busy"]
    packing = Scoring(weights={**DEFAULT_SCORE_WEIGHTS, NODE_RESOURCES_FIT: 5}, fit_strategy=MOST_ALLOCATED)
    packed = plugin_scores(p, nodes, packing)
    assert packed["busy"] > packed["idle"]
    # Each plugin contributes its weight times its score: the taint part alone, then nothing.
    only_taints = Scoring(weights={TAINT_TOLERATION: 3})
    assert plugin_scores(p, nodes, only_taints) == {"busy": 300, "idle": 300}
    assert plugin_scores(p, nodes, Scoring(weights={})) == {"busy": 0, "idle": 0}


def test_prefer_no_schedule_candidate_loses_to_packing_weight_only_when_far_emptier() -> None:
    """The shipped profile: a disruption candidate is avoided unless it is the only sensible
    place; TaintToleration (3 x 100) outweighs a MostAllocated lead of up to 60 points x 5."""
    packing = Scoring(weights={**DEFAULT_SCORE_WEIGHTS, NODE_RESOURCES_FIT: 5}, fit_strategy=MOST_ALLOCATED)
    candidate = [{"key": labels.DISRUPTION_CANDIDATE_TAINT, "effect": "PreferNoSchedule"}]
    nodes = infos(node("expiring", taints=candidate), node("other"), used={"expiring": "2", "other": "1"})
    scores = plugin_scores(pod_facts(pod("p", cpu="500m", memory="1Gi")), nodes, packing)
    assert scores["other"] > scores["expiring"]
    tolerant = pod("t", cpu="500m", memory="1Gi", tolerations=[{"key": labels.DISRUPTION_CANDIDATE_TAINT}])
    scores = plugin_scores(pod_facts(tolerant), nodes, packing)
    assert scores["expiring"] > scores["other"]


def test_emptier_node_scores_higher() -> None:
    nodes = infos(node("busy"), node("idle"), used={"busy": "3"})
    scores = plugin_scores(pod_facts(pod("p", cpu="500m", memory="1Gi")), nodes)
    assert scores["idle"] > scores["busy"]


def test_prefer_no_schedule_and_preferred_affinity() -> None:
    nodes = infos(node("tainted", taints=[{"key": "k", "effect": "PreferNoSchedule"}]), node("clean"))
    scores = plugin_scores(pod_facts(pod("p")), nodes)
    assert scores["clean"] - scores["tainted"] == 100 * 3
    preferred = {
        "nodeAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 50,
                    "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]},
                }
            ]
        }
    }
    nodes = infos(node("a", labels={"zone": "a"}), node("b", labels={"zone": "b"}))
    scores = plugin_scores(pod_facts(pod("p", affinity=preferred)), nodes)
    assert scores["b"] - scores["a"] == 100 * 2


def test_normalize_and_extender_scale() -> None:
    assert normalize({"a": 0, "b": 5, "c": 10}) == {"a": 0, "b": 50, "c": 100}
    assert normalize({"a": 0, "b": 2}, reverse=True) == {"a": 100, "b": 0}
    assert normalize({"a": 0}, reverse=True) == {"a": 100}
    assert extender_score(10, 1) == 100
    assert extender_score(3, 5) == 150


def test_select_host_breaks_ties_uniformly() -> None:
    rng = random.Random(7)
    picks = Counter(select_host({"a": 5, "b": 5, "c": 5, "d": 1}, rng) for _ in range(3000))
    assert set(picks) == {"a", "b", "c"}
    assert all(800 < picks[n] < 1200 for n in "abc")
    assert select_host({"a": 1, "b": 9}, rng) == "b"


def queued(q: SchedulingQueue, name: str, now: float = 0.0, **kw: Any) -> str:
    p = pod(name, **kw)
    p["metadata"]["uid"] = name
    p["metadata"]["creationTimestamp"] = f"2026-01-01T00:00:{len(q):02d}Z"
    q.add(p, pod_facts(p), now)
    return name


def test_queue_orders_by_priority_then_age() -> None:
    q = SchedulingQueue(1.0, 10.0, 300.0)
    for name, prio in (("old-low", 0), ("high", 100), ("new-low", 0)):
        queued(q, name, priority=prio)
    order = []
    while (p := q.pop(0.0)) is not None:
        order.append(p.facts.name)
    assert order == ["high", "old-low", "new-low"]


def test_backoff_doubles_to_cap() -> None:
    q = SchedulingQueue(1.0, 10.0, 300.0)
    assert [q.backoff_duration(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]


def test_unschedulable_waits_for_event_then_backoff() -> None:
    q = SchedulingQueue(1.0, 10.0, 300.0)
    queued(q, "p")
    assert q.pop(0.0) is not None
    q.failed("p", 0.0, unschedulable=True)
    assert q.counts()["unschedulable"] == 1
    assert q.pop(50.0) is None  # no event: it waits
    q.move_all(0.5)  # an event during backoff: retried when the backoff ends
    assert q.pop(0.9) is None
    again = q.pop(1.0)
    assert again is not None
    assert again.attempts == 1


def test_unschedulable_retried_after_timeout_without_event() -> None:
    q = SchedulingQueue(1.0, 10.0, 30.0)
    queued(q, "p")
    q.pop(0.0)
    q.failed("p", 0.0, unschedulable=True)
    assert q.next_wakeup() == 30.0
    assert q.pop(29.0) is None
    assert q.pop(30.0) is not None


def test_event_during_attempt_and_errors_go_to_backoff() -> None:
    q = SchedulingQueue(1.0, 10.0, 300.0)
    queued(q, "p")
    queued(q, "e")
    q.pop(0.0)
    q.move_all(0.0)  # a node appeared while "p" was being scheduled
    q.failed("p", 0.0, unschedulable=True)
    parked = q.get("p")
    assert parked is not None
    assert parked.where is Where.BACKOFF
    q.pop(0.0)
    q.failed("e", 0.0, unschedulable=False)
    assert q.counts()["backoff"] == 2
    assert {q.pop(1.0).facts.name, q.pop(1.0).facts.name} == {"p", "e"}  # type: ignore[union-attr]


def test_pod_update_requeues_only_when_spec_changed() -> None:
    q = SchedulingQueue(0.0001, 0.0001, 300.0)
    queued(q, "p")
    first = q.pop(0.0)
    assert first is not None
    q.failed("p", 0.0, unschedulable=True)
    q.add(first.raw, first.facts, 1.0, changed=False)
    assert q.pop(1.0) is None
    q.add(first.raw, first.facts, 1.0, changed=True)
    assert q.pop(1.0) is not None
    q.delete("p")
    assert "p" not in q
    assert len(q) == 0
