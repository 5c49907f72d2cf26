"""Room for a pod shape whose placement depends on other pods: spread, pod affinity (pure).

The shortfall predictor counts how many more pods of a shape fit on the nodes there are. For a
pod with a hard topology spread constraint or required pod (anti-)affinity, room by resources
alone is wrong in the way that matters: anti-affinity replicas cannot share the nodes (or
zones) resources say they fit on, a pod that must join another fits only where that one runs,
and a spread caps every domain at the least-filled one plus ``maxSkew``. :func:`room` judges
such a shape node by node, then domain by domain, with kube-scheduler's rules:

- *Anti-affinity*: no room in a domain (the term's key) holding a matching pod; a pod that
  matches its own term takes at most one place per domain.
- *Affinity*: room only on nodes whose domain, for every term, holds a pod matching all the
  terms. When no pod anywhere does and the pod matches them itself, the first replica may go
  anywhere and the rest must follow it: the room is that of the roomiest single domain.
- *Spread* (DoNotSchedule only; ScheduleAnyway only scores): a domain ``d`` with ``count[d]``
  matching pods and ``cap[d]`` room can end with at most ``floor + maxSkew`` of them, ``floor``
  being the highest the least-filled domain can reach (``min(count + cap)``; 0 with fewer
  domains than ``minDomains``). Several constraints: the least room of any.

It is an estimate of the scheduler's room, not a plan: anti-affinity of the pods already
running against this pod is not counted (the extender's cache keeps no terms), and soft
constraints are ignored. Its job is to stop predicting a shortfall (or room) that the
constraints obviously contradict; the launcher plans the predicted pods with the constraints.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shared.errors import FieldError
from shared.podaffinity import PodAffinityTerm, required_terms
from shared.topologyspread import SpreadConstraint, pod_spread_constraints

PodKey = tuple[str, Mapping[str, str]]  # (namespace, labels) of a bound pod


@dataclass(frozen=True)
class Constraints:
    """What of a pod its room depends on besides resources; hashable, to key the shape."""

    namespace: str
    labels: tuple[tuple[str, str], ...]
    spread: tuple[SpreadConstraint, ...]  # DoNotSchedule ones only
    affinity: tuple[PodAffinityTerm, ...]
    anti_affinity: tuple[PodAffinityTerm, ...]

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)

    @classmethod
    def of(cls, pod: Mapping[str, Any]) -> Constraints | None:
        """The pod's hard inter-pod constraints, or None when it has none (or unreadable ones)."""
        spec = pod.get("spec")
        if not isinstance(spec, Mapping):
            return None
        affinity = spec.get("affinity")
        has_terms = isinstance(affinity, Mapping) and (
            affinity.get("podAffinity") or affinity.get("podAntiAffinity")
        )
        if not spec.get("topologySpreadConstraints") and not has_terms:
            return None
        meta = pod.get("metadata")
        meta = meta if isinstance(meta, Mapping) else {}
        namespace = str(meta.get("namespace") or "default")
        raw = meta.get("labels")
        labels = tuple(sorted((str(k), str(v)) for k, v in raw.items())) if isinstance(raw, Mapping) else ()
        try:
            spread = tuple(c for c in pod_spread_constraints(pod) if c.hard)
            terms = required_terms(spec, "podAffinity", namespace)
            anti = required_terms(spec, "podAntiAffinity", namespace)
        except FieldError:
            return None
        if not (spread or terms or anti):
            return None
        return cls(namespace, labels, spread, terms, anti)


@dataclass(frozen=True)
class NodeView:
    """One node as :func:`room` reads it.

    ``fit``: pods of the shape its free resources hold (0 when cordoned or disrupted);
    ``affinity_ok`` and ``taints_ok``: the pod's node affinity and tolerations admit it;
    ``pods``: the pods bound there.
    """

    name: str
    labels: Mapping[str, str]
    fit: int
    affinity_ok: bool
    taints_ok: bool
    pods: Sequence[PodKey] = ()


def room(constraints: Constraints, nodes: Sequence[NodeView]) -> int:
    """How many more pods with ``constraints`` the scheduler could bind on ``nodes`` (module doc)."""
    own = constraints.label_map
    ns = constraints.namespace
    hard_keys = {c.topology_key for c in constraints.spread}
    base = {
        n.name: n.fit if n.affinity_ok and n.taints_ok and hard_keys <= n.labels.keys() else 0 for n in nodes
    }
    limits: list[int] = []
    for term in constraints.anti_affinity:
        key = term.topology_key
        taken = {n.labels[key] for n in nodes if key in n.labels and _any_match(term, n.pods)}
        for n in nodes:
            if n.labels.get(key) in taken:
                base[n.name] = 0
        if term.matches(ns, own):
            limits.append(sum(min(1, total) for total in _by_domain(nodes, base, key).values()))
    if constraints.affinity:
        _join(constraints, nodes, base)
    total = sum(base.values())
    for constraint in constraints.spread:
        limits.append(_spread_room(constraint, constraints, nodes, base))
    return min([total, *limits])


def _any_match(term: PodAffinityTerm, pods: Sequence[PodKey]) -> bool:
    return any(term.matches(namespace, labels) for namespace, labels in pods)


def _by_domain(nodes: Sequence[NodeView], base: Mapping[str, int], key: str) -> dict[str, int]:
    """Room per value of ``key`` (nodes without the key have no domain and no room here)."""
    out: dict[str, int] = defaultdict(int)
    for n in nodes:
        value = n.labels.get(key)
        if value is not None:
            out[value] += base[n.name]
    return out


def _join(constraints: Constraints, nodes: Sequence[NodeView], base: dict[str, int]) -> None:
    """Keep room only where the affinity terms can be met (module docstring)."""
    terms = constraints.affinity
    targets: dict[str, set[str]] = defaultdict(set)
    for n in nodes:
        if any(all(t.matches(namespace, labels) for t in terms) for namespace, labels in n.pods):
            for t in terms:
                if t.topology_key in n.labels:
                    targets[t.topology_key].add(n.labels[t.topology_key])
    if targets:
        for n in nodes:
            if any(n.labels.get(t.topology_key) not in targets[t.topology_key] for t in terms):
                base[n.name] = 0
        return
    for n in nodes:
        if any(t.topology_key not in n.labels for t in terms):
            base[n.name] = 0
    if not all(t.matches(constraints.namespace, constraints.label_map) for t in terms):
        base.update(dict.fromkeys(base, 0))
        return
    # The first replica may go anywhere; the rest follow it into its domain of the first key.
    domains = _by_domain(nodes, base, terms[0].topology_key)
    best = max(sorted(domains), key=lambda d: domains[d], default=None)
    for n in nodes:
        if n.labels.get(terms[0].topology_key) != best:
            base[n.name] = 0


def _spread_room(
    constraint: SpreadConstraint, constraints: Constraints, nodes: Sequence[NodeView], base: Mapping[str, int]
) -> int:
    key = constraint.topology_key
    hard_keys = {c.topology_key for c in constraints.spread}
    count: dict[str, int] = defaultdict(int)
    cap: dict[str, int] = defaultdict(int)
    for n in nodes:
        if not hard_keys <= n.labels.keys():
            continue
        if (constraint.honor_node_affinity and not n.affinity_ok) or (
            constraint.honor_node_taints and not n.taints_ok
        ):
            continue
        value = n.labels[key]
        cap[value] += base[n.name]
        count[value] += sum(
            1
            for namespace, labels in n.pods
            if namespace == constraints.namespace and constraint.selects(labels)
        )
    if not cap:
        return 0
    if not constraint.selects(constraints.label_map):
        # Its replicas are not counted: a domain takes them while its own count is within skew.
        low = min(count[d] for d in cap)
        return sum(cap[d] for d in cap if count[d] - low <= constraint.max_skew)
    floor = min(count[d] + cap[d] for d in cap) if len(cap) >= constraint.min_domains else 0
    return sum(max(0, min(count[d] + cap[d], floor + constraint.max_skew) - count[d]) for d in cap)
