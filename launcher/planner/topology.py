"""Topology spread and inter-pod affinity in a plan: where each constrained pod's node may be (pure).

kube-scheduler binds a pod only where its topology spread constraints (PodTopologySpread) and
its required pod affinity and anti-affinity (InterPodAffinity) hold, counting the pods already
running. A plan that ignored them would buy nodes the scheduler then refuses, or that leave a
spread Deployment in one zone because the only nodes it saw were there. This pass runs before
packing and turns every such constraint into something the packer already obeys:

- **Wider domains** (zone, capacity type, a NodePool label: any key but the per-node ones) are
  decided pod by pod, in plan order, as Karpenter does: the pod is pinned to one value
  (``key In [value]`` added to its requirements), so the packer and every later step need no
  change. The values a new node may take are every value the pod's NodePool and requirements
  allow where an instance type that fits the pod is offered (``NewDomains``); together with
  the values of existing nodes they are the constraint's domains, so a spread Deployment
  scaled from zero gets nodes in as many zones as its skew needs, in one plan.
- **Per node** (``kubernetes.io/hostname``, ``jitnode.io/nodeclaim``): every new node is a
  domain of its own, so the rules become :class:`~launcher.planner.colocation.Colocation` tags
  the packer obeys: at most ``maxSkew`` replicas of a hostname spread on a new node, and pods
  whose anti-affinity selects another workload's pending pods never beside them.

The rules, with kube-scheduler's semantics:

- *Spread* (``PodDemand.spread``): a value is allowed when ``count + self - min <= maxSkew``,
  ``count`` being the matching pods (same namespace, selected) on eligible nodes in that domain
  plus those this plan has pinned there, ``self`` 1 when the pod matches its own selector, and
  ``min`` the least count over the domains, or 0 when there are fewer than ``minDomains``.
  Eligible nodes are those the pod's node affinity admits (``nodeAffinityPolicy: Honor``) and
  whose taints it tolerates (``nodeTaintsPolicy: Honor``), and that carry every key of the
  pod's constraints. Of the allowed values the one with the fewest pods wins (then the
  cheapest). DoNotSchedule: no value allowed is unschedulable. ScheduleAnyway is a preference:
  followed where some value allows it, else the fewest; by hostname it is not followed at all,
  since it would buy a node per replica for what the scheduler only scores.
- *Anti-affinity* (``PodDemand.anti_affinity``): values where a matching pod runs or is pinned
  are excluded, and so are values where a running or pinned pod's anti-affinity matches this
  pod (the scheduler checks both directions). Replicas repelling themselves stay with
  ``PodDemand.exclusive`` (see ``plan``); this pass handles only pods of other workloads.
- *Affinity* (``PodDemand.affinity``): only values where a pod matching all the terms runs or
  is pinned are allowed; when none does anywhere and the pod matches its own terms, it is the
  first of its group and may go anywhere, and the rest follow it. A pod whose targets are
  pending pods not yet placed waits for them (one second pass). A node must carry the key of a
  hard spread or an affinity term, so a custom key is required to exist (``Exists``): only a
  NodePool that labels its nodes with it can serve the pod.
- Pods a pending pod's selector matches (a spread's, an anti-affinity or affinity term's) are
  pinned too, even without constraints of their own, so the pods placed after them count them.

- *Affinity by hostname*: a new node holds no pod yet, so such a pod is planned together with
  a pending pod it may join, or with the rest of its own group when it is the first of it, as
  one bundle (see ``bundles``); else it is unschedulable.

Not modelled: pending pods that match a spread selector without being pinned on its key (a
pod whose constraints are on other keys); by hostname, pending pods selected by a spread they
do not carry, and the running pods' anti-affinity (a new node holds none of them).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Final

import orjson

from launcher.planner import bundles
from launcher.planner.colocation import Colocation
from launcher.planner.inputs import ClusterNode, RunningPod
from shared import labels as wk
from shared.demand import PodDemand
from shared.podaffinity import PodAffinityTerm
from shared.pods import NODE_NAME_FIELD
from shared.requirements import Requirement, Requirements
from shared.taints import untolerated_taints
from shared.topologyspread import SpreadConstraint

# Keys whose every value is one node: a new node is a domain of its own.
PER_NODE_KEYS: Final = frozenset({wk.HOSTNAME, wk.NODECLAIM})

# The values of a topology key a new node for the pod may carry, best (cheapest) first; None
# when the planner cannot know them (no pool serves the pod, or nodes get the key elsewhere).
NewDomains = Callable[[PodDemand, str], Sequence[str] | None]


@dataclass(frozen=True)
class Site:
    """A pod whose domains are known before the plan: running on a node, or kept for a claim.

    ``node`` is its node, for the spread policies; None for a claim not yet a node, which every
    policy admits (the pod was planned onto it). ``domains``: topology key -> value.
    """

    namespace: str
    labels: Mapping[str, str]
    domains: Mapping[str, str]
    anti_affinity: tuple[PodAffinityTerm, ...] = ()
    node: ClusterNode | None = None


@dataclass(frozen=True)
class Placement:
    """What the pass decided, for the pods it changed."""

    demand: dict[str, PodDemand] = field(default_factory=dict)  # uid -> pod with narrowed requirements
    rules: dict[str, Colocation] = field(default_factory=dict)  # uid -> per-node rules
    unschedulable: dict[str, str] = field(default_factory=dict)  # uid -> why
    bundles: bundles.Bundles = field(default_factory=bundles.Bundles)  # pods planned as one (by hostname)


def involved(pods: Iterable[PodDemand], sites: Sequence[Site]) -> bool:
    """Whether the pass has anything to do (else the plan takes its fast path)."""
    return any(p.constrained for p in pods) or any(
        t.topology_key not in PER_NODE_KEYS for s in sites for t in s.anti_affinity
    )


def sites_of(
    running: Sequence[RunningPod],
    nodes: Sequence[ClusterNode],
    kept: Iterable[tuple[PodDemand, Mapping[str, str]]],
) -> list[Site]:
    """Running pods on known nodes, and pods kept for in-flight claims (with the claims' pinned keys)."""
    by_name = {node.name: node for node in nodes}
    out = [
        Site(pod.namespace, pod.labels, node.labels, pod.anti_affinity, node)
        for pod in running
        if (node := by_name.get(pod.node)) is not None
    ]
    out += [Site(pod.namespace, pod.labels, domains, pod.anti_affinity) for pod, domains in kept]
    return out


def place(
    pods: Sequence[PodDemand], sites: Sequence[Site], nodes: Sequence[ClusterNode], new_domains: NewDomains
) -> Placement:
    """Pin, restrict or tag the pods of ``pods`` (in plan order) that the constraints concern."""
    census = _Census(pods, sites, nodes)
    placement = Placement()
    todo = [p for p in pods if p.constrained or census.wanted.get(p.uid) or census.repels(p)]
    deferred: list[PodDemand] = []
    for final, batch in ((False, todo), (True, deferred)):
        for pod in batch:
            outcome = _place_one(pod, census, new_domains, final)
            if outcome is None:
                deferred.append(pod)
                continue
            census.done(pod)
            if isinstance(outcome, str):
                placement.unschedulable[pod.uid] = outcome
            elif outcome is not pod:
                placement.demand[pod.uid] = outcome
    for pod in pods:
        rules = census.rules(pod)
        if rules and pod.uid not in placement.unschedulable:
            placement.rules[pod.uid] = rules
    placed = [placement.demand.get(p.uid, p) for p in pods if p.uid not in placement.unschedulable]
    if not any(t.topology_key in PER_NODE_KEYS for p in placed for t in p.affinity):
        return placement
    running = {
        p.affinity: any(s.node is not None and _matches_all(p.affinity, s.namespace, s.labels) for s in sites)
        for p in placed
        if p.affinity
    }
    made, merged = bundles.bundle(placed, PER_NODE_KEYS, running, placement.rules)
    placement.unschedulable.update(made.unschedulable)
    return replace(placement, rules=merged, bundles=made)


def _place_one(
    pod: PodDemand, census: _Census, new_domains: NewDomains, final: bool
) -> PodDemand | str | None:
    """The pod narrowed to where its constraints allow (the same pod when nothing changed), why
    it cannot be placed, or None to try again after the others (its affinity targets are pending)."""
    narrowed = _require_keys(pod)
    if not narrowed.requirements:
        return "its node affinity and the keys its topology constraints need match no node"
    pins: dict[str, str] = {}
    for key in census.keys(pod):
        values = new_domains(narrowed, key)
        if not values:
            continue  # unknown, or no new node can serve the pod: the plan reports why
        blocked = census.blocked(pod, key)
        allowed = [v for v in values if v not in blocked]
        if not allowed:
            where = _show(values)
            return f"pod anti-affinity keeps it apart from pods in every {key} a new node may have ({where})"
        targets = census.targets(pod, key)
        if targets is not None:
            allowed = [v for v in allowed if v in targets]
            if not allowed:
                return f"required pod affinity: the pods it must join are in no {key} a new node may have"
        elif any(t.topology_key == key for t in pod.affinity):
            if not final and census.awaits(pod):
                return None
            if not _matches_all(pod.affinity, pod.namespace, pod.labels):
                return f"required pod affinity: no pod matching its terms runs or is planned (by {key})"
        counts: list[dict[str, int]] = []
        for constraint in sorted((c for c in pod.spread if c.topology_key == key), key=lambda c: not c.hard):
            count, domains = census.spread(pod, constraint)
            within = _within_skew(constraint, pod, count, domains | set(values), allowed)
            if within:
                allowed = within
                counts.append(count)
            elif constraint.hard:
                return _skewed(constraint, count, values)
        if key in census.pinned_keys(pod):
            rank = {v: i for i, v in enumerate(values)}
            value = min(allowed, key=lambda v: (sum(c.get(v, 0) for c in counts), rank[v]))
            pins[key] = value
            allowed = [value]
        if len(allowed) < len(values):
            narrowed = _narrow(narrowed, Requirement(key, "In", tuple(sorted(allowed))))
            if not narrowed.requirements:
                return f"no node affinity alternative allows {key} in {_show(allowed)}"
    census.add(pod, pins)
    return narrowed


def _within_skew(
    constraint: SpreadConstraint,
    pod: PodDemand,
    count: Mapping[str, int],
    domains: set[str],
    allowed: Sequence[str],
) -> list[str]:
    """The allowed values where one more pod keeps the constraint's skew."""
    floor = 0 if len(domains) < constraint.min_domains else min((count.get(d, 0) for d in domains), default=0)
    own = 1 if constraint.selects(pod.labels) else 0
    return [v for v in allowed if count.get(v, 0) + own - floor <= constraint.max_skew]


def _skewed(constraint: SpreadConstraint, count: Mapping[str, int], values: Sequence[str]) -> str:
    seen = ", ".join(f"{v}: {count.get(v, 0)}" for v in values)
    return (
        f"topology spread on {constraint.topology_key} (maxSkew {constraint.max_skew}): every domain a "
        f"new node may have would exceed it ({seen})"
    )


def _require_keys(pod: PodDemand) -> PodDemand:
    """The pod required to land on nodes carrying the custom keys of its hard spread and affinity
    (a NodePool that does not label its nodes with one cannot serve it)."""
    keys = {c.topology_key for c in pod.spread if c.hard} | {t.topology_key for t in pod.affinity}
    custom = sorted(k for k in keys if k not in wk.WELL_KNOWN_LABELS and k not in PER_NODE_KEYS)
    if not custom:
        return pod
    exists = Requirements.of(*(Requirement(k, "Exists") for k in custom))
    return replace(pod, requirements=_intersect(pod.requirements, exists))


def _narrow(pod: PodDemand, requirement: Requirement) -> PodDemand:
    return replace(pod, requirements=_narrowed(pod.requirements, requirement))


@lru_cache(maxsize=4096)
def _narrowed(alternatives: tuple[Requirements, ...], requirement: Requirement) -> tuple[Requirements, ...]:
    """The alternatives with ``requirement`` added (replicas share them: computed once)."""
    return _intersect(alternatives, Requirements.of(requirement))


def _intersect(alternatives: Sequence[Requirements], more: Requirements) -> tuple[Requirements, ...]:
    out = (alt.intersect(more) for alt in alternatives)
    return tuple(alt for alt in out if alt.is_satisfiable())


def _matches_all(terms: Sequence[PodAffinityTerm], namespace: str, labels: Mapping[str, str]) -> bool:
    return bool(terms) and all(t.matches(namespace, labels) for t in terms)


def _show(values: Iterable[str]) -> str:
    return ", ".join(values) or "none"


def _ident(*parts: str | SpreadConstraint | PodAffinityTerm) -> str:
    """A tag naming a constraint (its wire form: equal constraints give equal tags)."""
    return orjson.dumps([p if isinstance(p, str) else p.to_wire() for p in parts]).decode()


@dataclass
class _Picks:
    """The registered selectors that pick one label set (in one namespace)."""

    spreads: list[tuple[str, SpreadConstraint]]  # wider-key spreads selecting it
    anti: list[PodAffinityTerm]  # pending pods' anti-affinity terms matching it (any key)
    joined: list[tuple[PodAffinityTerm, ...]]  # pending pods' affinity terms it matches all of
    repelling: list[PodAffinityTerm]  # wider-key anti-affinity terms (running or pending) matching it


class _Census:
    """Who is where (sites, and the pods this plan pins), counted per selector and domain.

    Every selector the pending pods carry is registered up front, and which of them pick a pod
    is worked out once per distinct label set (a Deployment's pods share one), so pinning a pod
    updates a few counters instead of every later pod rescanning the plan.
    """

    def __init__(
        self, pods: Sequence[PodDemand], sites: Sequence[Site], nodes: Sequence[ClusterNode]
    ) -> None:
        self.sites = sites
        self.nodes = nodes
        # (namespace, constraint) -> value -> pods pinned there by this plan.
        self._spread_pinned: dict[tuple[str, SpreadConstraint], dict[str, int]] = {}
        self._spread_seen: dict[tuple[object, ...], tuple[dict[str, int], set[str]]] = {}
        # Anti-affinity term of a pending pod -> values where a matching pod runs or is pinned.
        self._matched: dict[PodAffinityTerm, set[str]] = {}
        # Anti-affinity term of a pending pod -> its holders by exclusive key.
        self._holders: dict[PodAffinityTerm, dict[str | None, list[str]]] = {}
        # Anti-affinity term of a running or pending pod -> values it keeps matching pods out of.
        self._repelling: dict[PodAffinityTerm, set[str]] = {}
        # Affinity terms of pending pods -> key -> values where a pod matching them all is.
        self._joined: dict[tuple[PodAffinityTerm, ...], dict[str, set[str]]] = {}
        # Affinity terms -> pending pods (of other terms) matching them all, not yet placed.
        self._awaited: dict[tuple[PodAffinityTerm, ...], set[str]] = {}
        self._picks: dict[tuple[str, tuple[tuple[str, str], ...]], _Picks] = {}
        self.wanted: dict[str, set[str]] = defaultdict(set)  # uid -> keys others need it pinned on
        self._tags: dict[str, Colocation] = defaultdict(Colocation)
        for pod in pods:
            for c in pod.spread:
                if c.topology_key not in PER_NODE_KEYS:
                    self._spread_pinned.setdefault((pod.namespace, c), {})
            for t in pod.anti_affinity:
                self._holders.setdefault(t, {}).setdefault(pod.exclusive, []).append(pod.uid)
                if t.topology_key not in PER_NODE_KEYS:
                    self._matched.setdefault(t, set())
                    self._repelling.setdefault(t, set())
            if pod.affinity:
                self._joined.setdefault(pod.affinity, defaultdict(set))
                self._awaited.setdefault(pod.affinity, set())
        for site in sites:  # every selector is registered before any label set is picked
            for t in site.anti_affinity:
                value = site.domains.get(t.topology_key)
                if t.topology_key not in PER_NODE_KEYS and value is not None:
                    self._repelling.setdefault(t, set()).add(value)
        for site in sites:
            picks = self._pick(site.namespace, site.labels)
            for t in picks.anti:
                value = site.domains.get(t.topology_key)
                if value is not None and t in self._matched:
                    self._matched[t].add(value)
            for terms in picks.joined:
                for t in terms:
                    value = site.domains.get(t.topology_key)
                    if value is not None:
                        self._joined[terms][t.topology_key].add(value)
        self._selected(pods)

    def _pick(self, namespace: str, labels: Mapping[str, str]) -> _Picks:
        key = (namespace, tuple(sorted(labels.items())))
        found = self._picks.get(key)
        if found is None:
            found = _Picks(
                [(ns, c) for ns, c in self._spread_pinned if ns == namespace and c.selects(labels)],
                [t for t in self._holders if t.matches(namespace, labels)],
                [terms for terms in self._joined if _matches_all(terms, namespace, labels)],
                [t for t in self._repelling if t.matches(namespace, labels)],
            )
            self._picks[key] = found
        return found

    def _selected(self, pods: Sequence[PodDemand]) -> None:
        """Who among the pending pods others' selectors match: they are pinned (``wanted``) on the
        selector's key, or tagged when the key is per node."""
        if not (self._holders or self._spread_pinned or self._joined):
            return
        crossed: set[tuple[PodAffinityTerm, str | None]] = set()  # holder groups matching another pod
        for other in pods:
            picks = self._pick(other.namespace, other.labels)
            for _, c in picks.spreads:
                if c not in other.spread:
                    self.wanted[other.uid].add(c.topology_key)
            for t in picks.anti:
                for exclusive, holders in self._holders[t].items():
                    if exclusive is not None and exclusive == other.exclusive:
                        continue  # its own replicas: PodDemand.exclusive keeps them apart
                    if holders == [other.uid]:
                        continue
                    crossed.add((t, exclusive))
                    if t.topology_key in PER_NODE_KEYS:
                        tag = _ident("anti", t)
                        self._tags[other.uid] |= Colocation(
                            frozenset({tag + "/matched"}), (), frozenset({tag})
                        )
                    else:
                        self.wanted[other.uid].add(t.topology_key)
            for terms in picks.joined:
                if other.affinity != terms:
                    self._awaited[terms].add(other.uid)
                    self.wanted[other.uid] |= {
                        t.topology_key for t in terms if t.topology_key not in PER_NODE_KEYS
                    }
        for t, exclusive in crossed:
            tag = _ident("anti", t)
            for uid in self._holders[t][exclusive]:
                if t.topology_key in PER_NODE_KEYS:
                    self._tags[uid] |= Colocation(frozenset({tag}), (), frozenset({tag + "/matched"}))
                else:
                    self.wanted[uid].add(t.topology_key)

    # Queries -------------------------------------------------------------------------------

    def keys(self, pod: PodDemand) -> list[str]:
        """The wider keys the pod's placement is decided on, in a fixed order."""
        own = {c.topology_key for c in pod.spread} | {t.topology_key for t in pod.affinity}
        own |= {t.topology_key for t in pod.anti_affinity}
        own |= self.wanted.get(pod.uid, set())
        own |= {t.topology_key for t in self._pick(pod.namespace, pod.labels).repelling}
        return sorted(own - PER_NODE_KEYS)

    def pinned_keys(self, pod: PodDemand) -> set[str]:
        """Keys the pod takes one value of, so that the pods placed after it can count it."""
        own = {c.topology_key for c in pod.spread} | {t.topology_key for t in pod.affinity}
        return own | self.wanted.get(pod.uid, set())

    def repels(self, pod: PodDemand) -> bool:
        """Whether a running pod's anti-affinity matches this pod."""
        return any(self._repelling[t] for t in self._pick(pod.namespace, pod.labels).repelling)

    def blocked(self, pod: PodDemand, key: str) -> set[str]:
        """Values of ``key`` anti-affinity keeps the pod out of, in either direction."""
        out: set[str] = set()
        for t in pod.anti_affinity:
            if t.topology_key == key:
                out |= self._matched.get(t, set())
        for t in self._pick(pod.namespace, pod.labels).repelling:
            if t.topology_key == key:
                out |= self._repelling[t]
        return out

    def targets(self, pod: PodDemand, key: str) -> set[str] | None:
        """Values of ``key`` where a pod matching all its affinity terms is; None when no such pod
        is anywhere (by any key), or the pod has no affinity term on ``key``."""
        if not any(t.topology_key == key for t in pod.affinity):
            return None
        joined = self._joined.get(pod.affinity, {})
        if not any(joined.values()):
            return None
        return joined.get(key, set())

    def awaits(self, pod: PodDemand) -> bool:
        """Whether pending pods of other workloads that the pod's affinity needs are yet to be placed."""
        return bool(self._awaited.get(pod.affinity))

    def spread(self, pod: PodDemand, constraint: SpreadConstraint) -> tuple[dict[str, int], set[str]]:
        """Matching pods per value of the constraint's key, and the values eligible nodes have."""
        keys = frozenset(c.topology_key for c in pod.spread if c.hard == constraint.hard)
        cache_key = (pod.namespace, constraint, pod.requirements, pod.tolerations, keys)
        seen = self._spread_seen.get(cache_key)
        if seen is None:
            seen = self._spread_existing(pod, constraint, keys)
            self._spread_seen[cache_key] = seen
        count = dict(seen[0])
        for value, n in self._spread_pinned.get((pod.namespace, constraint), {}).items():
            count[value] = count.get(value, 0) + n
        return count, seen[1]

    def _spread_existing(
        self, pod: PodDemand, constraint: SpreadConstraint, keys: frozenset[str]
    ) -> tuple[dict[str, int], set[str]]:
        key = constraint.topology_key

        def eligible(node: ClusterNode) -> bool:
            if not keys <= node.labels.keys():
                return False
            if constraint.honor_node_affinity:
                match = {**node.labels, NODE_NAME_FIELD: node.name}
                if not any(alt.matches(match) for alt in pod.requirements):
                    return False
            return not (constraint.honor_node_taints and untolerated_taints(pod.tolerations, node.taints))

        ok = {node.name: eligible(node) for node in self.nodes}
        domains = {node.labels[key] for node in self.nodes if ok[node.name]}
        count: dict[str, int] = {}
        for site in self.sites:
            value = site.domains.get(key)
            if value is None or (site.node is not None and not ok.get(site.node.name, False)):
                continue
            if site.namespace == pod.namespace and constraint.selects(site.labels):
                count[value] = count.get(value, 0) + 1
        return count, domains

    def rules(self, pod: PodDemand) -> Colocation:
        """The pod's per-node rules: its hostname spread's cap, and the anti-affinity tags."""
        rules = self._tags.get(pod.uid, Colocation())
        for c in pod.spread:
            if c.hard and c.topology_key in PER_NODE_KEYS and c.selects(pod.labels):
                tag = _ident("spread", pod.namespace, c)
                rules |= Colocation(frozenset({tag}), ((tag, c.max_skew),))
        return rules

    # Updates -------------------------------------------------------------------------------

    def add(self, pod: PodDemand, pins: Mapping[str, str]) -> None:
        """Count ``pod`` where it was pinned."""
        if not pins:
            return
        picks = self._pick(pod.namespace, pod.labels)
        for ns_c in picks.spreads:
            value = pins.get(ns_c[1].topology_key)
            if value is not None:
                pinned = self._spread_pinned[ns_c]
                pinned[value] = pinned.get(value, 0) + 1
        for t in picks.anti:
            value = pins.get(t.topology_key)
            if value is not None and t in self._matched:
                self._matched[t].add(value)
        for terms in picks.joined:
            for t in terms:
                value = pins.get(t.topology_key)
                if value is not None:
                    self._joined[terms][t.topology_key].add(value)
        for t in pod.anti_affinity:
            value = pins.get(t.topology_key)
            if value is not None and t.topology_key not in PER_NODE_KEYS:
                self._repelling[t].add(value)

    def done(self, pod: PodDemand) -> None:
        """The pod has been placed (or refused): pods waiting for it wait no longer."""
        for awaited in self._awaited.values():
            awaited.discard(pod.uid)
