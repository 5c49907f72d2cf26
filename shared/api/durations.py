"""Go / Kubernetes durations: ``"30s"``, ``"1h30m"``, ``"720h"``, ``"Never"``, ``"50ms"``.

Two grammars, because two audiences write durations:

* API objects (NodePool, NodeClaim) use the restricted form Karpenter's CRDs enforce with a
  pattern, whole numbers of ``h``/``m``/``s`` (:data:`API_DURATION_PATTERN`), so the CRD schema and
  the Python parser accept exactly the same strings. ``"Never"`` is a separate spelling allowed by
  some fields and parsed to ``None``.
* Service configuration accepts Go's full ``time.ParseDuration`` grammar (fractions, ``ms``,
  ``us``, ``ns``), because timeouts like ``"50ms"`` are common there.
"""

from __future__ import annotations

import re
from datetime import timedelta
from fractions import Fraction
from typing import Final

from shared.errors import FieldError

NEVER: Final = "Never"

# Karpenter's patterns (kept verbatim in the CRDs; tests check they agree).
API_DURATION_PATTERN: Final = r"^([0-9]+(s|m|h))+$"
API_DURATION_OR_NEVER_PATTERN: Final = r"^(([0-9]+(s|m|h))+|Never)$"
# Disruption budget windows are whole minutes or hours.
BUDGET_DURATION_PATTERN: Final = r"^((([0-9]+(h|m))|([0-9]+h[0-9]+m))(0s)?)$"

_API_RE: Final = re.compile(API_DURATION_PATTERN)
_BUDGET_RE: Final = re.compile(BUDGET_DURATION_PATTERN)
_GO_UNITS: Final = {
    "ns": Fraction(1, 10**9),
    "us": Fraction(1, 10**6),
    "µs": Fraction(1, 10**6),
    "μs": Fraction(1, 10**6),
    "ms": Fraction(1, 10**3),
    "s": Fraction(1),
    "m": Fraction(60),
    "h": Fraction(3600),
}
_GO_TERM: Final = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h)")
_SECONDS_PER_UNIT: Final = {"h": 3600, "m": 60, "s": 1}


def _sum_terms(text: str, term: re.Pattern[str], units: dict[str, Fraction]) -> Fraction | None:
    """Sum ``<number><unit>`` terms covering all of ``text``; None when something else is there."""
    pos, total = 0, Fraction(0)
    while pos < len(text):
        match = term.match(text, pos)
        if match is None:
            return None
        total += Fraction(match[1]) * units[match[2]]
        pos = match.end()
    return total


def parse_go_duration(value: object, field: str = "duration") -> float:
    """Seconds in a Go duration string (``"1.5s"``, ``"1h30m"``, ``"-50ms"``) or a plain number.

    Plain numbers (int or float, or a numeric string) are taken as seconds, which is what YAML
    authors usually mean by ``timeout: 2``.
    """
    if isinstance(value, bool):
        raise FieldError(field, f"{value!r} is not a duration")
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str) or not value:
        raise FieldError(field, f"{value!r} is not a duration")
    try:
        return float(value)
    except ValueError:
        pass
    sign, body = (-1, value[1:]) if value[0] == "-" else (1, value.lstrip("+"))
    if body == "0":
        return 0.0
    total = _sum_terms(body, _GO_TERM, _GO_UNITS) if body else None
    if total is None:
        raise FieldError(field, f"{value!r} is not a duration (use e.g. 50ms, 1.5s, 1h30m)")
    return float(sign * total)


def parse_api_duration(value: object, field: str, *, allow_never: bool = False) -> timedelta | None:
    """A duration from an API object; ``None`` for ``"Never"`` when ``allow_never``."""
    if allow_never and value == NEVER:
        return None
    if not isinstance(value, str) or _API_RE.fullmatch(value) is None:
        expected = "a duration such as 30s, 10m or 720h" + (", or Never" if allow_never else "")
        raise FieldError(field, f"{value!r} is not {expected}")
    return _whole_duration(value)


def parse_budget_duration(value: object, field: str) -> timedelta:
    """A disruption budget window: whole hours and/or minutes (``"8h"``, ``"1h30m"``)."""
    if not isinstance(value, str) or _BUDGET_RE.fullmatch(value) is None:
        raise FieldError(field, f"{value!r} is not a duration in hours and minutes such as 8h or 1h30m")
    return _whole_duration(value)


def _whole_duration(value: str) -> timedelta:
    seconds = 0
    for number, unit in re.findall(r"([0-9]+)([hms])", value):
        seconds += int(number) * _SECONDS_PER_UNIT[unit]
    return timedelta(seconds=seconds)


def format_duration(value: timedelta | None) -> str:
    """The shortest API spelling of a whole-second duration (``"720h"``, ``"1h30m"``, ``"0s"``).

    ``None`` formats as ``"Never"``. Sub-second parts are rounded up, as the API forms have none.
    """
    if value is None:
        return NEVER
    total = value.days * 86400 + value.seconds + (1 if value.microseconds else 0)
    if total < 0:
        raise ValueError(f"negative duration {value!r} has no API spelling")
    if total == 0:
        return "0s"
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [(hours, "h"), (minutes, "m"), (seconds, "s")]
    return "".join(f"{amount}{unit}" for amount, unit in parts if amount)


def format_budget_duration(value: timedelta) -> str:
    """A budget window in hours and minutes (``"1h30m"``); seconds are not representable."""
    total_minutes, seconds = divmod(int(value.total_seconds()), 60)
    if seconds or total_minutes <= 0:
        raise ValueError(f"{value!r} is not a whole positive number of minutes")
    hours, minutes = divmod(total_minutes, 60)
    if hours and minutes:
        return f"{hours}h{minutes}m"
    return f"{hours}h" if hours else f"{minutes}m"
