"""metav1.Condition rules shared by every status here (pure).

A *condition set* is a root condition (``Ready``) over dependent conditions, as Karpenter's
operatorpkg has it: ``Ready`` is True when every dependent is True, False ("UnhealthyDependents")
as soon as one is False, and Unknown ("ReconcilingDependents") while none is False but some are
not yet known. ``lastTransitionTime`` moves only when a condition's status does, so watchers can
tell how long something has been broken; whole seconds, as metav1.Time stores them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, Final

from shared.api._fields import Checker
from shared.api.meta import Condition, parse_conditions

READY: Final = "Ready"
TRUE: Final = "True"
FALSE: Final = "False"
UNKNOWN: Final = "Unknown"
AWAITING_RECONCILIATION: Final = "AwaitingReconciliation"
UNHEALTHY_DEPENDENTS: Final = "UnhealthyDependents"
RECONCILING_DEPENDENTS: Final = "ReconcilingDependents"
# The API server's limits on reason and message (metav1.Condition validation).
MAX_REASON: Final = 1024
MAX_MESSAGE: Final = 32768


def true(type_: str, reason: str = "", message: str = "") -> Condition:
    """A True condition; the reason defaults to the type, as Karpenter's SetTrue does."""
    return Condition(type_, TRUE, reason or type_, message)


def false(type_: str, reason: str, message: str) -> Condition:
    return Condition(type_, FALSE, reason, message)


def unknown(type_: str, reason: str = AWAITING_RECONCILIATION, message: str = "") -> Condition:
    return Condition(type_, UNKNOWN, reason, message or "object is awaiting reconciliation")


def root(dependents: Sequence[Condition], type_: str = READY) -> Condition:
    """The root condition over ``dependents`` (see the module docstring)."""
    unhealthy = [c for c in dependents if c.status != TRUE]
    if not unhealthy:
        return true(type_)
    summary = ", ".join(f"{c.type}={c.status}" for c in unhealthy)
    if any(c.status == FALSE for c in unhealthy):
        return false(type_, UNHEALTHY_DEPENDENTS, summary)
    return Condition(type_, UNKNOWN, RECONCILING_DEPENDENTS, summary)


def explain(dependents: Iterable[Condition]) -> str:
    """Why a set is not ready, one ``Type=Status, message`` per unhealthy dependent."""
    return "; ".join(
        f"{c.type}={c.status}, {c.message}" if c.message else f"{c.type}={c.status}"
        for c in dependents
        if c.status != TRUE
    )


def parse(raw: object) -> tuple[Condition, ...]:
    """Conditions as stored; malformed entries are skipped (we are about to rewrite them)."""
    if not isinstance(raw, list):
        return ()
    good = []
    for item in raw:
        if not isinstance(item, Mapping):
            continue
        check = Checker()
        parsed = parse_conditions({"conditions": [item]}, check, "status")
        if parsed and not check.errors:
            good.append(parsed[0])
    return tuple(good)


def merge(
    previous: Sequence[Condition],
    wanted: Sequence[Condition],
    now: datetime,
    generation: int | None = None,
    *,
    remove: Iterable[str] = (),
) -> tuple[Condition, ...]:
    """``previous`` with ``wanted`` set and the types in ``remove`` cleared.

    A wanted condition keeps its previous ``lastTransitionTime`` while its status is unchanged;
    otherwise it gets ``now``. Conditions of other types (another writer's) stay as they were,
    in place; new ones are appended in the order given.
    """
    stamp = now.replace(microsecond=0)
    wanted_by_type = {c.type: c for c in wanted}
    gone = set(remove) - wanted_by_type.keys()
    out: list[Condition] = []
    done: set[str] = set()
    for old in previous:
        if old.type in gone or old.type in done:
            continue
        new = wanted_by_type.get(old.type)
        if new is None:
            out.append(old)
        else:
            out.append(_stamped(new, old, stamp, generation))
        done.add(old.type)
    for new in wanted:
        if new.type not in done:
            out.append(_stamped(new, None, stamp, generation))
            done.add(new.type)
    return tuple(out)


def _stamped(new: Condition, old: Condition | None, now: datetime, generation: int | None) -> Condition:
    kept = old is not None and old.status == new.status and old.last_transition_time is not None
    return replace(
        new,
        reason=new.reason[:MAX_REASON],
        message=new.message[:MAX_MESSAGE],
        last_transition_time=old.last_transition_time if kept and old is not None else now,
        observed_generation=generation,
    )


def to_api(conditions: Iterable[Condition]) -> list[dict[str, Any]]:
    return [c.to_api() for c in conditions]


def find(conditions: Iterable[Condition], type_: str) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)
