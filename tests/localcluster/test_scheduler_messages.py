"""kube-scheduler's failure messages, compared with strings real clusters print."""

from __future__ import annotations

from localcluster.scheduler.filters import NodeStatus
from localcluster.scheduler.messages import histogram, unschedulable_message


def test_insufficient_cpu_message_matches_fixture_readme() -> None:
    statuses = {f"n{i}": NodeStatus(("Insufficient cpu",)) for i in range(3)}
    assert unschedulable_message(3, statuses) == (
        "0/3 nodes are available: 3 Insufficient cpu. "
        "preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod."
    )


def test_mixed_reasons_sorted_as_strings_with_preemption_split() -> None:
    statuses = {
        "a": NodeStatus(
            ("node(s) had untolerated taint {machine-check-exception: memory}",), resolvable=False
        ),
        "b": NodeStatus(("Insufficient cpu",)),
        "c": NodeStatus(("Insufficient cpu",)),
    }
    # Observed on a real cluster (kube-scheduler 1.2x).
    assert unschedulable_message(3, statuses) == (
        "0/3 nodes are available: 1 node(s) had untolerated taint {machine-check-exception: memory}, "
        "2 Insufficient cpu. preemption: 0/3 nodes are available: 1 Preemption is not helpful for "
        "scheduling, 2 No preemption victims found for incoming pod."
    )


def test_histogram_sorts_counts_as_text_like_go() -> None:
    assert histogram(["b"] * 10 + ["a"] * 2) == "10 b, 2 a"


def test_several_reasons_on_one_node_each_count() -> None:
    statuses = {"a": NodeStatus(("Insufficient cpu", "Insufficient memory"))}
    assert unschedulable_message(1, statuses).startswith(
        "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory. preemption: 0/1 nodes"
    )


def test_no_nodes_and_extender_dropping_everything() -> None:
    assert unschedulable_message(0, {}) == "no nodes available to schedule pods"
    # An extender that answers an empty list without FailedNodes leaves no reason at all.
    assert unschedulable_message(3, {}).startswith("0/3 nodes are available: . preemption:")


def test_preemption_policy_never() -> None:
    statuses = {"a": NodeStatus(("Insufficient cpu",))}
    assert unschedulable_message(1, statuses, preempt_never=True) == (
        "0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to preemptionPolicy=Never."
    )
