"""A recent snapshot of the cluster's EC2 instances, indexed by id and by NodeClaim tag.

One DescribeInstances for all claims every few seconds instead of one call per claim. A launch
is recorded the moment CreateFleet returns, so the claim that caused it finds its instance
before the next refresh, and a stale snapshot can never make a claim launch twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from launcher.model import Instance
from launcher.provider import CloudProvider
from shared import labels

# How long a launch we made is trusted over a DescribeInstances that does not show it yet.
RECENT_LAUNCH_GRACE = 60.0


class InstanceIndex:
    def __init__(self, provider: CloudProvider, clock: Callable[[], float] = time.monotonic) -> None:
        self._provider = provider
        self._clock = clock
        self._by_id: dict[str, Instance] = {}
        self._by_claim: dict[str, Instance] = {}
        self._remembered_at: dict[str, float] = {}
        self.refreshed_at: float | None = None

    async def refresh(self) -> None:
        started = self._clock()
        instances = await self._provider.list()
        listed = {i.id: i for i in instances}
        # EC2 is eventually consistent: a launch remembered shortly before (or during) the
        # list call may be missing from it. Keep such launches for a grace period, but only
        # until a list shows them: missing from a later one, they have ended (it lists live
        # states only), and keeping the last state seen would hold a claim on an instance
        # that died minutes after launch (still "shutting-down" here, long terminated in EC2).
        recent = {
            instance_id: self._by_id[instance_id]
            for instance_id, at in self._remembered_at.items()
            if instance_id not in listed and instance_id in self._by_id and started - at < RECENT_LAUNCH_GRACE
        }
        self._remembered_at = {
            i: at
            for i, at in self._remembered_at.items()
            if started - at < RECENT_LAUNCH_GRACE and i not in listed
        }
        self._by_id = {**listed, **recent}
        self._by_claim = {}
        for instance in self._by_id.values():
            claim = instance.tags.get(labels.TAG_NODECLAIM)
            if claim and instance.state != "terminated":
                self._by_claim[claim] = instance
        self.refreshed_at = started

    async def refresh_if_older(self, max_age: float) -> None:
        if self.refreshed_at is None or self._clock() - self.refreshed_at > max_age:
            await self.refresh()

    def remember(self, instance: Instance) -> None:
        """Record an instance just launched (or just observed) ahead of the next refresh."""
        self._by_id[instance.id] = instance
        self._remembered_at[instance.id] = self._clock()
        claim = instance.tags.get(labels.TAG_NODECLAIM)
        if claim:
            self._by_claim[claim] = instance

    def forget(self, instance_id: str) -> None:
        instance = self._by_id.pop(instance_id, None)
        if instance is not None:
            claim = instance.tags.get(labels.TAG_NODECLAIM)
            if claim and self._by_claim.get(claim) is instance:
                del self._by_claim[claim]

    def by_id(self, instance_id: str) -> Instance | None:
        return self._by_id.get(instance_id)

    def by_claim(self, claim_name: str) -> Instance | None:
        return self._by_claim.get(claim_name)

    def all(self) -> list[Instance]:
        return list(self._by_id.values())
