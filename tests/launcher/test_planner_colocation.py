"""Per-node rules (``launcher.planner.colocation``) and the packer obeying them."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from launcher.planner.colocation import NONE, UNLIMITED, Colocation, NodeTally, exclusive
from launcher.planner.packing import Shape, first_fit_decreasing

CAPPED = Colocation(frozenset({"t"}), (("t", 2),))
HOLDER = Colocation(frozenset({"h"}), (), frozenset({"m"}))
MATCHED = Colocation(frozenset({"m"}), (), frozenset({"h"}))
SELF_REPELLING = Colocation(frozenset({"s"}), (), frozenset({"s"}))


def test_no_rules_never_limit() -> None:
    tally = NodeTally.of([(CAPPED, 2), (HOLDER, 1)])
    assert not NONE
    assert tally.room(NONE) == UNLIMITED
    assert NONE.per_node == UNLIMITED


def test_a_cap_counts_every_pod_carrying_the_tag() -> None:
    tally = NodeTally()
    assert tally.room(CAPPED) == 2
    tally.add(CAPPED)
    assert tally.room(CAPPED) == 1
    tally.add(CAPPED)
    assert tally.room(CAPPED) == 0
    assert CAPPED.per_node == 2


def test_the_exclusive_key_is_a_cap_of_one() -> None:
    rules = exclusive("web")
    assert rules.per_node == 1
    assert NodeTally.of([(rules, 1)]).room(rules) == 0
    assert NodeTally.of([(exclusive("db"), 1)]).room(rules) == 1


def test_repelling_works_both_ways_and_not_within_a_side() -> None:
    assert NodeTally.of([(HOLDER, 3)]).room(MATCHED) == 0
    assert NodeTally.of([(MATCHED, 3)]).room(HOLDER) == 0
    assert NodeTally.of([(HOLDER, 3)]).room(HOLDER) == UNLIMITED
    assert not NodeTally.of([(HOLDER, 1)]).admits(NodeTally.of([(MATCHED, 1)]))


def test_a_pod_repelling_its_own_tag_is_alone_of_its_kind() -> None:
    assert SELF_REPELLING.per_node == 1
    assert NodeTally().room(SELF_REPELLING) == 1
    assert NodeTally.of([(SELF_REPELLING, 1)]).room(SELF_REPELLING) == 0


def test_combined_rules_keep_the_lower_cap() -> None:
    both = CAPPED | Colocation(frozenset({"t"}), (("t", 1),)) | HOLDER
    assert both.caps == (("t", 1),)
    assert both.tags == {"t", "h"}
    assert both.repels == {"m"}


RULES = st.sampled_from([NONE, CAPPED, HOLDER, MATCHED, SELF_REPELLING, exclusive("x")])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(RULES, st.integers(1, 3)), max_size=8))
def test_adding_within_room_never_breaks_a_rule(additions: list[tuple[Colocation, int]]) -> None:
    tally = NodeTally()
    held: list[Colocation] = []
    for rules, n in additions:
        take = min(n, tally.room(rules))
        if take:
            tally.add(rules, take)
            held += [rules] * take
    for rules in held:
        for tag, cap in rules.caps:
            assert sum(1 for r in held if tag in r.tags) <= cap
        others = list(held)
        others.remove(rules)
        assert not any(rules.repels & other.tags for other in others)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(RULES, st.integers(1, 2)), max_size=4),
    st.lists(st.tuples(RULES, st.integers(1, 2)), max_size=4),
)
def test_admits_is_symmetric_and_agrees_with_adding_one_by_one(
    a: list[tuple[Colocation, int]], b: list[tuple[Colocation, int]]
) -> None:
    left, right = NodeTally.of(a), NodeTally.of(b)
    assert left.admits(right) == right.admits(left)
    valid = [NodeTally(), NodeTally()]
    fine = True
    for tally, items in zip(valid, (a, b), strict=True):
        for rules, n in items:
            fine = fine and tally.room(rules) >= n
            tally.add(rules, n)
    if fine and left.admits(right):
        merged = NodeTally.of(a)
        for rules, n in b:
            assert merged.room(rules) >= n or not rules
            merged.add(rules, n)


def test_the_packer_fills_room_left_by_ruled_shapes_with_free_ones() -> None:
    capped = Shape(0, (1,), 6, CAPPED)
    free = Shape(1, (1,), 6)
    bins = first_fit_decreasing([capped, free], (4,))
    for b in bins:
        assert b.contents.get(0, 0) <= 2
    assert sum(b.contents.get(0, 0) * b.multiplicity for b in bins) == 6
    assert sum(b.contents.get(1, 0) * b.multiplicity for b in bins) == 6
    assert sum(b.multiplicity for b in bins) == 3  # 12 pods of 1 on bins of 4: no bin wasted


def test_the_packer_keeps_repelling_shapes_apart() -> None:
    bins = first_fit_decreasing([Shape(0, (1,), 3, HOLDER), Shape(1, (1,), 3, MATCHED)], (10,))
    assert all(len(b.contents) == 1 for b in bins)
    assert sum(b.multiplicity for b in bins) == 2


def test_the_packer_splits_identical_bins_without_sharing_their_tallies() -> None:
    bins = first_fit_decreasing([Shape(0, (1,), 4, CAPPED), Shape(1, (1,), 1, HOLDER)], (3,))
    assert sum(b.contents.get(0, 0) * b.multiplicity for b in bins) == 4
    for b in bins:
        assert b.contents.get(0, 0) <= 2
        if b.tally is not None:
            assert b.tally.counts.get("t", 0) == b.contents.get(0, 0)
