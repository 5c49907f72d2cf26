"""The seed walkthrough's objects: the converted NodePool and EC2NodeClass, and ``inflate``.

The converted manifests in ``examples/seed/`` are the source of truth when they exist (the
``local/`` variants first: their selectors match the local EC2 double). Otherwise the objects
are built here from the seed's parameters: an ``intent: apps`` node label, on-demand capacity,
no instance smaller than ``xlarge``, limits of 1000 cpu and 1000Gi, and ``ttlSecondsAfterEmpty:
30`` as ``consolidationPolicy: WhenEmpty`` with ``consolidateAfter: 30s``. Either way the demo
applies its own empty-node TTL, and on the local cluster points the EC2NodeClass at the seeded
network (eksctl's subnets, security group and node role), since the seed's discovery tags name
a real account's resources. Pure except :func:`load_seed`, which reads the files.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

import yaml

from localcluster.ec2 import ESKCTL_CLUSTER_TAG, ClusterNetwork
from shared import labels
from shared.api.durations import format_duration
from shared.api.group import GROUP_VERSION, NODECLASS_KIND, NODEPOOL_KIND

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
SEED_DIR: Final = REPO_ROOT / "examples" / "seed"
NODEPOOL_FILE: Final = "jitnode-nodepool.yaml"
NODECLASS_FILE: Final = "jitnode-ec2nodeclass.yaml"
DEPLOYMENT_NAME: Final = "inflate"
NAMESPACE: Final = "default"
SEED_EMPTY_TTL: Final = 30.0
INFLATE_IMAGE: Final = "public.ecr.aws/eks-distro/kubernetes/pause:3.7"


@dataclass(frozen=True)
class Seed:
    """The three objects the demo applies, and where they came from (for the report)."""

    nodepool: dict[str, Any]
    nodeclass: dict[str, Any]
    deployment: dict[str, Any]
    source: str  # "examples/seed/local", "examples/seed" or "built-in"

    @property
    def app_label(self) -> tuple[str, str]:
        """The label selecting the Deployment's pods (``app=inflate`` in the seed)."""
        match = self.deployment["spec"]["selector"]["matchLabels"]
        key = sorted(match)[0]
        return key, str(match[key])


def builtin_nodepool() -> dict[str, Any]:
    """The seed's Provisioner as a ``jitnode.io/v1`` NodePool (what ``jitnode convert`` yields)."""
    return {
        "apiVersion": GROUP_VERSION,
        "kind": NODEPOOL_KIND,
        "metadata": {"name": "default"},
        "spec": {
            "template": {
                "metadata": {"labels": {"intent": "apps"}},
                "spec": {
                    "nodeClassRef": {"group": labels.GROUP, "kind": NODECLASS_KIND, "name": "default"},
                    "requirements": [
                        {"key": labels.CAPACITY_TYPE, "operator": "In", "values": ["on-demand"]},
                        {
                            "key": labels.INSTANCE_SIZE,
                            "operator": "NotIn",
                            "values": ["nano", "micro", "small", "medium", "large"],
                        },
                    ],
                    "expireAfter": "720h",
                },
            },
            "limits": {"cpu": "1000", "memory": "1000Gi"},
            "disruption": {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "30s"},
        },
    }


def builtin_nodeclass(cluster: str, role: str) -> dict[str, Any]:
    """The seed's AWSNodeTemplate as an EC2NodeClass, discovering eksctl's network by tag."""
    selector = [{"tags": {ESKCTL_CLUSTER_TAG: cluster}}]
    return {
        "apiVersion": GROUP_VERSION,
        "kind": NODECLASS_KIND,
        "metadata": {"name": "default"},
        "spec": {
            "amiSelectorTerms": [{"alias": "al2023@latest"}],
            "subnetSelectorTerms": selector,
            "securityGroupSelectorTerms": selector,
            "role": role,
            "tags": {"app.kubernetes.io/created-by": "jitnode-demo"},
        },
    }


def builtin_deployment() -> dict[str, Any]:
    """The seed's ``inflate`` Deployment: pause pods asking for 1 cpu and 1.5Gi, on ``intent: apps``."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": DEPLOYMENT_NAME, "namespace": NAMESPACE},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": DEPLOYMENT_NAME}},
            "template": {
                "metadata": {"labels": {"app": DEPLOYMENT_NAME}},
                "spec": {
                    "nodeSelector": {"intent": "apps"},
                    "containers": [
                        {
                            "name": DEPLOYMENT_NAME,
                            "image": INFLATE_IMAGE,
                            "resources": {"requests": {"cpu": "1", "memory": "1.5Gi"}},
                        }
                    ],
                },
            },
        },
    }


def with_empty_ttl(nodepool: dict[str, Any], seconds: float) -> dict[str, Any]:
    """``nodepool`` removing empty nodes after ``seconds`` (WhenEmpty), as the seed's TTL does."""
    result = copy.deepcopy(nodepool)
    disruption = result.setdefault("spec", {}).setdefault("disruption", {})
    disruption["consolidationPolicy"] = "WhenEmpty"
    disruption["consolidateAfter"] = format_duration(timedelta(seconds=max(0, round(seconds))))
    return result


def for_network(nodeclass: dict[str, Any], network: ClusterNetwork) -> dict[str, Any]:
    """``nodeclass`` with its subnet and security-group selectors and role aimed at ``network``."""
    result = copy.deepcopy(nodeclass)
    spec = result.setdefault("spec", {})
    spec["subnetSelectorTerms"] = [{"id": subnet} for subnet in sorted(network.subnets.values())]
    spec["securityGroupSelectorTerms"] = [{"id": network.security_group_id}]
    spec["role"] = network.node_role
    spec.pop("instanceProfile", None)
    return result


def deployment_at_zero(deployment: dict[str, Any]) -> dict[str, Any]:
    """The Deployment as applied before the scale-up: zero replicas, in its namespace."""
    result = copy.deepcopy(deployment)
    result.setdefault("metadata", {}).setdefault("namespace", NAMESPACE)
    result["spec"]["replicas"] = 0
    return result


def _documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if isinstance(d, dict)]


def _first_of_kind(path: Path, kind: str) -> dict[str, Any] | None:
    return next((d for d in _documents(path) if d.get("kind") == kind), None)


def _seed_deployment(folder: Path) -> dict[str, Any] | None:
    for path in sorted(folder.glob("*.yaml")):
        for document in _documents(path):
            name = (document.get("metadata") or {}).get("name")
            if document.get("kind") == "Deployment" and name == DEPLOYMENT_NAME:
                return document
    return None


def load_seed(cluster: str, role: str, seed_dir: Path = SEED_DIR) -> Seed:
    """The converted seed objects if present, else the built-in ones (blocking: reads files).

    A converted NodePool and EC2NodeClass are only used as a pair from one folder, so the demo
    never mixes a converted pool with a hand-built class.
    """
    folders = ((seed_dir / "local", "examples/seed/local"), (seed_dir, "examples/seed"))
    deployment = next(
        (found for folder, _ in folders if folder.is_dir() and (found := _seed_deployment(folder))),
        builtin_deployment(),
    )
    for folder, name in folders:
        nodepool_path, nodeclass_path = folder / NODEPOOL_FILE, folder / NODECLASS_FILE
        if nodepool_path.is_file() and nodeclass_path.is_file():
            nodepool = _first_of_kind(nodepool_path, NODEPOOL_KIND)
            nodeclass = _first_of_kind(nodeclass_path, NODECLASS_KIND)
            if nodepool is not None and nodeclass is not None:
                return Seed(nodepool, nodeclass, deployment_at_zero(deployment), name)
    return Seed(
        builtin_nodepool(), builtin_nodeclass(cluster, role), deployment_at_zero(deployment), "built-in"
    )
