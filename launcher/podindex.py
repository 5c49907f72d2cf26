"""The launcher's pods indexed the ways its decisions ask, kept current event by event.

A plan for 1,000 pending pods must not walk 150,000 bound ones, and a disruption round must not
re-parse every pod of the cluster. So the pod informer's events (already slim, see
``shared.slim``) also feed this index, at O(1) work per event: pods by node and by uid, each
bound pod's requests and their running sum per node, the DaemonSet pods per node (a new node's
overhead), the bound pods with required anti-affinity (the only ones that repel a pending pod
that has no inter-pod constraints of its own), every running pod as topology counts it, the
pods not yet Ready, and those annotated do-not-disrupt. Each node also has a generation that
changes with any of its pods, so what is derived from a node's pods can be cached until it does.
Each scalable workload's pod count, and its highest count since it was last handed over, feed
scale-down stabilisation (``launcher.disruption.stabilisation``).

What each view holds is exactly what the full walk it replaces selects
(``tests/launcher/test_podindex.py`` checks it against those walks). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from launcher.disruption.stabilisation import WorkloadSample, workload_of
from launcher.planner.inputs import RunningPod
from shared import labels, podaffinity, pods
from shared.errors import FieldError, ValidationError
from shared.informer import object_key
from shared.resources import EMPTY, Resources

Obj = Mapping[str, Any]


def pod_requests(pod: Obj) -> Resources:
    """The pod's effective requests; a pod that cannot be read requests nothing."""
    try:
        return pods.effective_requests(pod)
    except ValidationError:
        return EMPTY


def repels(pod: Obj) -> bool:
    """Whether the pod has pod anti-affinity (its required terms may keep others away)."""
    affinity = (pod.get("spec") or {}).get("affinity")
    return isinstance(affinity, Mapping) and bool(affinity.get("podAntiAffinity"))


def running_pod(pod: Obj, node: str) -> RunningPod | None:
    """The pod as topology spread and pod (anti-)affinity count it on ``node``; None when it does
    not count (finished, or being deleted)."""
    meta = pod.get("metadata") or {}
    if pods.is_terminal(pod) or meta.get("deletionTimestamp"):
        return None
    spec = pod.get("spec") or {}
    namespace = str(meta.get("namespace") or "default")
    try:
        terms = podaffinity.required_terms(spec, "podAntiAffinity", namespace) if repels(pod) else ()
    except FieldError:
        terms = ()
    raw = meta.get("labels")
    if not isinstance(raw, Mapping):
        pod_labels: Mapping[str, str] = {}
    elif all(type(k) is str and type(v) is str for k, v in raw.items()):
        pod_labels = raw  # shared with the (read-only) slim pod, and with its replicas
    else:
        pod_labels = {str(k): str(v) for k, v in raw.items()}
    return RunningPod(namespace, pod_labels, node, terms)


def is_ready(pod: Obj) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


class _ByNode(Mapping[str, Sequence[Obj]]):
    """``node -> its pods`` over one of the index's tables, without copying the table."""

    def __init__(self, table: Mapping[str, Mapping[str, Obj]]) -> None:
        self._table = table

    def __getitem__(self, node: str) -> Sequence[Obj]:
        return list(self._table[node].values())

    def __iter__(self) -> Iterator[str]:
        return iter(self._table)

    def __len__(self) -> int:
        return len(self._table)


class _BoundRequests(Mapping[str, Resources]):
    """``uid -> requests`` of the pods bound to a node and not finished."""

    def __init__(self, index: PodIndex) -> None:
        self._index = index

    def __getitem__(self, uid: str) -> Resources:
        key = self._index._key_of_uid.get(uid)
        if key is None or key not in self._index._counted:
            raise KeyError(uid)
        return self._index._counted[key]

    def __iter__(self) -> Iterator[str]:
        return (str(self._index._pods[k].get("metadata", {}).get("uid")) for k in self._index._counted)

    def __len__(self) -> int:
        return len(self._index._counted)


class _Workload:
    """A workload's counted pods, its most since the last hand-over, and its newest pod."""

    __slots__ = ("count", "peak", "pod")

    def __init__(self, pod: Obj) -> None:
        self.count = 0
        self.peak = 0
        self.pod = pod


class PodIndex:
    """An informer handler keeping the pod views decisions read (see the module doc)."""

    def __init__(self) -> None:
        self._pods: dict[str, Obj] = {}
        self._node_of: dict[str, str] = {}  # key -> node, bound pods only
        self._key_of_uid: dict[str, str] = {}
        self._by_node: dict[str, dict[str, Obj]] = {}
        self._daemons: dict[str, dict[str, Obj]] = {}
        self._repelling: dict[str, dict[str, Obj]] = {}
        self._counted: dict[str, Resources] = {}  # key -> requests, bound and not terminal
        self._requested: dict[str, Resources] = {}  # node -> sum of its counted requests
        self._running: dict[str, RunningPod] = {}
        self._not_ready: dict[str, Obj] = {}  # not terminal and not Ready, bound or not
        self._opted_out: dict[str, Obj] = {}  # annotated jitnode.io/do-not-disrupt, any value
        self._generation: dict[str, int] = {}
        self._clock = 0
        self._workload_of: dict[str, str] = {}  # key -> its workload, counted pods only
        self._workloads: dict[str, _Workload] = {}
        self._workloads_changed: set[str] = set()

    @classmethod
    def of(cls, objects: Iterator[Obj] | Sequence[Obj]) -> PodIndex:
        """An index of ``objects`` (for tests and one-off views)."""
        index = cls()
        for pod in objects:
            index.on_added(pod)
        return index

    # Events -------------------------------------------------------------------------------

    def on_added(self, obj: Obj) -> None:
        self._remove(object_key(obj))
        self._add(obj)

    def on_modified(self, old: Obj, new: Obj) -> None:
        key = object_key(new)
        if key != object_key(old):
            self._remove(object_key(old))
        # A pod changed on the node it was on keeps its place there, as in the informer's store
        # (a node's pods stay in the order it gained them).
        node = str((new.get("spec") or {}).get("nodeName") or "")
        self._remove(key, keep_place=bool(node) and self._node_of.get(key) == node)
        self._add(new)

    def on_deleted(self, obj: Obj) -> None:
        self._remove(object_key(obj))

    def _add(self, pod: Obj) -> None:
        key = object_key(pod)
        self._pods[key] = pod
        uid = pods.pod_uid(pod)
        if uid:
            self._key_of_uid[uid] = key
        terminal = pods.is_terminal(pod)
        if not terminal and not is_ready(pod):
            self._not_ready[key] = pod
        if labels.DO_NOT_DISRUPT_ANNOTATION in ((pod.get("metadata") or {}).get("annotations") or {}):
            self._opted_out[key] = pod
        workload = workload_of(pod)
        if workload is not None:
            self._count(key, workload, pod)
        node = str((pod.get("spec") or {}).get("nodeName") or "")
        if not node:
            return
        self._node_of[key] = node
        self._touch(node)
        self._by_node.setdefault(node, {})[key] = pod
        if pods.is_daemonset_pod(pod):
            self._daemons.setdefault(node, {})[key] = pod
        if repels(pod):
            self._repelling.setdefault(node, {})[key] = pod
        if not terminal:
            requests = self._counted[key] = pod_requests(pod)
            self._requested[node] = self._requested.get(node, EMPTY) + requests
        running = running_pod(pod, node)
        if running is not None:
            self._running[key] = running

    def _remove(self, key: str, keep_place: bool = False) -> None:
        """Drop the pod from every view; ``keep_place``: leave its slot in its node's table, for
        :meth:`_add` to fill with the new version of the pod at once."""
        pod = self._pods.get(key) if keep_place else self._pods.pop(key, None)
        if pod is None:
            return
        uid = pods.pod_uid(pod)
        if uid and self._key_of_uid.get(uid) == key:
            del self._key_of_uid[uid]
        self._not_ready.pop(key, None)
        self._opted_out.pop(key, None)
        self._running.pop(key, None)
        self._uncount(key)
        node = self._node_of.pop(key, None)
        if node is None:
            return
        self._touch(node)
        for table in (
            (self._daemons, self._repelling)
            if keep_place
            else (self._by_node, self._daemons, self._repelling)
        ):
            here = table.get(node)
            if here is not None and here.pop(key, None) is not None and not here:
                del table[node]
        requests = self._counted.pop(key, None)
        if requests is not None:
            self._requested[node] = self._requested[node] - requests
        if node not in self._by_node:  # its last pod: nothing of it stays
            self._requested.pop(node, None)
            self._generation.pop(node, None)

    def _touch(self, node: str) -> None:
        self._clock += 1
        self._generation[node] = self._clock

    def _count(self, key: str, workload: str, pod: Obj) -> None:
        self._workload_of[key] = workload
        entry = self._workloads.get(workload)
        if entry is None:
            entry = self._workloads[workload] = _Workload(pod)
        entry.count += 1
        entry.peak = max(entry.peak, entry.count)
        entry.pod = pod
        self._workloads_changed.add(workload)

    def _uncount(self, key: str) -> None:
        workload = self._workload_of.pop(key, None)
        if workload is not None:
            self._workloads[workload].count -= 1
            self._workloads_changed.add(workload)

    # Views --------------------------------------------------------------------------------

    def pods(self) -> Mapping[str, Obj]:
        """Every pod, by ``namespace/name``."""
        return self._pods

    def by_uid(self, uid: str) -> Obj | None:
        key = self._key_of_uid.get(uid)
        return self._pods.get(key) if key is not None else None

    def is_bound(self, uid: str) -> bool:
        """Whether the API shows the pod with this uid bound to a node."""
        key = self._key_of_uid.get(uid)
        return key is not None and key in self._node_of

    def by_node(self) -> Mapping[str, Sequence[Obj]]:
        """``node -> pods bound there`` (every pod, finished ones too, as the API lists them)."""
        return _ByNode(self._by_node)

    def on_node(self, node: str) -> list[Obj]:
        return list(self._by_node.get(node, {}).values())

    def daemons_by_node(self) -> Mapping[str, Sequence[Obj]]:
        """``node -> DaemonSet pods bound there``."""
        return _ByNode(self._daemons)

    def repelling_by_node(self) -> Mapping[str, Sequence[Obj]]:
        """``node -> bound pods with pod anti-affinity``."""
        return _ByNode(self._repelling)

    def requested(self, node: str) -> Resources:
        """The summed requests of the unfinished pods bound to ``node``."""
        return self._requested.get(node, EMPTY)

    def bound_requests(self) -> Mapping[str, Resources]:
        """``uid -> requests`` of unfinished pods bound to a node (a view, O(1) a lookup)."""
        return _BoundRequests(self)

    def running(self) -> list[RunningPod]:
        """Every bound pod topology counts (not finished, not being deleted)."""
        return list(self._running.values())

    def repelling_running(self) -> list[RunningPod]:
        """The running pods with pod anti-affinity: all a pod without constraints must see."""
        return [
            running
            for here in self._repelling.values()
            for key in here
            if (running := self._running.get(key)) is not None
        ]

    def not_ready(self) -> list[Obj]:
        """Unfinished pods that are not Ready (pending, or bound and starting)."""
        return list(self._not_ready.values())

    def opted_out(self) -> list[Obj]:
        """Pods carrying the ``jitnode.io/do-not-disrupt`` annotation, whatever its value."""
        return list(self._opted_out.values())

    def drain_workloads(self) -> list[WorkloadSample]:
        """The workloads whose pods changed since the last call: their count now and their most
        pods in between (O(changed workloads)); a workload left with no pods is forgotten."""
        out = []
        for workload in self._workloads_changed:
            entry = self._workloads[workload]
            out.append(WorkloadSample(workload, entry.count, entry.peak, entry.pod))
            entry.peak = entry.count
            if entry.count == 0:
                del self._workloads[workload]
        self._workloads_changed.clear()
        return out

    def generation(self, node: str) -> int:
        """Changes whenever a pod bound to ``node`` is added, changed or removed; 0 while it has
        none (generations only grow, so a value is never reused for other pods)."""
        return self._generation.get(node, 0)
