"""When a node's consolidateAfter clock starts: at the last pod's disappearance (pure, fake clock).

The scenario of the demo bug: pods are deleted (a ``deletionTimestamp`` appears), their kubelet
takes a couple of seconds to stop them, and only then is the node empty. The node must go no
earlier than ``consolidateAfter`` after the pods were gone, even while the claim the informer
shows still carries an old ``lastPodEventTime`` (the new stamp is not persisted yet).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from launcher.disruption.decisions import Decisions, NodeInfo, Snapshot, decide
from launcher.disruption.inputs import node_info
from launcher.disruption.mark import EMPTY
from launcher.disruption.podevents import PodEventTracker, present_pods, recorded_pod_event
from launcher.model import InstanceType, Offering
from launcher.planner import PoolView
from shared import labels
from shared.api._fields import format_time
from shared.api.nodeclaim import NodeClaim
from shared.api.nodepool import NodePool
from shared.resources import Resources

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
LONG_AGO = T0 - timedelta(hours=1)
AFTER = timedelta(seconds=30)
GIB = 1024**3
TYPES = {
    "big": InstanceType(
        name="big",
        labels={labels.INSTANCE_TYPE: "big", labels.ARCH: "amd64", labels.OS: "linux"},
        capacity=Resources(cpu=8000, memory=32 * GIB, pods=110),
        allocatable=Resources(cpu=8000, memory=32 * GIB, pods=110),
        offerings=(Offering("us-east-1a", "on-demand", 0.4),),
    )
}


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def pool_view(policy: str = "WhenEmpty") -> PoolView:
    parsed = NodePool.from_api(
        {
            "apiVersion": "jitnode.io/v1",
            "kind": "NodePool",
            "metadata": {"name": "default"},
            "spec": {
                "template": {
                    "spec": {
                        "nodeClassRef": {"group": "jitnode.io", "kind": "EC2NodeClass", "name": "default"}
                    }
                },
                "disruption": {"consolidationPolicy": policy, "consolidateAfter": "30s"},
            },
        }
    )
    return PoolView(parsed, parsed.requirements())


def claim(last_pod_event: datetime | None = LONG_AGO) -> NodeClaim:
    status: dict[str, Any] = {
        "nodeName": "n1",
        "conditions": [
            {
                "type": t,
                "status": "True",
                "reason": t,
                "message": "",
                "lastTransitionTime": format_time(LONG_AGO),
            }
            for t in ("Launched", "Registered", "Initialized", "Ready")
        ],
    }
    if last_pod_event is not None:
        status["lastPodEventTime"] = format_time(last_pod_event)
    return NodeClaim.from_api(
        {
            "apiVersion": "jitnode.io/v1",
            "kind": "NodeClaim",
            "metadata": {
                "name": "claim-n1",
                "labels": {labels.NODEPOOL: "default"},
                "creationTimestamp": format_time(LONG_AGO),
            },
            "spec": {
                "nodeClassRef": {"group": "jitnode.io", "kind": "EC2NodeClass", "name": "default"},
                "requirements": [],
            },
            "status": status,
        }
    )


NODE: dict[str, Any] = {
    "metadata": {
        "name": "n1",
        "labels": {
            labels.NODEPOOL: "default",
            labels.NODECLAIM: "claim-n1",
            labels.INSTANCE_TYPE: "big",
            labels.ZONE: "us-east-1a",
            labels.CAPACITY_TYPE: "on-demand",
        },
    },
    "spec": {},
    "status": {
        "allocatable": {"cpu": "8", "memory": "32Gi", "pods": "110"},
        "conditions": [{"type": "Ready", "status": "True"}],
    },
}


def pod(
    name: str,
    *,
    deleting_since: datetime | None = None,
    phase: str = "Running",
    daemonset: bool = False,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "default", "uid": f"uid-{name}"}
    if deleting_since is not None:
        meta["deletionTimestamp"] = format_time(deleting_since)
        meta["deletionGracePeriodSeconds"] = 30
    if daemonset:
        meta["ownerReferences"] = [
            {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "ds", "uid": "ds", "controller": True}
        ]
    return {
        "metadata": meta,
        "spec": {
            "nodeName": "n1",
            "containers": [{"name": "c", "image": "x", "resources": {"requests": {"cpu": "500m"}}}],
        },
        "status": {"phase": phase, "conditions": [{"type": "Ready", "status": "True"}]},
    }


class Round:
    """One disruption round as the controller runs it: observe pod events, snapshot, decide."""

    def __init__(self, policy: str = "WhenEmpty") -> None:
        self.tracker = PodEventTracker()
        self.view = pool_view(policy)
        # The claim as the informer shows it: its persisted stamp lags (never updated here).
        self.claim = claim()

    def __call__(self, now: datetime, pods_here: list[dict[str, Any]]) -> tuple[Decisions, NodeInfo]:
        self.tracker.observe({self.claim.name: present_pods(pods_here)}, now)
        info = node_info(
            NODE, self.claim, pods_here, TYPES, now, pod_event=self.tracker.last_event(self.claim)
        )
        snapshot = Snapshot(nodes=[info], pools={"default": self.view}, types=TYPES, now=now)
        return decide(snapshot), info


def removed(decisions: Decisions) -> dict[str, str]:
    return {a.node: a.reason for a in decisions.actions}


def test_empty_clock_starts_when_the_terminating_pod_is_gone_not_at_its_deletion() -> None:
    round_ = Round()
    web = pod("web")
    assert removed(round_(at(0), [web, pod("ds", daemonset=True)])[0]) == {}
    # Deletion requested at t=100; the pod still runs (terminating) until t=102.3.
    terminating = pod("web", deleting_since=at(100))
    for t in (100, 101, 102):
        decisions, info = round_(at(t), [terminating])
        assert not info.empty
        assert info.terminating == 1
        assert removed(decisions) == {}, f"removed at t={t} while its pod was still terminating"
    gone_at = 102.3
    decisions, info = round_(at(gone_at), [pod("ds", daemonset=True)])
    assert info.empty
    assert removed(decisions) == {}
    assert decisions.recheck_at == at(gone_at) + AFTER
    # 30 s after the deletion request, but not after the pod was gone: still kept.
    assert removed(round_(at(130), [])[0]) == {}
    assert removed(round_(at(gone_at + 29.9), [])[0]) == {}
    assert removed(round_(at(gone_at + 30), [])[0]) == {"n1": EMPTY}


def test_a_pod_that_turns_terminal_is_gone_at_that_moment() -> None:
    round_ = Round()
    round_(at(0), [pod("job")])
    decisions, info = round_(at(50), [pod("job", phase="Succeeded")])
    assert info.empty
    assert removed(decisions) == {}
    assert decisions.recheck_at == at(80)
    assert removed(round_(at(80), [pod("job", phase="Succeeded")])[0]) == {"n1": EMPTY}


def test_terminating_pods_do_not_make_a_node_underutilized_either() -> None:
    round_ = Round("WhenEmptyOrUnderutilized")
    round_(at(0), [pod("web")])
    decisions, info = round_(at(3600), [pod("web", deleting_since=at(3600))])
    assert not info.pods
    assert info.terminating == 1
    assert removed(decisions) == {}


def test_daemonset_pods_are_no_pod_events() -> None:
    round_ = Round()
    round_(at(0), [])
    decisions, _ = round_(at(1), [pod("ds", daemonset=True)])
    assert removed(decisions) == {"n1": EMPTY}  # the claim's old stamp stands


def test_first_observation_is_not_an_event_and_the_persisted_stamp_wins_when_newer() -> None:
    tracker = PodEventTracker()
    assert tracker.observe({"claim-n1": frozenset({"a"})}, at(0)) == []
    assert tracker.last_event(claim(LONG_AGO)) == LONG_AGO
    assert tracker.observe({"claim-n1": frozenset()}, at(10)) == ["claim-n1"]
    assert tracker.last_event(claim(LONG_AGO)) == at(10)
    assert tracker.last_event(claim(at(20))) == at(20)
    tracker.observe({}, at(30))  # the claim is gone: forgotten
    assert tracker.last_event(claim(LONG_AGO)) == LONG_AGO
    assert recorded_pod_event(claim(None)) == LONG_AGO  # Initialized time


@settings(max_examples=60, deadline=None)
@given(
    arrivals=st.lists(st.integers(min_value=0, max_value=200), min_size=1, max_size=5),
    grace=st.integers(min_value=0, max_value=40),
    step=st.integers(min_value=1, max_value=7),
)
def test_never_removed_before_consolidate_after_since_the_last_pod_was_gone(
    arrivals: list[int], grace: int, step: int
) -> None:
    """Pods come and go on a fake clock (each terminates for ``grace`` s); rounds every ``step`` s."""
    round_ = Round()
    # (bound, deleted, gone); the first pod is there from the start, so the node is never idle.
    lives = [(start, start + 20, start + 20 + grace) for start in [0, *arrivals]]
    last_gone = max(gone for _, _, gone in lives)
    removed_at: int | None = None
    for t in range(0, last_gone + 60, step):
        pods_here = [
            pod(f"p{i}", deleting_since=at(deleted) if t >= deleted else None)
            for i, (bound, deleted, gone) in enumerate(lives)
            if bound <= t < gone
        ]
        if removed(round_(at(t), pods_here)[0]):
            removed_at = t
            break
    assert removed_at is not None
    busy = [(bound, gone) for bound, _, gone in lives]
    # Wherever it was removed, no pod was present, and the last one left at least 30 s before.
    assert not any(bound <= removed_at < gone for bound, gone in busy)
    left = [gone for _, gone in busy if gone <= removed_at]
    if left:
        assert removed_at - max(left) >= AFTER.total_seconds()
    # Not much later either: the gone pod is seen one round late at most, the clock's end too.
    assert left
    assert removed_at <= max(left) + AFTER.total_seconds() + 2 * step


def test_node_info_names_the_inter_pod_constraint_of_each_pod() -> None:
    spread = pod("spread")
    spread["spec"]["topologySpreadConstraints"] = [
        {"maxSkew": 1, "topologyKey": labels.ZONE, "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {}}
    ]
    info = node_info(NODE, claim(), [spread, pod("plain")], TYPES, T0)
    constraints = {p.demand.name: p.inter_pod_constraint for p in info.pods}
    assert constraints == {"spread": f"a DoNotSchedule topology spread on {labels.ZONE}", "plain": None}
