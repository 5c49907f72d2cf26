"""The unavailable-offerings cache: expiry on an injected clock, re-marking, snapshots."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from launcher.planner.offerings import DEFAULT_TTL_SECONDS, OfferingKey, UnavailableOfferings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_offering_is_unavailable_for_three_minutes_by_default() -> None:
    clock = Clock()
    cache = UnavailableOfferings(clock=clock)
    cache.mark("m5.large", "us-east-1a", "spot")
    assert cache.is_unavailable("m5.large", "us-east-1a", "spot")
    assert not cache.is_unavailable("m5.large", "us-east-1a", "on-demand")
    assert not cache.is_unavailable("m5.large", "us-east-1b", "spot")
    assert cache.expires_at("m5.large", "us-east-1a", "spot") == 1000.0 + DEFAULT_TTL_SECONDS
    clock.now += DEFAULT_TTL_SECONDS - 0.001
    assert cache.is_unavailable("m5.large", "us-east-1a", "spot")
    clock.now += 0.001
    assert not cache.is_unavailable("m5.large", "us-east-1a", "spot")
    assert cache.expires_at("m5.large", "us-east-1a", "spot") is None
    assert len(cache) == 0


def test_marking_again_extends_the_expiry() -> None:
    clock = Clock()
    cache = UnavailableOfferings(ttl=10, clock=clock)
    cache.mark("c5.xlarge", "us-east-1a", "on-demand")
    clock.now += 8
    cache.mark("c5.xlarge", "us-east-1a", "on-demand")
    clock.now += 8
    assert cache.is_unavailable("c5.xlarge", "us-east-1a", "on-demand")


def test_snapshot_holds_only_live_entries_and_mark_all_marks_each() -> None:
    clock = Clock()
    cache = UnavailableOfferings(ttl=10, clock=clock)
    cache.mark("a.large", "z1", "spot")
    clock.now += 5
    cache.mark_all([("b.large", "z1", "spot"), ("b.large", "z2", "on-demand")])
    assert cache.snapshot() == {
        OfferingKey("a.large", "z1", "spot"),
        OfferingKey("b.large", "z1", "spot"),
        OfferingKey("b.large", "z2", "on-demand"),
    }
    clock.now += 5
    assert cache.snapshot() == {
        OfferingKey("b.large", "z1", "spot"),
        OfferingKey("b.large", "z2", "on-demand"),
    }


def test_the_ttl_must_be_positive() -> None:
    with pytest.raises(ValueError, match="ttl"):
        UnavailableOfferings(ttl=0)


KEYS = st.sampled_from([("t1", "z1", "spot"), ("t1", "z2", "spot"), ("t2", "z1", "on-demand")])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 50), st.one_of(KEYS, st.none())), max_size=30))
def test_unavailable_exactly_while_the_last_mark_is_younger_than_the_ttl(
    steps: list[tuple[float, tuple[str, str, str] | None]],
) -> None:
    clock = Clock()
    cache = UnavailableOfferings(ttl=20, clock=clock)
    last_marked: dict[tuple[str, str, str], float] = {}
    for advance, key in steps:
        clock.now += advance
        if key is not None:
            cache.mark(*key)
            last_marked[key] = clock.now
        for known in [("t1", "z1", "spot"), ("t1", "z2", "spot"), ("t2", "z1", "on-demand")]:
            expected = known in last_marked and last_marked[known] + 20 > clock.now
            assert cache.is_unavailable(*known) == expected
        assert len(cache) == sum(1 for t in last_marked.values() if t + 20 > clock.now)
