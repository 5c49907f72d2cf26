"""The instance snapshot: a fresh launch survives a list that misses it, a dead one does not."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from launcher.lifecycle.instances import RECENT_LAUNCH_GRACE, InstanceIndex
from launcher.model import Instance
from shared import labels

LAUNCHED = Instance(
    id="i-1",
    instance_type="m5.xlarge",
    zone="us-east-1a",
    capacity_type="on-demand",
    state="pending",
    launch_time=datetime(2026, 12, 1, tzinfo=UTC),
    private_dns_name="",
    image_id="ami-1",
    tags={labels.TAG_NODECLAIM: "default-abc"},
)


class Listing:
    """A provider whose DescribeInstances (live states only) answers what the test sets."""

    def __init__(self) -> None:
        self.live: list[Instance] = []

    async def list(self) -> list[Instance]:
        return list(self.live)

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected call: {name}")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_a_launch_missing_from_the_list_is_kept_for_a_grace_period() -> None:
    provider, clock = Listing(), Clock()
    index = InstanceIndex(provider, clock=clock)
    index.remember(LAUNCHED)
    await index.refresh()  # eventual consistency: not listed yet
    assert index.by_claim("default-abc") == LAUNCHED
    clock.now += RECENT_LAUNCH_GRACE + 1
    await index.refresh()
    assert index.by_id("i-1") is None


async def test_a_launch_once_listed_is_gone_when_the_list_no_longer_has_it() -> None:
    """It died (shutting-down, then terminated): its last state seen must not linger for the
    rest of the grace period, or its claim waits on a shutting-down instance long terminated."""
    provider, clock = Listing(), Clock()
    index = InstanceIndex(provider, clock=clock)
    index.remember(LAUNCHED)
    provider.live = [replace(LAUNCHED, state="shutting-down")]
    await index.refresh()
    seen = index.by_id("i-1")
    assert seen is not None
    assert seen.state == "shutting-down"
    provider.live = []
    clock.now += 1.0
    await index.refresh()
    assert index.by_id("i-1") is None
    assert index.by_claim("default-abc") is None
