"""Terminates leaked instances: tagged for this cluster, but no NodeClaim accounts for them.

Runs on start and then every ``interval``. It acts only once the NodeClaim informer has synced:
before that every instance would look leaked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from launcher import metrics
from launcher.lifecycle.garbage import leaked_instances
from launcher.lifecycle.instances import InstanceIndex
from launcher.model import Instance
from launcher.provider import CloudProvider
from launcher.state import LauncherState
from shared import labels
from shared.logs import get_logger

log = get_logger("launcher.collector")


class LeakCollector:
    def __init__(
        self,
        *,
        state: LauncherState,
        provider: CloudProvider,
        instances: InstanceIndex,
        grace: timedelta = timedelta(seconds=60),
        interval: float = 60.0,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._state = state
        self._provider = provider
        self._instances = instances
        self.grace = grace
        self.interval = interval
        self._now = now

    async def run(self) -> None:
        while True:
            try:
                await self.collect_once()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("leak collection failed", error=str(error))
            await asyncio.sleep(self.interval)

    async def collect_once(self) -> list[Instance]:
        """Terminate every leaked instance now; returns them."""
        if not self._state.nodeclaim_informer.has_synced:
            return []
        await self._instances.refresh()
        claims = self._state.nodeclaims()
        claimed_ids = {c.status.instance_id for c in claims.values() if c.status.instance_id}
        leaks = leaked_instances(self._instances.all(), claims.keys(), claimed_ids, self._now(), self.grace)
        for instance in leaks:
            log.warning(
                "terminating leaked instance",
                instance_id=instance.id,
                instance_type=instance.instance_type,
                launched=instance.launch_time.isoformat(),
                nodeclaim=instance.tags.get(labels.TAG_NODECLAIM),
            )
            await self._provider.delete(instance.id)
            self._instances.forget(instance.id)
            metrics.LEAKS_COLLECTED.inc()
        return leaks
