"""Leader election on a ``coordination.k8s.io/v1`` Lease, so that one launcher replica acts.

Why not ``kubernetes_asyncio.leaderelection``: it never releases the Lease when a leader shuts
down (a rollout would then wait a whole lease duration with no launcher acting) and it writes
naive local-time timestamps. This elector follows client-go's rules: acquire when the Lease is
free, expired, or already ours; renew every ``retry_period``; stop leading if renewal has not
succeeded for ``renew_deadline``; on shutdown release by clearing the holder, so that the next
replica takes over within one ``retry_period``. Updates use the Lease's resourceVersion, so two
candidates can never both win (the loser gets 409 Conflict).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from shared.logs import get_logger
from shared.tasks import within

log = get_logger("launcher.leader")


@dataclass(frozen=True)
class LeaseView:
    """The fields of a Lease that decide who may hold it."""

    holder: str | None
    renew_time: float | None  # unix seconds
    duration_seconds: int | None


def may_acquire(lease: LeaseView, identity: str, now: float) -> bool:
    """True when ``identity`` may take or keep the lease at ``now`` (pure, tested)."""
    if not lease.holder or lease.holder == identity:
        return True
    if lease.renew_time is None or lease.duration_seconds is None:
        return True
    return now > lease.renew_time + lease.duration_seconds


def _view(lease: client.V1Lease) -> LeaseView:
    spec = lease.spec or client.V1LeaseSpec()
    renew = spec.renew_time or spec.acquire_time
    return LeaseView(
        holder=spec.holder_identity,
        renew_time=renew.timestamp() if isinstance(renew, datetime) else None,
        duration_seconds=spec.lease_duration_seconds,
    )


class LeaderElector:
    """Runs a coroutine only while this replica holds the Lease."""

    def __init__(
        self,
        api: client.ApiClient,
        *,
        namespace: str,
        name: str,
        identity: str,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not retry_period < renew_deadline < lease_duration:
            raise ValueError("need retry_period < renew_deadline < lease_duration")
        self._api = client.CoordinationV1Api(api)
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self._clock = clock
        self.is_leader = False
        self._stopping = asyncio.Event()

    async def run(self, on_leading: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Campaign until :meth:`stop`; run ``on_leading`` each time leadership is won."""
        while not self._stopping.is_set():
            if not await self._try_acquire_or_renew():
                await self._sleep(self.retry_period)
                continue
            self.is_leader = True
            log.info("leader elected", lease=f"{self.namespace}/{self.name}", identity=self.identity)
            task: asyncio.Task[None] = asyncio.create_task(on_leading(), name="leader-work")
            try:
                await self._renew_until_lost(task)
            finally:
                self.is_leader = False
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            if self._stopping.is_set():
                await self._release()
            else:
                log.warning("leadership lost", lease=f"{self.namespace}/{self.name}", identity=self.identity)

    def stop(self) -> None:
        """Ask :meth:`run` to cancel the leader's work, release the Lease and return."""
        self._stopping.set()

    async def _renew_until_lost(self, task: asyncio.Task[None]) -> None:
        last_renewed = self._clock()
        while not self._stopping.is_set() and not task.done():
            await self._sleep(self.retry_period)
            if self._stopping.is_set():
                return
            if await self._try_acquire_or_renew():
                last_renewed = self._clock()
            elif self._clock() - last_renewed > self.renew_deadline:
                return

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await within(self._stopping.wait(), seconds)

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), tz=UTC)

    async def _try_acquire_or_renew(self) -> bool:
        try:
            lease = await self._api.read_namespaced_lease(self.name, self.namespace)
        except ApiException as error:
            if error.status != 404:
                log.warning("lease read failed", status=error.status, reason=error.reason)
                return False
            return await self._create()
        except Exception as error:  # network errors: keep campaigning
            log.warning("lease read failed", error=str(error))
            return False
        view = _view(lease)
        if not may_acquire(view, self.identity, self._clock()):
            return False
        spec = lease.spec or client.V1LeaseSpec()
        now = self._now()
        if spec.holder_identity != self.identity:
            spec.acquire_time = now
            spec.lease_transitions = (spec.lease_transitions or 0) + 1
        spec.holder_identity = self.identity
        spec.lease_duration_seconds = int(self.lease_duration)
        spec.renew_time = now
        lease.spec = spec
        try:
            await self._api.replace_namespaced_lease(self.name, self.namespace, lease)
        except ApiException as error:
            if error.status != 409:
                log.warning("lease update failed", status=error.status, reason=error.reason)
            return False
        except Exception as error:
            log.warning("lease update failed", error=str(error))
            return False
        return True

    async def _create(self) -> bool:
        now = self._now()
        body = client.V1Lease(
            metadata=client.V1ObjectMeta(name=self.name, namespace=self.namespace),
            spec=client.V1LeaseSpec(
                holder_identity=self.identity,
                lease_duration_seconds=int(self.lease_duration),
                acquire_time=now,
                renew_time=now,
                lease_transitions=0,
            ),
        )
        try:
            await self._api.create_namespaced_lease(self.namespace, body)
        except ApiException as error:
            if error.status != 409:
                log.warning("lease create failed", status=error.status, reason=error.reason)
            return False
        return True

    async def _release(self) -> None:
        """Clear the holder so the next candidate need not wait for the lease to expire."""
        try:
            lease = await self._api.read_namespaced_lease(self.name, self.namespace)
            if lease.spec is None or lease.spec.holder_identity != self.identity:
                return
            lease.spec.holder_identity = None  # type: ignore[assignment]  # the model types it str
            lease.spec.lease_duration_seconds = 1
            lease.spec.renew_time = self._now()
            await self._api.replace_namespaced_lease(self.name, self.namespace, lease)
            log.info("lease released", lease=f"{self.namespace}/{self.name}", identity=self.identity)
        except Exception as error:
            log.warning("lease release failed", error=str(error))
