"""The chaos harness (issue 12): every test here is marked ``chaos`` (``make chaos`` runs them),
reports what it injected and what the invariant check found (``chaos_report``), and the run ends
with a table of faults, runs and violations.

Fixtures: ``stack`` (jitnode on the local cluster with the seed's pool, as the end-to-end tests
use it, but with leak collection seconds apart so a check need not wait a minute for it),
``observer`` (a :class:`RunObserver` over the stack for the whole test) and ``check`` (the
invariant check against both).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pytest

from localcluster.chaos.invariants import RunObserver, Violation, check_invariants, stack_leak_collection
from localcluster.demo.seed import load_seed
from localcluster.ec2 import MotoEC2
from localcluster.stack import JitnodeStack, StackSettings

CHAOS_DIR = Path(__file__).resolve().parent
# Leak collection for chaos runs: an instance without a claim is collected within seconds.
LEAK_GRACE = 3.0
LEAK_INTERVAL = 3.0
# How long a pod pending at a check may take to run: a launch, a boot and a join, with room.
PENDING_BOUND = 60.0


@dataclass
class ChaosReport:
    """Faults injected and the violations found after each, for the summary table."""

    runs: dict[str, int] = field(default_factory=dict)
    violations: dict[str, list[Violation]] = field(default_factory=dict)

    def record(self, fault: str, violations: list[Violation]) -> None:
        self.runs[fault] = self.runs.get(fault, 0) + 1
        self.violations.setdefault(fault, []).extend(violations)

    def table(self) -> list[str]:
        width = max([len("fault"), len("total"), *(len(f) for f in self.runs)])
        lines = [f"{'fault':<{width}} | runs | violations", f"{'-' * width}-|------|-----------"]
        for fault in sorted(self.runs):
            lines.append(f"{fault:<{width}} | {self.runs[fault]:>4} | {len(self.violations[fault]):>10}")
        total_violations = sum(len(v) for v in self.violations.values())
        lines.append(f"{'total':<{width}} | {sum(self.runs.values()):>4} | {total_violations:>10}")
        return lines


_REPORT = pytest.StashKey[ChaosReport]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_REPORT] = ChaosReport()


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects by markers
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if CHAOS_DIR in item.path.parents:
            item.add_marker(pytest.mark.chaos)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    report = config.stash.get(_REPORT, None)
    if report is None or not report.runs:
        return
    terminalreporter.section("chaos: faults and invariant violations")
    for line in report.table():
        terminalreporter.write_line(line)
    for fault in sorted(report.violations):
        for violation in report.violations[fault]:
            terminalreporter.write_line(f"  {fault}: {violation.invariant}: {violation.detail}")


@pytest.fixture
def chaos_report(request: pytest.FixtureRequest) -> ChaosReport:
    """``chaos_report.record(fault, violations)`` after each fault's invariant check."""
    return request.config.stash[_REPORT]


@pytest.fixture
async def stack(moto_server: MotoEC2) -> AsyncIterator[JitnodeStack]:
    """jitnode on the local cluster with the seed's EC2NodeClass and NodePool, leaks collected fast."""
    settings = StackSettings(leak_grace=LEAK_GRACE, leak_interval=LEAK_INTERVAL)
    async with JitnodeStack(settings, ec2=moto_server) as running:
        seed = load_seed(running.cluster.network.cluster)
        await running.apply_nodeclass(seed.nodeclass)
        await running.apply_nodepool(seed.nodepool)
        yield running


@pytest.fixture
async def observer(stack: JitnodeStack) -> AsyncIterator[RunObserver]:
    """Pods, budgets and FailedProvisioning events of the stack, watched for the whole test."""
    assert stack.api is not None
    async with RunObserver(stack.api) as watching:
        yield watching


class Check(Protocol):
    def __call__(
        self, *, pending_bound: float = PENDING_BOUND, instance_settle: float = 30.0
    ) -> Awaitable[list[Violation]]: ...


@pytest.fixture
def check(stack: JitnodeStack, observer: RunObserver) -> Check:
    """The invariant check on ``stack`` with ``observer``'s history, forcing leak collection."""

    async def run(*, pending_bound: float = PENDING_BOUND, instance_settle: float = 30.0) -> list[Violation]:
        assert stack.api is not None
        return await check_invariants(
            stack.api,
            stack.cluster.ec2,
            stack.settings.cluster,
            observer,
            pending_bound=pending_bound,
            collect_leaks=stack_leak_collection(stack),
            instance_settle=instance_settle,
        )

    return run
