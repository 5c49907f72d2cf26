"""Resource lists: exact integer arithmetic and fit checks the scheduler path relies on."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.errors import FieldError
from shared.quantity import QuantityError
from shared.resources import CPU, MEMORY, PODS, Resources, total

NAMES = st.sampled_from([CPU, MEMORY, PODS, "ephemeral-storage", "nvidia.com/gpu"])
LISTS = st.dictionaries(NAMES, st.integers(min_value=0, max_value=10**13)).map(Resources)


def test_parse_uses_milli_for_cpu_and_units_elsewhere() -> None:
    r = Resources.parse({"cpu": "1500m", "memory": "1.5Gi", "pods": "110", "nvidia.com/gpu": 1})
    assert r == {"cpu": 1500, "memory": 3 * 2**29, "pods": 110, "nvidia.com/gpu": 1}
    assert r.to_api() == {"cpu": "1500m", "memory": "1536Mi", "nvidia.com/gpu": "1", "pods": "110"}


def test_parse_rounds_up() -> None:
    assert Resources.parse({"cpu": "0.1m", "memory": "0.5"}) == {"cpu": 1, "memory": 1}


def test_parse_names_bad_field() -> None:
    with pytest.raises(QuantityError) as err:
        Resources.parse({"cpu": "1x"}, "spec.containers[0].resources.requests")
    assert err.value.path == "spec.containers[0].resources.requests.cpu"
    assert "'1x' is not a quantity" in str(err.value)


def test_parse_rejects_negative_and_non_mapping() -> None:
    with pytest.raises(QuantityError, match="must not be negative"):
        Resources.parse({"memory": "-1Gi"}, "limits")
    with pytest.raises(FieldError, match=r"^limits: expected a mapping"):
        Resources.parse(["cpu"], "limits")  # type: ignore[arg-type]


def test_zero_entries_dropped_and_missing_read_as_zero() -> None:
    r = Resources(cpu=0, memory=5)
    assert list(r) == [MEMORY]
    assert r.amount(CPU) == 0
    assert r == Resources(memory=5)
    assert Resources.parse(None).is_zero()


def test_arithmetic() -> None:
    a = Resources(cpu=1000, memory=10)
    b = Resources(cpu=250, pods=1)
    assert a + b == Resources(cpu=1250, memory=10, pods=1)
    assert a - b == Resources(cpu=750, memory=10, pods=-1)
    assert (b - a).clamp_zero() == Resources(pods=1)
    assert a * 3 == Resources(cpu=3000, memory=30)
    assert 2 * a == a + a
    assert a.max(b) == Resources(cpu=1000, memory=10, pods=1)
    assert total([a, b, b]) == Resources(cpu=1500, memory=10, pods=2)


def test_fits_in_and_exceeding() -> None:
    node = Resources(cpu=2000, memory=100, pods=10)
    assert Resources(cpu=2000, memory=100).fits_in(node)
    assert not Resources(cpu=2001).fits_in(node)
    assert not Resources(**{"nvidia.com/gpu": 1}).fits_in(node)
    assert Resources(cpu=3000, memory=1, **{"nvidia.com/gpu": 1}).exceeding(node) == ["cpu", "nvidia.com/gpu"]
    assert Resources().fits_in(Resources())


def test_equality_and_hash() -> None:
    a = Resources({"cpu": 1, "memory": 2})
    b = Resources(memory=2, cpu=1, pods=0)
    assert a == b
    assert hash(a) == hash(b)
    assert len({a, b}) == 1
    assert a != Resources(cpu=1)
    assert a == {"cpu": 1, "memory": 2, "pods": 0}
    assert a != "cpu"


@given(LISTS, LISTS)
def test_sub_undoes_add(a: Resources, b: Resources) -> None:
    assert (a + b) - b == a


@given(LISTS, LISTS)
def test_fits_in_iff_nothing_exceeds(a: Resources, b: Resources) -> None:
    assert a.fits_in(b) == (not a.exceeding(b))
    assert a.fits_in(a + b)
    assert a.fits_in(a.max(b))
    assert b.fits_in(a.max(b))


@given(LISTS)
def test_api_round_trip(a: Resources) -> None:
    assert Resources.parse(a.to_api()) == a


def test_memoised_parse_shares_equal_lists_and_still_names_bad_fields() -> None:
    first = Resources.parse({"cpu": "250m", "memory": "64Mi"}, "a")
    assert Resources.parse({"cpu": "250m", "memory": "64Mi"}, "b") is first  # memoised
    assert first == Resources(cpu=250, memory=64 * 2**20)
    with pytest.raises(QuantityError, match=r"c\.cpu"):
        Resources.parse({"cpu": "lots"}, "c")
    with pytest.raises(QuantityError, match=r"d\.cpu"):
        Resources.parse({"cpu": "lots"}, "d")  # a failure is never memoised
    assert Resources.parse({"cpu": 1}) == Resources(cpu=1000)
    with pytest.raises(QuantityError):
        Resources.parse({"cpu": True})  # equal to 1 as a key, but not a quantity
