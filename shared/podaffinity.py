"""Inter-pod constraints the capacity simulations must respect: who may not share a node (pure).

kube-scheduler places a pod only where its required pod anti-affinity holds. The common case is
a Deployment that keeps its replicas apart (``topologyKey: kubernetes.io/hostname`` or a zone,
with a selector that matches its own labels): two such replicas can never share a node, whatever
the topology key, since one node has one value of every key. :func:`exclusive_group` names that
group, so the planner puts at most one of them on each new node instead of packing them together
and launching again for every replica the scheduler then refuses. When the key is the zone
(``ExclusiveGroup.per_zone``), it also gives each new node of the group a zone of its own that no
running replica holds, since launching into a taken zone would never help.

The planner handles required pod affinity and anti-affinity against other workloads from the
terms themselves (``launcher.planner.topology``); consolidation does not simulate them, so
:func:`hard_inter_pod_constraint` says a pod has one and consolidation, which would otherwise
move it by resources alone, leaves its node alone.

Terms are parsed once, here, into :class:`PodAffinityTerm` (:func:`required_terms`): the planner's
key and the local cluster's emulated InterPodAffinity filter read the same parse.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from shared.errors import FieldError, ValidationError
from shared.labels import ZONE
from shared.requirements import Requirement, Requirements, parse_requirement_list

Obj = Mapping[str, Any]


def label_selector(raw: object, path: str) -> Requirements | None:
    """A metav1.LabelSelector as requirements on labels; None for a null selector (matches nothing)."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise FieldError(path, "expected a label selector object")
    match_labels = raw.get("matchLabels") or {}
    if not isinstance(match_labels, Mapping):
        raise FieldError(f"{path}.matchLabels", "expected a map of strings")
    requirements = [Requirement(str(k), "In", (str(v),)) for k, v in sorted(match_labels.items())]
    requirements += parse_requirement_list(raw.get("matchExpressions"), f"{path}.matchExpressions")
    return Requirements.of(*requirements)


@dataclass(frozen=True, slots=True)
class PodAffinityTerm:
    """A required ``PodAffinityTerm``, resolved against the namespace of the pod that owns it.

    ``selector`` None is a null labelSelector (matches no pod); an empty one matches every pod.
    ``namespaces`` None means every namespace: a ``namespaceSelector`` is set. ``{}`` selects
    every namespace; a non-empty one would need the Namespace objects' labels, which the planner
    does not have, so here it is taken to select every namespace as well (it errs toward counting
    too many pods: anti-affinity keeps pods apart, affinity finds a peer more easily). The
    emulated scheduler does read Namespace labels and narrows it (``localcluster/scheduler/model.py``).
    Without a namespaceSelector, the ``namespaces`` listed, or the owner's own namespace when none
    are.
    """

    topology_key: str
    selector: Requirements | None
    namespaces: frozenset[str] | None

    def matches(self, namespace: str, labels: Mapping[str, str]) -> bool:
        """``AffinityTerm.Matches``: the pod's namespace is in scope and its labels are selected."""
        if self.selector is None:
            return False
        if self.namespaces is not None and namespace not in self.namespaces:
            return False
        return self.selector.matches(labels)

    def to_wire(self) -> dict[str, Any]:
        """The term as the demand stream carries it (``shared.demand``): plain JSON."""
        return {
            "topologyKey": self.topology_key,
            "selector": None if self.selector is None else self.selector.to_api(),
            "namespaces": None if self.namespaces is None else sorted(self.namespaces),
        }

    @classmethod
    def from_wire(cls, raw: object, path: str) -> PodAffinityTerm:
        """The :meth:`to_wire` form back; raises FieldError naming the first bad field."""
        if not isinstance(raw, Mapping):
            raise FieldError(path, "expected an object")
        key = raw.get("topologyKey")
        if not isinstance(key, str) or not key:
            raise FieldError(f"{path}.topologyKey", "is required")
        selector = raw.get("selector")
        namespaces = raw.get("namespaces")
        if namespaces is not None and (
            not isinstance(namespaces, list) or not all(isinstance(n, str) for n in namespaces)
        ):
            raise FieldError(f"{path}.namespaces", "expected a list of strings or null")
        try:
            parsed = None if selector is None else Requirements.from_api(selector, f"{path}.selector")
        except ValidationError as exc:
            raise exc.errors[0] from None
        return cls(key, parsed, None if namespaces is None else frozenset(namespaces))


def pod_affinity_term(raw: object, namespace: str, path: str) -> PodAffinityTerm:
    """One required term of a pod in ``namespace`` (see :class:`PodAffinityTerm`)."""
    if not isinstance(raw, Mapping):
        raise FieldError(path, "expected a pod affinity term object")
    topology_key = raw.get("topologyKey")
    if not isinstance(topology_key, str) or not topology_key:
        raise FieldError(f"{path}.topologyKey", "is required")
    selector = label_selector(raw.get("labelSelector"), f"{path}.labelSelector")
    raw_namespaces = raw.get("namespaces") or []
    if not isinstance(raw_namespaces, list):
        raise FieldError(f"{path}.namespaces", "expected a list of strings")
    namespace_selector = raw.get("namespaceSelector")
    if namespace_selector is not None:
        label_selector(namespace_selector, f"{path}.namespaceSelector")  # validated, not evaluated
        namespaces = None
    else:
        namespaces = frozenset(str(n) for n in raw_namespaces) if raw_namespaces else frozenset((namespace,))
    return PodAffinityTerm(topology_key, selector, namespaces)


def required_terms(spec: Obj, kind: str, namespace: str) -> tuple[PodAffinityTerm, ...]:
    """``spec.affinity.<kind>.requiredDuringSchedulingIgnoredDuringExecution``, parsed
    (``kind``: ``podAffinity`` or ``podAntiAffinity``)."""
    affinity = spec.get("affinity")
    section = affinity.get(kind) if isinstance(affinity, Mapping) else None
    if not isinstance(section, Mapping):
        return ()
    path = f"spec.affinity.{kind}.requiredDuringSchedulingIgnoredDuringExecution"
    terms = section.get("requiredDuringSchedulingIgnoredDuringExecution") or []
    if not isinstance(terms, list):
        raise FieldError(path, "expected a list of pod affinity terms")
    return tuple(pod_affinity_term(t, namespace, f"{path}[{i}]") for i, t in enumerate(terms))


@dataclass(frozen=True, slots=True)
class ExclusiveGroup:
    """Replicas that may not share a node: ``key`` names the group; ``per_zone``: nor a zone."""

    key: str
    per_zone: bool


def exclusive_group(pod: Obj) -> ExclusiveGroup | None:
    """The group of pods that must not share a node with this one, or None.

    Set when a required anti-affinity term of the pod selects the pod itself: its replicas (same
    namespace, labels and terms) then get the same key. ``per_zone`` when one such term's
    topology key is the zone.
    """
    namespace, terms = _selecting_itself(pod)
    if not terms:
        return None
    # Normalised, so that equivalent spellings of one selector give one key.
    normal = [[t.topology_key, _selector_api(t.selector), sorted(t.namespaces or ())] for t in terms]
    key = orjson.dumps([namespace, normal]).decode()
    return ExclusiveGroup(key, any(term.topology_key == ZONE for term in terms))


def _selector_api(selector: Requirements | None) -> list[dict[str, Any]] | None:
    return None if selector is None else selector.to_api()


def _selecting_itself(pod: Obj) -> tuple[str, list[PodAffinityTerm]]:
    """The pod's namespace, and its required anti-affinity terms that select the pod itself."""
    meta = pod.get("metadata") or {}
    namespace = str(meta.get("namespace") or "default")
    own_labels = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
    terms = required_terms(pod.get("spec") or {}, "podAntiAffinity", namespace)
    return namespace, [term for term in terms if term.matches(namespace, own_labels)]


def hard_inter_pod_constraint(pod: Obj) -> str | None:
    """Which required inter-pod constraint the pod has (pod affinity, pod anti-affinity, or a
    topology spread that does not schedule when violated), or None."""
    spec = pod.get("spec") or {}
    raw_affinity = spec.get("affinity")
    affinity: Obj = raw_affinity if isinstance(raw_affinity, Mapping) else {}
    for kind in ("podAffinity", "podAntiAffinity"):
        section = affinity.get(kind)
        if isinstance(section, Mapping) and section.get("requiredDuringSchedulingIgnoredDuringExecution"):
            return f"required {kind}"
    for constraint in spec.get("topologySpreadConstraints") or []:
        if isinstance(constraint, Mapping) and constraint.get("whenUnsatisfiable", "DoNotSchedule") != (
            "ScheduleAnyway"
        ):
            return f"a DoNotSchedule topology spread on {constraint.get('topologyKey')}"
    return None
