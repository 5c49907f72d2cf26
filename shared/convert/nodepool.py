"""Karpenter's Provisioner (``karpenter.sh/v1alpha5``) and NodePool (``v1beta1``, ``v1``) as
jitnode's ``NodePool``.

The v1alpha5 Provisioner is the far one: its TTLs become the disruption policy
(``ttlSecondsAfterEmpty`` -> ``WhenEmpty`` after that many seconds; ``consolidation.enabled`` ->
``WhenEmptyOrUnderutilized``; neither -> nodes are never removed, as Karpenter did), its
``ttlSecondsUntilExpired`` the template's ``expireAfter`` (absent -> ``Never``), and the defaults
Karpenter's webhook wrote into every Provisioner become explicit requirements, with a note, so the
pool launches what it launched before. Kubelet settings are split off for the EC2NodeClass.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final

from shared import labels as well_known
from shared.api.durations import format_duration
from shared.api.group import API_GROUP, GROUP_VERSION, NODECLASS_KIND, NODEPOOL_KIND
from shared.api.nodepool import KEYS, WHEN_EMPTY, WHEN_EMPTY_OR_UNDERUTILIZED
from shared.convert import shape
from shared.convert.kubelet import split_kubelet
from shared.convert.meta import convert_metadata, object_name
from shared.convert.report import Report
from shared.convert.scheduling import convert_labels, convert_requirements, convert_taints, drop_unknown
from shared.errors import FieldError

NEVER: Final = "Never"
PROVISIONER_FIELDS: Final = frozenset(
    {
        "labels",
        "annotations",
        "taints",
        "startupTaints",
        "requirements",
        "kubeletConfiguration",
        "provider",
        "providerRef",
        "ttlSecondsAfterEmpty",
        "ttlSecondsUntilExpired",
        "limits",
        "weight",
        "consolidation",
    }
)
TEMPLATE_SPEC_FIELDS: Final = frozenset(
    {
        "nodeClassRef",
        "requirements",
        "taints",
        "startupTaints",
        "kubelet",
        "expireAfter",
        "terminationGracePeriod",
    }
)
POLICIES: Final[Mapping[str, str]] = {
    WHEN_EMPTY: WHEN_EMPTY,
    "WhenUnderutilized": WHEN_EMPTY_OR_UNDERUTILIZED,  # v1beta1's name; v1 renamed it
    WHEN_EMPTY_OR_UNDERUTILIZED: WHEN_EMPTY_OR_UNDERUTILIZED,
}
INSTANCE_TYPE_KEYS: Final = frozenset({well_known.INSTANCE_TYPE, well_known.INSTANCE_FAMILY})


@dataclass
class ConvertedPool:
    """A converted NodePool, and what the batch must settle with its EC2NodeClass.

    ``kubelet`` holds settings bound for the node class named ``class_name`` (found at
    ``kubelet_path`` in the input); ``inline_provider`` is a v1alpha5 inline ``provider`` block,
    which becomes an EC2NodeClass of the pool's own name.
    """

    nodepool: dict[str, Any]
    class_name: str
    kubelet: dict[str, Any] = field(default_factory=dict)
    kubelet_path: str = ""
    inline_provider: Mapping[str, Any] | None = None


def from_provisioner(obj: Mapping[str, Any], report: Report) -> ConvertedPool:
    """A NodePool from a ``karpenter.sh/v1alpha5`` Provisioner (see the module docstring)."""
    name = object_name(obj)
    spec = shape.mapping(obj, "spec", "")
    drop_unknown(spec, PROVISIONER_FIELDS, "spec", report)
    provider = spec.get("provider")
    ref = shape.mapping(spec, "providerRef", "spec")
    if provider is not None and ref:
        raise FieldError("spec", "provider and providerRef are mutually exclusive")
    if provider is not None:
        inline = shape.mapping(spec, "provider", "spec")
        class_name = name
    elif ref:
        inline = None
        class_name = _ref_name(ref, "spec.providerRef", "AWSNodeTemplate", report)
    else:
        raise FieldError("spec.providerRef", "is required (or an inline provider)")
    labels = convert_labels(spec, "labels", "spec", report)
    requirements = convert_requirements(spec, "requirements", "spec", report)
    requirements.extend(_webhook_defaults(requirements, labels, report))
    template_spec = _template_spec(class_name, requirements, spec, "spec", report)
    expire = shape.whole_seconds(spec, "ttlSecondsUntilExpired", "spec")
    template_spec["expireAfter"] = _seconds(expire) if expire is not None else NEVER
    pool = _pool(
        obj,
        _template(labels, shape.string_map(spec, "annotations", "spec"), template_spec),
        _provisioner_disruption(spec, report),
        _limits(
            shape.mapping(spec, "limits", "spec"),
            "resources",
            "spec.limits",
            report,
            frozenset({"resources"}),
        ),
        spec.get("weight"),
    )
    kubelet = split_kubelet(spec, "kubeletConfiguration", "spec", report)
    return ConvertedPool(pool, class_name, kubelet, "spec.kubeletConfiguration", inline)


def from_nodepool(obj: Mapping[str, Any], version: str, report: Report) -> ConvertedPool:
    """A NodePool from Karpenter's ``karpenter.sh/v1beta1`` or ``v1`` NodePool."""
    spec = shape.mapping(obj, "spec", "")
    drop_unknown(spec, KEYS["spec"], "spec", report)
    template = shape.mapping(spec, "template", "spec")
    drop_unknown(template, KEYS["spec.template"], "spec.template", report)
    tmeta = shape.mapping(template, "metadata", "spec.template")
    drop_unknown(tmeta, KEYS["spec.template.metadata"], "spec.template.metadata", report)
    path = "spec.template.spec"
    tspec = shape.mapping(template, "spec", "spec.template")
    drop_unknown(tspec, TEMPLATE_SPEC_FIELDS, path, report)
    ref = shape.mapping(tspec, "nodeClassRef", path)
    if not ref:
        raise FieldError(shape.join(path, "nodeClassRef"), "is required")
    class_name = _ref_name(ref, shape.join(path, "nodeClassRef"), "EC2NodeClass", report)
    labels = convert_labels(tmeta, "labels", "spec.template.metadata", report)
    requirements = convert_requirements(tspec, "requirements", path, report)
    template_spec = _template_spec(class_name, requirements, tspec, path, report)
    disruption = dict(shape.mapping(spec, "disruption", "spec"))
    expire = disruption.pop("expireAfter", None) if version == "v1beta1" else tspec.get("expireAfter")
    if expire is not None:
        template_spec["expireAfter"] = expire
    if tspec.get("terminationGracePeriod") is not None:
        template_spec["terminationGracePeriod"] = tspec["terminationGracePeriod"]
    pool = _pool(
        obj,
        _template(labels, shape.string_map(tmeta, "annotations", "spec.template.metadata"), template_spec),
        _disruption(disruption, report),
        _limits(spec, "limits", "spec", report),
        spec.get("weight"),
    )
    kubelet = split_kubelet(tspec, "kubelet", path, report)
    return ConvertedPool(pool, class_name, kubelet, shape.join(path, "kubelet"))


def _ref_name(ref: Mapping[str, Any], path: str, kind: str, report: Report) -> str:
    drop_unknown(ref, {"name", "kind", "apiVersion", "group"}, path, report)
    ref_kind = shape.string(ref, "kind", path)
    if ref_kind not in (None, kind):
        raise FieldError(
            shape.join(path, "kind"), f"{ref_kind!r} is not {kind}, so jitnode has no equivalent"
        )
    name = shape.string(ref, "name", path)
    if not name:
        raise FieldError(shape.join(path, "name"), "is required")
    return name


def _seconds(seconds: int) -> str:
    return format_duration(timedelta(seconds=seconds))


def _template_spec(
    class_name: str, requirements: list[dict[str, Any]], raw: Mapping[str, Any], path: str, report: Report
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "nodeClassRef": {"group": API_GROUP, "kind": NODECLASS_KIND, "name": class_name},
        "requirements": requirements,
    }
    for key in ("taints", "startupTaints"):
        taints = convert_taints(raw, key, path, report)
        if taints:
            out[key] = taints
    return out


def _template(labels: dict[str, str], annotations: dict[str, str], spec: dict[str, Any]) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    if labels:
        metadata["labels"] = labels
    if annotations:
        metadata["annotations"] = annotations
    return {"metadata": metadata, "spec": spec} if metadata else {"spec": spec}


def _pool(
    obj: Mapping[str, Any],
    template: dict[str, Any],
    disruption: dict[str, Any],
    limits: dict[str, Any],
    weight: object,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"template": template, "disruption": disruption}
    if limits:
        spec["limits"] = limits
    if weight is not None:
        spec["weight"] = weight
    return {
        "apiVersion": GROUP_VERSION,
        "kind": NODEPOOL_KIND,
        "metadata": convert_metadata(obj),
        "spec": spec,
    }


# (Karpenter's key, jitnode's key, operator, values, keys whose presence also suppresses the default)
WEBHOOK_DEFAULTS: Final = (
    ("karpenter.sh/capacity-type", well_known.CAPACITY_TYPE, "In", ("on-demand",), frozenset[str]()),
    ("kubernetes.io/arch", well_known.ARCH, "In", ("amd64",), frozenset[str]()),
    (
        "karpenter.k8s.aws/instance-category",
        well_known.INSTANCE_CATEGORY,
        "In",
        ("c", "m", "r"),
        INSTANCE_TYPE_KEYS,
    ),
    (
        "karpenter.k8s.aws/instance-generation",
        well_known.INSTANCE_GENERATION,
        "Gt",
        ("2",),
        INSTANCE_TYPE_KEYS,
    ),
)


def _webhook_defaults(
    requirements: list[dict[str, Any]], labels: Mapping[str, str], report: Report
) -> list[dict[str, Any]]:
    """The requirements Karpenter's v1alpha5 webhook wrote into a Provisioner that lacked them."""
    constrained = set(labels) | {r["key"] for r in requirements}
    defaults: list[dict[str, Any]] = []
    for karpenter_key, key, operator, values, suppressed_by in WEBHOOK_DEFAULTS:
        if constrained & (suppressed_by | {key}):
            continue
        defaults.append({"key": key, "operator": operator, "values": list(values)})
        report.note(
            "spec.requirements",
            f"added {key} {operator} [{', '.join(values)}]: Karpenter's webhook defaulted {karpenter_key} so",
        )
    return defaults


def _provisioner_disruption(spec: Mapping[str, Any], report: Report) -> dict[str, Any]:
    empty = shape.whole_seconds(spec, "ttlSecondsAfterEmpty", "spec")
    consolidation = shape.mapping(spec, "consolidation", "spec")
    drop_unknown(consolidation, {"enabled"}, "spec.consolidation", report)
    enabled = consolidation.get("enabled")
    if enabled not in (None, True, False):
        raise FieldError("spec.consolidation.enabled", f"expected true or false, got {enabled!r}")
    if enabled and empty is not None:
        raise FieldError("spec.consolidation.enabled", "cannot be combined with ttlSecondsAfterEmpty")
    if enabled:
        return {"consolidationPolicy": WHEN_EMPTY_OR_UNDERUTILIZED, "consolidateAfter": "0s"}
    return {
        "consolidationPolicy": WHEN_EMPTY,
        "consolidateAfter": _seconds(empty) if empty is not None else NEVER,
    }


def _disruption(raw: Mapping[str, Any], report: Report) -> dict[str, Any]:
    path = "spec.disruption"
    drop_unknown(raw, KEYS[path], path, report)
    out: dict[str, Any] = {}
    policy = shape.string(raw, "consolidationPolicy", path)
    if policy is not None:
        if policy not in POLICIES:
            raise FieldError(
                shape.join(path, "consolidationPolicy"), f"{policy!r} is not a consolidation policy"
            )
        out["consolidationPolicy"] = POLICIES[policy]
    if raw.get("consolidateAfter") is not None:
        out["consolidateAfter"] = raw["consolidateAfter"]
    budgets: list[dict[str, Any]] = []
    for item_path, item in shape.objects(raw, "budgets", path):
        drop_unknown(item, KEYS["spec.disruption.budgets[]"], item_path, report)
        budgets.append({k: item[k] for k in ("nodes", "schedule", "duration", "reasons") if k in item})
    if budgets:
        out["budgets"] = budgets
    return out


def _limits(
    raw: Mapping[str, Any], key: str, path: str, report: Report, known: frozenset[str] | None = None
) -> dict[str, Any]:
    """Resource limits as quantity strings (YAML reads ``cpu: 1000`` as a number)."""
    if known is not None:
        drop_unknown(raw, known, path, report)
    return {
        str(name): str(amount) if isinstance(amount, int | float) and not isinstance(amount, bool) else amount
        for name, amount in shape.mapping(raw, key, path).items()
    }
