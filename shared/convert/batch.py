"""A batch of manifests converted together, so references between them can be settled.

A Provisioner names its AWSNodeTemplate by ``providerRef``; kubelet settings live on the pool in
Karpenter before v1 but on the node class in jitnode, so they can only move when the node class
is in the same batch and every pool sharing it agrees on them. Everything else is converted one
object at a time. The output is validated with jitnode's own parsers: what ``convert`` writes,
the API accepts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from shared.api.group import GROUP_VERSION, NODECLASS_KIND, NODEPOOL_KIND
from shared.api.nodeclass import EC2NodeClass
from shared.api.nodepool import NodePool
from shared.convert import shape
from shared.convert.kubelet import report_unplaced
from shared.convert.meta import convert_metadata
from shared.convert.nodeclass import from_aws_node_template, from_ec2nodeclass
from shared.convert.nodepool import ConvertedPool, from_nodepool, from_provisioner
from shared.convert.options import ConvertOptions
from shared.convert.report import Finding, Report, Severity
from shared.errors import FieldError, ValidationError

PROVISIONER: Final = ("karpenter.sh/v1alpha5", "Provisioner")
AWS_NODE_TEMPLATE: Final = ("karpenter.k8s.aws/v1alpha1", "AWSNodeTemplate")
NODEPOOL_VERSIONS: Final = {"karpenter.sh/v1beta1": "v1beta1", "karpenter.sh/v1": "v1"}
NODECLASS_VERSIONS: Final = frozenset({"karpenter.k8s.aws/v1beta1", "karpenter.k8s.aws/v1"})
KNOWN: Final = (
    "karpenter.sh/v1alpha5 Provisioner, karpenter.k8s.aws/v1alpha1 AWSNodeTemplate, "
    "karpenter.sh/v1beta1 or v1 NodePool, karpenter.k8s.aws/v1beta1 or v1 EC2NodeClass"
)
_VALIDATORS: Final[Mapping[str, Callable[[Mapping[str, Any]], object]]] = {
    NODEPOOL_KIND: NodePool.from_api,
    NODECLASS_KIND: EC2NodeClass.from_api,
}


@dataclass(frozen=True)
class Conversion:
    """The converted objects, in input order, and every finding about the input."""

    objects: list[dict[str, Any]]
    findings: list[Finding]

    @property
    def dropped(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.DROPPED]

    @property
    def notes(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.NOTE]

    @property
    def complete(self) -> bool:
        """True when nothing of the input was left behind."""
        return not self.dropped


def convert(
    documents: Sequence[object],
    options: ConvertOptions | None = None,
    locations: Sequence[str] | None = None,
) -> Conversion:
    """Convert Karpenter manifests (parsed YAML documents) to ``jitnode.io/v1`` objects.

    ``None`` documents (empty YAML documents) are skipped; ``jitnode.io/v1`` NodePools and
    EC2NodeClasses pass through unchanged, so converting twice is harmless. Raises
    ``ValidationError`` naming the document and field for input that is not a Karpenter object
    this converter knows or is malformed. ``locations`` names each document in those errors
    (``seed.yaml, document 2``); by default they are numbered from 1.
    """
    options = options or ConvertOptions()
    outputs: list[dict[str, Any]] = []
    reports: list[Report] = []
    pools: list[tuple[ConvertedPool, Report]] = []
    for index, document in enumerate(documents, start=1):
        if document is None:
            continue
        where = locations[index - 1] if locations is not None else f"document {index}"
        report = Report(_subject(document, index))
        reports.append(report)
        try:
            converted = _convert_one(document, report, options)
        except FieldError as exc:
            raise ValidationError([exc], kind=f"{report.subject} ({where})") from exc
        if isinstance(converted, ConvertedPool):
            pools.append((converted, report))
            outputs.append(converted.nodepool)
            if converted.inline_provider is not None:
                metadata = {"name": converted.class_name}
                try:
                    nodeclass = from_aws_node_template(
                        converted.inline_provider, "spec.provider", metadata, report, options
                    )
                except FieldError as exc:
                    raise ValidationError([exc], kind=f"{report.subject} ({where})") from exc
                outputs.append(nodeclass)
        else:
            outputs.append(converted)
    classes = _by_name(outputs)
    _place_kubelet(pools, classes)
    for obj in outputs:
        _validate(obj)
    return Conversion(outputs, [f for r in reports for f in r.findings])


def _subject(document: object, index: int) -> str:
    if not isinstance(document, Mapping):
        return f"document {index}"
    metadata = document.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    return f"{document.get('kind') or 'object'}/{name if isinstance(name, str) else f'document {index}'}"


def _convert_one(document: object, report: Report, options: ConvertOptions) -> dict[str, Any] | ConvertedPool:
    if not isinstance(document, Mapping):
        raise FieldError("", f"expected an object, got {type(document).__name__}")
    api_version, kind = document.get("apiVersion"), document.get("kind")
    if (api_version, kind) == PROVISIONER:
        return from_provisioner(document, report)
    if api_version in NODEPOOL_VERSIONS and kind == NODEPOOL_KIND:
        return from_nodepool(document, NODEPOOL_VERSIONS[str(api_version)], report)
    if (api_version, kind) == AWS_NODE_TEMPLATE:
        spec = shape.mapping(document, "spec", "")
        return from_aws_node_template(spec, "spec", convert_metadata(document), report, options)
    if api_version in NODECLASS_VERSIONS and kind == NODECLASS_KIND:
        return from_ec2nodeclass(document, report, options)
    if api_version == GROUP_VERSION and kind in _VALIDATORS:
        return {str(k): v for k, v in document.items() if k != "status"}
    raise FieldError(
        "kind", f"{api_version} {kind} is not something jitnode convert knows (it knows {KNOWN})"
    )


def _by_name(outputs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The node classes by name; two objects of one kind and name are an error."""
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for obj in outputs:
        key = (obj["kind"], obj["metadata"]["name"])
        if key in seen:
            raise ValidationError(
                [FieldError("metadata.name", f"the input converts to two {key[0]}s named {key[1]!r}")],
                kind="input",
            )
        seen[key] = obj
    return {name: obj for (kind, name), obj in seen.items() if kind == NODECLASS_KIND}


def _place_kubelet(pools: list[tuple[ConvertedPool, Report]], classes: dict[str, dict[str, Any]]) -> None:
    """Move each pool's kubelet settings onto its node class, when that is unambiguous."""
    sharing: dict[str, list[tuple[ConvertedPool, Report]]] = {}
    for pool, report in pools:
        sharing.setdefault(pool.class_name, []).append((pool, report))
    for class_name, members in sharing.items():
        wanted = [pool.kubelet for pool, _ in members if pool.kubelet]
        if not wanted:
            continue
        nodeclass = classes.get(class_name)
        spec = nodeclass["spec"] if nodeclass is not None else None
        agreed = all(pool.kubelet == wanted[0] for pool, _ in members)
        existing = spec.get("kubelet") if spec is not None else None
        for pool, report in members:
            if not pool.kubelet:
                continue
            if spec is None:
                report_unplaced(pool.kubelet, pool.kubelet_path, report)
            elif not agreed or existing not in (None, pool.kubelet):
                report_unplaced(
                    pool.kubelet,
                    pool.kubelet_path,
                    report,
                    f"pools sharing EC2NodeClass/{class_name} disagree on it, and jitnode keeps kubelet "
                    "settings on the node class",
                )
            else:
                report.note(pool.kubelet_path, f"moved to EC2NodeClass/{class_name} spec.kubelet")
        if agreed and spec is not None and existing is None:
            spec["kubelet"] = dict(wanted[0])


def _validate(obj: dict[str, Any]) -> None:
    try:
        _VALIDATORS[obj["kind"]](obj)
    except ValidationError as exc:
        raise ValidationError(exc.errors, kind=f"converted {obj['kind']}/{obj['metadata']['name']}") from exc
