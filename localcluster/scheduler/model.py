"""Pods and nodes as the scheduler sees them: facts parsed once from the API's JSON.

Parsing a pod's requests, tolerations, node affinity and required inter-pod (anti-)affinity
terms once when it enters the queue (and a node's labels, allocatable and taints once per
update) keeps the filter loop to integer compares and set lookups, which is what lets a burst
of hundreds of pods schedule in milliseconds each. Pure: plain dicts in, frozen dataclasses out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from shared.errors import FieldError
from shared.podaffinity import PodAffinityTerm, label_selector, required_terms
from shared.pods import node_labels_and_name, scheduling_needs
from shared.requirements import Requirements, parse_requirement_list
from shared.resources import CPU, EMPTY, MEMORY, PODS, Resources
from shared.taints import NO_SCHEDULE, Taint, Toleration, parse_taints
from shared.topologyspread import SpreadConstraint, pod_spread_constraints

from .workloads import ControllerRef, controller_of

Obj = Mapping[str, Any]

TAINT_UNSCHEDULABLE: Final = "node.kubernetes.io/unschedulable"
TAINT_NOT_READY: Final = "node.kubernetes.io/not-ready"
# pkg/scheduler/util: what scoring assumes for a container that requests no cpu or memory.
DEFAULT_MILLI_CPU_REQUEST: Final = 100
DEFAULT_MEMORY_REQUEST: Final = 200 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class PreferredTerm:
    """A preferred node affinity term; ``requirements`` None is an empty term (matches nothing)."""

    weight: int
    requirements: Requirements | None


@dataclass(frozen=True, slots=True)
class NamespaceScope:
    """The namespaces a required inter-pod term with a ``namespaceSelector`` covers.

    ``PodAffinityTerm`` reads any namespaceSelector as every namespace, having no Namespace
    labels; the scheduler has them, so it takes, as kube-scheduler does, the listed
    ``namespaces`` plus those whose labels the selector matches (``{}``: all of them).
    """

    listed: frozenset[str]
    selector: Requirements

    def admits(self, namespace: str, namespace_labels: Mapping[str, Mapping[str, str]]) -> bool:
        return namespace in self.listed or self.selector.matches(namespace_labels.get(namespace, {}))


@dataclass(frozen=True, slots=True)
class PodFacts:
    """What scheduling needs from a pod; ``requests`` excludes the ``pods`` slot it takes.

    ``alternatives`` are nodeSelector ANDed with each required affinity term, ORed
    (``shared.pods.node_selector_terms``); an empty tuple matches no node. ``affinity_terms``
    and ``anti_affinity_terms`` are the required podAffinity and podAntiAffinity terms, and
    ``affinity_scopes``/``anti_affinity_scopes`` their namespaceSelectors (None: none set).
    ``spread_constraints`` are its own topologySpreadConstraints (none: the profile's defaults
    apply) and ``controller`` what those defaults select it by; ``terminating``: it has a
    deletionTimestamp, so PodTopologySpread does not count it.
    """

    uid: str
    namespace: str
    name: str
    scheduler_name: str
    node_name: str
    priority: int
    created: str
    requests: Resources
    nonzero_cpu: int
    nonzero_memory: int
    tolerations: tuple[Toleration, ...]
    alternatives: tuple[Requirements, ...]
    preferred_terms: tuple[PreferredTerm, ...]
    preempt_never: bool
    resource_names: frozenset[str]
    labels: Mapping[str, str]
    affinity_terms: tuple[PodAffinityTerm, ...]
    anti_affinity_terms: tuple[PodAffinityTerm, ...]
    affinity_scopes: tuple[NamespaceScope | None, ...] = ()
    anti_affinity_scopes: tuple[NamespaceScope | None, ...] = ()
    spread_constraints: tuple[SpreadConstraint, ...] = ()
    controller: ControllerRef | None = None
    terminating: bool = False

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class NodeFacts:
    """What scheduling needs from a node; ``taints`` include the emulated not-ready taint.

    ``match_labels`` are the labels plus ``metadata.name``, what node requirements match;
    ``labels`` are the labels alone, what topology keys of inter-pod terms read.
    """

    name: str
    match_labels: Mapping[str, str]
    labels: Mapping[str, str]
    taints: tuple[Taint, ...]
    unschedulable: bool
    allocatable: Resources
    ready: bool


def _meta(obj: Obj) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _spec(obj: Obj) -> Mapping[str, Any]:
    spec = obj.get("spec")
    return spec if isinstance(spec, Mapping) else {}


def _container_requests(container: Obj, path: str) -> Resources:
    """A container's requests, defaulted from limits as the API server's defaulting does."""
    resources = container.get("resources")
    if not isinstance(resources, Mapping):
        return EMPTY
    limits = resources.get("limits") or {}
    requests = dict(limits)
    requests.update(resources.get("requests") or {})
    return Resources.parse(requests, f"{path}.resources.requests")


def _nonzero(requests: Resources) -> Resources:
    """Scoring's view of a container: cpu and memory defaulted when not requested."""
    return Resources(
        {
            CPU: requests.amount(CPU) or DEFAULT_MILLI_CPU_REQUEST,
            MEMORY: requests.amount(MEMORY) or DEFAULT_MEMORY_REQUEST,
        }
    )


def _aggregate(containers: Sequence[Resources], init: Sequence[tuple[Resources, bool]]) -> Resources:
    """``resourcehelper.PodRequests``: sum of containers and sidecars vs the peak init step."""
    total = EMPTY
    for requests in containers:
        total = total + requests
    sidecars = EMPTY
    init_peak = EMPTY
    for requests, restartable in init:
        if restartable:
            total = total + requests
            sidecars = sidecars + requests
            step = sidecars
        else:
            step = requests + sidecars
        init_peak = init_peak.max(step)
    return total.max(init_peak)


def nonzero_requests(spec: Mapping[str, Any]) -> Resources:
    """Scoring's requests: cpu and memory per container defaulted when absent, then aggregated."""
    containers = [
        _nonzero(_container_requests(c, f"spec.containers[{i}]"))
        for i, c in enumerate(spec.get("containers") or [])
    ]
    init = [
        (_nonzero(_container_requests(c, f"spec.initContainers[{i}]")), c.get("restartPolicy") == "Always")
        for i, c in enumerate(spec.get("initContainers") or [])
    ]
    total = _aggregate(containers, init)
    overhead = spec.get("overhead")
    if overhead:
        total = total + Resources.parse(overhead, "spec.overhead")
    return total


def _resource_names(spec: Mapping[str, Any]) -> frozenset[str]:
    """Every resource named in any container's requests or limits (for managedResources)."""
    names: set[str] = set()
    for container in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
        resources = container.get("resources") or {}
        names.update((resources.get("requests") or {}).keys())
        names.update((resources.get("limits") or {}).keys())
    return frozenset(names)


def _preference(raw: object, path: str) -> Requirements | None:
    if not isinstance(raw, Mapping):
        return None
    expressions = raw.get("matchExpressions") or []
    fields = raw.get("matchFields") or []
    if not expressions and not fields:
        return None
    reqs = parse_requirement_list(expressions, f"{path}.matchExpressions")
    reqs += parse_requirement_list(fields, f"{path}.matchFields")
    return Requirements.of(*reqs)


def _preferred(spec: Mapping[str, Any]) -> tuple[PreferredTerm, ...]:
    affinity = (spec.get("affinity") or {}).get("nodeAffinity") or {}
    path = "spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution"
    return tuple(
        PreferredTerm(int(p.get("weight") or 0), _preference(p.get("preference"), f"{path}[{i}].preference"))
        for i, p in enumerate(affinity.get("preferredDuringSchedulingIgnoredDuringExecution") or [])
        if isinstance(p, Mapping)
    )


def _string_map(raw: object, path: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise FieldError(path, "expected a map of strings")
    return {str(k): str(v) for k, v in raw.items()}


def namespace_scopes(spec: Mapping[str, Any], kind: str) -> tuple[NamespaceScope | None, ...]:
    """The namespaceSelector of each required ``kind`` term (``podAffinity`` or
    ``podAntiAffinity``), in ``required_terms`` order; the terms are already validated."""
    affinity = spec.get("affinity")
    section = affinity.get(kind) if isinstance(affinity, Mapping) else None
    terms = (
        section.get("requiredDuringSchedulingIgnoredDuringExecution")
        if isinstance(section, Mapping)
        else None
    )
    path = f"spec.affinity.{kind}.requiredDuringSchedulingIgnoredDuringExecution"
    scopes: list[NamespaceScope | None] = []
    for i, term in enumerate(terms or []):
        selector = label_selector(term.get("namespaceSelector"), f"{path}[{i}].namespaceSelector")
        listed = frozenset(str(n) for n in term.get("namespaces") or [])
        scopes.append(None if selector is None else NamespaceScope(listed, selector))
    return tuple(scopes)


def pod_facts(pod: Obj) -> PodFacts:
    """Parse a pod; raises :class:`ValueError` (a FieldError or ValidationError) on bad fields."""
    meta = _meta(pod)
    spec = _spec(pod)
    needs = scheduling_needs(pod)
    nonzero = nonzero_requests(spec)
    namespace = str(meta.get("namespace") or "default")
    return PodFacts(
        uid=str(meta.get("uid") or f"{meta.get('namespace', '')}/{meta.get('name', '')}"),
        namespace=namespace,
        name=str(meta.get("name") or ""),
        scheduler_name=str(spec.get("schedulerName") or "default-scheduler"),
        node_name=str(spec.get("nodeName") or ""),
        priority=needs.priority,
        created=str(meta.get("creationTimestamp") or ""),
        requests=needs.requests - {PODS: needs.requests.amount(PODS)},
        nonzero_cpu=nonzero.amount(CPU),
        nonzero_memory=nonzero.amount(MEMORY),
        tolerations=needs.tolerations,
        alternatives=needs.requirements,
        preferred_terms=_preferred(spec),
        preempt_never=spec.get("preemptionPolicy") == "Never",
        resource_names=_resource_names(spec),
        labels=_string_map(meta.get("labels"), "metadata.labels"),
        affinity_terms=required_terms(spec, "podAffinity", namespace),
        anti_affinity_terms=required_terms(spec, "podAntiAffinity", namespace),
        affinity_scopes=namespace_scopes(spec, "podAffinity"),
        anti_affinity_scopes=namespace_scopes(spec, "podAntiAffinity"),
        spread_constraints=pod_spread_constraints(pod),
        controller=controller_of(meta),
        terminating=bool(meta.get("deletionTimestamp")),
    )


def _ready_status(node: Obj) -> str:
    status = node.get("status") or {}
    for condition in status.get("conditions") or []:
        if isinstance(condition, Mapping) and condition.get("type") == "Ready":
            return str(condition.get("status") or "Unknown")
    return "Unknown"


def node_facts(node: Obj) -> NodeFacts:
    """Parse a node, adding the taint the node lifecycle controller puts on a node not Ready.

    There is no lifecycle controller here, so a node whose Ready condition is not True (or
    missing, as on a node that just registered) is read as tainted
    ``node.kubernetes.io/not-ready:NoSchedule``.
    """
    meta = _meta(node)
    spec = _spec(node)
    status = node.get("status") or {}
    taints = list(parse_taints(spec.get("taints"), "spec.taints"))
    ready = _ready_status(node)
    if ready != "True" and not any(t.key == TAINT_NOT_READY and t.effect == NO_SCHEDULE for t in taints):
        taints.append(Taint(key=TAINT_NOT_READY, effect=NO_SCHEDULE))
    allocatable = status.get("allocatable") or status.get("capacity") or {}
    raw_labels = meta.get("labels")
    labels = (
        {k: v for k, v in raw_labels.items() if isinstance(v, str)} if isinstance(raw_labels, Mapping) else {}
    )
    return NodeFacts(
        name=str(meta.get("name") or ""),
        match_labels=node_labels_and_name(node),
        labels=labels,
        taints=tuple(taints),
        unschedulable=bool(spec.get("unschedulable")),
        allocatable=Resources.parse(allocatable, "status.allocatable"),
        ready=ready == "True",
    )
