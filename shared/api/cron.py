"""Standard five-field cron schedules, for disruption budgets' active windows.

Karpenter (and so jitnode) reads a budget's ``schedule`` as a UTC cron expression: the budget is
active from each time the schedule fires until ``duration`` later. Supported: ``*``, numbers,
ranges ``a-b``, steps ``*/n`` and ``a-b/n``, lists, month and weekday names, weekday 7 as
Sunday, and the macros ``@yearly``/``@annually``/``@monthly``/``@weekly``/``@daily``/
``@midnight``/``@hourly``. As in cron, when both day-of-month and day-of-week are restricted a
day matches if either does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from shared.errors import FieldError

_MACROS: Final = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTH_NAMES: Final = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTHS: Final = {m: i for i, m in enumerate(_MONTH_NAMES, 1)}
_DAYS: Final = {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
# (low, high, names) per field: minute, hour, day of month, month, day of week.
_FIELDS: Final[tuple[tuple[int, int, dict[str, int]], ...]] = (
    (0, 59, {}),
    (0, 23, {}),
    (1, 31, {}),
    (1, 12, _MONTHS),
    (0, 7, _DAYS),
)


@dataclass(frozen=True)
class Cron:
    """A parsed schedule: the allowed values of each field."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    days_restricted: bool
    weekdays_restricted: bool

    @classmethod
    def parse(cls, text: str, field: str = "schedule") -> Cron:
        expanded = _MACROS.get(text.strip().lower(), text)
        parts = expanded.split()
        if len(parts) != len(_FIELDS):
            raise FieldError(field, f"{text!r} is not a cron schedule (want 5 fields or a macro like @daily)")
        sets = [
            _parse_field(part, *spec, field=field, text=text)
            for part, spec in zip(parts, _FIELDS, strict=True)
        ]
        weekdays = frozenset(0 if d == 7 else d for d in sets[4])
        return cls(sets[0], sets[1], sets[2], sets[3], weekdays, parts[2] != "*", parts[4] != "*")

    def _day_matches(self, when: datetime) -> bool:
        if when.month not in self.months:
            return False
        in_days = when.day in self.days
        in_weekdays = (when.isoweekday() % 7) in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return in_days or in_weekdays
        return in_days and in_weekdays

    def last_fire_at_or_before(self, now: datetime, horizon: timedelta) -> datetime | None:
        """The latest time the schedule fired at or before ``now``, looking back at most ``horizon``.

        Walks back skipping whole days and hours that cannot match, so a month-long horizon costs a
        few thousand steps at worst.
        """
        now = now.astimezone(UTC)
        cursor = now.replace(second=0, microsecond=0)
        earliest = now - horizon
        while cursor >= earliest:
            if not self._day_matches(cursor):
                cursor = cursor.replace(hour=0, minute=0) - timedelta(minutes=1)
            elif cursor.hour not in self.hours:
                cursor = cursor.replace(minute=0) - timedelta(minutes=1)
            elif cursor.minute not in self.minutes:
                cursor -= timedelta(minutes=1)
            else:
                return cursor
        return None

    def active(self, now: datetime, duration: timedelta) -> bool:
        """True when ``now`` lies in a window ``[fire, fire + duration)`` for some firing time."""
        if duration <= timedelta(0):
            return False
        fired = self.last_fire_at_or_before(now, duration)
        return fired is not None and now.astimezone(UTC) < fired + duration


def _parse_field(
    part: str, low: int, high: int, names: dict[str, int], *, field: str, text: str
) -> frozenset[int]:
    def value(token: str) -> int:
        token = token.lower()
        number = names[token] if token in names else int(token) if token.isdigit() else None
        if number is None or not low <= number <= high:
            raise FieldError(field, f"{text!r} is not a cron schedule ({token!r} out of {low}-{high})")
        return number

    out: set[int] = set()
    for item in part.split(","):
        body, _, step_text = item.partition("/")
        if step_text and (not step_text.isdigit() or int(step_text) == 0):
            raise FieldError(field, f"{text!r} is not a cron schedule (bad step in {item!r})")
        step = int(step_text) if step_text else 1
        if body == "*":
            start, end = low, high
        elif "-" in body:
            first, _, last = body.partition("-")
            start, end = value(first), value(last)
            if start > end:
                raise FieldError(field, f"{text!r} is not a cron schedule (empty range {body!r})")
        else:
            start = value(body)
            end = high if step_text else start
        out.update(range(start, end + 1, step))
    return frozenset(out)
