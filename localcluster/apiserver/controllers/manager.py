"""Routes store events to work queues and runs the reconcilers in one background task.

Events only mark keys dirty (cheap, synchronous); a single task drains them in batches, so a
burst of pod updates costs one ReplicaSet reconcile, not one per pod.
"""

from __future__ import annotations

import asyncio

from localcluster.apiserver.controllers.garbage import (
    collect_dependents,
    evict_pods_of_node,
    finish_namespace,
)
from localcluster.apiserver.controllers.workloads import reconcile_deployment, reconcile_replicaset
from localcluster.apiserver.objects import controller_of
from localcluster.apiserver.service import API, DEPLOY_KEY, NS_KEY, PDB_KEY, POD_KEY, RS_KEY
from localcluster.apiserver.store import DELETED, Event
from shared.logs import get_logger
from shared.tasks import cancel_and_wait

log = get_logger(__name__)
NODE_KEY = ("", "nodes")
NsName = tuple[str, str]


class ControllerManager:
    def __init__(self, api: API, batch_delay: float = 0.002) -> None:
        self.api = api
        self.batch_delay = batch_delay
        self._deployments: set[NsName] = set()
        self._replicasets: set[NsName] = set()
        self._pdb_namespaces: set[str] = set()
        self._gone_uids: list[str] = []
        self._namespaces: set[str] = set()
        self._gone_nodes: set[str] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        api.store.add_listener(self._on_event)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="apiserver-controllers")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    def _on_event(self, event: Event) -> None:
        obj = event.obj
        m = obj.get("metadata", {})
        ns, name = m.get("namespace", ""), m.get("name", "")
        key = event.key
        if key == DEPLOY_KEY:
            self._deployments.add((ns, name))
        elif key == RS_KEY:
            self._replicasets.add((ns, name))
            ref = controller_of(obj)
            if ref and ref.get("kind") == "Deployment":
                self._deployments.add((ns, str(ref.get("name"))))
        elif key == POD_KEY:
            ref = controller_of(obj)
            if ref and ref.get("kind") == "ReplicaSet":
                self._replicasets.add((ns, str(ref.get("name"))))
            if self.api.store.count(PDB_KEY, ns):
                self._pdb_namespaces.add(ns)
        elif key == PDB_KEY and event.type != DELETED:
            self._pdb_namespaces.add(ns)
        elif key == NS_KEY and m.get("deletionTimestamp") and event.type != DELETED:
            self._namespaces.add(name)
        if event.type == DELETED:
            if m.get("uid"):
                self._gone_uids.append(m["uid"])
            if key == NODE_KEY:
                self._gone_nodes.add(name)
            if ns:
                ns_obj = self.api.store.get(NS_KEY, "", ns)
                if ns_obj is not None and ns_obj["metadata"].get("deletionTimestamp"):
                    self._namespaces.add(ns)
        self._wake.set()

    def pending(self) -> bool:
        return bool(
            self._deployments
            or self._replicasets
            or self._pdb_namespaces
            or self._gone_uids
            or self._namespaces
            or self._gone_nodes
        )

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(self.batch_delay)
            rounds = 0
            while self.pending() and rounds < 100:
                rounds += 1
                try:
                    self.run_once()
                except Exception:
                    log.exception("apiserver.controller_failed")
                await asyncio.sleep(0)

    def run_once(self) -> None:
        """Drain every queue once (synchronously: each write is atomic on the event loop)."""
        uids, self._gone_uids = self._gone_uids, []
        for uid in uids:
            collect_dependents(self.api, uid)
        nodes, self._gone_nodes = self._gone_nodes, set()
        for node in nodes:
            evict_pods_of_node(self.api, node)
        deployments, self._deployments = self._deployments, set()
        for ns, name in sorted(deployments):
            reconcile_deployment(self.api, ns, name)
        replicasets, self._replicasets = self._replicasets, set()
        for ns, name in sorted(replicasets):
            reconcile_replicaset(self.api, ns, name)
        pdb_namespaces, self._pdb_namespaces = self._pdb_namespaces, set()
        for ns in sorted(pdb_namespaces):
            for pdb in list(self.api.store.iter(PDB_KEY, ns)):
                self.api.refresh_pdb(pdb)
        namespaces, self._namespaces = self._namespaces, set()
        for ns in sorted(namespaces):
            finish_namespace(self.api, ns)
