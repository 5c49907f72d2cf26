"""The seed walkthrough's objects, made from the seed's own manifests as its reader would.

The walkthrough applies ``examples/seed/karpenter-provisioner.yaml`` (a Karpenter v1alpha5
Provisioner and v1alpha1 AWSNodeTemplate, with ``${CLUSTER_NAME}`` filled in by ``envsubst``)
and ``examples/seed/inflate.yaml``. The demo does the same through ``jitnode convert``: it
converts the Provisioner and AWSNodeTemplate, fills in ``${CLUSTER_NAME}`` with the cluster's
name, and applies the result. The AWSNodeTemplate finds subnets and security groups by the tag
``alpha.eksctl.io/cluster-name``, which eksctl puts on them and the local EC2 double carries too,
and names no instance profile, so the conversion assumes the Karpenter getting-started guide's
``KarpenterNodeInstanceProfile-${CLUSTER_NAME}``, which the double also holds. Pure but for
:func:`load_seed`, which reads the files.
"""

from __future__ import annotations

import copy
import string
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

from shared.api.durations import format_duration
from shared.api.group import NODECLASS_KIND, NODEPOOL_KIND
from shared.convert import ConvertOptions, convert, dump_documents, load_documents
from shared.errors import ValidationError

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
SEED_DIR: Final = REPO_ROOT / "examples" / "seed"
PROVISIONER_FILE: Final = "karpenter-provisioner.yaml"
WORKLOAD_FILE: Final = "inflate.yaml"
CLUSTER_VARIABLE: Final = "CLUSTER_NAME"
DEPLOYMENT_NAME: Final = "inflate"
NAMESPACE: Final = "default"
SEED_EMPTY_TTL: Final = 30.0


class SeedError(ValueError):
    """The seed's files are missing or do not hold what the walkthrough applies."""


@dataclass(frozen=True)
class Seed:
    """The three objects the demo applies, and where they came from (for the report)."""

    nodepool: dict[str, Any]
    nodeclass: dict[str, Any]
    deployment: dict[str, Any]
    source: str  # e.g. "examples/seed (CLUSTER_NAME=jitnode-local)"

    @property
    def app_label(self) -> tuple[str, str]:
        """The label selecting the Deployment's pods (``app=inflate`` in the seed)."""
        match = self.deployment["spec"]["selector"]["matchLabels"]
        key = sorted(match)[0]
        return key, str(match[key])


def with_cluster_name(text: str, cluster: str) -> str:
    """``text`` with ``${CLUSTER_NAME}`` filled in, as ``envsubst`` does for that one variable."""
    return string.Template(text).safe_substitute({CLUSTER_VARIABLE: cluster})


def seed_objects(provisioner_text: str, workload_text: str, cluster: str, source: str) -> Seed:
    """The converted seed for ``cluster``: what ``jitnode convert | envsubst`` and the workload yield.

    Raises :class:`SeedError` when the files lack a NodePool, an EC2NodeClass or ``inflate``.
    """
    try:
        conversion = convert(load_documents(provisioner_text, PROVISIONER_FILE), ConvertOptions())
    except ValidationError as exc:
        raise SeedError(f"{PROVISIONER_FILE}: {exc}") from exc
    if not conversion.complete:
        dropped = ", ".join(str(finding) for finding in conversion.dropped)
        raise SeedError(f"{PROVISIONER_FILE} did not convert completely: {dropped}")
    converted = load_documents(with_cluster_name(dump_documents(conversion.objects), cluster))
    nodepool = _first(converted, NODEPOOL_KIND, PROVISIONER_FILE)
    nodeclass = _first(converted, NODECLASS_KIND, PROVISIONER_FILE)
    workload = [d for d in load_documents(workload_text, WORKLOAD_FILE) if isinstance(d, dict)]
    deployment = next(
        (
            d
            for d in workload
            if d.get("kind") == "Deployment" and (d.get("metadata") or {}).get("name") == DEPLOYMENT_NAME
        ),
        None,
    )
    if deployment is None:
        raise SeedError(f"{WORKLOAD_FILE} holds no Deployment named {DEPLOYMENT_NAME}")
    return Seed(nodepool, nodeclass, deployment_at_zero(deployment), source)


def _first(documents: list[Any], kind: str, where: str) -> dict[str, Any]:
    found = next((d for d in documents if isinstance(d, dict) and d.get("kind") == kind), None)
    if found is None:
        raise SeedError(f"{where} holds nothing that converts to a {kind}")
    return found


def with_empty_ttl(nodepool: dict[str, Any], seconds: float) -> dict[str, Any]:
    """``nodepool`` removing empty nodes after ``seconds`` (WhenEmpty), as the seed's TTL does."""
    result = copy.deepcopy(nodepool)
    disruption = result.setdefault("spec", {}).setdefault("disruption", {})
    disruption["consolidationPolicy"] = "WhenEmpty"
    disruption["consolidateAfter"] = format_duration(timedelta(seconds=max(0, round(seconds))))
    return result


def deployment_at_zero(deployment: dict[str, Any]) -> dict[str, Any]:
    """The Deployment as applied before the scale-up: zero replicas, in its namespace."""
    result = copy.deepcopy(deployment)
    result.setdefault("metadata", {}).setdefault("namespace", NAMESPACE)
    result["spec"]["replicas"] = 0
    return result


def load_seed(cluster: str, seed_dir: Path = SEED_DIR) -> Seed:
    """The seed in ``seed_dir`` converted for ``cluster`` (blocking: reads two files)."""
    try:
        provisioner = (seed_dir / PROVISIONER_FILE).read_text(encoding="utf-8")
        workload = (seed_dir / WORKLOAD_FILE).read_text(encoding="utf-8")
    except OSError as exc:
        raise SeedError(f"cannot read the seed: {exc.filename}: {exc.strerror}") from exc
    where = seed_dir.relative_to(REPO_ROOT) if seed_dir.is_relative_to(REPO_ROOT) else seed_dir
    return seed_objects(provisioner, workload, cluster, f"{where} ({CLUSTER_VARIABLE}={cluster})")
