"""``EC2NodeClass``: how to launch an EC2 instance (AMI, subnets, security groups, IAM, disks).

Shaped like Karpenter's ``karpenter.k8s.aws/v1`` EC2NodeClass so its users feel at home. A
NodePool points at one through a :class:`NodeClassRef`. Validation mirrors the CRD in
``manifests/crds/jitnode.io_ec2nodeclasses.yaml``; rules a structural schema cannot express
(``role`` xor ``instanceProfile``, exclusive selector fields, reserved tag keys) are enforced here
and repeated as CEL ``x-kubernetes-validations`` in the CRD.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from shared import labels
from shared.api._fields import ROOT_KEYS, Checker, join
from shared.api.group import API_GROUP, GROUP_VERSION, NODECLASS_KIND
from shared.api.meta import CONDITION_KEYS, CONDITION_STATUSES, Condition, ObjectMeta, parse_conditions
from shared.api.scheduling import OPERATORS, REQUIREMENT_KEYS, parse_requirements
from shared.quantity import QuantityError, format_units, to_units
from shared.requirements import Requirement
from shared.resources import EMPTY, Resources

AMI_FAMILIES: Final = ("AL2", "AL2023", "Bottlerocket", "Custom", "Windows2019", "Windows2022")
VOLUME_TYPES: Final = ("standard", "io1", "io2", "gp2", "sc1", "st1", "gp3")
ENABLED_DISABLED: Final = ("enabled", "disabled")
HTTP_TOKENS: Final = ("required", "optional")
# An alias names a family and a version: "al2023@latest", "al2@v20240807", "bottlerocket@v1.20.3".
AMI_ALIAS_PATTERN: Final = (
    r"^((al2|al2023)@(latest|v[0-9]{8})|bottlerocket@(latest|v?[0-9]+\.[0-9]+\.[0-9]+)"
    r"|(windows2019|windows2022)@latest)$"
)
AMI_ID_PATTERN: Final = r"^ami-[0-9a-z]+$"
SUBNET_ID_PATTERN: Final = r"^subnet-[0-9a-z]+$"
SECURITY_GROUP_ID_PATTERN: Final = r"^sg-[0-9a-z]+$"
VOLUME_SIZE_PATTERN: Final = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$"
MAX_SELECTOR_TERMS: Final = 30
MAX_BLOCK_DEVICES: Final = 50
# EBS volume sizes EC2 accepts across volume types.
MIN_VOLUME_BYTES: Final = 2**30
MAX_VOLUME_BYTES: Final = 64 * 2**40
KUBELET_RESERVED_RESOURCES: Final = frozenset({"cpu", "memory", "ephemeral-storage", "pid"})
EVICTION_SIGNALS: Final = frozenset(
    {
        "memory.available",
        "nodefs.available",
        "nodefs.inodesFree",
        "imagefs.available",
        "imagefs.inodesFree",
        "pid.available",
    }
)
EVICTION_THRESHOLD_PATTERN: Final = (
    r"^([0-9]{1,2}(\.[0-9]{1,2})?%|100(\.0{1,2})?%|[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?)$"
)
# Tag keys jitnode sets itself, or that would make EC2/EKS treat the instance as something else.
RESERVED_TAG_PREFIXES: Final = ("kubernetes.io/cluster/",)
RESERVED_TAG_KEYS: Final = frozenset(
    {
        labels.TAG_CLUSTER,
        labels.TAG_NODEPOOL,
        labels.TAG_NODECLAIM,
        labels.TAG_NODECLASS,
        labels.TAG_MANAGED_BY,
        "eks:eks-cluster-name",
    }
)

KEYS: Final[Mapping[str, frozenset[str]]] = {
    "": ROOT_KEYS,
    "spec": frozenset(
        {
            "amiFamily",
            "amiSelectorTerms",
            "subnetSelectorTerms",
            "securityGroupSelectorTerms",
            "role",
            "instanceProfile",
            "tags",
            "userData",
            "blockDeviceMappings",
            "metadataOptions",
            "detailedMonitoring",
            "associatePublicIPAddress",
            "kubelet",
        }
    ),
    "spec.amiSelectorTerms[]": frozenset({"alias", "id", "tags", "name", "owner"}),
    "spec.subnetSelectorTerms[]": frozenset({"tags", "id"}),
    "spec.securityGroupSelectorTerms[]": frozenset({"tags", "id", "name"}),
    "spec.blockDeviceMappings[]": frozenset({"deviceName", "ebs", "rootVolume"}),
    "spec.blockDeviceMappings[].ebs": frozenset(
        {
            "volumeSize",
            "volumeType",
            "iops",
            "throughput",
            "encrypted",
            "deleteOnTermination",
            "kmsKeyID",
            "snapshotID",
        }
    ),
    "spec.metadataOptions": frozenset(
        {"httpEndpoint", "httpProtocolIPv6", "httpPutResponseHopLimit", "httpTokens"}
    ),
    "spec.kubelet": frozenset({"maxPods", "kubeReserved", "systemReserved", "evictionHard"}),
    "status": frozenset({"subnets", "securityGroups", "amis", "instanceProfile", "conditions"}),
    "status.subnets[]": frozenset({"id", "zone", "zoneID"}),
    "status.securityGroups[]": frozenset({"id", "name"}),
    "status.amis[]": frozenset({"id", "name", "requirements", "deprecated"}),
    "status.amis[].requirements[]": REQUIREMENT_KEYS,
    "status.conditions[]": CONDITION_KEYS,
}
ENUMS: Final[Mapping[str, tuple[str, ...]]] = {
    "spec.amiFamily": AMI_FAMILIES,
    "spec.blockDeviceMappings[].ebs.volumeType": VOLUME_TYPES,
    "spec.metadataOptions.httpEndpoint": ENABLED_DISABLED,
    "spec.metadataOptions.httpProtocolIPv6": ENABLED_DISABLED,
    "spec.metadataOptions.httpTokens": HTTP_TOKENS,
    "status.amis[].requirements[].operator": OPERATORS,
    "status.conditions[].status": CONDITION_STATUSES,
}
_METADATA_DEFAULTS: Final = {
    "httpEndpoint": "enabled",
    "httpProtocolIPv6": "disabled",
    "httpPutResponseHopLimit": 1,
    "httpTokens": "required",
}
DEFAULTS: Final[Mapping[str, object]] = {
    "spec.metadataOptions": dict(_METADATA_DEFAULTS),
    **{f"spec.metadataOptions.{k}": v for k, v in _METADATA_DEFAULTS.items()},
}


@dataclass(frozen=True)
class NodeClassRef:
    """A NodePool's or NodeClaim's pointer to its EC2NodeClass."""

    name: str
    group: str = API_GROUP
    kind: str = NODECLASS_KIND

    @classmethod
    def parse(cls, raw: Mapping[str, Any], check: Checker, path: str) -> NodeClassRef:
        check.keys(raw, path, NODECLASS_REF_KEYS)
        return cls(
            group=check.string(raw, "group", path, required=True, enum=(API_GROUP,)) or API_GROUP,
            kind=check.string(raw, "kind", path, required=True, enum=(NODECLASS_KIND,)) or NODECLASS_KIND,
            name=check.string(raw, "name", path, required=True, min_length=1) or "",
        )

    def to_api(self) -> dict[str, str]:
        return {"group": self.group, "kind": self.kind, "name": self.name}


NODECLASS_REF_KEYS: Final = frozenset({"group", "kind", "name"})
NODECLASS_REF_ENUMS: Final[Mapping[str, tuple[str, ...]]] = {
    "group": (API_GROUP,),
    "kind": (NODECLASS_KIND,),
}


@dataclass(frozen=True)
class SelectorTerm:
    """One way to find AMIs, subnets or security groups; terms are ORed, fields within ANDed."""

    id: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    name: str | None = None
    owner: str | None = None
    alias: str | None = None

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in (
            ("alias", self.alias),
            ("id", self.id),
            ("name", self.name),
            ("owner", self.owner),
        ):
            if value is not None:
                out[key] = value
        if self.tags:
            out["tags"] = dict(self.tags)
        return out

    @property
    def alias_family(self) -> str | None:
        """``"al2023"`` for ``al2023@latest``."""
        return self.alias.split("@", 1)[0] if self.alias else None

    @property
    def alias_version(self) -> str | None:
        return self.alias.split("@", 1)[1] if self.alias else None


@dataclass(frozen=True)
class EBS:
    """An EBS volume; ``volume_size`` in bytes."""

    volume_size: int | None = None
    volume_type: str | None = None
    iops: int | None = None
    throughput: int | None = None
    encrypted: bool | None = None
    delete_on_termination: bool | None = None
    kms_key_id: str | None = None
    snapshot_id: str | None = None

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.volume_size is not None:
            out["volumeSize"] = format_units(self.volume_size)
        pairs: tuple[tuple[str, object], ...] = (
            ("volumeType", self.volume_type),
            ("iops", self.iops),
            ("throughput", self.throughput),
            ("encrypted", self.encrypted),
            ("deleteOnTermination", self.delete_on_termination),
            ("kmsKeyID", self.kms_key_id),
            ("snapshotID", self.snapshot_id),
        )
        out.update({k: v for k, v in pairs if v is not None})
        return out


@dataclass(frozen=True)
class BlockDeviceMapping:
    device_name: str | None = None
    ebs: EBS | None = None
    root_volume: bool = False

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.device_name is not None:
            out["deviceName"] = self.device_name
        if self.ebs is not None:
            out["ebs"] = self.ebs.to_api()
        if self.root_volume:
            out["rootVolume"] = True
        return out


@dataclass(frozen=True)
class MetadataOptions:
    """Instance metadata service settings; IMDSv2 only and one hop by default, as Karpenter does."""

    http_endpoint: str = "enabled"
    http_protocol_ipv6: str = "disabled"
    http_put_response_hop_limit: int = 1
    http_tokens: str = "required"

    def to_api(self) -> dict[str, Any]:
        return {
            "httpEndpoint": self.http_endpoint,
            "httpProtocolIPv6": self.http_protocol_ipv6,
            "httpPutResponseHopLimit": self.http_put_response_hop_limit,
            "httpTokens": self.http_tokens,
        }


@dataclass(frozen=True)
class KubeletConfiguration:
    """The kubelet settings that change what fits on a node (so the planner must know them)."""

    max_pods: int | None = None
    kube_reserved: Resources = EMPTY
    system_reserved: Resources = EMPTY
    eviction_hard: Mapping[str, str] = field(default_factory=dict)

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.max_pods is not None:
            out["maxPods"] = self.max_pods
        if self.kube_reserved:
            out["kubeReserved"] = self.kube_reserved.to_api()
        if self.system_reserved:
            out["systemReserved"] = self.system_reserved.to_api()
        if self.eviction_hard:
            out["evictionHard"] = dict(self.eviction_hard)
        return out


@dataclass(frozen=True)
class SubnetStatus:
    id: str
    zone: str
    zone_id: str = ""

    def to_api(self) -> dict[str, str]:
        out = {"id": self.id, "zone": self.zone}
        if self.zone_id:
            out["zoneID"] = self.zone_id
        return out


@dataclass(frozen=True)
class SecurityGroupStatus:
    id: str
    name: str = ""

    def to_api(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name} if self.name else {"id": self.id}


@dataclass(frozen=True)
class AMIStatus:
    """A resolved AMI and the node requirements it serves (e.g. ``kubernetes.io/arch In [arm64]``)."""

    id: str
    name: str = ""
    requirements: tuple[Requirement, ...] = ()
    deprecated: bool = False

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id}
        if self.name:
            out["name"] = self.name
        out["requirements"] = [r.to_api() for r in self.requirements]
        if self.deprecated:
            out["deprecated"] = True
        return out


@dataclass(frozen=True)
class EC2NodeClassStatus:
    subnets: tuple[SubnetStatus, ...] = ()
    security_groups: tuple[SecurityGroupStatus, ...] = ()
    amis: tuple[AMIStatus, ...] = ()
    instance_profile: str | None = None
    conditions: tuple[Condition, ...] = ()

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.subnets:
            out["subnets"] = [s.to_api() for s in self.subnets]
        if self.security_groups:
            out["securityGroups"] = [s.to_api() for s in self.security_groups]
        if self.amis:
            out["amis"] = [a.to_api() for a in self.amis]
        if self.instance_profile is not None:
            out["instanceProfile"] = self.instance_profile
        if self.conditions:
            out["conditions"] = [c.to_api() for c in self.conditions]
        return out


@dataclass(frozen=True)
class EC2NodeClass:
    """A parsed, validated EC2NodeClass (see the module docstring)."""

    metadata: ObjectMeta
    ami_selector_terms: tuple[SelectorTerm, ...]
    subnet_selector_terms: tuple[SelectorTerm, ...]
    security_group_selector_terms: tuple[SelectorTerm, ...]
    ami_family: str | None = None
    role: str | None = None
    instance_profile: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    user_data: str | None = None
    block_device_mappings: tuple[BlockDeviceMapping, ...] = ()
    metadata_options: MetadataOptions = MetadataOptions()
    detailed_monitoring: bool | None = None
    associate_public_ip_address: bool | None = None
    kubelet: KubeletConfiguration | None = None
    status: EC2NodeClassStatus = EC2NodeClassStatus()

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def effective_ami_family(self) -> str:
        """The AMI family: explicit, or derived from an alias (``al2023@latest`` -> ``AL2023``)."""
        if self.ami_family:
            return self.ami_family
        for term in self.ami_selector_terms:
            if term.alias_family:
                return next(f for f in AMI_FAMILIES if f.lower() == term.alias_family)
        return "Custom"

    def root_volume(self) -> BlockDeviceMapping | None:
        return next((b for b in self.block_device_mappings if b.root_volume), None)

    def condition(self, type_: str) -> Condition | None:
        return next((c for c in self.status.conditions if c.type == type_), None)

    @classmethod
    def from_api(cls, obj: Mapping[str, Any]) -> EC2NodeClass:
        """Parse and validate the object; raises ``ValidationError`` listing every problem."""
        check = Checker()
        check.keys(obj, "", KEYS[""])
        meta = ObjectMeta.parse(check.mapping(obj, "metadata", ""), check)
        spec = check.mapping(obj, "spec", "")
        check.keys(spec, "spec", KEYS["spec"])
        ami_family = check.string(spec, "amiFamily", "spec", enum=AMI_FAMILIES)
        ami_terms = _ami_terms(spec, check)
        raw_terms = spec.get("amiSelectorTerms")
        has_alias = isinstance(raw_terms, list) and any(
            isinstance(t, Mapping) and t.get("alias") is not None for t in raw_terms
        )
        if ami_family is None and not has_alias and ami_terms:
            check.error("spec.amiFamily", "required when amiSelectorTerms has no alias")
        role = check.string(spec, "role", "spec", min_length=1)
        instance_profile = check.string(spec, "instanceProfile", "spec", min_length=1)
        if (spec.get("role") is None) == (spec.get("instanceProfile") is None):
            check.error("spec", "exactly one of role and instanceProfile must be set")
        node_class = cls(
            metadata=meta,
            ami_family=ami_family,
            ami_selector_terms=ami_terms,
            subnet_selector_terms=_selector_terms(
                spec, check, "subnetSelectorTerms", KEYS["spec.subnetSelectorTerms[]"], SUBNET_ID_PATTERN
            ),
            security_group_selector_terms=_selector_terms(
                spec,
                check,
                "securityGroupSelectorTerms",
                KEYS["spec.securityGroupSelectorTerms[]"],
                SECURITY_GROUP_ID_PATTERN,
            ),
            role=role,
            instance_profile=instance_profile,
            tags=check.string_map(spec, "tags", "spec", check_key=_tag_key_problem),
            user_data=check.string(spec, "userData", "spec"),
            block_device_mappings=_block_devices(spec, check),
            metadata_options=_metadata_options(spec, check),
            detailed_monitoring=check.boolean(spec, "detailedMonitoring", "spec"),
            associate_public_ip_address=check.boolean(spec, "associatePublicIPAddress", "spec"),
            kubelet=_kubelet(spec, check) if spec.get("kubelet") is not None else None,
            status=_status(check.mapping(obj, "status", ""), check),
        )
        check.done(NODECLASS_KIND)
        return node_class

    def to_api(self) -> dict[str, Any]:
        spec: dict[str, Any] = {}
        if self.ami_family is not None:
            spec["amiFamily"] = self.ami_family
        spec["amiSelectorTerms"] = [t.to_api() for t in self.ami_selector_terms]
        spec["subnetSelectorTerms"] = [t.to_api() for t in self.subnet_selector_terms]
        spec["securityGroupSelectorTerms"] = [t.to_api() for t in self.security_group_selector_terms]
        if self.role is not None:
            spec["role"] = self.role
        if self.instance_profile is not None:
            spec["instanceProfile"] = self.instance_profile
        if self.tags:
            spec["tags"] = dict(self.tags)
        if self.user_data is not None:
            spec["userData"] = self.user_data
        if self.block_device_mappings:
            spec["blockDeviceMappings"] = [b.to_api() for b in self.block_device_mappings]
        spec["metadataOptions"] = self.metadata_options.to_api()
        if self.detailed_monitoring is not None:
            spec["detailedMonitoring"] = self.detailed_monitoring
        if self.associate_public_ip_address is not None:
            spec["associatePublicIPAddress"] = self.associate_public_ip_address
        if self.kubelet is not None:
            spec["kubelet"] = self.kubelet.to_api()
        out: dict[str, Any] = {
            "apiVersion": GROUP_VERSION,
            "kind": NODECLASS_KIND,
            "metadata": self.metadata.to_api(),
            "spec": spec,
        }
        status = self.status.to_api()
        if status:
            out["status"] = status
        return out


def _tag_key_problem(key: str) -> str | None:
    if not key:
        return "empty tag keys are not supported"
    if key in RESERVED_TAG_KEYS or key.startswith(RESERVED_TAG_PREFIXES):
        return f"tag key {key!r} is reserved for jitnode"
    return None


def _term_tags(raw: Mapping[str, Any], check: Checker, path: str) -> dict[str, str]:
    tags = check.string_map(
        raw, "tags", path, check_key=lambda k: None if k else "empty tag keys are not supported"
    )
    for key, value in tags.items():
        if not value:
            check.error(join(join(path, "tags"), key), "empty tag values are not supported")
    return tags


def _terms_list(spec: Mapping[str, Any], check: Checker, key: str) -> list[tuple[str, Mapping[str, Any]]]:
    if not spec.get(key):
        check.error(join("spec", key), "required: at least one term")
    return check.objects(spec, key, "spec", max_items=MAX_SELECTOR_TERMS)


def _selector_terms(
    spec: Mapping[str, Any], check: Checker, key: str, allowed: frozenset[str], id_pattern: str
) -> tuple[SelectorTerm, ...]:
    id_hint = "subnet-0abc123" if id_pattern == SUBNET_ID_PATTERN else "sg-0abc123"
    terms: list[SelectorTerm] = []
    for path, raw in _terms_list(spec, check, key):
        check.keys(raw, path, allowed)
        term = SelectorTerm(
            id=check.string(raw, "id", path, pattern=id_pattern, hint=f"an id such as {id_hint}"),
            tags=_term_tags(raw, check, path),
            name=check.string(raw, "name", path, min_length=1) if "name" in allowed else None,
        )
        _check_term_shape(raw, check, path, allowed)
        terms.append(term)
    return tuple(terms)


def _check_term_shape(raw: Mapping[str, Any], check: Checker, path: str, allowed: frozenset[str]) -> None:
    present = {k for k in raw if raw.get(k) not in (None, {}, "")}
    if not present & (allowed - {"owner"}):
        check.error(path, f"expected at least one of {', '.join(sorted(allowed - {'owner'}))}")
    for exclusive in ("id", "alias"):
        if exclusive in present and len(present) > 1:
            check.error(join(path, exclusive), "cannot be combined with other fields in the same term")


def _ami_terms(spec: Mapping[str, Any], check: Checker) -> tuple[SelectorTerm, ...]:
    terms: list[SelectorTerm] = []
    allowed = KEYS["spec.amiSelectorTerms[]"]
    for path, raw in _terms_list(spec, check, "amiSelectorTerms"):
        check.keys(raw, path, allowed)
        terms.append(
            SelectorTerm(
                alias=check.string(
                    raw,
                    "alias",
                    path,
                    pattern=AMI_ALIAS_PATTERN,
                    hint="an alias such as al2023@latest or al2@v20240807",
                ),
                id=check.string(
                    raw, "id", path, pattern=AMI_ID_PATTERN, hint="an AMI id such as ami-0abc123"
                ),
                tags=_term_tags(raw, check, path),
                name=check.string(raw, "name", path, min_length=1),
                owner=check.string(raw, "owner", path, min_length=1),
            )
        )
        _check_term_shape(raw, check, path, allowed)
    if any(t.alias for t in terms) and len(terms) > 1:
        check.error("spec.amiSelectorTerms", "a term with an alias must be the only term")
    return tuple(terms)


def _block_devices(spec: Mapping[str, Any], check: Checker) -> tuple[BlockDeviceMapping, ...]:
    out: list[BlockDeviceMapping] = []
    for path, raw in check.objects(spec, "blockDeviceMappings", "spec", max_items=MAX_BLOCK_DEVICES):
        check.keys(raw, path, KEYS["spec.blockDeviceMappings[]"])
        ebs = None
        if raw.get("ebs") is not None:
            ebs_path = join(path, "ebs")
            ebs_raw = check.mapping(raw, "ebs", path)
            check.keys(ebs_raw, ebs_path, KEYS["spec.blockDeviceMappings[].ebs"])
            ebs = EBS(
                volume_size=_volume_size(ebs_raw, check, ebs_path),
                volume_type=check.string(ebs_raw, "volumeType", ebs_path, enum=VOLUME_TYPES),
                iops=check.integer(ebs_raw, "iops", ebs_path, minimum=0),
                throughput=check.integer(ebs_raw, "throughput", ebs_path, minimum=0),
                encrypted=check.boolean(ebs_raw, "encrypted", ebs_path),
                delete_on_termination=check.boolean(ebs_raw, "deleteOnTermination", ebs_path),
                kms_key_id=check.string(ebs_raw, "kmsKeyID", ebs_path, min_length=1),
                snapshot_id=check.string(ebs_raw, "snapshotID", ebs_path, min_length=1),
            )
        out.append(
            BlockDeviceMapping(
                device_name=check.string(raw, "deviceName", path, min_length=1),
                ebs=ebs,
                root_volume=bool(check.boolean(raw, "rootVolume", path)),
            )
        )
    if sum(1 for b in out if b.root_volume) > 1:
        check.error("spec.blockDeviceMappings", "at most one mapping may be the rootVolume")
    return tuple(out)


def _volume_size(raw: Mapping[str, Any], check: Checker, path: str) -> int | None:
    value = raw.get("volumeSize")
    if value is None:
        return None
    where = join(path, "volumeSize")
    if (
        not isinstance(value, str)
        or check.string(raw, "volumeSize", path, pattern=VOLUME_SIZE_PATTERN) is None
    ):
        if not isinstance(value, str):
            check.error(where, f"expected a quantity string such as 20Gi, got {value!r}")
        return None
    try:
        size = to_units(value, where)
    except QuantityError as exc:
        check.errors.append(exc)
        return None
    if not MIN_VOLUME_BYTES <= size <= MAX_VOLUME_BYTES:
        check.error(where, f"{value!r} is out of range 1Gi..64Ti")
        return None
    return size


def _metadata_options(spec: Mapping[str, Any], check: Checker) -> MetadataOptions:
    path = "spec.metadataOptions"
    raw = check.mapping(spec, "metadataOptions", "spec")
    check.keys(raw, path, KEYS[path])
    default = MetadataOptions()
    hops = check.integer(raw, "httpPutResponseHopLimit", path, minimum=1, maximum=64)
    return MetadataOptions(
        http_endpoint=check.string(raw, "httpEndpoint", path, enum=ENABLED_DISABLED) or default.http_endpoint,
        http_protocol_ipv6=check.string(raw, "httpProtocolIPv6", path, enum=ENABLED_DISABLED)
        or default.http_protocol_ipv6,
        http_put_response_hop_limit=hops if hops is not None else default.http_put_response_hop_limit,
        http_tokens=check.string(raw, "httpTokens", path, enum=HTTP_TOKENS) or default.http_tokens,
    )


def _reserved(raw: Mapping[str, Any], key: str, check: Checker) -> Resources:
    path = join("spec.kubelet", key)
    amounts = check.mapping(raw, key, "spec.kubelet")
    for name in amounts:
        if name not in KUBELET_RESERVED_RESOURCES:
            check.error(
                join(path, str(name)), f"must be one of {', '.join(sorted(KUBELET_RESERVED_RESOURCES))}"
            )
    known = {k: v for k, v in amounts.items() if k in KUBELET_RESERVED_RESOURCES}
    return check.run(lambda: Resources.parse(known, path), EMPTY)


def _kubelet(spec: Mapping[str, Any], check: Checker) -> KubeletConfiguration:
    path = "spec.kubelet"
    raw = check.mapping(spec, "kubelet", "spec")
    check.keys(raw, path, KEYS[path])
    eviction = check.string_map(
        raw,
        "evictionHard",
        path,
        check_key=lambda k: (
            None if k in EVICTION_SIGNALS else f"must be one of {', '.join(sorted(EVICTION_SIGNALS))}"
        ),
    )
    where = join(path, "evictionHard")
    for signal in list(eviction):
        if check.string(eviction, signal, where, pattern=EVICTION_THRESHOLD_PATTERN) is None:
            del eviction[signal]
    return KubeletConfiguration(
        max_pods=check.integer(raw, "maxPods", path, minimum=0),
        kube_reserved=_reserved(raw, "kubeReserved", check),
        system_reserved=_reserved(raw, "systemReserved", check),
        eviction_hard=eviction,
    )


def _status(raw: Mapping[str, Any], check: Checker) -> EC2NodeClassStatus:
    """The status the launcher writes; unknown keys are tolerated so newer writers don't break us."""
    subnets = tuple(
        SubnetStatus(
            id=check.string(s, "id", p, required=True) or "",
            zone=check.string(s, "zone", p, required=True) or "",
            zone_id=check.string(s, "zoneID", p) or "",
        )
        for p, s in check.objects(raw, "subnets", "status")
    )
    groups = tuple(
        SecurityGroupStatus(
            id=check.string(s, "id", p, required=True) or "", name=check.string(s, "name", p) or ""
        )
        for p, s in check.objects(raw, "securityGroups", "status")
    )
    amis: list[AMIStatus] = []
    for p, a in check.objects(raw, "amis", "status"):
        amis.append(
            AMIStatus(
                id=check.string(a, "id", p, required=True) or "",
                name=check.string(a, "name", p) or "",
                requirements=parse_requirements(a, check, p, restrict_keys=False),
                deprecated=bool(check.boolean(a, "deprecated", p)),
            )
        )
    return EC2NodeClassStatus(
        subnets=subnets,
        security_groups=groups,
        amis=tuple(amis),
        instance_profile=check.string(raw, "instanceProfile", "status"),
        conditions=parse_conditions(raw, check, "status"),
    )
