"""What a pod needs from a node, computed the way kube-scheduler computes it.

Input is the pod as a plain dict from the API (``{"metadata", "spec", "status"}``). The rules
mirror kube-scheduler so that the extender's and the launcher's answers agree with the real
scheduler's: requests as ``resourcehelper.PodRequests`` (sidecars, init containers, overhead,
pod-level resources, in-place resizes), node affinity as ``nodeaffinity.GetRequiredNodeAffinity``
(``nodeSelector`` ANDed with ORed ``nodeSelectorTerms``). Bad input raises
:class:`~shared.errors.ValidationError` naming each field path; nothing here does I/O.

:func:`scheduling_needs` and :func:`effective_requests` are memoised on what they read (a few
spec fields, each container's name, resources and restart policy, the status's resize fields):
every replica of a template has the same needs, and the launcher reads them for each of up to
150,000 pods when it starts (about 60 µs a pod parsed, a few µs looked up).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import orjson

from shared.errors import FieldError, ValidationError
from shared.memo import ClearingMemo
from shared.requirements import Requirement, Requirements, parse_requirement_list
from shared.resources import CPU, MEMORY, PODS, Resources
from shared.taints import Toleration, parse_tolerations

# Pseudo label key standing for the node's name in ``matchFields`` (the only field Kubernetes
# supports there). A real node label with this key would be shadowed by the name.
NODE_NAME_FIELD: Final = "metadata.name"
MIRROR_ANNOTATION: Final = "kubernetes.io/config.mirror"
TERMINAL_PHASES: Final = frozenset({"Succeeded", "Failed"})

_Pod = Mapping[str, Any]
T = TypeVar("T")
# Needs and requests by the JSON of what they are read from.
_needs_memo: ClearingMemo[bytes, SchedulingNeeds] = ClearingMemo(4096)
_requests_memo: ClearingMemo[bytes, Resources] = ClearingMemo(4096)


@dataclass(frozen=True)
class SchedulingNeeds:
    """Everything about a pod that decides which nodes can take it.

    ``requirements`` are ORed alternatives, each a conjunction; an empty tuple matches no node
    (a pod whose required affinity lists no usable term is unschedulable everywhere).
    """

    requests: Resources
    requirements: tuple[Requirements, ...]
    tolerations: tuple[Toleration, ...]
    priority: int


def scheduling_needs(pod: _Pod) -> SchedulingNeeds:
    """Requests, node requirements, tolerations and priority; every bad field reported at once."""
    return _memoised(_needs_memo, pod, _scheduling_needs)


def _memoised(memo: ClearingMemo[bytes, T], pod: _Pod, compute: Callable[[_Pod], T]) -> T:
    """``compute(pod)``, looked up in ``memo`` by the JSON of what it reads (see the module doc)."""
    key = _memo_key(pod)
    return compute(pod) if key is None else memo.get(key, lambda: compute(pod))


def _memo_key(pod: _Pod) -> bytes | None:
    """Every input of :func:`_scheduling_needs` as JSON; None when it cannot be encoded."""
    spec = pod.get("spec")
    if not isinstance(spec, Mapping):
        return None
    status = pod.get("status")
    status = status if isinstance(status, Mapping) else {}
    resizing = [c for c in _conditions(pod) if isinstance(c, Mapping) and c.get("type") == "PodResizePending"]
    try:
        return orjson.dumps(
            (
                [spec.get(name) for name in _SPEC_INPUTS],
                _container_inputs(spec.get("containers")),
                _container_inputs(spec.get("initContainers")),
                status.get("containerStatuses"),
                status.get("resize"),
                resizing,
            )
        )
    except TypeError:
        return None


# What the memoised functions read of a spec and of each of its containers.
_SPEC_INPUTS: Final = ("resources", "overhead", "nodeSelector", "affinity", "tolerations", "priority")


def _container_inputs(containers: object) -> object:
    if not isinstance(containers, list):
        return containers
    return [
        (c.get("name"), c.get("resources"), c.get("restartPolicy")) if isinstance(c, Mapping) else c
        for c in containers
    ]


def _scheduling_needs(pod: _Pod) -> SchedulingNeeds:
    errors: list[FieldError] = []
    requests = _collect(errors, lambda: effective_requests(pod), Resources())
    requirements: tuple[Requirements, ...] = _collect(errors, lambda: node_selector_terms(pod), ())
    tols: tuple[Toleration, ...] = _collect(errors, lambda: tolerations(pod), ())
    priority = _collect(errors, lambda: _priority(pod), 0)
    if errors:
        raise ValidationError(errors, "pod")
    return SchedulingNeeds(requests, requirements, tols, priority)


# Resources.


def effective_requests(pod: _Pod) -> Resources:
    """The pod's request as kube-scheduler's fit plugin sees it, with ``pods: 1`` (memoised).

    max(sum(containers) + sum(sidecars), max over init containers in order of (its requests
    plus the sidecars started before it)), pod-level requests replacing cpu/memory when set,
    plus ``spec.overhead``. A resource with a limit but no request requests its limit, as API
    defaulting does. A running container being resized in place counts with the larger of its
    spec and its status requests (only the status when the resize is infeasible).
    """
    return _memoised(_requests_memo, pod, _effective_requests)


def _effective_requests(pod: _Pod) -> Resources:
    spec = _mapping(pod, "spec", "")
    errors: list[FieldError] = []
    resized = _status_requests(pod, errors)
    infeasible = _resize_infeasible(pod)

    total = Resources()
    for i, c in enumerate(_list(spec, "containers", "spec", errors)):
        path = f"spec.containers[{i}]"
        reqs = _container_requests(c, path, errors)
        name = c.get("name") if isinstance(c, Mapping) else None
        status = resized.get(name) if isinstance(name, str) else None
        if status is not None:
            reqs = status if infeasible else reqs.max(status)
        total = total + reqs

    sidecars = Resources()
    init_peak = Resources()
    for i, c in enumerate(_list(spec, "initContainers", "spec", errors)):
        path = f"spec.initContainers[{i}]"
        reqs = _container_requests(c, path, errors)
        if isinstance(c, Mapping) and c.get("restartPolicy") == "Always":
            total = total + reqs
            sidecars = sidecars + reqs
            candidate = sidecars
        else:
            candidate = reqs + sidecars
        init_peak = init_peak.max(candidate)
    total = total.max(init_peak)

    pod_level = _requests_of(spec, "spec", errors)
    if pod_level:
        total = Resources({**total, **{k: v for k, v in pod_level.items() if _pod_level_resource(k)}})
    overhead = _parse_resources(spec.get("overhead"), "spec.overhead", errors)
    if errors:
        raise ValidationError(errors, "pod")
    return Resources({**(total + overhead), PODS: 1})


def _container_requests(container: object, path: str, errors: list[FieldError]) -> Resources:
    if not isinstance(container, Mapping):
        errors.append(FieldError(path, f"expected an object, got {type(container).__name__}"))
        return Resources()
    return _requests_of(container, path, errors)


def _requests_of(owner: Mapping[str, Any], path: str, errors: list[FieldError]) -> Resources:
    """``resources.requests`` with missing entries defaulted from ``resources.limits``."""
    resources = owner.get("resources")
    if resources is None:
        return Resources()
    path = f"{path}.resources"
    if not isinstance(resources, Mapping):
        errors.append(FieldError(path, f"expected an object, got {type(resources).__name__}"))
        return Resources()
    requests = _parse_resources(resources.get("requests"), f"{path}.requests", errors)
    raw_requests = resources.get("requests")
    given = set(raw_requests) if isinstance(raw_requests, Mapping) else set()
    limits = _parse_resources(resources.get("limits"), f"{path}.limits", errors)
    defaulted = {k: v for k, v in limits.items() if k not in given}
    return Resources({**requests, **defaulted}) if defaulted else requests


def _parse_resources(raw: object, path: str, errors: list[FieldError]) -> Resources:
    if raw is None:
        return Resources()
    if not isinstance(raw, Mapping):
        errors.append(FieldError(path, f"expected an object, got {type(raw).__name__}"))
        return Resources()
    try:
        return Resources.parse(raw, path)  # memoised (see shared.resources)
    except FieldError:
        pass
    amounts: dict[str, int] = {}  # name every bad entry, not only the first
    for name, value in raw.items():
        try:
            amounts.update(Resources.parse({name: value}, path))
        except FieldError as exc:
            errors.append(exc)
    return Resources(amounts)


def _pod_level_resource(name: str) -> bool:
    return name in (CPU, MEMORY) or name.startswith("hugepages-")


def _status_requests(pod: _Pod, errors: list[FieldError]) -> dict[str, Resources]:
    """Per container name, the requests the kubelet reports in status (in-place resize)."""
    out: dict[str, Resources] = {}
    status = pod.get("status")
    if not isinstance(status, Mapping):
        return out
    statuses = status.get("containerStatuses")
    if not isinstance(statuses, list):
        return out
    for i, cs in enumerate(statuses):
        if not isinstance(cs, Mapping) or not isinstance(cs.get("resources"), Mapping):
            continue
        raw = cs["resources"].get("requests")
        if raw is None:
            continue
        name = cs.get("name")
        if isinstance(name, str):
            out[name] = _parse_resources(raw, f"status.containerStatuses[{i}].resources.requests", errors)
    return out


def _resize_infeasible(pod: _Pod) -> bool:
    status = pod.get("status")
    if not isinstance(status, Mapping):
        return False
    if status.get("resize") == "Infeasible":
        return True
    return any(
        isinstance(c, Mapping) and c.get("type") == "PodResizePending" and c.get("reason") == "Infeasible"
        for c in _conditions(pod)
    )


# Node affinity.


def node_selector_terms(pod: _Pod) -> tuple[Requirements, ...]:
    """The ORed alternatives a node must satisfy one of, each ANDed with ``nodeSelector``.

    No required node affinity yields one alternative, ``nodeSelector`` alone (possibly empty,
    matching every node). Required affinity with no terms, or only terms without expressions or
    fields, matches no node and yields ``()``, as in kube-scheduler. ``matchFields`` become
    requirements on :data:`NODE_NAME_FIELD`.
    """
    spec = _mapping(pod, "spec", "")
    errors: list[FieldError] = []
    selector = _node_selector(spec, errors)
    required = _required_affinity(spec, errors)
    if required is None:
        alternatives: tuple[Requirements, ...] = (selector,)
    else:
        terms = _list(required, "nodeSelectorTerms", _REQUIRED_PATH, errors)
        out: list[Requirements] = []
        for i, term in enumerate(terms):
            parsed = _term(term, f"{_REQUIRED_PATH}.nodeSelectorTerms[{i}]", errors)
            if parsed is not None:
                out.append(selector.intersect(parsed))
        alternatives = tuple(out)
    if errors:
        raise ValidationError(errors, "pod")
    return alternatives


_REQUIRED_PATH: Final = "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"


def _node_selector(spec: Mapping[str, Any], errors: list[FieldError]) -> Requirements:
    raw = spec.get("nodeSelector")
    if raw is None:
        return Requirements()
    if not isinstance(raw, Mapping):
        errors.append(FieldError("spec.nodeSelector", "expected an object of label to value"))
        return Requirements()
    good: dict[str, str] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not isinstance(value, str):
            errors.append(FieldError(f"spec.nodeSelector.{key}", f"expected a string, got {value!r}"))
        else:
            good[key] = value
    return Requirements.from_labels(good)


def _required_affinity(spec: Mapping[str, Any], errors: list[FieldError]) -> Mapping[str, Any] | None:
    affinity = spec.get("affinity")
    if not isinstance(affinity, Mapping):
        return None
    node_affinity = affinity.get("nodeAffinity")
    if not isinstance(node_affinity, Mapping):
        return None
    required = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
    if required is None:
        return None
    if not isinstance(required, Mapping):
        errors.append(FieldError(_REQUIRED_PATH, "expected an object"))
        return None
    return required


def _term(term: object, path: str, errors: list[FieldError]) -> Requirements | None:
    """One ``NodeSelectorTerm``, or None when it has nothing in it (it then matches nothing)."""
    if not isinstance(term, Mapping):
        errors.append(FieldError(path, "expected an object"))
        return None
    expressions = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not expressions and not fields:
        return None
    reqs: list[Requirement] = []
    try:
        reqs.extend(parse_requirement_list(expressions, f"{path}.matchExpressions"))
    except ValidationError as exc:
        errors.extend(exc.errors)
    if not isinstance(fields, list):
        errors.append(FieldError(f"{path}.matchFields", "expected a list"))
        fields = []
    for j, raw in enumerate(fields):
        field_path = f"{path}.matchFields[{j}]"
        try:
            reqs.append(_field_requirement(raw, field_path))
        except FieldError as exc:
            errors.append(exc)
    return Requirements.of(*reqs)


def _field_requirement(raw: object, path: str) -> Requirement:
    """A ``matchFields`` entry: only ``metadata.name``, In or NotIn, exactly one value."""
    if not isinstance(raw, Mapping):
        raise FieldError(path, "expected an object")
    if raw.get("key") != NODE_NAME_FIELD:
        raise FieldError(
            f"{path}.key", f"{raw.get('key')!r} is not a supported field (only {NODE_NAME_FIELD!r})"
        )
    if raw.get("operator") not in ("In", "NotIn"):
        raise FieldError(f"{path}.operator", f"{raw.get('operator')!r} is not 'In' or 'NotIn'")
    values = raw.get("values")
    if not isinstance(values, list) or len(values) != 1:
        raise FieldError(f"{path}.values", "must have exactly one value for a node field selector")
    return Requirement.from_api(raw, path)


def node_labels_and_name(node: Mapping[str, Any]) -> dict[str, str]:
    """A node's labels plus :data:`NODE_NAME_FIELD`, the label set node requirements match."""
    meta = node.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    raw = meta.get("labels")
    out = {k: v for k, v in raw.items() if isinstance(v, str)} if isinstance(raw, Mapping) else {}
    name = meta.get("name")
    if isinstance(name, str):
        out[NODE_NAME_FIELD] = name
    return out


def node_matches(pod: _Pod, node: Mapping[str, Any]) -> bool:
    """Whether the node's labels and name satisfy ``nodeSelector`` and required affinity."""
    labels = node_labels_and_name(node)
    return any(alt.matches(labels) for alt in node_selector_terms(pod))


# Tolerations and priority.


def tolerations(pod: _Pod) -> tuple[Toleration, ...]:
    spec = _mapping(pod, "spec", "")
    try:
        return parse_tolerations(spec.get("tolerations"), "spec.tolerations")
    except ValidationError as exc:
        raise ValidationError(exc.errors, "pod") from None


def _priority(pod: _Pod) -> int:
    value = _mapping(pod, "spec", "").get("priority")
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise FieldError("spec.priority", f"expected an integer, got {value!r}")
    return value


# Classification.


def is_daemonset_pod(pod: _Pod) -> bool:
    controller = owner(pod)
    return controller is not None and controller[0] == "DaemonSet"


def is_mirror_pod(pod: _Pod) -> bool:
    return MIRROR_ANNOTATION in _string_map(_mapping(pod, "metadata", ""), "annotations")


def is_terminal(pod: _Pod) -> bool:
    return _mapping(pod, "status", "").get("phase") in TERMINAL_PHASES


def is_bound(pod: _Pod) -> bool:
    return bool(_mapping(pod, "spec", "").get("nodeName"))


def unschedulable_condition(pod: _Pod) -> dict[str, Any] | None:
    """The ``PodScheduled=False`` condition with reason ``Unschedulable``, if the pod has one."""
    for c in _conditions(pod):
        if (
            isinstance(c, Mapping)
            and c.get("type") == "PodScheduled"
            and c.get("status") == "False"
            and c.get("reason") == "Unschedulable"
        ):
            return dict(c)
    return None


def owner(pod: _Pod) -> tuple[str, str] | None:
    """``(kind, name)`` of the controlling owner reference, if any."""
    refs = _mapping(pod, "metadata", "").get("ownerReferences")
    if not isinstance(refs, list):
        return None
    for ref in refs:
        if isinstance(ref, Mapping) and ref.get("controller") is True:
            kind, name = ref.get("kind"), ref.get("name")
            if isinstance(kind, str) and isinstance(name, str):
                return kind, name
    return None


def pod_key(pod: _Pod) -> str:
    """``namespace/name``, the key informers and the launcher index pods by."""
    meta = _mapping(pod, "metadata", "")
    return f"{meta.get('namespace') or 'default'}/{meta.get('name') or ''}"


def pod_uid(pod: _Pod) -> str:
    uid = _mapping(pod, "metadata", "").get("uid")
    return uid if isinstance(uid, str) else ""


# Plain-dict helpers: tolerate absent sections, report wrong shapes by path.


def _mapping(obj: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
    value = obj.get(key) if isinstance(obj, Mapping) else None
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError([FieldError(f"{path}.{key}" if path else key, "expected an object")], "pod")
    return value


def _list(obj: Mapping[str, Any], key: str, path: str, errors: list[FieldError]) -> Sequence[Any]:
    value = obj.get(key)
    if value is None:
        return ()
    if not isinstance(value, list):
        errors.append(FieldError(f"{path}.{key}", "expected a list"))
        return ()
    return value


def _string_map(obj: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = obj.get(key)
    return value if isinstance(value, Mapping) else {}


def _conditions(pod: _Pod) -> Sequence[Any]:
    status = pod.get("status")
    conditions = status.get("conditions") if isinstance(status, Mapping) else None
    return conditions if isinstance(conditions, list) else ()


def _collect(errors: list[FieldError], compute: Callable[[], T], fallback: T) -> T:
    try:
        return compute()
    except ValidationError as exc:
        errors.extend(exc.errors)
    except FieldError as exc:
        errors.append(exc)
    return fallback
