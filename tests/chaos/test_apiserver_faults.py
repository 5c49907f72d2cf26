"""API server faults (issue 12, item 2), each followed by the invariant check.

Injected in the local API server itself (:mod:`localcluster.apiserver.faults`), so every client
meets them on the wire, jitnode's services as well as the scheduler, the kubelets and the
invariant observer: a restart that resets every connection (the store kept, as etcd outlives
kube-apiserver), watches ended and refused with ``410 Expired``, slow writes, writes refused
with 500/503/429, and updates that lose a race (409). Each test scales the seed's inflate
Deployment to three nodes, strikes while the launches are under way, and checks that its
fault really fired.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Final

import pytest

from localcluster.apiserver.faults import ApiFaults
from localcluster.chaos.invariants import Violation
from localcluster.ec2 import MotoEC2
from localcluster.stack import JitnodeStack
from tests.chaos.conftest import ChaosReport, Check
from tests.chaos.stacks import claims, scale_up, seeded_stack, settings

pytestmark = pytest.mark.slow

FIRED_TIMEOUT: Final = 30.0


@pytest.fixture
async def stack(moto_server: MotoEC2) -> AsyncIterator[JitnodeStack]:
    """The harness's stack, with a small catalogue (see ``tests.chaos.stacks``)."""
    async with seeded_stack(moto_server, settings()) as running:
        yield running


def _faults(stack: JitnodeStack) -> ApiFaults:
    return stack.cluster.apiserver.faults


async def _launching(stack: JitnodeStack) -> None:
    """Scale up and return once the first NodeClaim exists: the launches are under way."""
    await scale_up(stack)
    await stack.cluster.wait_for(lambda: claims(stack), timeout=FIRED_TIMEOUT)


def _struck(faults: ApiFaults, resource: str) -> bool:
    """Whether a fault struck a write of ``resource`` (or one of its subresources)."""
    return any(write.split(" ", 1)[1].split("/")[0] == resource for _, write in faults.struck)


async def _check(check: Check, report: ChaosReport, name: str) -> list[Violation]:
    violations = await check()
    report.record(name, violations)
    return violations


async def test_restart_resets_every_connection(
    stack: JitnodeStack, check: Check, chaos_report: ChaosReport
) -> None:
    await _launching(stack)
    await _faults(stack).restart(downtime=0.5)
    assert await _check(check, chaos_report, "apiserver-restart") == []
    assert _faults(stack).fired["restart"] == 1


async def test_watches_answered_410_gone(
    stack: JitnodeStack, check: Check, chaos_report: ChaosReport
) -> None:
    """Every open watch ends with 410 Expired, and the next resumptions are refused the same way:
    every informer (launcher, extender, scheduler, kubelets, the observer) must list again."""
    faults = _faults(stack)
    await _launching(stack)
    ended = faults.gone_watches(count=20)
    assert ended >= 10  # the services' informers were all watching
    await stack.cluster.wait_for(lambda: faults.pending["gone_watches"] == 0, timeout=FIRED_TIMEOUT)
    assert await _check(check, chaos_report, "apiserver-watch-gone") == []


async def test_slow_writes(stack: JitnodeStack, check: Check, chaos_report: ChaosReport) -> None:
    faults = _faults(stack)
    faults.slow_writes(0.5, count=30)
    await _launching(stack)
    await stack.cluster.wait_for(lambda: faults.pending["slow_writes"] == 0, timeout=FIRED_TIMEOUT)
    assert await _check(check, chaos_report, "apiserver-slow-writes") == []
    assert _struck(faults, "nodeclaims"), faults.struck


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_failing_writes(
    stack: JitnodeStack, check: Check, chaos_report: ChaosReport, status: int
) -> None:
    """Half the writes fail until 12 have: NodeClaim creates, status patches, bindings, Events..."""
    faults = _faults(stack)
    await _launching(stack)
    faults.failing_writes(status, count=12, fraction=0.5)
    await stack.cluster.wait_for(lambda: faults.pending["failing_writes"] == 0, timeout=FIRED_TIMEOUT)
    assert await _check(check, chaos_report, f"apiserver-writes-{status}") == []
    assert _struck(faults, "nodeclaims"), faults.struck  # the launcher's own writes failed too


async def test_conflicts_on_update(stack: JitnodeStack, check: Check, chaos_report: ChaosReport) -> None:
    """Updates guarded by a resourceVersion (status patches, Lease renewals, finalizer removal)
    lose a race with another writer and get 409 Conflict."""
    faults = _faults(stack)
    # The leader's Lease first, then NodeClaims (status): armed together, a burst of status
    # patches can take every conflict before the next renewal. Narrowed, because the status
    # controller's NodePool writes would otherwise take them all.
    faults.conflicts(count=3, resources=("leases",))
    await stack.cluster.wait_for(lambda: faults.pending["conflicts"] == 0, timeout=FIRED_TIMEOUT)
    faults.conflicts(count=8, resources=("nodeclaims",))
    await _launching(stack)
    await stack.cluster.wait_for(lambda: faults.pending["conflicts"] == 0, timeout=FIRED_TIMEOUT)
    assert await _check(check, chaos_report, "apiserver-conflicts") == []
    assert _struck(faults, "nodeclaims"), faults.struck
    assert _struck(faults, "leases"), faults.struck
