"""From the status stored to the one wanted: the merge patch, or None when there is nothing to do (pure).

Only the keys a writer owns are compared, so fields written by others (the lifecycle's
``providerID``, ``lastPodEventTime``) are never touched. Maps are patched key by key (a key that
should go is sent as null, as merge patch removes keys); lists and scalars are replaced.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def diff(current: Mapping[str, Any], wanted: Mapping[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in keys:
        old, new = current.get(key), wanted.get(key)
        if old == new:
            continue
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            out[key] = diff(old, new, set(old) | set(new))
        else:
            out[key] = new
    return out


def status_patch(
    current: Mapping[str, Any] | None, wanted: Mapping[str, Any], keys: Iterable[str]
) -> dict[str, Any] | None:
    """The ``status`` merge patch turning ``current`` into ``wanted`` over ``keys``; None if equal."""
    patch = diff(current or {}, wanted, keys)
    return patch or None
