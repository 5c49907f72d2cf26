"""Quantities parse exactly as ``resource.Quantity`` does, and malformed ones name their field."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.errors import FieldError
from shared.quantity import (
    QuantityError,
    format_milli,
    format_units,
    parse_quantity,
    to_milli,
    to_units,
)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("100m", Fraction(1, 10)),
        ("1.5Gi", Fraction(3, 2) * 2**30),
        ("1e3", Fraction(1000)),
        ("0.5", Fraction(1, 2)),
        ("128974848", Fraction(128974848)),
        ("129e6", Fraction(129 * 10**6)),
        ("129M", Fraction(129 * 10**6)),
        ("123Mi", Fraction(123 * 2**20)),
        ("1E", Fraction(10**18)),
        (".5", Fraction(1, 2)),
        ("5.", Fraction(5)),
        ("+1", Fraction(1)),
        ("1Ki", Fraction(1024)),
        ("-2k", Fraction(-2000)),
        ("250u", Fraction(250, 10**6)),
        ("3n", Fraction(3, 10**9)),
        ("2E-3", Fraction(2, 1000)),
        ("1e+2", Fraction(100)),
        ("0", Fraction(0)),
    ],
)
def test_kubernetes_examples_parse_exactly(text: str, value: Fraction) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize(("raw", "value"), [(3, Fraction(3)), (0.25, Fraction(1, 4)), (1.1, Fraction("1.1"))])
def test_yaml_numbers_parse(raw: int | float, value: Fraction) -> None:
    assert parse_quantity(raw) == value


@pytest.mark.parametrize(
    "text", ["", "1.2.3", "1 Gi", "Gi", "1iB", "abc", "1e", "--1", "1KI", "0x10", " 1", "1 ", "1K", "1e99"]
)
def test_malformed_strings_are_rejected_naming_the_field(text: str) -> None:
    with pytest.raises(QuantityError) as err:
        parse_quantity(text, "spec.containers[0].resources.requests.cpu")
    assert err.value.path == "spec.containers[0].resources.requests.cpu"
    assert str(err.value).startswith("spec.containers[0].resources.requests.cpu: ")
    assert repr(text) in str(err.value)
    assert isinstance(err.value, FieldError)


@pytest.mark.parametrize("value", [True, False, None, [], {}, float("nan"), float("inf")])
def test_non_quantity_types_are_rejected(value: object) -> None:
    with pytest.raises(QuantityError, match=r"limits\.memory"):
        parse_quantity(value, "limits.memory")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "millis", "units"),
    [
        ("100m", 100, 1),
        ("1", 1000, 1),
        ("1.5", 1500, 2),
        ("0.0001", 1, 1),
        ("1n", 1, 1),
        ("2Ki", 2048000, 2048),
        ("0", 0, 0),
        ("-1.5", -1500, -1),
        ("1001m", 1001, 2),
    ],
)
def test_milli_value_and_value_round_up(text: str, millis: int, units: int) -> None:
    assert to_milli(text) == millis
    assert to_units(text) == units


def test_format_picks_canonical_forms() -> None:
    assert format_milli(2000) == "2"
    assert format_milli(1500) == "1500m"
    assert format_milli(0) == "0"
    assert format_units(0) == "0"
    assert format_units(1536 * 2**20) == "1536Mi"
    assert format_units(2**30) == "1Gi"
    assert format_units(1000) == "1000"
    assert format_units(3 * 2**60) == "3Ei"


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_milli_round_trip(millis: int) -> None:
    assert to_milli(format_milli(millis)) == millis


@given(st.integers(min_value=-(2**70), max_value=2**70))
def test_units_round_trip(units: int) -> None:
    assert to_units(format_units(units)) == units


@given(
    st.integers(min_value=0, max_value=10**9),
    st.sampled_from(["", "m", "k", "M", "G", "Ki", "Mi", "Gi", "e3", "E-2", "u", "n"]),
)
def test_parse_equals_number_times_suffix(number: int, suffix: str) -> None:
    factors: dict[str, Fraction | int] = {
        "": 1,
        "m": Fraction(1, 1000),
        "k": 1000,
        "M": 10**6,
        "G": 10**9,
        "Ki": 1024,
        "Mi": 2**20,
        "Gi": 2**30,
        "e3": 1000,
        "E-2": Fraction(1, 100),
        "u": Fraction(1, 10**6),
        "n": Fraction(1, 10**9),
    }
    assert parse_quantity(f"{number}{suffix}") == number * Fraction(factors[suffix])
