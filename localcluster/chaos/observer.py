"""Watches a whole chaos run: pods, PodDisruptionBudgets, Nodes and FailedProvisioning Events.

Some invariants are about history, not the state at the end: a PodDisruptionBudget broken for
a moment (a node terminated under protected pods, its replacements Running seconds later), a
pod that went pending and was deleted, how long pods stayed pending. So the observer watches
from before the first fault to the check, over HTTP with the same list+watch loop as the
services (:class:`shared.informer.Informer`: resumes after a broken watch, relists on 410
Gone, backs off while the API server is down). A relist's differences are judged as one
batch, as if they happened at once: the order of events missed in the gap is unknown.

Memory is bounded by the pods of the run: one small record for each pod ever seen, the
current pods and budgets, the instance id of each node, and the uids of pods the launcher
reported unschedulable.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final

from kubernetes_asyncio import client as k8s

from localcluster.chaos.decisions import (
    Breach,
    BudgetView,
    PodFate,
    PodView,
    Violation,
    budget_breaches,
    declared,
)
from shared.backoff import Backoff
from shared.informer import Informer, Obj, object_key

# The launcher's Event on a pod no NodePool can serve (launcher/provisioning/provisioner.py).
FAILED_PROVISIONING: Final = "FailedProvisioning"
SYNC_TIMEOUT: Final = 30.0
# Short: a check right after an API server restart must not wait out a 10 s backoff.
WATCH_BACKOFF_CAP: Final = 1.0


class _RelistInformer(Informer):
    """An informer that brackets each relist's batch of handler calls with two callbacks."""

    def __init__(self, *args: Any, on_relist: Callable[[bool], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._on_relist = on_relist

    def _replace(self, items: list[Obj]) -> None:
        self._on_relist(True)
        try:
            super()._replace(items)
        finally:
            self._on_relist(False)


@dataclass(slots=True)
class _History:
    """What the observer remembers of one pod, for as long as the run lasts."""

    view: PodView
    ever_pending: bool = False
    served: bool = False
    gone: bool = False
    removed_by_test: bool = False
    going_seen: bool = False  # its removal has been matched against the declarations
    pending_since: float | None = None  # loop time it was first seen pending
    timed: bool = False  # its pending time is in pending_seconds


@dataclass(slots=True)
class _Declaration:
    namespace: str
    selector: dict[str, str]
    remaining: int


@dataclass(slots=True)
class _Handler:
    """Adapts informer callbacks to one of the observer's methods."""

    changed: Callable[[Obj, bool], None]

    def on_added(self, obj: Obj) -> None:
        self.changed(obj, False)

    def on_modified(self, old: Obj, new: Obj) -> None:
        self.changed(new, False)

    def on_deleted(self, obj: Obj) -> None:
        self.changed(obj, True)


@dataclass(slots=True)
class _Batch:
    changes: dict[str, tuple[PodView | None, PodView | None]] = field(default_factory=dict)


class RunObserver:
    """Watches pods (all namespaces or one), PodDisruptionBudgets, Nodes and Events for the whole run.

    ``async with RunObserver(api) as observer:`` returns once every watch has listed. Pods the
    test itself removes (a scale-down, a deletion) must be declared with :meth:`expect_fewer`
    beforehand, or their going may count as a broken budget or lost demand.
    """

    def __init__(self, api: k8s.ApiClient, namespace: str | None = None) -> None:
        self.api = api
        self.namespace = namespace
        # For each pod that was ever pending: seconds from first seen pending to Running.
        self.pending_seconds: list[float] = []
        self._pods: dict[str, _History] = {}
        self._current: dict[str, PodView] = {}
        self._budgets: dict[str, BudgetView] = {}
        self._reported: set[str] = set()
        self._declarations: list[_Declaration] = []
        self._breaches: list[Breach] = []
        self._node_instances: dict[str, str] = {}
        self._batch: _Batch | None = None
        core, policy = k8s.CoreV1Api(api), k8s.PolicyV1Api(api)
        events_selector = {"field_selector": f"reason={FAILED_PROVISIONING},type=Warning"}
        nodes: Callable[..., Any] = core.list_node
        if namespace is None:
            pods: Callable[..., Any] = core.list_pod_for_all_namespaces
            budgets: Callable[..., Any] = policy.list_pod_disruption_budget_for_all_namespaces
            events: Callable[..., Any] = core.list_event_for_all_namespaces
        else:
            pods = functools.partial(core.list_namespaced_pod, namespace)
            budgets = functools.partial(policy.list_namespaced_pod_disruption_budget, namespace)
            events = functools.partial(core.list_namespaced_event, namespace)
        self._informers = [
            _RelistInformer(
                pods,
                _Handler(self._pod_changed),
                name="chaos-pods",
                on_relist=self._relisting,
                backoff=_backoff(),
            ),
            Informer(budgets, _Handler(self._budget_changed), name="chaos-pdbs", backoff=_backoff()),
            Informer(nodes, _Handler(self._node_changed), name="chaos-nodes", backoff=_backoff()),
            Informer(
                events,
                _Handler(self._event_changed),
                name="chaos-events",
                list_kwargs=events_selector,
                backoff=_backoff(),
            ),
        ]

    async def __aenter__(self) -> RunObserver:
        for informer in self._informers:
            informer.start()
        try:
            async with asyncio.timeout(SYNC_TIMEOUT):
                for informer in self._informers:
                    await informer.wait_synced()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def stop(self) -> None:
        for informer in self._informers:
            await informer.stop()

    # What tests declare and read --------------------------------------------------------------

    def expect_fewer(self, namespace: str, selector: Mapping[str, str], count: int) -> None:
        """The test itself is about to remove ``count`` pods matching ``selector`` in ``namespace``
        (scale-down, deletion): their going breaks no budget and loses no demand."""
        if count > 0:
            self._declarations.append(_Declaration(namespace, dict(selector), count))

    @property
    def breaches(self) -> list[Breach]:
        """Every moment a PodDisruptionBudget was broken so far, whoever broke it."""
        return list(self._breaches)

    @property
    def budget_violations(self) -> list[Violation]:
        """:attr:`breaches` as violations (the check leaves out those EC2 itself caused)."""
        return [b.violation() for b in self._breaches]

    @property
    def node_instances(self) -> dict[str, str]:
        """The instance id each node seen during the run named in its providerID, by node name."""
        return dict(self._node_instances)

    @property
    def reported(self) -> frozenset[str]:
        """Uids of pods with a FailedProvisioning Warning Event."""
        return frozenset(self._reported)

    def fates(self) -> dict[str, PodFate]:
        """What became of every pod seen so far, by uid."""
        return {
            uid: PodFate(
                uid=uid,
                key=h.view.key,
                phase=h.view.phase,
                ever_pending=h.ever_pending,
                served=h.served,
                running=not h.gone and h.view.phase == "Running",
                gone=h.gone,
                removed_by_test=h.removed_by_test,
            )
            for uid, h in self._pods.items()
        }

    def pending(self) -> set[str]:
        """Uids of the pods pending now."""
        return {uid for uid, p in self._current.items() if p.phase == "Pending" and not p.deleting}

    def knows(self, uids: Collection[str]) -> bool:
        return all(uid in self._pods for uid in uids)

    # Informer callbacks -------------------------------------------------------------------------

    def _relisting(self, starting: bool) -> None:
        if starting:
            self._batch = _Batch()
            return
        batch, self._batch = self._batch, None
        if batch is not None and batch.changes:
            self._judge(batch.changes)

    def _pod_changed(self, obj: Obj, deleted: bool) -> None:
        view = PodView.from_object(obj)
        if not view.uid:
            return
        before = self._current.get(view.uid)
        after = None if deleted else view
        if after is None:
            self._current.pop(view.uid, None)
        else:
            self._current[view.uid] = after
        self._remember(view, deleted)
        if self._batch is not None:
            first = self._batch.changes.get(view.uid, (before, after))[0]
            self._batch.changes[view.uid] = (first, after)
        elif before is not None:
            self._judge({view.uid: (before, after)})

    def _judge(self, changes: Mapping[str, tuple[PodView | None, PodView | None]]) -> None:
        excused = {uid for uid in changes if uid in self._pods and self._pods[uid].removed_by_test}
        self._breaches += budget_breaches(self._budgets.values(), changes, self._current.values(), excused)

    def _remember(self, view: PodView, deleted: bool) -> None:
        now = asyncio.get_running_loop().time()
        history = self._pods.get(view.uid)
        if history is None:
            history = self._pods[view.uid] = _History(view)
        history.view = view
        if view.phase == "Pending" and not deleted and not view.deleting:
            history.ever_pending = True
            if history.pending_since is None:
                history.pending_since = now
        if view.node_name or view.phase in ("Running", "Succeeded"):
            history.served = True
        if view.phase == "Running" and history.pending_since is not None and not history.timed:
            history.timed = True
            self.pending_seconds.append(now - history.pending_since)
        if deleted:
            history.gone = True
        if (deleted or view.deleting) and not history.going_seen:
            history.going_seen = True
            for declaration in self._declarations:
                if declaration.remaining > 0 and declared(declaration.namespace, declaration.selector, view):
                    declaration.remaining -= 1
                    history.removed_by_test = True
                    break
            self._declarations = [d for d in self._declarations if d.remaining > 0]

    def _budget_changed(self, obj: Obj, deleted: bool) -> None:
        key = object_key(obj)
        if deleted:
            self._budgets.pop(key, None)
        else:
            self._budgets[key] = BudgetView.from_object(obj)

    def _node_changed(self, obj: Obj, deleted: bool) -> None:
        provider_id = str((obj.get("spec") or {}).get("providerID") or "")
        name = str((obj.get("metadata") or {}).get("name") or "")
        if name and provider_id:
            self._node_instances[name] = provider_id.rsplit("/", 1)[-1]  # aws:///<zone>/<instance id>

    def _event_changed(self, obj: Obj, deleted: bool) -> None:
        involved = obj.get("involvedObject") or {}
        if (
            not deleted
            and obj.get("reason") == FAILED_PROVISIONING
            and obj.get("type") == "Warning"
            and involved.get("kind") == "Pod"
            and involved.get("uid")
        ):
            self._reported.add(str(involved["uid"]))


def _backoff() -> Backoff:
    return Backoff(base=0.1, cap=WATCH_BACKOFF_CAP)
