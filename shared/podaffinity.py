"""Inter-pod constraints the capacity simulations must respect: who may not share a node (pure).

kube-scheduler places a pod only where its required pod anti-affinity holds. The common case is
a Deployment that keeps its replicas apart (``topologyKey: kubernetes.io/hostname`` or a zone,
with a selector that matches its own labels): two such replicas can never share a node, whatever
the topology key, since one node has one value of every key. :func:`exclusive_key` names that
group, so the planner puts at most one of them on each new node instead of packing them together
and launching again for every replica the scheduler then refuses. When the key is the zone
(:func:`exclusive_per_zone`), it also gives each new node of the group a zone of its own that no
running replica holds, since launching into a taken zone would never help.

Required pod affinity, anti-affinity against other workloads and hard topology spread are not
simulated; :func:`hard_inter_pod_constraint` says a pod has one, so that consolidation, which
would otherwise move it by resources alone, leaves its node alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from shared.errors import FieldError
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


def _anti_affinity_terms(spec: Obj) -> Sequence[Any]:
    affinity = spec.get("affinity")
    anti = affinity.get("podAntiAffinity") if isinstance(affinity, Mapping) else None
    terms = anti.get("requiredDuringSchedulingIgnoredDuringExecution") if isinstance(anti, Mapping) else None
    return terms if isinstance(terms, list) else []


def _covers_namespace(term: Obj, namespace: str) -> bool:
    """Whether the term's namespace scope includes ``namespace``.

    A namespaceSelector depends on namespace labels the simulation does not have: it is taken to
    include the pod's namespace, which errs toward keeping pods apart (a node too many, never a
    pod left pending).
    """
    if term.get("namespaceSelector") is not None:
        return True
    namespaces = term.get("namespaces") or []
    return not namespaces or namespace in namespaces


def exclusive_key(pod: Obj) -> str | None:
    """A name shared by the pods that must not share a node with each other, or None.

    Set when a required anti-affinity term of the pod selects the pod itself: its replicas (same
    namespace, labels and terms) then get the same key.
    """
    terms = _selecting_itself(pod)
    if not terms:
        return None
    namespace = str((pod.get("metadata") or {}).get("namespace") or "default")
    return orjson.dumps([namespace, terms], option=orjson.OPT_SORT_KEYS).decode()


def exclusive_per_zone(pod: Obj) -> bool:
    """Whether one of the pod's self-selecting anti-affinity terms keeps its replicas a zone apart."""
    return any(term.get("topologyKey") == ZONE for term in _selecting_itself(pod))


def _selecting_itself(pod: Obj) -> list[Obj]:
    """The pod's required anti-affinity terms that select the pod itself."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    namespace = str(meta.get("namespace") or "default")
    own_labels = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
    path = "spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution"
    selecting_itself = []
    for index, term in enumerate(_anti_affinity_terms(spec)):
        if not isinstance(term, Mapping):
            raise FieldError(f"{path}[{index}]", "expected a pod affinity term object")
        selector = label_selector(term.get("labelSelector"), f"{path}[{index}].labelSelector")
        if selector is not None and selector.matches(own_labels) and _covers_namespace(term, namespace):
            selecting_itself.append(term)
    return selecting_itself


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
