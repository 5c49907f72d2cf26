"""The invariant checker can fail: each violation kind, from the pure decisions up to a real stack.

Pure decisions first (every kind, and what must not count), then the observer on a bare local
cluster (pods made healthy by hand: a broken budget, lost demand, a watch that gets 410 Gone),
then one run on the full stack: an instance launched behind jitnode's back is reported as a
leak until leak collection terminates it, and a pod no NodePool can serve is reported as not
Running but not as lost demand, since the launcher says why.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from kubernetes_asyncio import client

from localcluster.apiserver.errors import gone
from localcluster.chaos.decisions import (
    DEMAND_LOST,
    INSTANCE_WITHOUT_CLAIM,
    LEAKED_INSTANCE,
    MORE_INSTANCES_THAN_CLAIMS,
    PDB_VIOLATED,
    POD_NOT_RUNNING,
    BudgetView,
    ClaimView,
    InstanceView,
    PodFate,
    PodView,
    budget_breaches,
    budget_violations,
    demand_lost,
    instance_violations,
    nodes_lost_to_ec2,
    pods_not_running,
)
from localcluster.chaos.invariants import RunObserver, Violation, check_invariants, stack_leak_collection
from localcluster.cluster import LocalCluster
from localcluster.stack import JitnodeStack
from shared import labels
from shared.podaffinity import label_selector
from tests.chaos.conftest import LEAK_GRACE

CLUSTER = "jitnode-local"

# Instances and claims ----------------------------------------------------------------------------


def _instance(
    iid: str, claim: str | None, *, state: str = "running", cluster: str | None = CLUSTER
) -> InstanceView:
    return InstanceView(id=iid, state=state, cluster=cluster, nodeclaim=claim)


def test_an_instance_whose_claim_records_it_is_fine() -> None:
    claims = [ClaimView("a", "i-1"), ClaimView("b", None)]
    assert instance_violations([_instance("i-1", "a")], claims, CLUSTER) == []


def test_an_instance_no_claim_names_is_a_leak() -> None:
    violations = instance_violations([_instance("i-9", "gone-claim")], [ClaimView("a", None)], CLUSTER)
    assert [v.invariant for v in violations] == [LEAKED_INSTANCE]
    assert "i-9" in violations[0].detail


def test_a_second_instance_for_one_claim_has_no_claim_and_outnumbers_the_claims() -> None:
    instances = [_instance("i-1", "a"), _instance("i-2", "a")]
    violations = instance_violations(instances, [ClaimView("a", "i-1")], CLUSTER)
    assert [v.invariant for v in violations] == [INSTANCE_WITHOUT_CLAIM, MORE_INSTANCES_THAN_CLAIMS]
    assert "i-2" in violations[0].detail


def test_terminated_and_foreign_instances_do_not_count() -> None:
    instances = [
        _instance("i-1", None, state="terminated"),
        _instance("i-2", None, state="shutting-down"),
        _instance("i-3", None, cluster="another-cluster"),
        _instance("i-4", None, cluster=None),
    ]
    assert instance_violations(instances, [], CLUSTER) == []


def test_claims_read_the_instance_from_the_provider_id_too() -> None:
    claim = ClaimView.from_object(
        {"metadata": {"name": "a"}, "status": {"providerID": "aws:///us-east-1a/i-0abc"}}
    )
    assert claim == ClaimView("a", "i-0abc")
    described = {
        "InstanceId": "i-0abc",
        "State": {"Name": "running"},
        "Tags": [{"Key": labels.TAG_CLUSTER, "Value": CLUSTER}, {"Key": labels.TAG_NODECLAIM, "Value": "a"}],
    }
    assert instance_violations([InstanceView.from_described(described)], [claim], CLUSTER) == []


@given(
    st.lists(st.tuples(st.sampled_from(["a", "b", "c", None]), st.booleans()), max_size=6),
    st.sets(st.sampled_from(["a", "b", "c"])),
)
def test_no_violation_exactly_when_every_live_instance_is_recorded(
    raw: list[tuple[str | None, bool]], claim_names: set[str]
) -> None:
    instances = [_instance(f"i-{n}", claim, state="running") for n, (claim, _) in enumerate(raw)]
    recorded = {f"i-{n}" for n, (claim, rec) in enumerate(raw) if rec and claim in claim_names}
    claims = []
    for name in sorted(claim_names):
        mine = sorted(i for i in recorded if instances[int(i[2:])].nodeclaim == name)
        claims.append(ClaimView(name, mine[0] if mine else None))
    recorded_by_claims = {c.instance_id for c in claims}
    violations = instance_violations(instances, claims, CLUSTER)
    clean = all(i.id in recorded_by_claims for i in instances) and len(instances) <= len(claims)
    assert (violations == []) == clean


# PodDisruptionBudgets ---------------------------------------------------------------------------


def _pod(
    uid: str, *, ready: bool = True, app: str = "web", deleting: bool = False, ns: str = "default"
) -> PodView:
    return PodView(
        uid=uid,
        namespace=ns,
        name=f"pod-{uid}",
        labels={"app": app},
        phase="Running" if ready else "Pending",
        node_name="n1" if ready else "",
        ready=ready,
        deleting=deleting,
    )


def _broken(
    budgets: list[BudgetView],
    changes: dict[str, tuple[PodView | None, PodView | None]],
    current: list[PodView],
    excused: set[str] | None = None,
) -> list[Violation]:
    return [b.violation() for b in budget_breaches(budgets, changes, current, excused or set())]


def _budget(required: int, app: str = "web") -> BudgetView:
    return BudgetView("default", "pdb", label_selector({"matchLabels": {"app": app}}, "s"), required)


def test_a_healthy_pod_lost_below_min_available_breaks_the_budget() -> None:
    a, b = _pod("a"), _pod("b")
    violations = _broken([_budget(2)], {"b": (b, None)}, [a])
    assert [v.invariant for v in violations] == [PDB_VIOLATED]
    assert "default/pod-b" in violations[0].detail


def test_a_loss_the_budget_allows_or_the_test_declared_is_fine() -> None:
    a, b, c = _pod("a"), _pod("b"), _pod("c")
    assert _broken([_budget(2)], {"c": (c, None)}, [a, b]) == []
    assert _broken([_budget(2)], {"b": (b, None)}, [a], excused={"b"}) == []


def test_going_unready_or_terminating_is_a_loss_too() -> None:
    a, b = _pod("a"), _pod("b")
    unready = _pod("b", ready=False)
    assert _broken([_budget(2)], {"b": (b, unready)}, [a, unready]) != []
    terminating = _pod("b", deleting=True)
    assert _broken([_budget(2)], {"b": (b, terminating)}, [a, terminating]) != []


def test_pods_not_yet_healthy_and_other_workloads_break_nothing() -> None:
    a, new = _pod("a"), _pod("n", ready=False)
    assert _broken([_budget(3)], {"n": (None, new)}, [a, new]) == []  # a scale-up
    other = _pod("o", app="other")
    assert _broken([_budget(3)], {"o": (other, None)}, [a]) == []
    elsewhere = _pod("x", ns="kube-system")
    assert _broken([_budget(3)], {"x": (elsewhere, None)}, [a]) == []


def test_a_null_selector_covers_nothing() -> None:
    budget = BudgetView("default", "pdb", None, 5)
    assert _broken([budget], {"a": (_pod("a"), None)}, []) == []


def test_a_relist_batch_with_a_healthy_replacement_breaks_nothing() -> None:
    a, b, b2 = _pod("a"), _pod("b"), _pod("b2")
    assert _broken([_budget(2)], {"b": (b, None), "b2": (None, b2)}, [a, b2]) == []


def test_max_unavailable_is_judged_against_the_desired_healthy_count() -> None:
    raw = {
        "metadata": {"namespace": "default", "name": "pdb"},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "web"}}},
        "status": {"desiredHealthy": 2, "expectedPods": 3},
    }
    budget = BudgetView.from_object(raw)
    assert budget.required == 2
    a, b, c = _pod("a"), _pod("b"), _pod("c")
    assert _broken([budget], {"c": (c, None)}, [a, b]) == []
    assert _broken([budget], {"b": (b, None)}, [a]) != []


@given(st.integers(0, 6), st.integers(0, 6), st.integers(0, 6))
def test_budget_broken_exactly_when_a_loss_leaves_too_few(healthy: int, lost: int, required: int) -> None:
    remaining = [_pod(f"r{n}") for n in range(healthy)]
    changes: dict[str, tuple[PodView | None, PodView | None]] = {
        f"l{n}": (_pod(f"l{n}"), None) for n in range(lost)
    }
    broken = _broken([_budget(required)], changes, remaining) != []
    assert broken == (lost > 0 and healthy < required)


def test_a_breach_is_excused_only_when_ec2_itself_took_every_lost_pods_node() -> None:
    a, b, c = _pod("a"), _pod("b"), _pod("c")
    b_on_n2 = dataclasses.replace(b, node_name="n2")
    breaches = budget_breaches([_budget(3)], {"b": (b_on_n2, None), "c": (c, None)}, [a])
    assert len(breaches) == 1
    assert budget_violations(breaches, involuntary_nodes={"n1", "n2"}) == []
    assert [v.invariant for v in budget_violations(breaches, involuntary_nodes={"n1"})] == [PDB_VIOLATED]
    assert [v.invariant for v in budget_violations(breaches)] == [PDB_VIOLATED]


def test_nodes_lost_to_ec2_are_those_of_instances_ended_by_ec2() -> None:
    def described(iid: str, state: str, reason: str, dns: str) -> InstanceView:
        raw = {
            "InstanceId": iid,
            "State": {"Name": state},
            "StateReason": {"Code": reason},
            "PrivateDnsName": dns,
        }
        return InstanceView.from_described(raw)

    instances = [
        described("i-1", "terminated", "Server.InternalError", "ip-10-0-0-1.ec2.internal"),
        described("i-2", "terminated", "Client.UserInitiatedShutdown", "ip-10-0-0-2.ec2.internal"),
        described("i-3", "running", "", "ip-10-0-0-3.ec2.internal"),
        described("i-4", "shutting-down", "Server.SpotInstanceTermination", ""),
    ]
    nodes = {"node-a": "i-4", "node-b": "i-2"}
    assert nodes_lost_to_ec2(instances, nodes) == {"ip-10-0-0-1.ec2.internal", "node-a"}


# Pending pods and demand -------------------------------------------------------------------------


def _fate(uid: str, **kw: Any) -> PodFate:
    values: dict[str, Any] = {
        "uid": uid,
        "key": f"default/{uid}",
        "phase": "Pending",
        "ever_pending": True,
        "served": False,
        "running": False,
        "gone": False,
        "removed_by_test": False,
    }
    values.update(kw)
    return PodFate(**values)


def test_a_pod_still_pending_at_the_bound_is_not_running() -> None:
    fates = {
        "p": _fate("p"),
        "bound": _fate("bound", served=True),  # bound to a node that has not started it
        "r": _fate("r", phase="Running", running=True, served=True),
        "gone": _fate("gone", gone=True),
        "done": _fate("done", phase="Succeeded", served=True),
    }
    violations = pods_not_running(fates, fates.keys())
    assert [(v.invariant, v.detail) for v in violations] == [
        (POD_NOT_RUNNING, "pod default/bound is Pending, not Running"),
        (POD_NOT_RUNNING, "pod default/p is Pending, not Running"),
    ]
    assert pods_not_running(fates, ["r", "gone", "done"]) == []


def test_demand_is_lost_when_a_pending_pod_ends_unserved_and_unexplained() -> None:
    fates = [
        _fate("still"),
        _fate("deleted", gone=True),
        _fate("failed", phase="Failed"),
    ]
    violations = demand_lost(fates, reported=set())
    assert [v.invariant for v in violations] == [DEMAND_LOST] * 3
    assert "deleted while pending" in violations[0].detail
    assert "ended Failed" in violations[1].detail
    assert "still pending" in violations[2].detail


def test_served_reported_or_test_removed_demand_is_not_lost() -> None:
    fates = [
        _fate("served", gone=True, served=True),  # its node died: its replacement is new demand
        _fate("reported"),
        _fate("removed", gone=True, removed_by_test=True),
        _fate("never", ever_pending=False, phase="Running", running=True),
    ]
    assert demand_lost(fates, reported={"reported"}) == []


# The observer on a bare local cluster -------------------------------------------------------------


def _pod_body(name: str, app: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": app}},
        "spec": {"containers": [{"name": "c", "image": "pause"}], **spec},
    }


async def _healthy_pod(core: Any, name: str, app: str) -> None:
    """A pod bound to a node no kubelet runs, made Running and Ready by hand."""
    await core.create_namespaced_pod("default", _pod_body(name, app, nodeName="nowhere"))
    status = {
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    }
    await core.patch_namespaced_pod_status(name, "default", status)


async def _eventually(predicate: Callable[[], bool], seconds: float = 5.0) -> None:
    """Until the observer's state satisfies ``predicate`` (it changes on watch events, not here)."""
    async with asyncio.timeout(seconds):
        while True:
            if predicate():
                return
            await asyncio.sleep(0.02)


async def _budget_of(api: client.ApiClient, app: str, min_available: int) -> None:
    body = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": app, "namespace": "default"},
        "spec": {"minAvailable": min_available, "selector": {"matchLabels": {"app": app}}},
    }
    policy: Any = client.PolicyV1Api(api)
    await policy.create_namespaced_pod_disruption_budget("default", body)


async def test_the_observer_catches_a_protected_pod_deleted_undeclared(local_cluster: LocalCluster) -> None:
    api = await local_cluster.api_client()
    core: Any = client.CoreV1Api(api)
    try:
        async with RunObserver(api) as observer:
            await _budget_of(api, "web", 2)
            await _budget_of(api, "db", 2)
            for name, app in (("web-1", "web"), ("web-2", "web"), ("db-1", "db"), ("db-2", "db")):
                await _healthy_pod(core, name, app)
            await _eventually(lambda: len([f for f in observer.fates().values() if f.running]) == 4)
            observer.expect_fewer("default", {"app": "db"}, 1)
            await core.delete_namespaced_pod("db-1", "default", grace_period_seconds=0)
            await core.delete_namespaced_pod("web-1", "default", grace_period_seconds=0)
            await _eventually(lambda: sum(f.gone for f in observer.fates().values()) == 2)
            violations = observer.budget_violations
    finally:
        await api.close()
    assert [v.invariant for v in violations] == [PDB_VIOLATED]
    assert "default/web" in violations[0].detail  # the declared db deletion is not one


async def test_a_pod_no_scheduler_serves_is_not_running_and_lost(local_cluster: LocalCluster) -> None:
    api = await local_cluster.api_client()
    core: Any = client.CoreV1Api(api)
    try:
        async with RunObserver(api, namespace="default") as observer:
            await core.create_namespaced_pod("default", _pod_body("orphan", "x", schedulerName="nobody"))
            await core.create_namespaced_pod("default", _pod_body("dropped", "y", schedulerName="nobody"))
            await _eventually(lambda: len(observer.pending()) == 2)
            await core.delete_namespaced_pod("dropped", "default", grace_period_seconds=0)
            violations = await check_invariants(
                api,
                local_cluster.ec2,
                CLUSTER,
                observer,
                pending_bound=0.5,
                collect_leaks=None,
                instance_settle=0,
            )
    finally:
        await api.close()
    assert sorted((v.invariant, v.detail.split(" ")[1]) for v in violations) == [
        (DEMAND_LOST, "default/dropped"),
        (DEMAND_LOST, "default/orphan"),
        (POD_NOT_RUNNING, "default/orphan"),
    ]


async def test_the_observer_keeps_watching_through_410_gone(local_cluster: LocalCluster) -> None:
    """Every watch is cut with 410 Gone and the history it could resume from is compacted: the
    observer relists, and judges what changed in the gap as one batch."""
    api = await local_cluster.api_client()
    core: Any = client.CoreV1Api(api)
    store = local_cluster.apiserver.store
    try:
        async with RunObserver(api) as observer:
            await _budget_of(api, "web", 2)
            await _healthy_pod(core, "web-1", "web")
            await _healthy_pod(core, "web-2", "web")
            await _eventually(lambda: len([f for f in observer.fates().values() if f.running]) == 2)
            for watchers in list(store._watchers.values()):
                for watcher in list(watchers):
                    watcher.close(gone("too old resource version"))
            store._compacted_rv = store.resource_version
            await core.delete_namespaced_pod("web-1", "default", grace_period_seconds=0)
            await _eventually(lambda: any(f.gone for f in observer.fates().values()))
            await _healthy_pod(core, "web-3", "web")
            await _eventually(lambda: len([f for f in observer.fates().values() if f.running]) == 2)
            violations = observer.budget_violations
    finally:
        await api.close()
    assert [v.invariant for v in violations] == [PDB_VIOLATED]


# The full stack -----------------------------------------------------------------------------------


def _launch_behind_jitnodes_back(stack: JitnodeStack) -> str:
    """An instance tagged for the cluster, launched straight in moto with no NodeClaim (blocking)."""
    import boto3

    ec2 = boto3.client("ec2", **stack.cluster.ec2.client_kwargs())
    network = stack.cluster.network
    tags = [{"Key": labels.TAG_CLUSTER, "Value": stack.settings.cluster}]
    reservation = ec2.run_instances(
        ImageId=network.amis["x86_64"],
        InstanceType="m5.large",
        MinCount=1,
        MaxCount=1,
        SubnetId=next(iter(network.subnets.values())),
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
    )
    instance_id: str = reservation["Instances"][0]["InstanceId"]
    return instance_id


async def test_on_the_stack_a_leak_and_an_unservable_pod_are_reported(
    stack: JitnodeStack, observer: RunObserver
) -> None:
    assert stack.api is not None
    leaked = await asyncio.to_thread(_launch_behind_jitnodes_back, stack)
    core: Any = client.CoreV1Api(stack.api)
    huge = _pod_body("huge", "huge", nodeSelector={"intent": "apps"})
    huge["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "4000"}}
    await core.create_namespaced_pod("default", huge)
    await _eventually(lambda: bool(observer.reported), seconds=30)

    async def check(collect: bool, settle: float) -> list[Violation]:
        assert stack.api is not None
        return await check_invariants(
            stack.api,
            stack.cluster.ec2,
            stack.settings.cluster,
            observer,
            pending_bound=0.5,
            collect_leaks=stack_leak_collection(stack) if collect else None,
            instance_settle=settle,
        )

    before = await check(collect=False, settle=0)
    assert sorted(v.invariant for v in before) == [
        LEAKED_INSTANCE,
        MORE_INSTANCES_THAN_CLAIMS,
        POD_NOT_RUNNING,
    ]
    assert leaked in before[0].detail
    # Once the leak is older than the launcher's grace, collection terminates it: the check passes
    # for instances, and the unservable pod, which the launcher explained, is no lost demand.
    after = await check(collect=True, settle=LEAK_GRACE + 10)
    assert [v.invariant for v in after] == [POD_NOT_RUNNING]
    instances = await asyncio.to_thread(stack.cluster.ec2.instances)
    assert next(i for i in instances if i["InstanceId"] == leaked)["State"]["Name"] == "terminated"
