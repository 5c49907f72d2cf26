"""The seed walkthrough converts exactly to the committed jitnode manifests, which jitnode accepts."""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from cli.convert import by_kind_files
from shared.api.nodeclass import EC2NodeClass
from shared.api.nodepool import NodePool
from shared.convert import ConvertOptions, convert, dump_documents, load_documents
from shared.requirements import Requirements

REPO = Path(__file__).resolve().parents[2]
SEED = REPO / "examples" / "seed"


def _load(path: Path) -> list[Any]:
    return [d for d in load_documents(path.read_text(encoding="utf-8")) if d is not None]


def test_seed_converts_exactly_to_the_committed_files() -> None:
    """As examples/seed/README.md regenerates them."""
    folder = SEED
    conversion = convert(_load(folder / "karpenter-provisioner.yaml"), ConvertOptions())
    assert conversion.complete, [str(f) for f in conversion.dropped]
    files = by_kind_files(conversion.objects)
    assert sorted(files) == ["jitnode-ec2nodeclass.yaml", "jitnode-nodepool.yaml"]
    for name, objects in files.items():
        assert (folder / name).read_text(encoding="utf-8") == dump_documents(objects), name


def test_committed_conversions_parse_and_keep_the_seeds_meaning() -> None:
    folder = SEED
    (pool_raw,) = _load(folder / "jitnode-nodepool.yaml")
    (class_raw,) = _load(folder / "jitnode-ec2nodeclass.yaml")
    pool, node_class = NodePool.from_api(pool_raw), EC2NodeClass.from_api(class_raw)
    assert pool.node_class_ref.name == node_class.name == "default"
    assert pool.labels()["intent"] == "apps"
    assert pool.limits.to_api() == {"cpu": "1000", "memory": "1000Gi"}
    assert pool.disruption.consolidation_policy == "WhenEmpty"
    assert pool.disruption.consolidate_after is not None
    assert pool.disruption.consolidate_after.total_seconds() == 30
    assert pool.expire_after is not None
    assert pool.expire_after.total_seconds() == 2592000
    allowed = Requirements.of(*pool.template_requirements)
    on_demand_xlarge = {
        "jitnode.io/capacity-type": "on-demand",
        "jitnode.io/instance-size": "xlarge",
        "kubernetes.io/arch": "amd64",
        "jitnode.io/instance-category": "m",
        "jitnode.io/instance-generation": "5",
    }
    assert allowed.compatible(Requirements.from_labels(on_demand_xlarge))
    for key, value in [("jitnode.io/capacity-type", "spot"), ("jitnode.io/instance-size", "large")]:
        assert not allowed.compatible(Requirements.from_labels({**on_demand_xlarge, key: value}))
    assert dict(node_class.tags) == {
        "KarpenerProvisionerName": "default",
        "NodeType": "karpenter-workshop",
        "IntentLabel": "apps",
    }
    assert node_class.effective_ami_family == "AL2023"


def test_seed_selects_eksctls_network_and_the_guides_instance_profile() -> None:
    from localcluster.ec2 import ESKCTL_CLUSTER_TAG

    (class_raw,) = _load(SEED / "jitnode-ec2nodeclass.yaml")
    node_class = EC2NodeClass.from_api(class_raw)
    for terms in (node_class.subnet_selector_terms, node_class.security_group_selector_terms):
        assert [dict(t.tags) for t in terms] == [{ESKCTL_CLUSTER_TAG: "${CLUSTER_NAME}"}]
    assert node_class.instance_profile == "KarpenterNodeInstanceProfile-${CLUSTER_NAME}"


def test_inflate_is_the_seeds_deployment() -> None:
    (deployment,) = _load(SEED / "inflate.yaml")
    assert (deployment["apiVersion"], deployment["kind"]) == ("apps/v1", "Deployment")
    assert deployment["spec"]["replicas"] == 0
    pod = deployment["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"intent": "apps"}
    (container,) = pod["containers"]
    assert container["image"] == "public.ecr.aws/eks-distro/kubernetes/pause:3.2"
    assert container["resources"]["requests"] == {"cpu": 1, "memory": "1.5Gi"}


@pytest.mark.parametrize(
    ("path", "parse"),
    [("nodepool.yaml", NodePool.from_api), ("ec2nodeclass.yaml", EC2NodeClass.from_api)],
)
def test_production_examples_parse(path: str, parse: Any) -> None:
    (raw,) = _load(REPO / "examples" / path)
    assert parse(raw).name == "default"


def test_cli_subprocess_converts_the_seed(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cli", "convert", "-f", str(SEED / "karpenter-provisioner.yaml")],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    expected = [
        yaml.safe_load((SEED / n).read_text()) for n in ("jitnode-nodepool.yaml", "jitnode-ec2nodeclass.yaml")
    ]
    assert list(yaml.safe_load_all(result.stdout)) == expected
    assert "note: AWSNodeTemplate/default: spec.amiFamily" in result.stderr


def test_output_dir_writes_one_file_per_kind(tmp_path: Path) -> None:
    from cli.convert import run_convert

    args = argparse.Namespace(
        filename=[str(SEED / "karpenter-provisioner.yaml")],
        output=None,
        output_dir=str(tmp_path),
        role=None,
        instance_profile=None,
        quiet=True,
    )
    stdout, stderr = io.StringIO(), io.StringIO()
    assert run_convert(args, io.StringIO(), stdout, stderr) == 0
    assert stdout.getvalue() == ""
    assert stderr.getvalue() == ""
    for name in ("jitnode-nodepool.yaml", "jitnode-ec2nodeclass.yaml"):
        assert (tmp_path / name).read_text() == (SEED / name).read_text()
