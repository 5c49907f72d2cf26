"""The improvement pass after packing: merge claims that are cheaper together (pure).

The packer works one group (one pool, one set of requirements) at a time, so the last node of
each group is often half empty. Two such claims of the same pool whose requirements are
compatible can share one node when some instance type allowed by both requirements holds both
contents; if that node costs less than the two, they are merged. Only the emptiest claims are
considered (full nodes gain nothing from a merge), which bounds the work to a few hundred
comparisons whatever the size of the plan.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from shared.requirements import Requirements

Vector = tuple[int, ...]
# Claims at most this full (by their dominant resource on their cheapest type) may be merged.
MERGE_UTILISATION = 0.75
MERGE_CANDIDATES = 48


@dataclass(frozen=True)
class Option:
    """One instance type a draft may become: its price and its room (in the plan's key order)."""

    name: str
    price: float
    room: Vector


@dataclass
class Draft:
    """A claim before limits are applied: requirements, contents and what its pods use."""

    requirements: Requirements
    used: Vector
    contents: dict[tuple[int, int], int] = field(default_factory=dict)  # (group, shape) -> pods
    price: float = 0.0
    room: Vector = ()  # room of the cheapest type that holds it


def fits(used: Sequence[int], room: Sequence[int]) -> bool:
    return all(u <= r for u, r in zip(used, room, strict=True))


def cheapest_fit(options: Sequence[Option], used: Vector) -> Option | None:
    """The first (cheapest) option that holds ``used``; ``options`` are sorted cheapest first."""
    for option in options:
        if fits(used, option.room):
            return option
    return None


def utilisation(draft: Draft) -> float:
    return max((u / r for u, r in zip(draft.used, draft.room, strict=True) if r > 0), default=1.0)


def merge(
    drafts: list[Draft],
    options_for: Callable[[Requirements], Sequence[Option]],
    threshold: float = MERGE_UTILISATION,
    limit: int = MERGE_CANDIDATES,
    conflict: Callable[[Draft, Draft], bool] | None = None,
) -> list[Draft]:
    """Merge pairs of drafts while a merge lowers cost; returns the drafts, merged ones in place.

    Greedy and deterministic: the emptiest draft first, merged with the partner that saves the
    most (ties: the earlier draft), repeated until no pair of light drafts saves anything.
    ``conflict`` vetoes pairs whose pods may not share a node (exclusive groups).
    """
    out = list(drafts)
    intersections: dict[tuple[Requirements, Requirements], Requirements | None] = {}
    while True:
        light = sorted(
            (i for i, d in enumerate(out) if utilisation(d) <= threshold),
            key=lambda i: (utilisation(out[i]), i),
        )[:limit]
        best: tuple[float, int, int, Draft] | None = None
        for a_pos, a in enumerate(light):
            for b in light[a_pos + 1 :]:
                if conflict is not None and conflict(out[a], out[b]):
                    continue
                merged = _merged(out[a], out[b], options_for, intersections)
                if merged is None:
                    continue
                saving = out[a].price + out[b].price - merged.price
                if saving > 1e-9 and (best is None or saving > best[0] + 1e-12):
                    best = (saving, min(a, b), max(a, b), merged)
            if best is not None:
                break  # merge the emptiest draft that can be merged, then look again
        if best is None:
            return out
        _, first, second, merged = best
        out[first] = merged
        del out[second]


def _merged(
    a: Draft,
    b: Draft,
    options_for: Callable[[Requirements], Sequence[Option]],
    intersections: dict[tuple[Requirements, Requirements], Requirements | None],
) -> Draft | None:
    pair = (a.requirements, b.requirements)
    if pair not in intersections:
        both = a.requirements.intersect(b.requirements)
        intersections[pair] = both if both.is_satisfiable() else None
    reqs = intersections[pair]
    if reqs is None:
        return None
    used = tuple(x + y for x, y in zip(a.used, b.used, strict=True))
    option = cheapest_fit(options_for(reqs), used)
    if option is None:
        return None
    contents = dict(a.contents)
    for key, count in b.contents.items():
        contents[key] = contents.get(key, 0) + count
    return Draft(reqs, used, contents, option.price, option.room)
