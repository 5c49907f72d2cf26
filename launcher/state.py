"""The launcher's view of the cluster: informers on what it reads, parsed on demand.

NodePools, EC2NodeClasses and NodeClaims are parsed into ``shared.api`` types once per
resourceVersion; an object that fails validation is logged once and left out (a bad NodePool
must not stop the others from provisioning). Nodes and Pods stay plain dicts. Every change
wakes the subscribers, which re-read what they need (level-triggered, like controllers).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any, Generic, TypeVar

from kubernetes_asyncio import client

from launcher.podindex import PodIndex
from shared.api.group import API_GROUP, API_VERSION, NODECLAIM_PLURAL, NODECLASS_PLURAL, NODEPOOL_PLURAL
from shared.api.nodeclaim import NodeClaim
from shared.api.nodeclass import EC2NodeClass
from shared.api.nodepool import NodePool
from shared.errors import ValidationError
from shared.informer import EventHandler, Informer, Obj, object_key
from shared.logs import get_logger
from shared.slim import slim_node, slim_pod

log = get_logger("launcher.state")
T = TypeVar("T")


class _Kick:
    """Informer handler that wakes every subscriber on any change."""

    def __init__(self, state: LauncherState, kind: str) -> None:
        self._state = state
        self._kind = kind

    def on_added(self, obj: Obj) -> None:
        for listener in self._state.listeners(self._kind):
            listener.on_added(obj)
        self._state.kick(self._kind)

    def on_modified(self, old: Obj, new: Obj) -> None:
        for listener in self._state.listeners(self._kind):
            listener.on_modified(old, new)
        self._state.kick(self._kind)

    def on_deleted(self, obj: Obj) -> None:
        for listener in self._state.listeners(self._kind):
            listener.on_deleted(obj)
        self._state.kick(self._kind)


class _ByProviderId:
    """Nodes by ``spec.providerID``, kept current per node event."""

    def __init__(self) -> None:
        self.nodes: dict[str, Obj] = {}
        self._id_of: dict[str, str] = {}  # node name -> its providerID

    def on_added(self, obj: Obj) -> None:
        self.on_deleted(obj)
        provider_id = str((obj.get("spec") or {}).get("providerID") or "")
        if provider_id:
            self.nodes[provider_id] = obj
            self._id_of[object_key(obj)] = provider_id

    def on_modified(self, old: Obj, new: Obj) -> None:
        self.on_added(new)

    def on_deleted(self, obj: Obj) -> None:
        provider_id = self._id_of.pop(object_key(obj), None)
        held = self.nodes.get(provider_id) if provider_id else None
        if held is not None and object_key(held) == object_key(obj):
            del self.nodes[str(provider_id)]


class _Parsed(Generic[T]):
    """Parsed objects of one informer, re-parsed only when their resourceVersion changes."""

    def __init__(self, informer: Informer, parse: Callable[[Mapping[str, Any]], T], kind: str) -> None:
        self._informer = informer
        self._parse = parse
        self._kind = kind
        self._cache: dict[str, tuple[str, T | None]] = {}

    def all(self) -> dict[str, T]:
        out: dict[str, T] = {}
        store = self._informer.store()
        for key, obj in store.items():
            rv = str(obj.get("metadata", {}).get("resourceVersion", ""))
            cached = self._cache.get(key)
            if cached is None or cached[0] != rv:
                try:
                    value: T | None = self._parse(obj)
                except ValidationError as error:
                    log.error("invalid object ignored", kind=self._kind, name=key, error=str(error))
                    value = None
                cached = (rv, value)
                self._cache[key] = cached
            if cached[1] is not None:
                out[key] = cached[1]
        for gone in self._cache.keys() - store.keys():
            del self._cache[gone]
        return out


class LauncherState:
    """Informers for NodePools, EC2NodeClasses, NodeClaims, Nodes and Pods."""

    def __init__(self, api: client.ApiClient) -> None:
        custom = client.CustomObjectsApi(api)
        core = client.CoreV1Api(api)
        self._subscribers: list[asyncio.Event] = []
        self._listeners: dict[str, list[EventHandler]] = {}

        def custom_list(plural: str) -> Any:
            return partial(custom.list_cluster_custom_object, API_GROUP, API_VERSION, plural)

        self.nodepool_informer = Informer(
            custom_list(NODEPOOL_PLURAL), _Kick(self, "nodepool"), name="nodepools"
        )
        self.nodeclass_informer = Informer(
            custom_list(NODECLASS_PLURAL), _Kick(self, "nodeclass"), name="ec2nodeclasses"
        )
        self.nodeclaim_informer = Informer(
            custom_list(NODECLAIM_PLURAL), _Kick(self, "nodeclaim"), name="nodeclaims"
        )
        # Nodes and pods are cut down to what the launcher reads as they are decoded (shared.slim).
        self.node_informer = Informer(core.list_node, _Kick(self, "node"), name="nodes", transform=slim_node)
        self.pod_informer = Informer(
            core.list_pod_for_all_namespaces, _Kick(self, "pod"), name="pods", transform=slim_pod
        )
        self._informers = (
            self.nodepool_informer,
            self.nodeclass_informer,
            self.nodeclaim_informer,
            self.node_informer,
            self.pod_informer,
        )
        self._nodepools = _Parsed(self.nodepool_informer, NodePool.from_api, "NodePool")
        self._nodeclasses = _Parsed(self.nodeclass_informer, EC2NodeClass.from_api, "EC2NodeClass")
        self._nodeclaims = _Parsed(self.nodeclaim_informer, NodeClaim.from_api, "NodeClaim")
        # Pods by node, by uid and the sums plans read, kept current per event (launcher.podindex).
        self.pod_index = PodIndex()
        self.listen("pod", self.pod_index)
        self._by_provider_id = _ByProviderId()
        self.listen("node", self._by_provider_id)

    def start(self) -> None:
        for informer in self._informers:
            informer.start()

    async def stop(self) -> None:
        for informer in self._informers:
            await informer.stop()

    async def wait_synced(self) -> None:
        for informer in self._informers:
            await informer.wait_synced()

    @property
    def has_synced(self) -> bool:
        return all(informer.has_synced for informer in self._informers)

    # Change notification -------------------------------------------------------------------

    def subscribe(self) -> asyncio.Event:
        """An event set on every change; the subscriber clears it before re-reading."""
        event = asyncio.Event()
        self._subscribers.append(event)
        return event

    def listen(self, kind: str, handler: EventHandler) -> None:
        """Hand every event on ``kind`` objects ("nodepool", "nodeclass", "nodeclaim", "node",
        "pod") to ``handler`` as it happens, for those that must know *what* changed (to keep an
        index current) rather than re-read everything. Register before :meth:`start`."""
        self._listeners.setdefault(kind, []).append(handler)

    def listeners(self, kind: str) -> list[EventHandler]:
        return self._listeners.get(kind, [])

    def kick(self, kind: str = "") -> None:
        for event in self._subscribers:
            event.set()

    # Views ---------------------------------------------------------------------------------

    def nodepools(self) -> dict[str, NodePool]:
        return self._nodepools.all()

    def nodeclasses(self) -> dict[str, EC2NodeClass]:
        return self._nodeclasses.all()

    def nodeclaims(self) -> dict[str, NodeClaim]:
        return self._nodeclaims.all()

    def nodes(self) -> Mapping[str, Obj]:
        return self.node_informer.store()

    def pods(self) -> Mapping[str, Obj]:
        return self.pod_informer.store()

    def nodes_by_provider_id(self) -> Mapping[str, Obj]:
        """``spec.providerID -> node``, kept current per event (a lookup per claim reconcile)."""
        return self._by_provider_id.nodes

    def pods_by_node(self) -> Mapping[str, Sequence[Mapping[str, Any]]]:
        """``node -> pods bound there``: a view of the index, O(pods on the node) a lookup."""
        return self.pod_index.by_node()
