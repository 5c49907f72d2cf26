"""Go/Kubernetes durations: the API's restricted form and the config's full Go grammar."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.api.durations import (
    API_DURATION_OR_NEVER_PATTERN,
    BUDGET_DURATION_PATTERN,
    format_budget_duration,
    format_duration,
    parse_api_duration,
    parse_budget_duration,
    parse_go_duration,
)
from shared.errors import FieldError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("720h", timedelta(hours=720)),
        ("1h30m", timedelta(minutes=90)),
        ("0s", timedelta(0)),
        ("90m", timedelta(minutes=90)),
        ("1h0m0s", timedelta(hours=1)),
        ("2h2s", timedelta(hours=2, seconds=2)),
    ],
)
def test_api_duration_parses(text: str, expected: timedelta) -> None:
    assert parse_api_duration(text, "f") == expected


@pytest.mark.parametrize("text", ["", "1", "1.5h", "1d", "50ms", "-1s", "Never", "1 h", 30, None, "h"])
def test_api_duration_rejects_with_field_path(text: object) -> None:
    with pytest.raises(FieldError) as info:
        parse_api_duration(text, "spec.expireAfter")
    assert info.value.path == "spec.expireAfter"
    assert re.fullmatch(API_DURATION_OR_NEVER_PATTERN, str(text)) is None or text == "Never"


def test_never_only_where_allowed() -> None:
    assert parse_api_duration("Never", "f", allow_never=True) is None
    with pytest.raises(FieldError, match="or Never"):
        parse_api_duration("never", "f", allow_never=True)


@given(st.integers(min_value=0, max_value=10**7))
def test_format_parse_round_trip(seconds: int) -> None:
    value = timedelta(seconds=seconds)
    text = format_duration(value)
    assert re.fullmatch(API_DURATION_OR_NEVER_PATTERN, text)
    assert parse_api_duration(text, "f") == value


def test_format_examples() -> None:
    assert format_duration(timedelta(hours=720)) == "720h"
    assert format_duration(timedelta(minutes=90, seconds=5)) == "1h30m5s"
    assert format_duration(timedelta(0)) == "0s"
    assert format_duration(None) == "Never"
    assert format_duration(timedelta(milliseconds=1)) == "1s"  # rounded up, never to zero
    with pytest.raises(ValueError, match="negative"):
        format_duration(timedelta(seconds=-1))


@given(st.integers(min_value=1, max_value=10**6))
def test_budget_duration_round_trip(minutes: int) -> None:
    text = format_budget_duration(timedelta(minutes=minutes))
    assert re.fullmatch(BUDGET_DURATION_PATTERN, text)
    assert parse_budget_duration(text, "f") == timedelta(minutes=minutes)


@pytest.mark.parametrize("text", ["30s", "1h30m30s", "0", "", "1d"])
def test_budget_duration_rejects(text: str) -> None:
    with pytest.raises(FieldError):
        parse_budget_duration(text, "spec.disruption.budgets[0].duration")


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("50ms", 0.05),
        ("1.5s", 1.5),
        ("1h30m", 5400.0),
        ("-2s", -2.0),
        ("+3s", 3.0),
        ("0", 0.0),
        ("300us", 0.0003),
        ("1µs", 0.000001),
        ("2", 2.0),
        ("0.25", 0.25),
        (2, 2.0),
        (0.5, 0.5),
        (".5s", 0.5),
    ],
)
def test_go_duration(value: object, seconds: float) -> None:
    assert parse_go_duration(value, "f") == pytest.approx(seconds)


@pytest.mark.parametrize("value", ["", "1x", "ms", "1.5.s", "s1", "1 s", True, None, [1], "-", "1h 2m"])
def test_go_duration_rejects(value: object) -> None:
    with pytest.raises(FieldError) as info:
        parse_go_duration(value, "server.timeout")
    assert info.value.path == "server.timeout"
