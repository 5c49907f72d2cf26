"""The score table's direct rendering gives byte for byte what the plain path gives.

``ScoreTable.priority_list`` must equal ``protocol.priority_list`` over the reference scores of
``decisions.score_nodes``, whatever the mix of prices (none, one for all, several: the table
takes a shortcut when no price can tilt a score), expiries, disruptions, unknown names and
slot reuse; and ``render_priorities`` must equal ``priority_list`` for any scores, clamping too.
"""

from __future__ import annotations

import numpy as np
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from extender import decisions, keys, protocol
from extender.cache import ClusterCache
from extender.recent import RecentBodies
from extender.scoretable import ScoreTable
from shared import labels
from tests.extender.helpers import node, pod

NodeSpec = tuple[int, int, int, int, str | None, int | None, bool]

node_specs = st.tuples(
    st.integers(0, 16_000),  # allocatable cpu (m)
    st.integers(0, 2**36),  # allocatable memory
    st.integers(0, 16_000),  # used cpu (m)
    st.integers(0, 2**35),  # used memory
    st.one_of(st.none(), st.sampled_from(["0.05", "0.1", "0.192", "1.5"])),
    st.one_of(st.none(), st.integers(0, 2000)),  # expires at (s)
    st.booleans(),  # disrupted
)


def build(specs: list[NodeSpec], one_price: bool, capacity: int) -> ClusterCache:
    cache = ClusterCache()
    cache.table = ScoreTable(capacity=capacity)
    for i, (acpu, amem, ucpu, umem, price, expires, disrupted) in enumerate(specs):
        annotations: dict[str, str] = {}
        if price:
            annotations[keys.PRICE_PER_HOUR] = "0.4" if one_price else price
        if expires is not None:
            annotations[keys.EXPIRES_AT] = f"1970-01-01T00:{expires // 60 % 60:02d}:{expires % 60:02d}Z"
        if disrupted:
            annotations[labels.DISRUPTING_ANNOTATION] = "x"
        cache.upsert_node(node(f"n{i}", cpu=f"{acpu}m", memory=str(amem), annotations=annotations))
        cache.upsert_pod(pod(f"u{i}", cpu=f"{ucpu}m", memory=str(umem), node_name=f"n{i}"))
    return cache


@given(
    st.lists(node_specs, min_size=1, max_size=12),
    st.booleans(),
    st.integers(0, 8000),
    st.integers(0, 2**34),
    st.data(),
)
def test_direct_rendering_matches_reference(
    specs: list[NodeSpec], one_price: bool, cpu: int, mem: int, data: st.DataObject
) -> None:
    cache = build(specs, one_price, capacity=data.draw(st.integers(1, 16)))
    if data.draw(st.booleans()):  # a freed slot taken by another node
        cache.delete_node(node("n0"))
        cache.upsert_node(node("late", cpu="2", annotations={keys.PRICE_PER_HOUR: "0.3"}))
    candidates = [*cache.nodes, "ghost", "n0", 'we"ird\u00e9']
    names = data.draw(st.lists(st.sampled_from(candidates), max_size=15))
    reference = [score for _, score in decisions.score_nodes(names, cpu, mem, cache, 600.0, 300.0)]
    assert cache.table.scores(names, cpu, mem, 600.0, 300.0) == reference
    rendered = cache.table.priority_list(names, cpu, mem, 600.0, 300.0)
    assert rendered == protocol.priority_list(names, reference)
    assert [entry["Host"] for entry in orjson.loads(rendered)] == names


def test_one_price_for_all_and_several_prices_both_pack() -> None:
    cache = ClusterCache()
    cache.upsert_node(node("busy", annotations={keys.PRICE_PER_HOUR: "0.8"}))
    cache.upsert_node(node("idle", annotations={keys.PRICE_PER_HOUR: "0.8"}))
    cache.upsert_pod(pod("x", cpu="2", memory="8Gi", node_name="busy"))
    same = cache.table.scores(["busy", "idle"], 1000, 2**30, 0.0, 0.0)
    assert same[0] > same[1] > 0
    cache.upsert_node(node("idle", annotations={keys.PRICE_PER_HOUR: "0.2"}))  # now 4x cheaper
    tilted = cache.table.scores(["busy", "idle"], 1000, 2**30, 0.0, 0.0)
    assert tilted[0] < same[0]  # the dearer node loses
    assert tilted[1] == same[1]  # the cheapest keeps its weight of 1
    assert tilted == [s for _, s in decisions.score_nodes(["busy", "idle"], 1000, 2**30, cache, 0.0, 0.0)]


def test_direct_rendering_of_no_and_one_candidate() -> None:
    cache = ClusterCache()
    cache.upsert_node(node("a"))
    assert cache.table.priority_list([], 1, 1, 0.0, 0.0) == b"[]"
    one = cache.table.priority_list(["a"], 1000, 2**30, 0.0, 0.0)
    assert orjson.loads(one) == [{"Host": "a", "Score": 2}]  # round(10 * (1/4 + 1/16) / 2)
    unknown = cache.table.priority_list(["zz"], 1000, 2**30, 0.0, 0.0)
    assert orjson.loads(unknown) == [{"Host": "zz", "Score": 0}]


@given(st.lists(st.tuples(st.text(max_size=10), st.integers(-3, 14)), max_size=20))
def test_render_priorities_matches_priority_list(entries: list[tuple[str, int]]) -> None:
    hosts = [host for host, _ in entries]
    scores = [score for _, score in entries]
    heads = np.array([protocol.priority_head(h) for h in hosts] or [b""], dtype=object)[: len(hosts)]
    rendered = protocol.render_priorities(heads, np.array(scores, dtype=np.intp))
    assert rendered == protocol.priority_list(hosts, scores)


def test_render_priorities_rejects_mismatched_lengths() -> None:
    heads = np.array([protocol.priority_head("a")], dtype=object)
    with pytest.raises(ValueError, match="1 hosts but 2 scores"):
        protocol.render_priorities(heads, np.array([1, 2], dtype=np.intp))


def test_recent_bodies_bounded_by_bytes_and_entries() -> None:
    recent: RecentBodies[int] = RecentBodies(size=3, max_bytes=10)
    recent.put(b"aaaa", 1)
    recent.put(b"bbbb", 2)
    assert (recent.get(b"aaaa"), recent.get(b"bbbb")) == (1, 2)
    recent.put(b"cccc", 3)  # 12 bytes: the oldest goes
    assert recent.get(b"aaaa") is None
    assert (recent.get(b"bbbb"), recent.get(b"cccc"), len(recent)) == (2, 3, 2)
    recent.put(b"x" * 11, 4)  # bigger than the whole budget: not kept, nothing evicted
    assert recent.get(b"x" * 11) is None
    assert len(recent) == 2
    for i in range(5):
        recent.put(b"%d" % i, i)
    assert len(recent) == 3
    assert recent.get(b"4") == 4
    assert recent.get(b"1") is None
