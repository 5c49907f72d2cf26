"""The ``jitnode.io/disrupting`` node annotation: a disruption in progress, written down (pure).

The launcher writes it (with the ``jitnode.io/disrupted:NoSchedule`` taint, in one patch) before
it creates replacements or evicts anything, so a launcher that restarts mid-way finds the node,
reads why and since when it was being disrupted and which replacement NodeClaims it waits for,
and carries on: the drain is level-triggered, not remembered in memory.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import orjson

from shared import labels
from shared.api._fields import format_time

EMPTY: Final = "Empty"
UNDERUTILIZED: Final = "Underutilized"
EXPIRED: Final = "Expired"
DRIFTED: Final = "Drifted"
# An interruption notice (Spot, scheduled change, instance stopping): forceful, see launcher.interruption.
INTERRUPTED: Final = "Interrupted"
UNKNOWN: Final = "Unknown"
VOLUNTARY: Final = frozenset({EMPTY, UNDERUTILIZED, DRIFTED})


@dataclass(frozen=True)
class Mark:
    """Why and since when a node is being disrupted, and the replacements it waits for."""

    reason: str
    since: datetime
    replacements: tuple[str, ...] = ()
    # When the node must be gone (an interruption notice): the drain starts by then, Ready
    # replacements or not, and the NodeClaim is deleted by it (see ``launcher.interruption``).
    deadline: datetime | None = None

    @property
    def voluntary(self) -> bool:
        return self.reason in VOLUNTARY

    def to_annotation(self) -> str:
        body = {
            "reason": self.reason,
            "since": format_time(self.since),
            "replacements": list(self.replacements),
        }
        if self.deadline is not None:
            body["deadline"] = format_time(self.deadline)
        return orjson.dumps(body).decode()

    @classmethod
    def parse(cls, value: str | None, fallback_since: datetime) -> Mark:
        """Read an annotation value; anything unreadable still means "being disrupted"."""
        try:
            raw = orjson.loads(value or "")
        except orjson.JSONDecodeError:
            return cls(UNKNOWN, fallback_since)
        if not isinstance(raw, Mapping):
            return cls(UNKNOWN, fallback_since)
        reason = raw.get("reason")
        replacements = raw.get("replacements")
        return cls(
            reason=reason if isinstance(reason, str) and reason else UNKNOWN,
            since=_time(raw.get("since")) or fallback_since,
            replacements=tuple(r for r in replacements if isinstance(r, str))
            if isinstance(replacements, list)
            else (),
            deadline=_time(raw.get("deadline")),
        )


def _time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def has_disrupted_taint(node: Mapping[str, Any]) -> bool:
    taints = (node.get("spec") or {}).get("taints") or []
    return any(isinstance(t, Mapping) and t.get("key") == labels.DISRUPTED_TAINT for t in taints)


def node_mark(node: Mapping[str, Any], now: datetime) -> Mark | None:
    """The node's mark, or None when it is not being disrupted (neither annotation nor taint)."""
    annotations = (node.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(labels.DISRUPTING_ANNOTATION)
    if value is None and not has_disrupted_taint(node):
        return None
    return Mark.parse(value if isinstance(value, str) else None, now)
