"""The cluster cache's bookkeeping and the pure filter / prioritize / room decisions."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from extender import decisions, keys
from extender.cache import ClusterCache, node_state
from shared import labels
from shared.resources import Resources
from tests.extender.helpers import node, pod


def test_usage_follows_binding_moves_and_termination() -> None:
    cache = ClusterCache()
    cache.upsert_node(node("a"))
    v0 = cache.version
    cache.upsert_pod(pod("p", cpu="500m", memory="1Gi"))  # pending: not counted
    assert cache.requested("a") == {}
    cache.upsert_pod(pod("p", cpu="500m", memory="1Gi", node_name="a"))
    assert cache.requested("a")["cpu"] == 500
    assert cache.free("a")["pods"] == 109
    assert cache.version > v0
    cache.upsert_pod(pod("p", cpu="500m", memory="1Gi", node_name="a", rv="2"))  # no double count
    assert cache.requested("a")["cpu"] == 500
    cache.upsert_pod(pod("p", cpu="500m", memory="1Gi", node_name="a", phase="Succeeded"))
    assert cache.requested("a") == {}
    cache.upsert_pod(pod("q", cpu="1", node_name="ghost"))  # node not known yet: kept
    cache.upsert_node(node("ghost"))
    assert cache.free("ghost")["cpu"] == 3000
    cache.delete_pod(pod("q"))
    assert cache.requested("ghost") == {}


def test_disruption_marks_from_taint_or_annotation() -> None:
    cache = ClusterCache()
    cache.upsert_node(node("t", taints=[{"key": labels.DISRUPTED_TAINT, "effect": "NoSchedule"}]))
    cache.upsert_node(node("a", annotations={labels.DISRUPTING_ANNOTATION: "true"}))
    cache.upsert_node(node("ok"))
    assert cache.disrupted == {"t", "a"}
    cache.upsert_node(node("a"))
    assert cache.disrupted == {"t"}
    cache.delete_node(node("t"))
    assert cache.disrupted == set()


def test_unreadable_node_is_counted_not_raised() -> None:
    cache = ClusterCache()
    cache.upsert_node(node("bad", cpu="lots"))
    assert "bad" not in cache.nodes
    assert cache.rejected_objects == 1


def test_filter_nodes() -> None:
    passed, failed = decisions.filter_nodes(["a", "b", "c"], {"b", "zz"})
    assert passed == ["a", "c"]
    assert list(failed) == ["b"]
    assert decisions.filter_nodes(["a"], set()) == (["a"], {})


def test_scores_pack_price_and_expiry() -> None:
    cache = ClusterCache()
    cache.upsert_node(node("empty"))
    cache.upsert_node(node("half"))
    cache.upsert_pod(pod("x", cpu="2", memory="8Gi", node_name="half"))
    cache.upsert_node(node("expiring", annotations={keys.EXPIRES_AT: "2026-01-01T00:10:00Z"}))
    cache.upsert_node(node("full", cpu="500m", memory="1Gi"))
    now = node_time = 1767225600.0  # 2026-01-01T00:00:00Z
    scores = dict(
        decisions.score_nodes(["empty", "half", "expiring", "full", "ghost"], 1000, 2**30, cache, now, 3600)
    )
    assert scores["half"] > scores["empty"] > 0
    assert scores["expiring"] == 0  # within the window
    assert scores["full"] == 0  # does not fit
    assert scores["ghost"] == 0
    later = dict(decisions.score_nodes(["expiring"], 1000, 2**30, cache, node_time, 60))
    assert later["expiring"] > 0


def test_cheaper_capacity_wins_at_equal_packing() -> None:
    cache = ClusterCache()
    cache.upsert_node(node("cheap", annotations={keys.PRICE_PER_HOUR: "0.10"}))
    cache.upsert_node(node("dear", annotations={keys.PRICE_PER_HOUR: "0.40"}))
    cache.upsert_node(node("label", labels={keys.PRICE_PER_HOUR: "0.10"}))
    scores = dict(decisions.score_nodes(["cheap", "dear", "label"], 2000, 8 * 2**30, cache, 0.0, 0.0))
    assert scores["cheap"] == scores["label"] > scores["dear"]


@given(
    cpu=st.integers(0, 10_000),
    mem=st.integers(0, 2**36),
    used_cpu=st.integers(0, 8000),
    price=st.one_of(st.none(), st.floats(0.001, 100)),
)
def test_scores_always_in_range(cpu: int, mem: int, used_cpu: int, price: float | None) -> None:
    cache = ClusterCache()
    annotations = {keys.PRICE_PER_HOUR: str(price)} if price else {}
    cache.upsert_node(node("a", annotations=annotations))
    cache.upsert_node(node("b", cpu="8", annotations={keys.PRICE_PER_HOUR: "1"}))
    cache.upsert_pod(pod("u", cpu=f"{used_cpu}m", memory="1Gi", node_name="a"))
    for _, score in decisions.score_nodes(["a", "b"], cpu, mem, cache, 0.0, 0.0):
        assert 0 <= score <= 10


def test_fit_count_and_room() -> None:
    requests = Resources(cpu=1000, memory=2**30, pods=1)
    assert decisions.fit_count(requests, {"cpu": 3500, "memory": 10 * 2**30, "pods": 110}) == 3
    assert decisions.fit_count(requests, {"cpu": 3500, "memory": 10 * 2**30, "pods": 2}) == 2
    assert decisions.fit_count(requests, {"cpu": -5, "memory": 0}) == 0
    cache = ClusterCache()
    for name in ("a", "b"):
        cache.upsert_node(node(name, labels={"intent": "apps"}))
    cache.upsert_node(node("c", labels={"intent": "other"}))
    cache.upsert_node(node("d", labels={"intent": "apps"}, unschedulable=True))
    cache.upsert_pod(pod("x", cpu="3", node_name="a"))
    groups = decisions.group_nodes(cache.nodes.values())
    assert len(groups) == 2  # hostname labels don't split groups
    room = decisions.room_for(requests, lambda s: s.labels.get("intent") == "apps", groups, cache)
    assert room == 1 + 4
    assert decisions.shortfall(room=1, placed=False, headroom=1) == 1
    assert decisions.shortfall(room=2, placed=False, headroom=1) == 0
    assert decisions.shortfall(room=1, placed=True, headroom=1) == 0


def test_node_state_reads_price_units() -> None:
    state = node_state(node("a", cpu="4", memory="16Gi", annotations={keys.PRICE_PER_HOUR: "0.8"}))
    assert state.price_per_unit is not None
    assert abs(state.price_per_unit - 0.1) < 1e-9  # 4 cpu + 16Gi/4 = 8 units
    assert node_state(node("b", annotations={keys.PRICE_PER_HOUR: "nan"})).price_per_unit is None
    assert node_state(node("c", annotations={keys.PRICE_PER_HOUR: "-1"})).price_per_unit is None


# What it checks is the scores, not their timing: a GC pause on a busy machine is no failure.
@settings(deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 16_000),  # allocatable cpu (m)
            st.integers(0, 2**36),  # allocatable memory
            st.integers(0, 16_000),  # used cpu
            st.one_of(st.none(), st.sampled_from(["0.05", "0.1", "0.192", "1.5"])),
            st.one_of(st.none(), st.integers(0, 2000)),  # expires at
            st.booleans(),  # disrupted
        ),
        min_size=1,
        max_size=12,
    ),
    st.integers(0, 8000),
    st.integers(0, 2**34),
    st.data(),
)
def test_score_table_matches_reference(
    specs: list[tuple[int, int, int, str | None, int | None, bool]], cpu: int, mem: int, data: st.DataObject
) -> None:
    cache = ClusterCache()
    for i, (acpu, amem, ucpu, price, expires, disrupted) in enumerate(specs):
        annotations: dict[str, str] = {}
        if price:
            annotations[keys.PRICE_PER_HOUR] = price
        if expires is not None:
            annotations[keys.EXPIRES_AT] = f"1970-01-01T00:{expires // 60 % 60:02d}:{expires % 60:02d}Z"
        if disrupted:
            annotations[labels.DISRUPTING_ANNOTATION] = "x"
        cache.upsert_node(node(f"n{i}", cpu=f"{acpu}m", memory=str(amem), annotations=annotations))
        cache.upsert_pod(pod(f"u{i}", cpu=f"{ucpu}m", memory="1Mi", node_name=f"n{i}"))
    if data.draw(st.booleans()):
        cache.delete_node(node("n0"))
        cache.upsert_node(node("late"))
    names = data.draw(st.lists(st.sampled_from([*cache.nodes, "ghost", "n0"]), max_size=15))
    reference = decisions.score_nodes(names, cpu, mem, cache, 600.0, 300.0)
    assert cache.table.scores(names, cpu, mem, 600.0, 300.0) == [score for _, score in reference]
