"""Disruption with CapacityBuffer chunks: they hold room, move with a node, and pin none beyond the buffer."""

from __future__ import annotations

from dataclasses import replace

from launcher.buffers.decisions import chunk_uid
from launcher.disruption.decisions import decide
from launcher.disruption.mark import EMPTY, UNDERUTILIZED
from shared.demand import PodDemand
from tests.launcher.test_disruption_decisions import chosen, demand, node, pod, snap


def chunk(index: int, cpu_m: int = 1000) -> PodDemand:
    return replace(demand(chunk_uid("shop", "web", index), cpu_m), reason="predicted")


def test_an_empty_node_holding_chunks_that_fit_nowhere_else_is_kept() -> None:
    decisions = decide(snap(node("a"), buffer=[chunk(0), chunk(1)]))
    assert decisions.actions == ()
    assert "CapacityBuffer" in decisions.blocked["a"]


def test_an_empty_node_whose_chunks_fit_on_another_node_goes() -> None:
    # "a" sorts first, so the chunks are placed there; "b" has room for them too.
    busy = node("b", pod("p1", 2000))
    assert chosen(snap(node("a"), busy, buffer=[chunk(0), chunk(1)])) == {"a": EMPTY}


def test_an_empty_node_goes_when_the_buffer_is_held_elsewhere_but_not_when_it_is_needed() -> None:
    # Two empty nodes of 8 cpu, a buffer of 6: one node holds it, the other is spare.
    decisions = decide(snap(node("a"), node("b"), buffer=[chunk(i) for i in range(6)]))
    assert len(decisions.actions) == 1
    # A buffer of 12 needs both.
    assert chosen(snap(node("a"), node("b"), buffer=[chunk(i) for i in range(12)])) == {}


def test_a_chunk_does_not_block_consolidation_the_way_a_pending_pod_does() -> None:
    a = node("a", pod("p1", 2000))
    b = node("b", pod("p2", 500))
    pending = decide(snap(a, b, pending=[chunk(0)]))
    assert "b" not in {x.node for x in pending.actions}
    assert "pending pod" in pending.blocked["b"]
    assert chosen(snap(a, b, buffer=[chunk(0)])) == {"b": UNDERUTILIZED}


def test_consolidation_that_would_drop_chunks_is_sized_for_them_or_refused() -> None:
    # One expensive node with a small pod and a chunk, and no other node: the cheaper
    # replacement must hold the pod and the chunk.
    huge = node("a", pod("p1", 500), cpu=32, itype_name="huge", price=1.6)
    (action,) = decide(snap(huge, buffer=[chunk(0)])).actions
    assert action.reason == UNDERUTILIZED
    (replacement,) = action.replacements
    assert set(replacement.pods) == {"p1", chunk(0).uid}
    # Without the chunk the pod alone would go to the same small type; with four chunks no
    # single cheaper node holds them all, so the node stays rather than drop the buffer.
    decisions = decide(snap(huge, buffer=[chunk(i) for i in range(4)]))
    assert decisions.actions == ()
    assert "one new node" in decisions.blocked["a"]


def test_pending_pods_take_room_before_chunks() -> None:
    # 8 cpu: a pending pod of 6 cpu and a chunk of 4 do not both fit. The pod gets the room
    # (and keeps the node); the chunk is held nowhere, so it keeps nothing.
    decisions = decide(snap(node("a"), pending=[demand("p", 6000)], buffer=[chunk(0, 4000)]))
    assert "pending pod" in decisions.blocked["a"]
    assert chosen(snap(node("a"), buffer=[chunk(0, 9000)])) == {"a": EMPTY}
