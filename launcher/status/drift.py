"""Keeps each NodeClaim's ``Drifted`` condition current (the imperative shell of ``disruption.drift``).

A claim is looked at again when it, its Node, its NodePool or its EC2NodeClass changes, when
the launcher's resolution of the EC2NodeClass (the AMIs behind an alias, the subnets and security
groups its selectors match, refreshed with the warm launch templates) differs from the last one
seen, and at every ``resync_seconds`` (an instance's network can change without any event). The
work per event is the claims that event touches, never the whole cluster.

What the claim should be compared with is exactly what a new launch would use: the resolution of
the warm templates, so a replacement never launches drifted itself. The instance's subnet and
security groups come from the launcher's shared DescribeInstances snapshot (no call of its own).

Writes: ``Drifted`` True (reason and message from :func:`~launcher.disruption.drift.drifted`)
or removed, through the status subresource guarded by ``resourceVersion``; a ``Drifted`` Event
on the NodeClaim when it turns True; and the hash annotations of claims stamped under another
hash version or not at all (the EC2NodeClass hash is stamped here, right after creation).
The disruption controller then replaces drifted nodes (``decisions``, step 3).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from kubernetes_asyncio.client.exceptions import ApiException

from launcher.disruption.drift import ClaimFacts, Wanted, drifted, nodeclass_hash, nodepool_hash, restamp
from launcher.kube import NodeClaimWriter, StatusWriter
from launcher.model import Instance
from launcher.state import LauncherState
from launcher.status import conditions as c
from shared import labels
from shared.api.meta import Condition
from shared.api.nodeclaim import DRIFTED, LAUNCHED, NodeClaim
from shared.api.nodeclass import EC2NodeClass
from shared.api.nodepool import NodePool
from shared.events import NORMAL, EventRecorder
from shared.informer import Obj
from shared.logs import get_logger
from shared.tasks import within

if TYPE_CHECKING:
    from launcher.aws.nodeclass import ResolvedNodeClass

log = get_logger("launcher.status.drift")

RESOLUTION: Final = "resolution"


@dataclass(frozen=True)
class DriftSettings:
    resync_seconds: float = 60.0
    min_interval_seconds: float = 1.0  # rounds run at most this often
    retry_seconds: float = 2.0


class _On:
    def __init__(self, fn: Callable[[Obj | None, Obj | None], None]) -> None:
        self._fn = fn

    def on_added(self, obj: Obj) -> None:
        self._fn(None, obj)

    def on_modified(self, old: Obj, new: Obj) -> None:
        self._fn(old, new)

    def on_deleted(self, obj: Obj) -> None:
        self._fn(obj, None)


def _meta(obj: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return (obj or {}).get("metadata") or {}


def _resolution_key(resolved: ResolvedNodeClass | None) -> tuple[Any, ...] | None:
    if resolved is None:
        return None
    return (
        tuple(sorted(a.id for a in resolved.amis.values())),
        tuple(sorted(s.id for s in resolved.subnets)),
        tuple(sorted(resolved.security_groups)),
    )


@dataclass
class Hashes:
    """The hashes of one round, so a pool or class is hashed once however many claims it has."""

    pools: dict[str, str | None] = field(default_factory=dict)
    classes: dict[str, str | None] = field(default_factory=dict)


def wanted_for(
    claim: NodeClaim,
    pools: Mapping[str, NodePool],
    classes: Mapping[str, EC2NodeClass],
    resolved: ResolvedNodeClass | None,
    hashes: Hashes | None = None,
) -> Wanted:
    """What the claim's NodePool and EC2NodeClass ask for now (None parts: not known)."""
    memo = hashes or Hashes()
    pool_name, class_name = claim.nodepool or "", claim.node_class_ref.name
    pool = pools.get(pool_name)
    if pool_name not in memo.pools:
        memo.pools[pool_name] = nodepool_hash(pool) if pool is not None else None
    if class_name not in memo.classes:
        nodeclass = classes.get(class_name)
        memo.classes[class_name] = nodeclass_hash(nodeclass) if nodeclass is not None else None
    return Wanted(
        nodepool_hash=memo.pools[pool_name],
        requirements=pool.requirements() if pool is not None else None,
        amis=frozenset(a.id for a in resolved.amis.values()) if resolved is not None else None,
        subnets=frozenset(s.id for s in resolved.subnets) if resolved is not None else None,
        security_groups=frozenset(resolved.security_groups) if resolved is not None else None,
        nodeclass_hash=memo.classes[class_name],
    )


def facts_for(claim: NodeClaim, node: Obj | None, instance: Instance | None) -> ClaimFacts:
    """The claim as it is: its hashes, its node's labels (the claim's until it registers)."""
    node_labels = {
        **claim.metadata.labels,
        **{k: str(v) for k, v in (_meta(node).get("labels") or {}).items()},
    }
    return ClaimFacts(
        annotations=claim.metadata.annotations,
        node_labels=node_labels,
        image_id=claim.status.image_id or (instance.image_id if instance is not None else None),
        subnet=instance.subnet_id or None if instance is not None else None,
        # EC2 gives every instance at least one group: an empty list is an unreported one (moto's
        # CreateFleet reports none), not a drift.
        security_groups=(instance.security_groups or None) if instance is not None else None,
    )


class DriftController:
    def __init__(
        self,
        *,
        state: LauncherState,
        writer: StatusWriter,
        claims: NodeClaimWriter,
        events: EventRecorder,
        resolved: Callable[[str], ResolvedNodeClass | None],
        instance_of: Callable[[str], Instance | None],
        settings: DriftSettings = DriftSettings(),
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._state = state
        self._writer = writer
        self._claims = claims
        self._events = events
        self._resolved = resolved
        self._instance_of = instance_of
        self.settings = settings
        self._now = now
        self._clock = clock
        self._dirty: set[str] = set()
        self._claim_keys: dict[str, tuple[str, str]] = {}  # claim -> (nodepool, nodeclass)
        self._by_pool: dict[str, set[str]] = {}
        self._by_class: dict[str, set[str]] = {}
        self._resolutions: dict[str, tuple[Any, ...] | None] = {}
        self._wake = asyncio.Event()
        state.listen("nodeclaim", _On(self._on_claim))
        state.listen("nodepool", _On(self._on_pool))
        state.listen("nodeclass", _On(self._on_class))
        state.listen("node", _On(self._on_node))

    # Events (synchronous; each marks only the claims it touches) ------------------------------

    def _mark(self, names: set[str] | list[str]) -> None:
        if names:
            self._dirty.update(names)
            self._wake.set()

    def _on_claim(self, old: Obj | None, new: Obj | None) -> None:
        name = str(_meta(new or old).get("name") or "")
        previous = self._claim_keys.pop(name, None)
        if previous is not None:
            self._by_pool.get(previous[0], set()).discard(name)
            self._by_class.get(previous[1], set()).discard(name)
        if new is None:
            self._dirty.discard(name)
            return
        pool = str((_meta(new).get("labels") or {}).get(labels.NODEPOOL) or "")
        ref = ((new.get("spec") or {}).get("nodeClassRef") or {}).get("name")
        nodeclass = str(ref or "")
        self._claim_keys[name] = (pool, nodeclass)
        self._by_pool.setdefault(pool, set()).add(name)
        self._by_class.setdefault(nodeclass, set()).add(name)
        self._mark([name])

    def _on_pool(self, old: Obj | None, new: Obj | None) -> None:
        name = str(_meta(new or old).get("name") or "")
        self._mark(list(self._by_pool.get(name, ())))

    def _on_class(self, old: Obj | None, new: Obj | None) -> None:
        name = str(_meta(new or old).get("name") or "")
        self._mark(list(self._by_class.get(name, ())))

    def _on_node(self, old: Obj | None, new: Obj | None) -> None:
        before = (_meta(old).get("labels") or {}) if old is not None else None
        after = (_meta(new).get("labels") or {}) if new is not None else None
        if before == after:
            return  # status heartbeats: requirements drift reads labels only
        claim = (after or before or {}).get(labels.NODECLAIM)
        if claim:
            self._mark([str(claim)])

    def _check_resolutions(self) -> None:
        """Mark the claims of every class whose launch resolution changed since the last look."""
        for name in list(self._by_class):
            key = _resolution_key(self._resolved(name))
            if name in self._resolutions and self._resolutions[name] != key:
                log.info("nodeclass resolution changed: checking its nodeclaims for drift", nodeclass=name)
                self._mark(list(self._by_class.get(name, ())))
            self._resolutions[name] = key

    # The loop (leader only) -------------------------------------------------------------------

    async def run(self) -> None:
        next_resync = self._clock()
        while True:
            self._wake.clear()
            if self._clock() >= next_resync:
                self._mark(list(self._state.nodeclaims()))
                next_resync = self._clock() + self.settings.resync_seconds
            try:
                await self.reconcile_once()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the next round (or resync) tries again
                log.exception("drift round failed", error=str(error))
            await asyncio.sleep(self.settings.min_interval_seconds)
            if self._wake.is_set():
                continue
            with contextlib.suppress(TimeoutError):
                await within(self._wake.wait(), max(0.01, next_resync - self._clock()))

    async def reconcile_once(self) -> None:
        """Look at every claim marked since the last round (and at resolutions)."""
        if not self._state.has_synced:
            return
        self._check_resolutions()
        names, self._dirty = self._dirty, set()
        if not names:
            return
        claims = self._state.nodeclaims()
        nodes = self._state.nodes()
        pools, classes, hashes = self._state.nodepools(), self._state.nodeclasses(), Hashes()
        for name in sorted(names):
            claim = claims.get(name)
            if claim is None or claim.metadata.deletion_timestamp is not None:
                continue
            node = nodes.get(claim.status.node_name or "")
            resolved = self._resolved(claim.node_class_ref.name)
            try:
                await self._reconcile(claim, node, wanted_for(claim, pools, classes, resolved, hashes))
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("drift not recorded", nodeclaim=name, error=str(error))
                self._retry(name)

    def _retry(self, name: str) -> None:
        loop = asyncio.get_running_loop()
        loop.call_later(self.settings.retry_seconds, self._mark, [name])

    async def _reconcile(self, claim: NodeClaim, node: Obj | None, wanted: Wanted) -> None:
        stamps = restamp(claim.metadata.annotations, wanted)
        if stamps:
            await self._claims.patch(claim.name, {"metadata": {"annotations": stamps}})
            return  # its event brings the claim back with the hashes in place
        if not claim.is_true(LAUNCHED):
            return  # nothing runs yet that could have drifted
        found = drifted(facts_for(claim, node, self._instance_of(claim.name)), wanted)
        previous = claim.condition(DRIFTED)
        if found is None:
            if previous is not None:
                await self._write(claim, (), remove=(DRIFTED,))
                log.info("no longer drifted", nodeclaim=claim.name, nodepool=claim.nodepool)
            return
        condition = c.true(DRIFTED, found.reason, found.message)
        if previous is not None and (previous.status, previous.reason, previous.message) == (
            condition.status,
            condition.reason,
            condition.message,
        ):
            return
        await self._write(claim, (condition,))
        if previous is None or not previous.is_true:
            log.info(
                "marking drifted",
                nodeclaim=claim.name,
                nodepool=claim.nodepool,
                reason=found.reason,
                message=found.message,
            )
            await self._events.record(_reference(claim), NORMAL, DRIFTED, f"{found.reason}: {found.message}")

    async def _write(
        self, claim: NodeClaim, wanted: tuple[Condition, ...], remove: tuple[str, ...] = ()
    ) -> None:
        merged = c.merge(
            claim.status.conditions, wanted, self._now(), claim.metadata.generation or None, remove=remove
        )
        try:
            await self._writer.nodeclaim(
                claim.name, {"conditions": c.to_api(merged)}, claim.metadata.resource_version
            )
        except ApiException as error:
            if error.status == 404:
                return
            if error.status == 409:  # changed since read: its event marks it again
                self._retry(claim.name)
                return
            raise


def _reference(claim: NodeClaim) -> dict[str, Any]:
    return {
        "kind": "NodeClaim",
        "apiVersion": "jitnode.io/v1",
        "name": claim.name,
        "uid": claim.metadata.uid,
        "namespace": "default",  # Events of cluster-scoped objects live in "default"
    }
