"""Cron schedules for disruption budget windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.api.cron import Cron
from shared.errors import FieldError


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_weekday_business_hours_window() -> None:
    cron = Cron.parse("0 9 * * mon-fri")
    eight_hours = timedelta(hours=8)
    assert cron.active(at("2024-05-06T09:00:00"), eight_hours)  # Monday 09:00
    assert cron.active(at("2024-05-06T16:59:59"), eight_hours)
    assert not cron.active(at("2024-05-06T17:00:00"), eight_hours)
    assert not cron.active(at("2024-05-06T08:59:00"), eight_hours)
    assert not cron.active(at("2024-05-05T10:00:00"), eight_hours)  # Sunday


def test_window_crossing_midnight_and_macros() -> None:
    assert Cron.parse("0 22 * * *").active(at("2024-05-07T01:30:00"), timedelta(hours=4))
    assert Cron.parse("@daily").active(at("2024-05-07T00:10:00"), timedelta(minutes=15))
    assert not Cron.parse("@daily").active(at("2024-05-07T00:15:00"), timedelta(minutes=15))
    assert Cron.parse("@hourly").active(at("2024-05-07T13:00:30"), timedelta(minutes=1))


def test_steps_lists_names_and_sunday_seven() -> None:
    cron = Cron.parse("*/15 0-6/2,23 1 jan,JUL 7")
    assert cron.minutes == frozenset({0, 15, 30, 45})
    assert cron.hours == frozenset({0, 2, 4, 6, 23})
    assert cron.months == frozenset({1, 7})
    assert cron.weekdays == frozenset({0})


def test_day_of_month_or_day_of_week_when_both_restricted() -> None:
    cron = Cron.parse("0 0 1 * mon")
    minute = timedelta(minutes=1)
    assert cron.active(at("2024-05-01T00:00:00"), minute)  # the 1st, a Wednesday
    assert cron.active(at("2024-05-06T00:00:00"), minute)  # a Monday
    assert not cron.active(at("2024-05-07T00:00:00"), minute)


def test_long_horizon_is_fast_and_correct() -> None:
    cron = Cron.parse("0 0 1 1 *")
    assert cron.last_fire_at_or_before(at("2024-12-31T23:59:00"), timedelta(days=366)) == at(
        "2024-01-01T00:00:00"
    )
    assert cron.last_fire_at_or_before(at("2024-12-31T23:59:00"), timedelta(days=300)) is None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "* * * *",
        "60 * * * *",
        "* 24 * * *",
        "* * 0 * *",
        "*/0 * * * *",
        "5-1 * * * *",
        "@often",
        "a b c d e",
    ],
)
def test_rejects(text: str) -> None:
    with pytest.raises(FieldError) as info:
        Cron.parse(text, "spec.disruption.budgets[0].schedule")
    assert info.value.path == "spec.disruption.budgets[0].schedule"


@given(
    st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)),
    st.integers(min_value=0, max_value=59),
    st.integers(min_value=0, max_value=23),
    st.integers(min_value=1, max_value=600),
)
def test_active_matches_brute_force(now: datetime, minute: int, hour: int, window: int) -> None:
    """Walking back minute by minute gives the same answer as the skipping search."""
    cron = Cron.parse(f"{minute} {hour} * * *")
    duration = timedelta(minutes=window)
    cursor = now.replace(second=0, microsecond=0)
    expected = False
    while cursor > now - duration:
        if cursor.minute == minute and cursor.hour == hour:
            expected = now < cursor + duration
            break
        cursor -= timedelta(minutes=1)
    assert cron.active(now, duration) == expected
