"""The invariant check run after every fault (issue 12): nothing leaked, doubled, broken or lost.

* 0 leaked instances once leak collection has run, no instance without a NodeClaim, and never
  more instances than claims (read from EC2 and the API server after leak collection; polled
  until they hold or ``instance_settle`` runs out, since a claim just launched records its
  instance a moment later);
* every pod pending when the check starts is Running within ``pending_bound`` seconds (polled);
* no PodDisruptionBudget broken at any moment of the run (the :class:`RunObserver`'s history),
  except by pods lost with a node whose instance EC2 itself ended (a budget limits voluntary
  disruptions only: a host failure is no autoscaler's doing);
* no demand lost: each pod that was ever pending was served, removed by the test, or carries
  the launcher's ``FailedProvisioning`` Warning Event.

The decisions themselves are pure (:mod:`localcluster.chaos.decisions`); this module gathers
their inputs. It works against any API server and EC2 endpoint: a real cluster's too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeAlias

from kubernetes_asyncio import client as k8s

from localcluster.chaos.decisions import (
    INVARIANTS,
    ClaimView,
    InstanceView,
    Violation,
    budget_violations,
    demand_lost,
    instance_violations,
    nodes_lost_to_ec2,
    pods_not_running,
)
from localcluster.chaos.observer import RunObserver
from shared.api.group import API_GROUP, API_VERSION, NODECLAIM_PLURAL
from shared.logs import get_logger

if TYPE_CHECKING:
    from localcluster.stack import JitnodeStack

__all__ = ["INVARIANTS", "RunObserver", "Violation", "check_invariants", "stack_leak_collection"]

log = get_logger("localcluster.chaos.invariants")

POLL_SECONDS: Final = 0.25
# How long instances and claims may take to agree (a launch in flight records its instance).
INSTANCE_SETTLE_SECONDS: Final = 30.0


class DescribesInstances(Protocol):
    """An EC2 endpoint (``MotoEC2``, ``MotoProcess``): DescribeInstances, blocking."""

    def instances(self) -> list[dict[str, Any]]: ...


InstanceSource: TypeAlias = DescribesInstances | Callable[[], Awaitable[Iterable[Mapping[str, Any]]]]


async def check_invariants(
    api: k8s.ApiClient,
    ec2: InstanceSource,
    cluster: str,
    observer: RunObserver,
    *,
    pending_bound: float,
    collect_leaks: Callable[[], Awaitable[object]] | None,
    instance_settle: float = INSTANCE_SETTLE_SECONDS,
) -> list[Violation]:
    """Every invariant's violations, after waiting up to ``pending_bound`` for pending pods and
    up to ``instance_settle`` for instances and claims to agree.

    ``collect_leaks`` forces the launcher's leak collection before each look at the instances
    (:func:`stack_leak_collection` for the in-process launcher); None waits for the periodic
    one (give ``instance_settle`` at least the launcher's leak interval plus its grace).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + pending_bound
    pending = observer.pending() | await _listed_pending(api, observer.namespace)
    while True:
        fates = observer.fates()
        settled = observer.knows(pending) and not pods_not_running(fates, pending)
        if settled or loop.time() >= deadline:
            break
        await asyncio.sleep(POLL_SECONDS)
    violations, instances = await _instance_violations(api, ec2, cluster, collect_leaks, instance_settle)
    fates = observer.fates()
    violations += pods_not_running(fates, pending)
    violations += budget_violations(observer.breaches, nodes_lost_to_ec2(instances, observer.node_instances))
    violations += demand_lost(
        (f for f in fates.values() if f.phase != "Pending" or f.gone or f.uid in pending), observer.reported
    )
    for violation in violations:
        log.warning("invariant violated", invariant=violation.invariant, detail=violation.detail)
    return violations


def stack_leak_collection(stack: JitnodeStack) -> Callable[[], Awaitable[object]]:
    """Leak collection of whichever launcher ``stack`` runs at the time of the call (none: nothing)."""

    async def collect() -> object:
        launcher = stack.launcher
        if launcher is None:
            return None
        return await launcher.collector.collect_once()

    return collect


async def _listed_pending(api: k8s.ApiClient, namespace: str | None) -> set[str]:
    """Pods pending by a fresh list: the watch may not have delivered a pod created just now."""
    core = k8s.CoreV1Api(api)
    try:
        if namespace is None:
            listed = await core.list_pod_for_all_namespaces(field_selector="status.phase=Pending")
        else:
            listed = await core.list_namespaced_pod(namespace, field_selector="status.phase=Pending")
    except Exception as error:  # an API server fault under way: the watch's view must do
        log.warning("pending pods not listed", error=str(error))
        return set()
    return {p.metadata.uid for p in listed.items if not p.metadata.deletion_timestamp}


async def _instance_violations(
    api: k8s.ApiClient,
    ec2: InstanceSource,
    cluster: str,
    collect_leaks: Callable[[], Awaitable[object]] | None,
    settle: float,
) -> tuple[list[Violation], list[InstanceView]]:
    """Instance invariants, polled until they hold or ``settle`` runs out; a source that cannot
    be read for the whole time fails the check rather than passing it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settle
    while True:
        if collect_leaks is not None:
            try:
                await collect_leaks()
            except Exception as error:
                log.warning("leak collection failed", error=str(error))
        try:
            claims = await _claims(api)
            instances = await _describe(ec2)
        except Exception as error:
            if loop.time() >= deadline:
                raise RuntimeError(f"instances or NodeClaims could not be read: {error}") from error
            log.warning("instances or claims not read", error=str(error))
        else:
            violations = instance_violations(instances, claims, cluster)
            if not violations or loop.time() >= deadline:
                return violations, instances
        await asyncio.sleep(POLL_SECONDS * 2)


async def _claims(api: k8s.ApiClient) -> list[ClaimView]:
    listed = await k8s.CustomObjectsApi(api).list_cluster_custom_object(
        API_GROUP, API_VERSION, NODECLAIM_PLURAL
    )
    return [ClaimView.from_object(item) for item in listed.get("items") or []]


async def _describe(ec2: InstanceSource) -> list[InstanceView]:
    if callable(ec2):
        raw: Iterable[Mapping[str, Any]] = await ec2()
    else:
        raw = await asyncio.to_thread(ec2.instances)
    return [InstanceView.from_described(i) for i in raw]
