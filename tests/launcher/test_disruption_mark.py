"""The disruption mark survives a round trip and never reads as "not disrupting" when present."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from launcher.disruption.budgets import BudgetTracker
from launcher.disruption.mark import EXPIRED, UNKNOWN, Mark, node_mark
from shared import labels
from shared.api.nodepool import NodePool

NOW = datetime(2025, 1, 1, tzinfo=UTC)


@given(
    reason=st.sampled_from(["Empty", "Underutilized", "Expired"]),
    names=st.lists(st.from_regex(r"[a-z0-9-]{1,20}", fullmatch=True), max_size=3),
    seconds=st.integers(0, 10**8),
)
def test_mark_round_trips(reason: str, names: list[str], seconds: int) -> None:
    mark = Mark(reason, datetime.fromtimestamp(seconds, tz=UTC), tuple(names))
    assert Mark.parse(mark.to_annotation(), NOW) == mark


def test_unreadable_annotation_still_marks_the_node() -> None:
    node = {"metadata": {"annotations": {labels.DISRUPTING_ANNOTATION: "not json"}}}
    assert node_mark(node, NOW) == Mark(UNKNOWN, NOW)


def test_taint_alone_marks_the_node_and_neither_means_none() -> None:
    tainted = {"metadata": {}, "spec": {"taints": [{"key": labels.DISRUPTED_TAINT, "effect": "NoSchedule"}]}}
    assert node_mark(tainted, NOW) == Mark(UNKNOWN, NOW)
    assert node_mark({"metadata": {"annotations": {}}, "spec": {"taints": []}}, NOW) is None


def test_voluntary_reasons() -> None:
    assert Mark("Empty", NOW).voluntary
    assert not Mark(EXPIRED, NOW).voluntary


def _pool(nodes: str) -> NodePool:
    return NodePool.from_api(
        {
            "apiVersion": "jitnode.io/v1",
            "kind": "NodePool",
            "metadata": {"name": "p"},
            "spec": {
                "template": {
                    "spec": {"nodeClassRef": {"group": "jitnode.io", "kind": "EC2NodeClass", "name": "d"}}
                },
                "disruption": {"budgets": [{"nodes": nodes}]},
            },
        }
    )


@given(total=st.integers(0, 200), percent=st.integers(0, 100), disrupting=st.integers(0, 20))
def test_tracker_never_hands_out_more_than_the_budget(total: int, percent: int, disrupting: int) -> None:
    tracker = BudgetTracker({"p": _pool(f"{percent}%")}, {"p": total}, NOW, {"p": disrupting})
    taken = 0
    while tracker.try_take("p", "Empty"):
        taken += 1
        assert taken <= total
    allowed = -(-total * percent // 100)  # rounded up, like Karpenter
    assert taken == max(0, min(total, allowed) - disrupting)


def test_forced_disruption_counts_against_the_budget() -> None:
    tracker = BudgetTracker({"p": _pool("2")}, {"p": 10}, NOW)
    tracker.force("p")
    assert tracker.remaining("p", "Empty") == 1
    assert tracker.remaining("unknown", "Empty") == 0
