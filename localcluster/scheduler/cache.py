"""The scheduler's cache: nodes and the pods on them, including assumed pods.

Each pod is kept as what the filters need of it: the resources it holds, and its namespace,
labels and required anti-affinity terms for InterPodAffinity. kube-scheduler binds
asynchronously, so a pod it has just placed is "assumed" on its node (counted immediately)
until the API confirms the binding; the next pod in the same burst then sees the reduced room
(and the new neighbour) instead of overcommitting the node. Pure bookkeeping, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.podaffinity import PodAffinityTerm
from shared.resources import EMPTY, Resources

from .model import NamespaceScope, NodeFacts, Obj, PodFacts, node_facts


@dataclass(frozen=True, slots=True)
class PodUsage:
    """One pod on its node: requests for fit, non-zero requests for scoring, and what
    InterPodAffinity and PodTopologySpread match (namespace and labels; a terminating pod is
    not counted for spreading) or enforce (required anti-affinity)."""

    uid: str
    requests: Resources
    nonzero_cpu: int
    nonzero_memory: int
    priority: int = 0
    namespace: str = "default"
    labels: Mapping[str, str] = field(default_factory=dict)
    anti_affinity_terms: tuple[PodAffinityTerm, ...] = ()
    terminating: bool = False
    anti_affinity_scopes: tuple[NamespaceScope | None, ...] = ()

    @classmethod
    def of(cls, pod: PodFacts) -> PodUsage:
        return cls(
            pod.uid,
            pod.requests,
            pod.nonzero_cpu,
            pod.nonzero_memory,
            pod.priority,
            pod.namespace,
            pod.labels,
            pod.anti_affinity_terms,
            pod.terminating,
            pod.anti_affinity_scopes,
        )


@dataclass(slots=True)
class NodeInfo:
    """One node and the pods on it (the node may not be known yet while its pods are).

    ``anti_affinity_pods`` are the pods with required anti-affinity terms (kube-scheduler's
    ``PodsWithRequiredAntiAffinity``), so InterPodAffinity skips nodes without any at once.
    """

    name: str
    facts: NodeFacts | None = None
    raw: Obj | None = None
    pods: dict[str, PodUsage] = field(default_factory=dict)
    anti_affinity_pods: dict[str, PodUsage] = field(default_factory=dict)
    requested: Resources = EMPTY
    nonzero_cpu: int = 0
    nonzero_memory: int = 0

    def add(self, usage: PodUsage) -> None:
        if usage.uid in self.pods:
            self.remove(usage.uid)
        self.pods[usage.uid] = usage
        if usage.anti_affinity_terms:
            self.anti_affinity_pods[usage.uid] = usage
        self.requested = self.requested + usage.requests
        self.nonzero_cpu += usage.nonzero_cpu
        self.nonzero_memory += usage.nonzero_memory

    def remove(self, uid: str) -> None:
        usage = self.pods.pop(uid, None)
        if usage is None:
            return
        self.anti_affinity_pods.pop(uid, None)
        self.requested = self.requested - usage.requests
        self.nonzero_cpu -= usage.nonzero_cpu
        self.nonzero_memory -= usage.nonzero_memory


class ClusterCache:
    """Nodes by name, and which node each assigned or assumed pod is on."""

    def __init__(self) -> None:
        self._nodes: dict[str, NodeInfo] = {}
        self._pod_node: dict[str, str] = {}
        self._assumed: set[str] = set()

    # Nodes --------------------------------------------------------------------------------

    def set_node(self, raw: dict[str, Any]) -> NodeInfo:
        """Add or update a node from its API object."""
        facts = node_facts(raw)
        info = self._nodes.setdefault(facts.name, NodeInfo(facts.name))
        info.facts = facts
        info.raw = raw
        return info

    def delete_node(self, name: str) -> None:
        """Forget the node; its pods stay counted under its name until they are deleted."""
        info = self._nodes.get(name)
        if info is None:
            return
        info.facts = None
        info.raw = None
        if not info.pods:
            del self._nodes[name]

    def nodes(self) -> list[NodeInfo]:
        """Known nodes, in the order they were first seen."""
        return [info for info in self._nodes.values() if info.facts is not None]

    def node(self, name: str) -> NodeInfo | None:
        info = self._nodes.get(name)
        return info if info is not None and info.facts is not None else None

    def __iter__(self) -> Iterator[NodeInfo]:
        return iter(self.nodes())

    # Pods ---------------------------------------------------------------------------------

    def add_pod(self, node_name: str, usage: PodUsage) -> None:
        """Count a pod bound to ``node_name`` (also confirms an assumed pod)."""
        self._assumed.discard(usage.uid)
        self._place(node_name, usage)

    def assume(self, node_name: str, pod: PodFacts) -> None:
        """Count a pod on the node it was just scheduled to, before the binding lands."""
        self._assumed.add(pod.uid)
        self._place(node_name, PodUsage.of(pod))

    def forget(self, uid: str) -> None:
        """Undo :meth:`assume` after a failed binding (a confirmed pod is left alone)."""
        if uid in self._assumed:
            self._assumed.discard(uid)
            self.remove_pod(uid)

    def is_assumed(self, uid: str) -> bool:
        return uid in self._assumed

    def remove_pod(self, uid: str) -> None:
        """Stop counting a pod (deleted, or finished: Succeeded/Failed)."""
        self._assumed.discard(uid)
        node_name = self._pod_node.pop(uid, None)
        if node_name is None:
            return
        info = self._nodes.get(node_name)
        if info is None:
            return
        info.remove(uid)
        if info.facts is None and not info.pods:
            del self._nodes[node_name]

    def node_of(self, uid: str) -> str | None:
        return self._pod_node.get(uid)

    def pod(self, uid: str) -> PodUsage | None:
        """The pod as counted on its node (bound or assumed), or None."""
        node_name = self._pod_node.get(uid)
        info = self._nodes.get(node_name) if node_name is not None else None
        return info.pods.get(uid) if info is not None else None

    def _place(self, node_name: str, usage: PodUsage) -> None:
        current = self._pod_node.get(usage.uid)
        if current is not None and current != node_name:
            self.remove_pod(usage.uid)
        self._pod_node[usage.uid] = node_name
        self._nodes.setdefault(node_name, NodeInfo(node_name)).add(usage)
