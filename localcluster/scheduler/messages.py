"""kube-scheduler's failure messages, character for character.

The PodScheduled condition and the FailedScheduling event carry ``FitError.Error()``: the
number of nodes, then a histogram of reasons as ``"<count> <reason>"`` strings sorted as plain
strings (so ``"10 ..."`` sorts before ``"2 ..."``, as in Go), then the preemption post-filter's
own histogram. Tools (and jitnode's launcher) parse these, so the format is kept exact. Pure.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Final

from .filters import NodeStatus

NO_NODES_AVAILABLE: Final = "no nodes available to schedule pods"
PREEMPTION_NOT_HELPFUL: Final = "Preemption is not helpful for scheduling"
NO_PREEMPTION_VICTIMS: Final = "No preemption victims found for incoming pod"
PREEMPTION_NEVER: Final = "not eligible due to preemptionPolicy=Never."
REASON_UNSCHEDULABLE: Final = "Unschedulable"
REASON_SCHEDULER_ERROR: Final = "SchedulerError"


def histogram(reasons: Iterable[str]) -> str:
    """``"1 node(s) ..., 2 Insufficient cpu"``: counts per reason, sorted as strings."""
    counts = Counter(reasons)
    return ", ".join(sorted(f"{count} {reason}" for reason, count in counts.items()))


def fit_error(num_all_nodes: int, statuses: Mapping[str, NodeStatus]) -> str:
    """``FitError.Error()`` without the post-filter part: ``0/3 nodes are available: 3 Insufficient cpu.``"""
    reasons = (reason for status in statuses.values() for reason in status.reasons)
    return f"0/{num_all_nodes} nodes are available: {histogram(reasons)}."


def preemption_message(statuses: Mapping[str, NodeStatus], *, preempt_never: bool = False) -> str:
    """DefaultPreemption's post-filter message when it finds no victim to evict.

    No pod is ever preempted here: nodes that failed for a resolvable reason (resources) report
    that no victims were found, the others that preemption would not help, as kube-scheduler
    does when no lower-priority pod could make room.
    """
    if preempt_never:
        return f"preemption: {PREEMPTION_NEVER}"
    reasons = (NO_PREEMPTION_VICTIMS if s.resolvable else PREEMPTION_NOT_HELPFUL for s in statuses.values())
    return f"preemption: 0/{len(statuses)} nodes are available: {histogram(reasons)}."


def unschedulable_message(
    num_all_nodes: int, statuses: Mapping[str, NodeStatus], *, preempt_never: bool = False
) -> str:
    """The full message of an Unschedulable pod (condition and event)."""
    if num_all_nodes == 0:
        return NO_NODES_AVAILABLE
    return f"{fit_error(num_all_nodes, statuses)} {preemption_message(statuses, preempt_never=preempt_never)}"


def scheduled_message(namespace: str, name: str, node: str) -> str:
    """The Scheduled event's message."""
    return f"Successfully assigned {namespace}/{name} to {node}"


def binding_rejected_message(error: str) -> str:
    return f"Binding rejected: {error}"
