"""The launcher's own pod watch as a demand source, and how the book merges it with extenders'."""

from __future__ import annotations

from typing import Any

from launcher.demand.book import OWN_WATCH, DemandBook
from launcher.demand.podwatch import PodWatchDemand
from launcher.provisioning.provisioner import source_kind
from shared.demand import PodDemand, Snapshot
from shared.pendingpods import Gone, Pending, judge

SCHEDULED_AT = "2026-12-02T10:00:00Z"


def pod(uid: str = "u1", **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "metadata": {"name": f"p-{uid}", "namespace": "default", "uid": uid},
        "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}]},
        "status": {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "lastTransitionTime": SCHEDULED_AT,
                }
            ],
        },
    }
    for key, value in changes.items():
        body[key] = {**body[key], **value}
    return body


def test_the_rule_both_watches_apply() -> None:
    assert judge(pod()) == Pending(1796205600.0)
    assert judge(pod(spec={"nodeName": "n1"})) == Gone("bound", verdict_only=True)
    assert judge(pod(status={"phase": "Succeeded"})) == Gone("terminal")
    assert judge(pod(metadata={"deletionTimestamp": SCHEDULED_AT})) == Gone("deleting")
    assert judge(pod(status={"phase": "Pending", "conditions": []})) == Gone(
        "no longer unschedulable", verdict_only=True
    )
    daemon = {"ownerReferences": [{"kind": "DaemonSet", "name": "d", "controller": True}]}
    assert judge(pod(metadata=daemon)) is None


def test_watch_reports_unschedulable_pods_once_and_withdraws_them() -> None:
    book = DemandBook()
    watch = PodWatchDemand(book, clock=lambda: 5.0, monotonic=lambda: 1.0)
    watch.on_added(pod("u1"))
    watch.on_modified(pod("u1"), pod("u1"))
    assert list(book.current()) == ["u1"]
    assert book.origin("u1") == OWN_WATCH
    assert book.current()["u1"].first_seen == 1796205600.0  # the scheduler's verdict time
    version = book.version
    watch.on_modified(pod("u1"), pod("u1"))
    assert book.version == version, "a repeat event must not churn the book"
    watch.on_modified(pod("u1"), pod("u1", spec={"nodeName": "n1"}))
    assert dict(book.current()) == {}
    assert len(watch) == 0


def test_deleting_a_pod_the_watch_never_reported_changes_nothing() -> None:
    book = DemandBook()
    watch = PodWatchDemand(book)
    version = book.version
    watch.on_deleted(pod("never-seen"))
    watch.on_added(pod("bound", spec={"nodeName": "n1"}))
    assert book.version == version


def test_an_unreadable_pod_is_logged_not_raised() -> None:
    book = DemandBook()
    watch = PodWatchDemand(book)
    broken = pod("bad", spec={"containers": [{"name": "c", "resources": {"requests": {"cpu": "lots"}}}]})
    watch.on_added(broken)
    assert dict(book.current()) == {}


def test_a_pod_both_report_is_one_demand_credited_to_the_extender() -> None:
    book = DemandBook()
    watch = PodWatchDemand(book)
    seen = pod("u1")
    extender_report = PodDemand.from_pod(seen, "unschedulable", 1796205600.0)
    book.connected("extender-0", 0.0)
    book.apply(Snapshot(1, "extender-0", (extender_report,)), 0.0)
    watch.on_added(seen)
    assert list(book.current()) == ["u1"]
    assert book.origin("u1") == "extender-0", "on a tie the extender's report is credited"
    # The extender goes away and its picture expires: the watch's report keeps the pod planned.
    book.disconnected("extender-0", 1.0)
    book.expire(1.0 + book.grace_period)
    assert list(book.current()) == ["u1"]
    assert book.origin("u1") == OWN_WATCH


def test_an_earlier_extender_signal_wins_a_later_watch_report() -> None:
    book = DemandBook()
    watch = PodWatchDemand(book)
    early = PodDemand.from_pod(pod("u1"), "unschedulable", 1796205500.0)
    watch.on_added(pod("u1"))
    book.apply(Snapshot(1, "extender-0", (early,)), 0.0)
    assert book.origin("u1") == "extender-0"
    assert book.current()["u1"].first_seen == 1796205500.0


def test_metric_label_of_each_source() -> None:
    assert source_kind(OWN_WATCH) == "pod-watch"
    assert source_kind("extender-7f9c") == "extender"
