"""The extender's in-memory view of the cluster: nodes, bound pods, requested resources per node.

Filter and prioritize answer from this view only (never from API calls), so it keeps, per node,
exactly what they read in the request path, precomputed when watch events arrive: allocatable
cpu and memory as plain ints, the running sum of requests of the pods bound there, whether the
launcher is disrupting the node, when it expires and its price per resource unit. Pure: fed
by informer events (plain dicts as the API sends them), no I/O.

``version`` increases on every change that can alter how much room there is, so derived
results (the shortfall predictor's room per pod shape) can be cached against it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from extender import keys
from extender.scoretable import ScoreTable
from shared import labels
from shared.errors import FieldError, ValidationError
from shared.pods import effective_requests, is_terminal
from shared.resources import CPU, MEMORY, PODS, Resources

Obj = Mapping[str, Any]
# A node's "resource units" for price comparison: one vCPU ~ 4 GiB, as in general-purpose types.
_GIB_PER_CPU = 4
_GIB = 2**30
# Labels that differ on every node; left out of the grouping signature (see NodeState.signature).
_UNIQUE_LABELS = frozenset({labels.HOSTNAME, labels.NODECLAIM})


@dataclass(slots=True)
class NodeState:
    """What the request path needs to know about one node, precomputed."""

    name: str
    labels: Mapping[str, str]
    taints: tuple[Mapping[str, Any], ...]
    allocatable: Resources
    alloc_cpu: int
    alloc_memory: int
    disrupted: bool
    cordoned: bool
    expires_at: float | None
    price_per_unit: float | None
    # Labels and taints identify which pod shapes the node can host: nodes sharing them group.
    signature: tuple[Any, ...]


@dataclass(slots=True)
class Usage:
    """Requests of the pods bound to one node (kept even while the node itself is unknown)."""

    requested: dict[str, int] = field(default_factory=dict)
    pods: int = 0

    def add(self, requests: Mapping[str, int], sign: int) -> None:
        for name, amount in requests.items():
            self.requested[name] = self.requested.get(name, 0) + sign * amount
        self.pods += sign


@dataclass(frozen=True, slots=True)
class PodRecord:
    node_name: str
    requests: Resources
    namespace: str = "default"
    labels: Mapping[str, str] = field(default_factory=dict)  # what spread and affinity selectors match


def _parse_time(value: object) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _parse_price(value: object) -> float | None:
    try:
        price = float(value) if isinstance(value, str | int | float) else None
    except ValueError:
        return None
    return price if price is not None and price > 0 and price < float("inf") else None


def node_state(node: Obj) -> NodeState:
    """Precompute a node's :class:`NodeState`; raises :class:`FieldError` on unparsable capacity."""
    meta = node.get("metadata") or {}
    spec = node.get("spec") or {}
    status = node.get("status") or {}
    name = str(meta.get("name") or "")
    node_labels: Mapping[str, str] = meta.get("labels") or {}
    annotations: Mapping[str, str] = meta.get("annotations") or {}
    taints = tuple(t for t in (spec.get("taints") or []) if isinstance(t, Mapping))
    allocatable = Resources.parse(
        status.get("allocatable") or status.get("capacity") or {}, "status.allocatable"
    )
    alloc_cpu = allocatable.amount(CPU)
    alloc_memory = allocatable.amount(MEMORY)
    disrupted = labels.DISRUPTING_ANNOTATION in annotations or any(
        t.get("key") == labels.DISRUPTED_TAINT for t in taints
    )
    price = _parse_price(annotations.get(keys.PRICE_PER_HOUR, node_labels.get(keys.PRICE_PER_HOUR)))
    units = alloc_cpu / 1000 + alloc_memory / _GIB / _GIB_PER_CPU
    signature = (
        tuple(sorted((k, v) for k, v in node_labels.items() if k not in _UNIQUE_LABELS)),
        tuple(sorted((str(t.get("key")), str(t.get("value", "")), str(t.get("effect"))) for t in taints)),
    )
    return NodeState(
        name=name,
        labels=node_labels,
        taints=taints,
        allocatable=allocatable,
        alloc_cpu=alloc_cpu,
        alloc_memory=alloc_memory,
        disrupted=disrupted,
        cordoned=bool(spec.get("unschedulable")),
        expires_at=_parse_time(annotations.get(keys.EXPIRES_AT)),
        price_per_unit=price / units if price is not None and units > 0 else None,
        signature=signature,
    )


def pod_uid(pod: Obj) -> str:
    meta = pod.get("metadata") or {}
    uid = meta.get("uid")
    if uid:
        return str(uid)
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


class ClusterCache:
    """Nodes and bound pods, with per-node usage maintained incrementally (see module doc)."""

    def __init__(self) -> None:
        self.nodes: dict[str, NodeState] = {}
        self.usage: dict[str, Usage] = {}
        self.pods: dict[str, PodRecord] = {}
        # The same records by node, so what reads one node's pods never walks every pod.
        self.pods_by_node: dict[str, dict[str, PodRecord]] = {}
        # Names of nodes filter fails; a set so filter is one lookup per candidate.
        self.disrupted: set[str] = set()
        # Prioritize's columns, kept in step with nodes and usage.
        self.table = ScoreTable()
        self.version = 0
        self.rejected_objects = 0

    # Nodes --------------------------------------------------------------------------------

    def upsert_node(self, node: Obj) -> None:
        try:
            state = node_state(node)
        except (FieldError, TypeError):
            # A node we can't read keeps its last good state; the API server validated it, so
            # this is a bug or a new format, not something to crash the request path over.
            self.rejected_objects += 1
            return
        if not state.name:
            return
        self.nodes[state.name] = state
        self.table.set_node(
            state.name,
            alloc_cpu=state.alloc_cpu,
            alloc_mem=state.alloc_memory,
            price_per_unit=state.price_per_unit,
            expires_at=state.expires_at,
            disrupted=state.disrupted,
        )
        used = self.requested(state.name)
        self.table.set_usage(state.name, used.get(CPU, 0), used.get(MEMORY, 0))
        if state.disrupted:
            self.disrupted.add(state.name)
        else:
            self.disrupted.discard(state.name)
        self.version += 1

    def delete_node(self, node: Obj) -> None:
        name = str((node.get("metadata") or {}).get("name") or "")
        if self.nodes.pop(name, None) is not None:
            self.table.remove_node(name)
            self.disrupted.discard(name)
            self.version += 1

    # Pods ---------------------------------------------------------------------------------

    def upsert_pod(self, pod: Obj) -> None:
        uid = pod_uid(pod)
        node_name = str((pod.get("spec") or {}).get("nodeName") or "")
        if not node_name or is_terminal(pod):
            self.delete_pod(pod)
            return
        previous = self.pods.get(uid)
        if previous is not None and previous.node_name == node_name:
            return  # a bound pod's requests don't change (resize aside): nothing to recount
        try:
            requests = effective_requests(pod)
        except (FieldError, ValidationError, TypeError):  # it raises ValidationError naming the field
            self.rejected_objects += 1
            return
        if previous is not None:
            self._account(previous, -1)
        meta = pod.get("metadata") or {}
        raw_labels = meta.get("labels")
        record = PodRecord(
            node_name=node_name,
            requests=requests,
            namespace=str(meta.get("namespace") or "default"),
            labels=raw_labels if isinstance(raw_labels, Mapping) else {},
        )
        if previous is not None:
            self._unindex(uid, previous)
        self.pods[uid] = record
        self.pods_by_node.setdefault(node_name, {})[uid] = record
        self._account(record, +1)
        self.version += 1

    def delete_pod(self, pod: Obj) -> None:
        uid = pod_uid(pod)
        record = self.pods.pop(uid, None)
        if record is not None:
            self._unindex(uid, record)
            self._account(record, -1)
            self.version += 1

    def _unindex(self, uid: str, record: PodRecord) -> None:
        here = self.pods_by_node.get(record.node_name)
        if here is not None and here.pop(uid, None) is not None and not here:
            del self.pods_by_node[record.node_name]

    def _account(self, record: PodRecord, sign: int) -> None:
        usage = self.usage.get(record.node_name)
        if usage is None:
            usage = self.usage[record.node_name] = Usage()
        usage.add(record.requests, sign)
        self.table.set_usage(record.node_name, usage.requested.get(CPU, 0), usage.requested.get(MEMORY, 0))
        if usage.pods == 0:
            del self.usage[record.node_name]

    # Reads --------------------------------------------------------------------------------

    def requested(self, node_name: str) -> Mapping[str, int]:
        usage = self.usage.get(node_name)
        return usage.requested if usage is not None else {}

    def free(self, node_name: str) -> dict[str, int]:
        """Allocatable minus requested (may be negative when overcommitted), with a ``pods`` slot count."""
        state = self.nodes[node_name]
        usage = self.usage.get(node_name)
        free = dict(state.allocatable)
        if usage is not None:
            for name, amount in usage.requested.items():
                free[name] = free.get(name, 0) - amount
            if PODS not in usage.requested:  # requests normally carry the pod's slot already
                free[PODS] = free.get(PODS, 0) - usage.pods
        return free


class NodeEvents:
    """Informer handler feeding nodes into a :class:`ClusterCache`."""

    def __init__(self, cache: ClusterCache) -> None:
        self._cache = cache

    def on_added(self, obj: dict[str, Any]) -> None:
        self._cache.upsert_node(obj)

    def on_modified(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        self._cache.upsert_node(new)

    def on_deleted(self, obj: dict[str, Any]) -> None:
        self._cache.delete_node(obj)


class PodEvents:
    """Informer handler feeding pods into a :class:`ClusterCache`."""

    def __init__(self, cache: ClusterCache) -> None:
        self._cache = cache

    def on_added(self, obj: dict[str, Any]) -> None:
        self._cache.upsert_pod(obj)

    def on_modified(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        self._cache.upsert_pod(new)

    def on_deleted(self, obj: dict[str, Any]) -> None:
        self._cache.delete_pod(obj)
