"""Which pods are capacity demand: the pod-watch rule both the extender and the launcher apply.

A pod is demand while it is pending with ``PodScheduled=False``, reason ``Unschedulable`` (the
verdict of any scheduler), not bound, not terminal, not being deleted, and not tied to one node
(DaemonSet and mirror pods, which a new node cannot host). Two independent watchers judge pods
by this one rule (the extender's, and the launcher's own as a second source), so they can never
disagree about what counts. Pure: a pod dict in, a verdict out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.pods import is_bound, is_daemonset_pod, is_mirror_pod, is_terminal, unschedulable_condition


@dataclass(frozen=True)
class Pending:
    """The pod is unschedulable demand; ``since`` is when the scheduler said so (epoch seconds)."""

    since: float | None


@dataclass(frozen=True)
class Gone:
    """The pod is no longer demand: ``why``; ``verdict_only`` when only an Unschedulable report
    must go (a prediction about a pod that is merely not yet scheduled may stay)."""

    why: str
    verdict_only: bool = False


def judge(pod: Mapping[str, Any]) -> Pending | Gone | None:
    """The verdict on ``pod`` (None: not demand, and nothing reported about it needs to go)."""
    meta = pod.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return Gone("deleting")
    if is_terminal(pod):
        return Gone("terminal")
    if is_bound(pod):
        return Gone("bound", verdict_only=True)
    condition = unschedulable_condition(pod)
    if condition is None:
        return Gone("no longer unschedulable", verdict_only=True)
    if is_daemonset_pod(pod) or is_mirror_pod(pod):
        return None
    return Pending(_epoch(condition.get("lastTransitionTime")))


def _epoch(value: object) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
