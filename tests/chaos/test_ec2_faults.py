"""EC2 faults on moto's side (issue 12, item 2), each followed by the invariant check.

The launcher meets each through its real aioboto3 client (botocore's retries and timeouts
included) while the seed's inflate Deployment needs three nodes: throttling, capacity errors
for some types and zones, CreateFleet answers that launch and report errors, 5xx, an answer
slower than the client's read timeout (the launch took effect: it must be adopted, not
repeated), an instance that never becomes ``running`` and one that dies right after launch.
Every test also checks that its fault really fired.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Final

import pytest
from kubernetes_asyncio import client

from localcluster.chaos.ec2 import EC2Faults
from localcluster.chaos.invariants import Violation
from localcluster.ec2 import MotoEC2
from localcluster.stack import JitnodeStack
from shared import labels
from tests.chaos.conftest import PENDING_BOUND, ChaosReport, Check
from tests.chaos.stacks import claims, scale_up, seeded_stack, settings

pytestmark = pytest.mark.slow

# Short enough that a slow answer times out in a test, long enough for moto on a busy machine.
AWS_READ_TIMEOUT: Final = 1.0
# botocore's attempts per call at the stack's settings (AWSSettings.max_attempts retries + 1):
# a fault firing this many times in a row reaches the launcher instead of being retried away.
BOTOCORE_ATTEMPTS: Final = 4
# An instance that never runs is given up on after this (the seed's would wait 15 minutes).
REGISTRATION_TIMEOUT: Final = 4.0
FIRED_TIMEOUT: Final = 60.0
# A lost node's pods run on a replacement within this of the loss being known: one launch, a
# boot and a bind, with room; not a wait for the lost claim's bind grace (30 s).
REPLACEMENT_BOUND: Final = 15.0


@pytest.fixture
async def stack(moto_server: MotoEC2) -> AsyncIterator[JitnodeStack]:
    """The harness's stack (small catalogue), with a short AWS read timeout and registration timeout."""
    stack_settings = settings(aws_read_timeout=AWS_READ_TIMEOUT, registration_timeout=REGISTRATION_TIMEOUT)
    async with seeded_stack(moto_server, stack_settings) as running:
        yield running


@pytest.fixture
def faults(stack: JitnodeStack) -> Iterator[EC2Faults]:
    """Installed once the stack runs (its start-up meets no fault), removed before it stops."""
    with EC2Faults() as installed:
        yield installed


async def _run(
    stack: JitnodeStack,
    faults: EC2Faults,
    check: Check,
    report: ChaosReport,
    name: str,
    fired: Callable[[], bool | Awaitable[bool]],
    pending_bound: float = PENDING_BOUND,
) -> list[Violation]:
    """Scale up under the armed fault, wait until it fired, then check and record."""
    await scale_up(stack)
    await stack.cluster.wait_for(fired, timeout=FIRED_TIMEOUT)
    violations = await check(pending_bound=pending_bound)
    report.record(name, violations)
    return violations


async def test_throttling(
    stack: JitnodeStack, faults: EC2Faults, check: Check, chaos_report: ChaosReport
) -> None:
    """More RequestLimitExceeded answers in a row than botocore retries: the launcher backs off."""
    count = BOTOCORE_ATTEMPTS + 2
    faults.throttle(actions=("CreateFleet", "TerminateInstances"), count=count)
    violations = await _run(
        stack, faults, check, chaos_report, "ec2-throttling", lambda: faults.fired["throttled"] == count
    )
    assert violations == []


async def test_insufficient_capacity_for_some_types_and_zones(
    stack: JitnodeStack, faults: EC2Faults, check: Check, chaos_report: ChaosReport
) -> None:
    """The cheapest type has no capacity anywhere, the next none in two zones, for every launch
    of the scale-up: fleets launch elsewhere and no node lands on a refused offering."""
    cheapest, second = "c5.xlarge", "c6i.xlarge"  # the planner's order: cheapest first
    refused_zones = ("us-east-1a", "us-east-1b")
    faults.insufficient_capacity(types=[cheapest], count=100)
    faults.insufficient_capacity(types=[second], zones=refused_zones, count=100)
    violations = await _run(
        stack,
        faults,
        check,
        chaos_report,
        "ec2-insufficient-capacity",
        lambda: faults.fired["insufficient_capacity"] >= 6,
    )
    assert violations == []
    assert stack.api is not None
    nodes = (await client.CoreV1Api(stack.api).list_node()).items
    placed = {(n.metadata.labels[labels.INSTANCE_TYPE], n.metadata.labels[labels.ZONE]) for n in nodes}
    assert placed
    assert not {p for p in placed if p[0] == cheapest or (p[0] == second and p[1] in refused_zones)}


async def test_create_fleet_partial_errors(
    stack: JitnodeStack, faults: EC2Faults, check: Check, chaos_report: ChaosReport
) -> None:
    """Fleets that launch from a later override and list the skipped ones in ``Errors``."""
    faults.partial_fleet_errors(count=3, skip=2)
    violations = await _run(
        stack,
        faults,
        check,
        chaos_report,
        "ec2-partial-fleet-errors",
        lambda: faults.fired["partial_fleet_errors"] == 3,
    )
    assert violations == []


@pytest.mark.parametrize("status", [500, 503])
async def test_server_errors(
    stack: JitnodeStack, faults: EC2Faults, check: Check, chaos_report: ChaosReport, status: int
) -> None:
    """5xx on CreateFleet, more in a row than botocore retries, and on DescribeInstances."""
    count = BOTOCORE_ATTEMPTS + 1
    faults.server_errors(actions=("CreateFleet",), count=count, status=status)
    faults.server_errors(actions=("DescribeInstances",), count=count, status=status)
    violations = await _run(
        stack,
        faults,
        check,
        chaos_report,
        f"ec2-{status}",
        lambda: faults.fired[f"server_error_{status}"] == 2 * count,
    )
    assert violations == []


async def test_answers_slower_than_the_client_timeout(
    stack: JitnodeStack, faults: EC2Faults, check: Check, chaos_report: ChaosReport
) -> None:
    """Every attempt of every CreateFleet of the scale-up times out after the launch took effect:
    botocore's retries are answered from the ClientToken (as EC2 does), the launcher gives up on
    the call, then finds the instance by its tag and adopts it: nothing launched twice or leaked."""
    count = BOTOCORE_ATTEMPTS * 3  # three claims
    faults.slow(AWS_READ_TIMEOUT + 0.5, actions=("CreateFleet",), count=count)
    violations = await _run(
        stack, faults, check, chaos_report, "ec2-slower-than-timeout", lambda: faults.fired["slow"] == count
    )
    assert violations == []
    assert faults.fired["idempotent_replay"] >= 3  # the retries asked again, and EC2 answered as one


async def test_an_instance_that_never_becomes_running(
    stack: JitnodeStack, faults: EC2Faults, check: Check, chaos_report: ChaosReport
) -> None:
    faults.never_running(count=1)
    violations = await _run(
        stack,
        faults,
        check,
        chaos_report,
        "ec2-never-running",
        lambda: faults.fired["never_running"] == 1,
        pending_bound=REGISTRATION_TIMEOUT + REPLACEMENT_BOUND,
    )
    assert violations == []


@pytest.mark.parametrize("after", [0.2, 2.0], ids=["before-it-joins", "once-its-pods-run"])
async def test_an_instance_that_dies_right_after_launch(
    stack: JitnodeStack, faults: EC2Faults, check: Check, chaos_report: ChaosReport, after: float
) -> None:
    """Two instances go shutting-down, then terminated (a host failure): before their kubelets
    join, or once pods run on them. Their claims are replaced and the pods run elsewhere."""
    faults.dies_after_launch(count=2, after=after)
    violations = await _run(
        stack,
        faults,
        check,
        chaos_report,
        "ec2-dies-after-launch",
        lambda: faults.fired["died"] == 2 and _forgotten(stack, faults.died),
        pending_bound=REPLACEMENT_BOUND,
    )
    assert violations == []


async def _forgotten(stack: JitnodeStack, instance_ids: list[str]) -> bool:
    """No NodeClaim and no Node stands for these instances any more: their pods were let go,
    so the check sees the pods that replace them pending."""
    assert stack.api is not None
    held = {c.get("status", {}).get("instanceID") for c in await claims(stack)}
    nodes = (await client.CoreV1Api(stack.api).list_node()).items
    providers = {n.spec.provider_id or "" for n in nodes}
    return not held & set(instance_ids) and not any(p.endswith(i) for p in providers for i in instance_ids)
