"""``NodePool``: which nodes jitnode may launch, with what labels and taints, and how many.

Shaped like Karpenter's ``karpenter.sh/v1`` NodePool: a node template (labels, requirements,
taints, the EC2NodeClass to use, expiry), a disruption policy with budgets, resource limits and a
weight for choosing among pools. Validation mirrors ``manifests/crds/jitnode.io_nodepools.yaml``;
rules a structural schema cannot express are enforced here and repeated as CEL rules in the CRD.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from shared import labels as well_known
from shared.api import warmpool
from shared.api._fields import ROOT_KEYS, Checker, join
from shared.api.cron import Cron
from shared.api.durations import (
    API_DURATION_OR_NEVER_PATTERN,
    API_DURATION_PATTERN,
    BUDGET_DURATION_PATTERN,
    format_budget_duration,
    format_duration,
    parse_api_duration,
    parse_budget_duration,
)
from shared.api.group import GROUP_VERSION, NODEPOOL_KIND
from shared.api.meta import CONDITION_KEYS, CONDITION_STATUSES, Condition, ObjectMeta, parse_conditions
from shared.api.nodeclass import NODECLASS_REF_ENUMS, NODECLASS_REF_KEYS, NodeClassRef
from shared.api.scheduling import (
    OPERATORS,
    REQUIREMENT_KEYS,
    RESTRICTED_LABELS,
    TAINT_EFFECTS,
    TAINT_KEYS,
    parse_requirements,
    parse_taint_list,
)
from shared.api.warmpool import WarmPoolSpec, WarmPoolStatus, parse_warm_pool, parse_warm_pool_status
from shared.labelsyntax import label_key_problem, label_value_problem
from shared.requirements import Requirement, Requirements
from shared.resources import EMPTY, Resources
from shared.taints import Taint

WHEN_EMPTY: Final = "WhenEmpty"
WHEN_EMPTY_OR_UNDERUTILIZED: Final = "WhenEmptyOrUnderutilized"
CONSOLIDATION_POLICIES: Final = (WHEN_EMPTY, WHEN_EMPTY_OR_UNDERUTILIZED)
# spec.disruption.repair: replace unhealthy nodes (launcher.disruption.repair); unset follows
# the launcher's repair.enabled.
REPAIR_ENABLED: Final = "Enabled"
REPAIR_DISABLED: Final = "Disabled"
REPAIR_SETTINGS: Final = (REPAIR_ENABLED, REPAIR_DISABLED)
DISRUPTION_REASONS: Final = ("Underutilized", "Empty", "Drifted")
BUDGET_NODES_PATTERN: Final = r"^((100|[0-9]{1,2})%|[0-9]+)$"
BUDGET_SCHEDULE_PATTERN: Final = (
    r"^(@(annually|yearly|monthly|weekly|daily|midnight|hourly)|\S+\s\S+\s\S+\s\S+\s\S+)$"
)
DEFAULT_EXPIRE_AFTER: Final = "720h"
DEFAULT_BUDGET_NODES: Final = "10%"
MAX_REQUIREMENTS: Final = 100
MAX_BUDGETS: Final = 50
MAX_STABILIZATION_WINDOW: Final = timedelta(hours=1)  # the HPA's longest stabilizationWindowSeconds

KEYS: Final[Mapping[str, frozenset[str]]] = {
    "": ROOT_KEYS,
    "spec": frozenset({"template", "disruption", "limits", "weight", "warmPool"}),
    "spec.template": frozenset({"metadata", "spec"}),
    "spec.template.metadata": frozenset({"labels", "annotations"}),
    "spec.template.spec": frozenset(
        {"requirements", "taints", "startupTaints", "nodeClassRef", "expireAfter", "terminationGracePeriod"}
    ),
    "spec.template.spec.requirements[]": REQUIREMENT_KEYS,
    "spec.template.spec.taints[]": TAINT_KEYS,
    "spec.template.spec.startupTaints[]": TAINT_KEYS,
    "spec.template.spec.nodeClassRef": NODECLASS_REF_KEYS,
    "spec.disruption": frozenset(
        {"consolidationPolicy", "consolidateAfter", "budgets", "repair", "stabilizationWindow"}
    ),
    "spec.disruption.budgets[]": frozenset({"nodes", "schedule", "duration", "reasons"}),
    "spec.warmPool": warmpool.SPEC_KEYS,
    "status": frozenset({"resources", "conditions", "nodeClassObservedGeneration", "warmPool"}),
    "status.conditions[]": CONDITION_KEYS,
    "status.warmPool": warmpool.STATUS_KEYS,
}
ENUMS: Final[Mapping[str, tuple[str, ...]]] = {
    "spec.template.spec.requirements[].operator": OPERATORS,
    "spec.template.spec.taints[].effect": TAINT_EFFECTS,
    "spec.template.spec.startupTaints[].effect": TAINT_EFFECTS,
    **{f"spec.template.spec.nodeClassRef.{k}": v for k, v in NODECLASS_REF_ENUMS.items()},
    "spec.disruption.consolidationPolicy": CONSOLIDATION_POLICIES,
    "spec.disruption.repair": REPAIR_SETTINGS,
    "spec.disruption.budgets[].reasons[]": DISRUPTION_REASONS,
    "status.conditions[].status": CONDITION_STATUSES,
    **warmpool.ENUMS,
}
DEFAULTS: Final[Mapping[str, object]] = {
    "spec.template.spec.expireAfter": DEFAULT_EXPIRE_AFTER,
    "spec.disruption": {},
    "spec.disruption.consolidationPolicy": WHEN_EMPTY_OR_UNDERUTILIZED,
    "spec.disruption.consolidateAfter": "0s",
    "spec.disruption.budgets": [{"nodes": DEFAULT_BUDGET_NODES}],
    "spec.disruption.budgets[].nodes": DEFAULT_BUDGET_NODES,
    **warmpool.DEFAULTS,
}
PATTERNS: Final[Mapping[str, str]] = {
    "spec.template.spec.expireAfter": API_DURATION_OR_NEVER_PATTERN,
    "spec.template.spec.terminationGracePeriod": API_DURATION_PATTERN,
    "spec.disruption.consolidateAfter": API_DURATION_OR_NEVER_PATTERN,
    "spec.disruption.stabilizationWindow": API_DURATION_PATTERN,
    "spec.disruption.budgets[].nodes": BUDGET_NODES_PATTERN,
    "spec.disruption.budgets[].schedule": BUDGET_SCHEDULE_PATTERN,
    "spec.disruption.budgets[].duration": BUDGET_DURATION_PATTERN,
}


@functools.lru_cache(maxsize=256)
def _parse_cron(schedule: str) -> Cron:
    """Schedules were validated at parse time; the planner asks often, so parse each once."""
    return Cron.parse(schedule)


@dataclass(frozen=True)
class Budget:
    """At most ``nodes`` ("10%" or "3") may be disrupted at once, while the schedule is active.

    A budget without a schedule is always active. ``reasons`` limits it to some disruption
    reasons; empty means all of them.
    """

    nodes: str = DEFAULT_BUDGET_NODES
    schedule: str | None = None
    duration: timedelta | None = None
    reasons: tuple[str, ...] = ()

    def allowed(self, total_nodes: int) -> int:
        """The node count this budget allows; percentages round up, as Karpenter's do."""
        if self.nodes.endswith("%"):
            return math.ceil(total_nodes * int(self.nodes[:-1]) / 100)
        return int(self.nodes)

    def is_active(self, now: datetime) -> bool:
        if self.schedule is None or self.duration is None:
            return True
        return _parse_cron(self.schedule).active(now, self.duration)

    def applies_to(self, reason: str | None) -> bool:
        return reason is None or not self.reasons or reason in self.reasons

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {"nodes": self.nodes}
        if self.schedule is not None:
            out["schedule"] = self.schedule
        if self.duration is not None:
            out["duration"] = format_budget_duration(self.duration)
        if self.reasons:
            out["reasons"] = list(self.reasons)
        return out


@dataclass(frozen=True)
class Disruption:
    consolidation_policy: str = WHEN_EMPTY_OR_UNDERUTILIZED
    consolidate_after: timedelta | None = timedelta(0)  # None: Never
    budgets: tuple[Budget, ...] = (Budget(),)
    repair: str | None = None  # REPAIR_ENABLED, REPAIR_DISABLED, or None: the launcher's default
    # Scale-down stabilisation (``launcher.disruption.stabilisation``): consolidation keeps room
    # for each workload's peak over this long. None (or 0s): off.
    stabilization_window: timedelta | None = None

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "consolidationPolicy": self.consolidation_policy,
            "consolidateAfter": format_duration(self.consolidate_after),
            "budgets": [b.to_api() for b in self.budgets],
        }
        if self.repair is not None:
            out["repair"] = self.repair
        if self.stabilization_window is not None:
            out["stabilizationWindow"] = format_duration(self.stabilization_window)
        return out


@dataclass(frozen=True)
class NodePoolStatus:
    resources: Resources = EMPTY
    conditions: tuple[Condition, ...] = ()
    node_class_observed_generation: int | None = None
    warm_pool: WarmPoolStatus | None = None

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.resources:
            out["resources"] = self.resources.to_api()
        if self.conditions:
            out["conditions"] = [c.to_api() for c in self.conditions]
        if self.node_class_observed_generation is not None:
            out["nodeClassObservedGeneration"] = self.node_class_observed_generation
        if self.warm_pool is not None:
            out["warmPool"] = self.warm_pool.to_api()
        return out


@dataclass(frozen=True)
class NodePool:
    """A parsed, validated NodePool (see the module docstring).

    ``expire_after`` and ``disruption.consolidate_after`` are ``None`` for ``Never``.
    """

    metadata: ObjectMeta
    node_class_ref: NodeClassRef
    template_labels: Mapping[str, str] = field(default_factory=dict)
    template_annotations: Mapping[str, str] = field(default_factory=dict)
    template_requirements: tuple[Requirement, ...] = ()
    template_taints: tuple[Taint, ...] = ()
    template_startup_taints: tuple[Taint, ...] = ()
    expire_after: timedelta | None = timedelta(hours=720)
    termination_grace_period: timedelta | None = None
    disruption: Disruption = Disruption()
    limits: Resources = EMPTY
    weight: int | None = None
    warm_pool: WarmPoolSpec | None = None  # None: no warm pool (see shared.api.warmpool)
    status: NodePoolStatus = NodePoolStatus()

    @property
    def name(self) -> str:
        return self.metadata.name

    def labels(self) -> dict[str, str]:
        """Labels every node of this pool gets: the template's plus ``jitnode.io/nodepool``."""
        return {**self.template_labels, well_known.NODEPOOL: self.name}

    def requirements(self) -> Requirements:
        """What nodes of this pool satisfy: template requirements ∧ template labels ∧ the pool label."""
        return Requirements.of(*self.template_requirements).intersect(Requirements.from_labels(self.labels()))

    def taints(self) -> tuple[Taint, ...]:
        return self.template_taints

    def startup_taints(self) -> tuple[Taint, ...]:
        return self.template_startup_taints

    def budget_nodes_allowed(self, total_nodes: int, now: datetime, reason: str | None = None) -> int:
        """How many of the pool's ``total_nodes`` may be disrupted at ``now`` (for ``reason``).

        The smallest allowance of the active budgets that apply; with none active, all nodes.
        ``reason=None`` applies every budget (the most conservative answer).
        """
        allowances = [
            b.allowed(total_nodes)
            for b in self.disruption.budgets
            if b.applies_to(reason) and b.is_active(now)
        ]
        return max(0, min([total_nodes, *allowances]))

    def condition(self, type_: str) -> Condition | None:
        return next((c for c in self.status.conditions if c.type == type_), None)

    @classmethod
    def from_api(cls, obj: Mapping[str, Any]) -> NodePool:
        """Parse and validate the object; raises ``ValidationError`` listing every problem."""
        check = Checker()
        check.keys(obj, "", KEYS[""])
        meta = ObjectMeta.parse(check.mapping(obj, "metadata", ""), check)
        check.require(obj, "", "spec")
        spec = check.mapping(obj, "spec", "")
        check.keys(spec, "spec", KEYS["spec"])
        check.require(spec, "spec", "template")
        template = check.mapping(spec, "template", "spec")
        check.keys(template, "spec.template", KEYS["spec.template"])
        tmeta = check.mapping(template, "metadata", "spec.template")
        check.keys(tmeta, "spec.template.metadata", KEYS["spec.template.metadata"])
        check.require(template, "spec.template", "spec")
        tspec = check.mapping(template, "spec", "spec.template")
        path = "spec.template.spec"
        check.keys(tspec, path, KEYS[path])
        check.require(tspec, path, "nodeClassRef")
        ref_raw = check.mapping(tspec, "nodeClassRef", path)
        grace = check.string(tspec, "terminationGracePeriod", path)
        pool = cls(
            metadata=meta,
            node_class_ref=NodeClassRef.parse(ref_raw, check, join(path, "nodeClassRef")),
            template_labels=_label_value_problems(
                check.string_map(tmeta, "labels", "spec.template.metadata", check_key=_label_problem),
                check,
                "spec.template.metadata.labels",
            ),
            template_annotations=check.string_map(tmeta, "annotations", "spec.template.metadata"),
            template_requirements=parse_requirements(tspec, check, path),
            template_taints=parse_taint_list(tspec, "taints", check, path),
            template_startup_taints=parse_taint_list(tspec, "startupTaints", check, path),
            expire_after=_duration(tspec, "expireAfter", check, path, DEFAULT_EXPIRE_AFTER),
            termination_grace_period=(
                check.run(lambda: parse_api_duration(grace, join(path, "terminationGracePeriod")), None)
                if grace is not None
                else None
            ),
            disruption=_disruption(check.mapping(spec, "disruption", "spec"), check),
            limits=check.resources(spec, "limits", "spec"),
            weight=check.integer(spec, "weight", "spec", minimum=0, maximum=100),
            warm_pool=parse_warm_pool(check.mapping(spec, "warmPool", "spec"), check),
            status=_status(check.mapping(obj, "status", ""), check),
        )
        check.done(NODEPOOL_KIND)
        return pool

    def to_api(self) -> dict[str, Any]:
        tmeta: dict[str, Any] = {}
        if self.template_labels:
            tmeta["labels"] = dict(self.template_labels)
        if self.template_annotations:
            tmeta["annotations"] = dict(self.template_annotations)
        tspec: dict[str, Any] = {
            "nodeClassRef": self.node_class_ref.to_api(),
            "requirements": [r.to_api() for r in self.template_requirements],
            "expireAfter": format_duration(self.expire_after),
        }
        if self.template_taints:
            tspec["taints"] = [t.to_api() for t in self.template_taints]
        if self.template_startup_taints:
            tspec["startupTaints"] = [t.to_api() for t in self.template_startup_taints]
        if self.termination_grace_period is not None:
            tspec["terminationGracePeriod"] = format_duration(self.termination_grace_period)
        template: dict[str, Any] = {"spec": tspec}
        if tmeta:
            template["metadata"] = tmeta
        spec: dict[str, Any] = {"template": template, "disruption": self.disruption.to_api()}
        if self.limits:
            spec["limits"] = self.limits.to_api()
        if self.weight is not None:
            spec["weight"] = self.weight
        if self.warm_pool is not None:
            spec["warmPool"] = self.warm_pool.to_api()
        out: dict[str, Any] = {
            "apiVersion": GROUP_VERSION,
            "kind": NODEPOOL_KIND,
            "metadata": self.metadata.to_api(),
            "spec": spec,
        }
        status = self.status.to_api()
        if status:
            out["status"] = status
        return out


def _label_problem(key: str) -> str | None:
    if key in RESTRICTED_LABELS:
        return f"label {key!r} is set by jitnode and may not be used here"
    return label_key_problem(key)


def _label_value_problems(labels: Mapping[str, str], check: Checker, path: str) -> dict[str, str]:
    for key, value in labels.items():
        problem = label_value_problem(value)
        if problem is not None:
            check.error(join(path, key), problem)
    return dict(labels)


def _duration(raw: Mapping[str, Any], key: str, check: Checker, path: str, default: str) -> timedelta | None:
    value = raw.get(key, default)
    return check.run(lambda: parse_api_duration(value, join(path, key), allow_never=True), None)


def _disruption(raw: Mapping[str, Any], check: Checker) -> Disruption:
    path = "spec.disruption"
    check.keys(raw, path, KEYS[path])
    policy = check.string(raw, "consolidationPolicy", path, enum=CONSOLIDATION_POLICIES)
    budgets: list[Budget] = []
    raw_budgets = raw.get("budgets")
    for item_path, item in check.objects(raw, "budgets", path, max_items=MAX_BUDGETS):
        budget = _budget(item, check, item_path)
        if budget is not None:
            budgets.append(budget)
    return Disruption(
        consolidation_policy=policy or WHEN_EMPTY_OR_UNDERUTILIZED,
        consolidate_after=_duration(raw, "consolidateAfter", check, path, "0s"),
        budgets=tuple(budgets) if raw_budgets is not None else (Budget(),),
        repair=check.string(raw, "repair", path, enum=REPAIR_SETTINGS),
        stabilization_window=_window(raw, check, path),
    )


def _window(raw: Mapping[str, Any], check: Checker, path: str) -> timedelta | None:
    """``stabilizationWindow``: a duration; absent or zero turns stabilisation off."""
    if raw.get("stabilizationWindow") is None:
        return None
    field = join(path, "stabilizationWindow")
    window = check.run(lambda: parse_api_duration(raw["stabilizationWindow"], field), None)
    if window is not None and window > MAX_STABILIZATION_WINDOW:
        check.error(field, f"must be at most {format_duration(MAX_STABILIZATION_WINDOW)}, as the HPA's")
        return None
    return window or None


def _budget(raw: Mapping[str, Any], check: Checker, path: str) -> Budget | None:
    check.keys(raw, path, KEYS["spec.disruption.budgets[]"])
    errors_before = len(check.errors)
    nodes = raw.get("nodes", DEFAULT_BUDGET_NODES)
    nodes = check.string(
        {"nodes": nodes},
        "nodes",
        path,
        pattern=BUDGET_NODES_PATTERN,
        hint="a percentage such as 10% or a count",
    )
    schedule = check.string(
        raw,
        "schedule",
        path,
        pattern=BUDGET_SCHEDULE_PATTERN,
        hint="a cron schedule such as '0 9 * * mon-fri'",
    )
    if schedule is not None:
        check.run(lambda: Cron.parse(schedule, join(path, "schedule")), None)
    duration = None
    if raw.get("duration") is not None:
        duration = check.run(lambda: parse_budget_duration(raw.get("duration"), join(path, "duration")), None)
    if (raw.get("schedule") is None) != (raw.get("duration") is None):
        check.error(path, "schedule and duration must be set together")
    reasons: list[str] = []
    for i, reason in enumerate(check.items(raw, "reasons", path)):
        if reason in DISRUPTION_REASONS:
            reasons.append(reason)
        else:
            check.error(f"{join(path, 'reasons')}[{i}]", f"must be one of {', '.join(DISRUPTION_REASONS)}")
    if len(check.errors) > errors_before or nodes is None:
        return None
    return Budget(nodes=nodes, schedule=schedule, duration=duration, reasons=tuple(reasons))


def _status(raw: Mapping[str, Any], check: Checker) -> NodePoolStatus:
    return NodePoolStatus(
        resources=check.resources(raw, "resources", "status"),
        conditions=parse_conditions(raw, check, "status"),
        node_class_observed_generation=check.integer(raw, "nodeClassObservedGeneration", "status", minimum=0),
        warm_pool=parse_warm_pool_status(check.mapping(raw, "warmPool", "status"), check),
    )
