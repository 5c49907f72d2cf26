"""Resource lists (requests, capacity, allocatable) as exact integers.

A :class:`Resources` maps a resource name to an integer in its canonical unit: millicores for
``cpu``, whole units for everything else (bytes for ``memory`` and ``ephemeral-storage``, a count
for ``pods`` and extended resources such as ``nvidia.com/gpu``). Integers make fit checks exact
and cheap on the scheduler's hot path; zero entries are dropped so equal lists compare equal.

Parsing is memoised on the list's strings: a cluster's pods repeat a few dozen request lists
(every replica of a template has the same), and parsing a quantity exactly (a ``Fraction``) costs
tens of microseconds, which the launcher paid for every pod event at 150,000 pods.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Final

from shared.errors import FieldError
from shared.memo import ClearingMemo
from shared.quantity import QuantityError, Scalar, format_milli, format_units, to_milli, to_units

CPU: Final = "cpu"
MEMORY: Final = "memory"
PODS: Final = "pods"
EPHEMERAL_STORAGE: Final = "ephemeral-storage"
GPU_NVIDIA: Final = "nvidia.com/gpu"

# Resources whose canonical unit is a thousandth (Kubernetes reads them with MilliValue).
_MILLI_RESOURCES: Final = frozenset({CPU})
# Parsed lists by their (name, string) items.
_parsed: ClearingMemo[tuple[tuple[str, Scalar], ...], Resources] = ClearingMemo(4096)


class Resources(Mapping[str, int]):
    """An immutable resource list with exact integer amounts (see the module docstring)."""

    __slots__ = ("_amounts", "_hash")

    def __init__(self, amounts: Mapping[str, int] | None = None, /, **named: int) -> None:
        if type(amounts) is Resources and not named:
            self._amounts: dict[str, int] = amounts._amounts  # immutable: shared, not copied
        else:
            # A Resources' own dict, not the Mapping protocol, is copied (that is 10x faster).
            merged = dict(amounts._amounts if isinstance(amounts, Resources) else amounts or {})
            merged.update(named)
            self._amounts = {k: int(v) for k, v in merged.items() if v}
        self._hash: int | None = None

    @classmethod
    def parse(cls, raw: Mapping[str, Scalar] | None, field: str = "resources") -> Resources:
        """Parse a resource list as the API sends it (``{"cpu": "500m", "memory": "1Gi"}``).

        Negative amounts are rejected, as the API server rejects them in requests and capacity.
        """
        if raw is None:
            return EMPTY
        if not isinstance(raw, Mapping):
            raise FieldError(field, f"expected a mapping of resource name to quantity, got {raw!r}")
        # Only all-string lists (as the API sends them) are memoised: a number's key could equal
        # a bool's (``1 == True``), and a bool is not a quantity.
        if all(type(value) is str for value in raw.values()):
            return _parsed.get(tuple(raw.items()), lambda: cls._parse(raw, field))
        return cls._parse(raw, field)

    @classmethod
    def _parse(cls, raw: Mapping[str, Scalar], field: str) -> Resources:
        amounts: dict[str, int] = {}
        for name, value in raw.items():
            path = f"{field}.{name}"
            amount = to_milli(value, path) if name in _MILLI_RESOURCES else to_units(value, path)
            if amount < 0:
                raise QuantityError(path, value, "must not be negative")
            amounts[name] = amount
        return cls(amounts)

    def to_api(self) -> dict[str, str]:
        """The list in the API's string form (``{"cpu": "1500m", "memory": "2Gi"}``)."""
        return {
            name: format_milli(amount) if name in _MILLI_RESOURCES else format_units(amount)
            for name, amount in sorted(self._amounts.items())
        }

    # Mapping protocol; a missing resource reads as zero through get().
    def __getitem__(self, name: str) -> int:
        return self._amounts[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._amounts)

    def __len__(self) -> int:
        return len(self._amounts)

    def amount(self, name: str) -> int:
        """The amount of ``name``, zero when absent."""
        return self._amounts.get(name, 0)

    def __add__(self, other: Mapping[str, int]) -> Resources:
        out = dict(self._amounts)
        for name, amount in other.items():
            out[name] = out.get(name, 0) + amount
        return Resources(out)

    def __sub__(self, other: Mapping[str, int]) -> Resources:
        """Per-resource difference; may go negative (an overcommitted node)."""
        out = dict(self._amounts)
        for name, amount in other.items():
            out[name] = out.get(name, 0) - amount
        return Resources(out)

    def __mul__(self, factor: int) -> Resources:
        return Resources({name: amount * factor for name, amount in self._amounts.items()})

    __rmul__ = __mul__

    def fits_in(self, capacity: Mapping[str, int]) -> bool:
        """True when every requested amount is at most what ``capacity`` offers."""
        return all(amount <= capacity.get(name, 0) for name, amount in self._amounts.items())

    def exceeding(self, capacity: Mapping[str, int]) -> list[str]:
        """Names of the resources over ``capacity``, sorted (for "Insufficient cpu" messages)."""
        return sorted(name for name, amount in self._amounts.items() if amount > capacity.get(name, 0))

    def max(self, other: Mapping[str, int]) -> Resources:
        """Per-resource maximum of the two lists."""
        out = dict(self._amounts)
        for name, amount in other.items():
            out[name] = max(out.get(name, 0), amount)
        return Resources(out)

    def clamp_zero(self) -> Resources:
        """The list with negative amounts raised to zero (free room can't be negative)."""
        return Resources({name: amount for name, amount in self._amounts.items() if amount > 0})

    def is_zero(self) -> bool:
        return not self._amounts

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Resources):
            return self._amounts == other._amounts
        if isinstance(other, Mapping):
            return self._amounts == {k: v for k, v in other.items() if v}
        return NotImplemented

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(frozenset(self._amounts.items()))
        return self._hash

    def __repr__(self) -> str:
        return f"Resources({self.to_api()!r})"


EMPTY: Final = Resources()


def total(lists: Iterator[Mapping[str, int]] | list[Resources]) -> Resources:
    """The sum of many resource lists."""
    out: dict[str, int] = {}
    for item in lists:
        for name, amount in item.items():
            out[name] = out.get(name, 0) + amount
    return Resources(out)
