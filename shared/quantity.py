"""Kubernetes resource quantities, parsed exactly.

Implements the grammar of ``k8s.io/apimachinery/pkg/api/resource.Quantity``: a signed decimal
number followed by a binary-SI suffix (Ki..Ei), a decimal-SI suffix (n u m "" k M G T P E) or a
decimal exponent (``e3``, ``E-2``). Values are kept as :class:`fractions.Fraction` so nothing is
lost to floating point; callers convert to integers the way Kubernetes does (rounding up).
"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from typing import Final

from shared.errors import FieldError

_BINARY: Final = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL: Final = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 10**3),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
}
_QUANTITY: Final = re.compile(
    r"(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?[0-9]+|[numkMGTPE]?)"
)
# Kubernetes caps exponents; anything beyond this is a typo, not a resource amount.
_MAX_EXPONENT: Final = 64


class QuantityError(FieldError):
    """A value that is not a Kubernetes quantity; names the field it came from."""

    def __init__(self, field: str, value: object, reason: str = "is not a quantity") -> None:
        self.value = value
        super().__init__(field, f"{value!r} {reason}")


Scalar = str | int | float


def parse_quantity(value: Scalar, field: str = "quantity") -> Fraction:
    """Parse a quantity (string as the API sends it, or a YAML number) to its exact value."""
    if isinstance(value, bool):
        raise QuantityError(field, value)
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise QuantityError(field, value)
        return Fraction(repr(value))
    if not isinstance(value, str):
        raise QuantityError(field, value)
    match = _QUANTITY.fullmatch(value)
    if match is None:
        raise QuantityError(field, value)
    number = Fraction(match["number"])
    suffix = match["suffix"]
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix in _DECIMAL:
        return number * _DECIMAL[suffix]
    exponent = int(suffix[1:])
    if abs(exponent) > _MAX_EXPONENT:
        raise QuantityError(field, value, "has an exponent out of range")
    return number * Fraction(10) ** exponent


def to_milli(value: Scalar, field: str = "quantity") -> int:
    """The quantity in thousandths, rounded up like ``Quantity.MilliValue`` (cpu uses this)."""
    return math.ceil(parse_quantity(value, field) * 1000)


def to_units(value: Scalar, field: str = "quantity") -> int:
    """The quantity in whole units, rounded up like ``Quantity.Value`` (bytes, counts)."""
    return math.ceil(parse_quantity(value, field))


def format_milli(millis: int) -> str:
    """Canonical form of a milli-valued quantity: ``"2"`` or ``"1500m"``."""
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def format_units(units: int) -> str:
    """Canonical form of a whole-unit quantity, with the largest exact binary suffix (``"1536Mi"``)."""
    if units == 0:
        return "0"
    for suffix, factor in reversed(_BINARY.items()):
        if units % factor == 0:
            return f"{units // factor}{suffix}"
    return str(units)
