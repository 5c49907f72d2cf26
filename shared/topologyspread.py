"""A pod's topology spread constraints, parsed once into plain data (pure).

The extender reads them from the pod and sends them in its demand; the launcher's planner spreads
the nodes it buys by them. ``matchLabelKeys`` is resolved here, against the pod's own labels
(they cannot change while it is pending), so the receiver only matches selectors. Defaults are
kube-scheduler's: ``minDomains`` 1, ``nodeAffinityPolicy`` Honor, ``nodeTaintsPolicy`` Ignore.
The scheduler's *default* constraints (applied to pods that have none) only score, so a planner
has nothing to honour in them and they are not represented here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from shared.errors import FieldError, ValidationError
from shared.labelsyntax import label_key_problem
from shared.podaffinity import label_selector
from shared.requirements import Requirements

DO_NOT_SCHEDULE: Final = "DoNotSchedule"
SCHEDULE_ANYWAY: Final = "ScheduleAnyway"
HONOR: Final = "Honor"
IGNORE: Final = "Ignore"
_ACTIONS: Final = (DO_NOT_SCHEDULE, SCHEDULE_ANYWAY)
_POLICIES: Final = (HONOR, IGNORE)
_PATH: Final = "spec.topologySpreadConstraints"


@dataclass(frozen=True, slots=True)
class SpreadConstraint:
    """One ``TopologySpreadConstraint`` of a pod, with ``matchLabelKeys`` folded into ``selector``.

    ``selector`` None is a null labelSelector: it selects no pod, so the constraint only asks
    that the node have the key. ``hard``: DoNotSchedule (else ScheduleAnyway). The policies say
    which nodes' domains and pods count: ``honor_node_affinity`` only nodes the pod's node
    affinity admits, ``honor_node_taints`` only nodes whose taints it tolerates.
    """

    topology_key: str
    max_skew: int
    hard: bool
    selector: Requirements | None = None
    min_domains: int = 1
    honor_node_affinity: bool = True
    honor_node_taints: bool = False

    def selects(self, labels: Mapping[str, str]) -> bool:
        """Whether a pod with ``labels`` (in the constraint's own namespace) is counted."""
        return self.selector is not None and self.selector.matches(labels)

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {
            "topologyKey": self.topology_key,
            "maxSkew": self.max_skew,
            "whenUnsatisfiable": DO_NOT_SCHEDULE if self.hard else SCHEDULE_ANYWAY,
            "selector": None if self.selector is None else self.selector.to_api(),
        }
        if self.min_domains != 1:
            wire["minDomains"] = self.min_domains
        if not self.honor_node_affinity:
            wire["nodeAffinityPolicy"] = IGNORE
        if self.honor_node_taints:
            wire["nodeTaintsPolicy"] = HONOR
        return wire

    @classmethod
    def from_wire(cls, raw: object, path: str) -> SpreadConstraint:
        """The :meth:`to_wire` form back; raises FieldError naming the first bad field."""
        if not isinstance(raw, Mapping):
            raise FieldError(path, "expected an object")
        key = _topology_key(raw, path)
        selector = raw.get("selector")
        return cls(
            topology_key=key,
            max_skew=_positive(raw, "maxSkew", path, None),
            hard=_choice(raw, "whenUnsatisfiable", path, _ACTIONS, None) == DO_NOT_SCHEDULE,
            selector=None if selector is None else _selector(selector, f"{path}.selector"),
            min_domains=_positive(raw, "minDomains", path, 1),
            honor_node_affinity=_choice(raw, "nodeAffinityPolicy", path, _POLICIES, HONOR) == HONOR,
            honor_node_taints=_choice(raw, "nodeTaintsPolicy", path, _POLICIES, IGNORE) == HONOR,
        )


def pod_spread_constraints(pod: Mapping[str, Any]) -> tuple[SpreadConstraint, ...]:
    """``spec.topologySpreadConstraints`` of an API pod, validated as the API server does."""
    spec = pod.get("spec")
    raw = spec.get("topologySpreadConstraints") if isinstance(spec, Mapping) else None
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise FieldError(_PATH, "expected a list of topology spread constraints")
    meta = pod.get("metadata")
    raw_labels = meta.get("labels") if isinstance(meta, Mapping) else None
    labels = {str(k): str(v) for k, v in raw_labels.items()} if isinstance(raw_labels, Mapping) else {}
    out: list[SpreadConstraint] = []
    seen: set[tuple[str, bool]] = set()
    for i, item in enumerate(raw):
        constraint = parse_constraint(item, f"{_PATH}[{i}]", labels)
        if (constraint.topology_key, constraint.hard) in seen:
            raise FieldError(f"{_PATH}[{i}]", "duplicate topologyKey and whenUnsatisfiable")
        seen.add((constraint.topology_key, constraint.hard))
        out.append(constraint)
    return tuple(out)


def parse_constraint(raw: object, path: str, pod_labels: Mapping[str, str]) -> SpreadConstraint:
    """One API ``TopologySpreadConstraint`` of a pod with ``pod_labels``.

    ``matchLabelKeys`` adds ``key In (the pod's value)`` for each listed key the pod has, as
    kube-scheduler's ``mergeLabelSetWithSelector`` does; a null selector stays null (it selects
    nothing, and the API refuses matchLabelKeys without a labelSelector anyway).
    """
    if not isinstance(raw, Mapping):
        raise FieldError(path, "expected a topology spread constraint object")
    key = _topology_key(raw, path)
    hard = _choice(raw, "whenUnsatisfiable", path, _ACTIONS, None) == DO_NOT_SCHEDULE
    selector = label_selector(raw.get("labelSelector"), f"{path}.labelSelector")
    match_keys = raw.get("matchLabelKeys") or []
    if not isinstance(match_keys, list) or not all(isinstance(k, str) for k in match_keys):
        raise FieldError(f"{path}.matchLabelKeys", "expected a list of label keys")
    if selector is not None:
        clash = sorted(set(match_keys) & selector.keys())
        if clash:
            raise FieldError(f"{path}.matchLabelKeys", f"{clash[0]!r} is also in labelSelector")
        own = {k: pod_labels[k] for k in match_keys if k in pod_labels}
        if own:
            selector = Requirements.from_labels(own) & selector
    elif match_keys:
        raise FieldError(f"{path}.matchLabelKeys", "must not be set when labelSelector is not")
    if raw.get("minDomains") is not None and not hard:
        raise FieldError(f"{path}.minDomains", "may only be set with whenUnsatisfiable DoNotSchedule")
    return SpreadConstraint(
        topology_key=key,
        max_skew=_positive(raw, "maxSkew", path, None),
        hard=hard,
        selector=selector,
        min_domains=_positive(raw, "minDomains", path, 1),
        honor_node_affinity=_choice(raw, "nodeAffinityPolicy", path, _POLICIES, HONOR) == HONOR,
        honor_node_taints=_choice(raw, "nodeTaintsPolicy", path, _POLICIES, IGNORE) == HONOR,
    )


def _topology_key(raw: Mapping[str, Any], path: str) -> str:
    key = raw.get("topologyKey")
    if not isinstance(key, str) or not key:
        raise FieldError(f"{path}.topologyKey", "is required")
    problem = label_key_problem(key)
    if problem is not None:
        raise FieldError(f"{path}.topologyKey", problem)
    return key


def _selector(raw: object, path: str) -> Requirements:
    try:
        return Requirements.from_api(raw, path)
    except ValidationError as exc:
        raise exc.errors[0] from None


def _positive(raw: Mapping[str, Any], key: str, path: str, default: int | None) -> int:
    value = raw.get(key)
    if value is None and default is not None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        problem = "is required" if value is None else f"{value!r} must be a positive integer"
        raise FieldError(f"{path}.{key}", problem)
    return value


def _choice(
    raw: Mapping[str, Any], key: str, path: str, choices: tuple[str, ...], default: str | None
) -> str:
    value = raw.get(key)
    if value is None:
        value = default
    if value not in choices:
        problem = "is required" if value is None else f"{value!r} must be one of {', '.join(choices)}"
        raise FieldError(f"{path}.{key}", problem)
    return str(value)
