"""Karpenter's AWSNodeTemplate (v1alpha1, or a Provisioner's inline ``provider``) and
EC2NodeClass (v1beta1, v1) as jitnode's ``EC2NodeClass``.

v1alpha1 selects subnets, security groups and AMIs with flat maps (tag key to value, plus
special keys such as ``aws-ids`` holding comma lists); jitnode, like Karpenter v1beta1 and later,
uses lists of terms. Where Karpenter had implicit defaults (the AMI family, the global instance
profile) the converter writes an explicit value and says so with a note.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from shared.api.group import GROUP_VERSION, NODECLASS_KIND
from shared.api.nodeclass import AMI_FAMILIES, KEYS, RESERVED_TAG_KEYS, RESERVED_TAG_PREFIXES
from shared.convert import shape
from shared.convert.kubelet import split_kubelet
from shared.convert.meta import convert_metadata
from shared.convert.options import ConvertOptions
from shared.convert.report import Report
from shared.convert.scheduling import drop_unknown
from shared.errors import FieldError

ALIASES: Final[Mapping[str, str]] = {
    "AL2": "al2@latest",
    "AL2023": "al2023@latest",
    "Bottlerocket": "bottlerocket@latest",
    "Windows2019": "windows2019@latest",
    "Windows2022": "windows2022@latest",
}
DEFAULT_ALIAS: Final = "al2023@latest"
ID_KEYS: Final = ("aws-ids", "aws::ids")
# Tags that name the cluster in the selectors of the getting-started guides (Karpenter's, eksctl's).
DISCOVERY_TAGS: Final = ("karpenter.sh/discovery", "alpha.eksctl.io/cluster-name")
GETTING_STARTED_PROFILE: Final = "KarpenterNodeInstanceProfile"

TEMPLATE_FIELDS: Final = frozenset(
    {
        "subnetSelector",
        "securityGroupSelector",
        "amiFamily",
        "amiSelector",
        "instanceProfile",
        "userData",
        "tags",
        "metadataOptions",
        "blockDeviceMappings",
        "detailedMonitoring",
    }
)
NODECLASS_FIELDS: Final = frozenset(
    {
        "amiFamily",
        "amiSelectorTerms",
        "subnetSelectorTerms",
        "securityGroupSelectorTerms",
        "role",
        "instanceProfile",
        "userData",
        "tags",
        "metadataOptions",
        "blockDeviceMappings",
        "detailedMonitoring",
        "associatePublicIPAddress",
        "kubelet",
    }
)
NO_EQUIVALENT: Final[Mapping[str, str]] = {
    "launchTemplate": (
        "jitnode builds its own launch templates; move the template's AMI, user data, security groups "
        "and block devices into this EC2NodeClass"
    ),
    "context": "jitnode has no equivalent of the EC2 Fleet context",
    "instanceStorePolicy": "jitnode has no instance store policy (RAID0 of local NVMe disks)",
    "capacityReservationSelectorTerms": "jitnode does not launch into capacity reservations",
}


def from_aws_node_template(
    spec: Mapping[str, Any], path: str, metadata: dict[str, Any], report: Report, options: ConvertOptions
) -> dict[str, Any]:
    """An EC2NodeClass from an AWSNodeTemplate's spec (``path`` is ``spec`` or ``spec.provider``)."""
    for key in spec:
        if key in NO_EQUIVALENT:
            report.drop(shape.join(path, key), NO_EQUIVALENT[key])
    drop_unknown(spec, TEMPLATE_FIELDS | NO_EQUIVALENT.keys() | {"apiVersion"}, path, report)
    out: dict[str, Any] = {}
    family = shape.string(spec, "amiFamily", path)
    selector = shape.string_map(spec, "amiSelector", path)
    if selector:
        out["amiFamily"] = _family_for_selected_amis(family, path, report)
        out["amiSelectorTerms"] = _ami_terms_from_map(selector, shape.join(path, "amiSelector"), report)
    else:
        out["amiSelectorTerms"] = [{"alias": _alias(family, path, report)}]
    subnets = _required_map(spec, "subnetSelector", path)
    out["subnetSelectorTerms"] = _terms_from_map(subnets, shape.join(path, "subnetSelector"), report)
    groups = _required_map(spec, "securityGroupSelector", path)
    out["securityGroupSelectorTerms"] = _terms_from_map(
        groups, shape.join(path, "securityGroupSelector"), report
    )
    profile = shape.string(spec, "instanceProfile", path)
    out.update({"instanceProfile": profile} if profile else _identity(subnets, path, report, options))
    _copy_common(spec, path, out, report)
    if "metadataOptions" not in spec:
        report.note(
            shape.join(path, "metadataOptions"),
            "not set: Karpenter v1alpha1 allowed 2 IMDS hops, jitnode allows 1 (pods cannot reach the "
            "instance role); set httpPutResponseHopLimit: 2 if pods need it",
        )
    return _object(metadata, out)


def from_ec2nodeclass(obj: Mapping[str, Any], report: Report, options: ConvertOptions) -> dict[str, Any]:
    """An EC2NodeClass from Karpenter's ``karpenter.k8s.aws/v1beta1`` or ``v1`` EC2NodeClass."""
    path = "spec"
    spec = shape.mapping(obj, "spec", "")
    for key in spec:
        if key in NO_EQUIVALENT:
            report.drop(shape.join(path, key), NO_EQUIVALENT[key])
    drop_unknown(spec, NODECLASS_FIELDS | NO_EQUIVALENT.keys(), path, report)
    out: dict[str, Any] = {}
    family = shape.string(spec, "amiFamily", path)
    terms = _copy_terms(spec, "amiSelectorTerms", KEYS["spec.amiSelectorTerms[]"], report)
    if terms:
        has_alias = any("alias" in t for t in terms)
        if family is not None or not has_alias:
            out["amiFamily"] = _family_for_selected_amis(family, path, report)
        out["amiSelectorTerms"] = terms
    else:
        out["amiSelectorTerms"] = [{"alias": _alias(family, path, report)}]
    out["subnetSelectorTerms"] = _copy_terms(
        spec, "subnetSelectorTerms", KEYS["spec.subnetSelectorTerms[]"], report
    )
    out["securityGroupSelectorTerms"] = _copy_terms(
        spec, "securityGroupSelectorTerms", KEYS["spec.securityGroupSelectorTerms[]"], report
    )
    role, profile = shape.string(spec, "role", path), shape.string(spec, "instanceProfile", path)
    if role or profile:
        out.update({"role": role} if role else {"instanceProfile": profile})
    else:
        tags = [t.get("tags") or {} for t in out["subnetSelectorTerms"]]
        out.update(_identity(next((t for t in tags if t), {}), path, report, options))
    _copy_common(spec, path, out, report)
    associate = spec.get("associatePublicIPAddress")
    if associate is not None:
        out["associatePublicIPAddress"] = associate
    kubelet = split_kubelet(spec, "kubelet", path, report)
    if kubelet:
        out["kubelet"] = kubelet
    return _object(convert_metadata(obj), out)


def _object(metadata: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": GROUP_VERSION, "kind": NODECLASS_KIND, "metadata": metadata, "spec": spec}


def _alias(family: str | None, path: str, report: Report) -> str:
    """The AMI alias standing for a family's EKS-optimized AMIs."""
    where = shape.join(path, "amiFamily")
    if family is None:
        report.note(
            where,
            f"not set: Karpenter defaulted to AL2; jitnode uses {DEFAULT_ALIAS} "
            "(EKS publishes no AL2 AMIs for Kubernetes 1.33 and later)",
        )
        return DEFAULT_ALIAS
    if family == "Custom":
        raise FieldError(where, "Custom needs AMI selectors, and this node class has none")
    if family not in ALIASES:
        report.drop(where, f"jitnode has no {family!r} AMI family; using {DEFAULT_ALIAS}")
        return DEFAULT_ALIAS
    return ALIASES[family]


def _family_for_selected_amis(family: str | None, path: str, report: Report) -> str:
    """The family that decides how selected (non-alias) AMIs are bootstrapped."""
    where = shape.join(path, "amiFamily")
    if family is None:
        report.note(where, "not set: Karpenter bootstrapped selected AMIs as AL2; so does this node class")
        return "AL2"
    if family not in AMI_FAMILIES:
        report.drop(where, f"jitnode has no {family!r} AMI family; the selected AMIs are bootstrapped as AL2")
        return "AL2"
    return family


def _required_map(spec: Mapping[str, Any], key: str, path: str) -> dict[str, str]:
    selector = shape.string_map(spec, key, path)
    if not selector:
        raise FieldError(shape.join(path, key), "is required")
    return selector


def _split_ids(selector: dict[str, str]) -> list[str]:
    ids: list[str] = []
    for key in ID_KEYS:
        if key in selector:
            ids.extend(part.strip() for part in selector.pop(key).split(",") if part.strip())
    return ids


def _terms_from_map(selector: Mapping[str, str], path: str, report: Report) -> list[dict[str, Any]]:
    """``{tag: value}`` -> one tags term; ``aws-ids: a,b`` -> one id term each."""
    rest = dict(selector)
    ids = _split_ids(rest)
    if not ids:
        return [{"tags": rest}]
    for key in rest:
        report.drop(
            shape.join(path, key),
            "jitnode's id terms select by id alone; this tag filter beside aws-ids was dropped",
        )
    return [{"id": i} for i in ids]


def _ami_terms_from_map(selector: Mapping[str, str], path: str, report: Report) -> list[dict[str, Any]]:
    """v1alpha1 ``amiSelector``: ids, or name and owners and tags ANDed (one term per owner)."""
    rest = dict(selector)
    ids = _split_ids(rest)
    name = rest.pop("aws::name", None)
    owners = [o.strip() for o in rest.pop("aws::owners", "").split(",") if o.strip()]
    if ids:
        for key in (["aws::name"] if name else []) + (["aws::owners"] if owners else []) + list(rest):
            report.drop(
                shape.join(path, key),
                "jitnode's id terms select by id alone; this filter beside aws-ids was dropped",
            )
        return [{"id": i} for i in ids]
    base: dict[str, Any] = {}
    if name:
        base["name"] = name
    if rest:
        base["tags"] = rest
    return [{**base, "owner": owner} for owner in owners] if owners else [base]


def _copy_terms(
    spec: Mapping[str, Any], key: str, allowed: frozenset[str], report: Report
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for item_path, item in shape.objects(spec, key, "spec"):
        drop_unknown(item, allowed, item_path, report)
        term = {k: item[k] for k in sorted(allowed) if item.get(k) is not None}
        if term:
            out.append(term)
    return out


def _identity(
    selector: Mapping[str, Any], path: str, report: Report, options: ConvertOptions
) -> dict[str, str]:
    """The role or instance profile for a node class that names neither."""
    if options.role is not None:
        return {"role": options.role}
    if options.instance_profile is not None:
        return {"instanceProfile": options.instance_profile}
    where = shape.join(path, "instanceProfile")
    cluster = next((str(selector[t]) for t in DISCOVERY_TAGS if selector.get(t)), None)
    if cluster is not None:
        profile = f"{GETTING_STARTED_PROFILE}-{cluster}"
        report.note(
            where,
            f"not set: Karpenter used its global default instance profile; assumed the getting-started "
            f"guide's {profile!r} (pass --role or --instance-profile to choose)",
        )
        return {"instanceProfile": profile}
    report.drop(
        where,
        f"not set, and Karpenter's global default instance profile is not in the manifests: wrote the "
        f"placeholder {GETTING_STARTED_PROFILE!r} (pass --role or --instance-profile)",
    )
    return {"instanceProfile": GETTING_STARTED_PROFILE}


def _copy_common(spec: Mapping[str, Any], path: str, out: dict[str, Any], report: Report) -> None:
    """Fields spelled the same in every version: tags, user data, disks, IMDS, monitoring."""
    tags: dict[str, str] = {}
    for key, value in shape.string_map(spec, "tags", path).items():
        if key in RESERVED_TAG_KEYS or key.startswith(RESERVED_TAG_PREFIXES):
            report.drop(shape.join(shape.join(path, "tags"), key), "jitnode sets this tag itself")
        else:
            tags[key] = value
    if tags:
        out["tags"] = tags
    user_data = shape.string(spec, "userData", path)
    if user_data is not None:
        out["userData"] = user_data
    devices = _block_devices(spec, path, report)
    if devices:
        out["blockDeviceMappings"] = devices
    options = shape.mapping(spec, "metadataOptions", path)
    if options:
        drop_unknown(options, KEYS["spec.metadataOptions"], shape.join(path, "metadataOptions"), report)
        out["metadataOptions"] = {k: v for k, v in options.items() if k in KEYS["spec.metadataOptions"]}
    if spec.get("detailedMonitoring") is not None:
        out["detailedMonitoring"] = spec["detailedMonitoring"]


def _block_devices(spec: Mapping[str, Any], path: str, report: Report) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    allowed_ebs = KEYS["spec.blockDeviceMappings[].ebs"]
    for item_path, item in shape.objects(spec, "blockDeviceMappings", path):
        drop_unknown(item, KEYS["spec.blockDeviceMappings[]"], item_path, report)
        device: dict[str, Any] = {k: item[k] for k in ("deviceName", "rootVolume") if item.get(k) is not None}
        ebs = shape.mapping(item, "ebs", item_path)
        if ebs:
            drop_unknown(ebs, allowed_ebs, shape.join(item_path, "ebs"), report)
            device["ebs"] = {k: v for k, v in ebs.items() if k in allowed_ebs}
        out.append(device)
    return out
