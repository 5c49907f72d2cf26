"""Karpenter v1beta1 and v1 NodePools and EC2NodeClasses, and jitnode's own objects passing through."""

from __future__ import annotations

from typing import Any

import pytest

from shared.api.nodeclass import EC2NodeClass
from shared.api.nodepool import NodePool
from shared.convert import Conversion, ConvertOptions, Severity, convert
from shared.errors import ValidationError


def by_kind(conversion: Conversion, kind: str) -> dict[str, Any]:
    (found,) = [o for o in conversion.objects if o["kind"] == kind]
    return found


V1BETA1_POOL: dict[str, Any] = {
    "apiVersion": "karpenter.sh/v1beta1",
    "kind": "NodePool",
    "metadata": {"name": "general", "labels": {"team": "a"}},
    "spec": {
        "template": {
            "metadata": {"labels": {"intent": "apps"}, "annotations": {"example.com/a": "b"}},
            "spec": {
                "nodeClassRef": {
                    "apiVersion": "karpenter.k8s.aws/v1beta1",
                    "kind": "EC2NodeClass",
                    "name": "general",
                },
                "requirements": [
                    {
                        "key": "karpenter.k8s.aws/instance-category",
                        "operator": "In",
                        "values": ["c", "m"],
                        "minValues": 2,
                    },
                    {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot", "on-demand"]},
                ],
                "taints": [{"key": "dedicated", "value": "apps", "effect": "NoSchedule"}],
                "kubelet": {"maxPods": 110, "imageGCHighThresholdPercent": 85},
            },
        },
        "disruption": {
            "consolidationPolicy": "WhenUnderutilized",
            "expireAfter": "168h",
            "budgets": [{"nodes": "10%"}, {"nodes": "0", "schedule": "0 9 * * mon-fri", "duration": "8h"}],
        },
        "limits": {"cpu": 100, "memory": "400Gi"},
        "weight": 10,
    },
}

V1BETA1_CLASS: dict[str, Any] = {
    "apiVersion": "karpenter.k8s.aws/v1beta1",
    "kind": "EC2NodeClass",
    "metadata": {"name": "general"},
    "spec": {
        "amiFamily": "Bottlerocket",
        "role": "KarpenterNodeRole-prod",
        "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": "prod"}}, {"id": "subnet-0abc"}],
        "securityGroupSelectorTerms": [{"name": "nodes"}],
        "tags": {"team": "a"},
        "instanceStorePolicy": "RAID0",
        "associatePublicIPAddress": False,
    },
}


def test_v1beta1_pool_and_class() -> None:
    conversion = convert([V1BETA1_POOL, V1BETA1_CLASS])
    pool, node_class = by_kind(conversion, "NodePool"), by_kind(conversion, "EC2NodeClass")
    tspec = pool["spec"]["template"]["spec"]
    assert tspec["nodeClassRef"] == {"group": "jitnode.io", "kind": "EC2NodeClass", "name": "general"}
    assert tspec["requirements"][0] == {
        "key": "jitnode.io/instance-category",
        "operator": "In",
        "values": ["c", "m"],
        "minValues": 2,
    }
    assert tspec["expireAfter"] == "168h"
    assert pool["spec"]["disruption"]["consolidationPolicy"] == "WhenEmptyOrUnderutilized"
    assert "expireAfter" not in pool["spec"]["disruption"]
    assert pool["spec"]["limits"] == {"cpu": "100", "memory": "400Gi"}
    assert pool["metadata"] == {"name": "general", "labels": {"team": "a"}}
    assert node_class["spec"]["amiSelectorTerms"] == [{"alias": "bottlerocket@latest"}]
    assert node_class["spec"]["kubelet"] == {"maxPods": 110}
    assert node_class["spec"]["associatePublicIPAddress"] is False
    dropped = sorted((f.subject, f.path) for f in conversion.dropped)
    assert dropped == [
        ("EC2NodeClass/general", "spec.instanceStorePolicy"),
        ("NodePool/general", "spec.template.spec.kubelet.imageGCHighThresholdPercent"),
    ]
    parsed = NodePool.from_api(pool)
    assert parsed.expire_after is not None
    assert parsed.expire_after.total_seconds() == 168 * 3600
    assert len(parsed.disruption.budgets) == 2
    assert EC2NodeClass.from_api(node_class).role == "KarpenterNodeRole-prod"


def test_v1beta1_class_with_selected_amis_keeps_its_family() -> None:
    raw = {
        **V1BETA1_CLASS,
        "spec": {**V1BETA1_CLASS["spec"], "amiSelectorTerms": [{"name": "my-ami", "owner": "self"}]},
    }
    node_class = by_kind(convert([raw]), "EC2NodeClass")
    assert node_class["spec"]["amiFamily"] == "Bottlerocket"
    assert node_class["spec"]["amiSelectorTerms"] == [{"name": "my-ami", "owner": "self"}]


V1_POOL: dict[str, Any] = {
    "apiVersion": "karpenter.sh/v1",
    "kind": "NodePool",
    "metadata": {"name": "default"},
    "spec": {
        "template": {
            "spec": {
                "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"},
                "requirements": [
                    {"key": "kubernetes.io/arch", "operator": "In", "values": ["arm64"]},
                    {"key": "karpenter.k8s.aws/instance-generation", "operator": "Gt", "values": ["5"]},
                ],
                "expireAfter": "Never",
                "terminationGracePeriod": "48h",
            }
        },
        "disruption": {
            "consolidationPolicy": "WhenEmpty",
            "consolidateAfter": "1m",
            "budgets": [{"nodes": "1", "reasons": ["Empty", "Drifted"]}],
        },
    },
}

V1_CLASS: dict[str, Any] = {
    "apiVersion": "karpenter.k8s.aws/v1",
    "kind": "EC2NodeClass",
    "metadata": {"name": "default"},
    "spec": {
        "amiSelectorTerms": [{"alias": "al2023@v20240807"}],
        "role": "KarpenterNodeRole-prod",
        "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": "prod"}}],
        "securityGroupSelectorTerms": [{"tags": {"karpenter.sh/discovery": "prod"}}],
        "kubelet": {"maxPods": 20, "kubeReserved": {"cpu": "200m"}, "cpuCFSQuota": True},
        "metadataOptions": {"httpPutResponseHopLimit": 2},
        "blockDeviceMappings": [
            {"deviceName": "/dev/xvda", "rootVolume": True, "ebs": {"volumeSize": "50Gi"}}
        ],
    },
}


def test_v1_pool_and_class() -> None:
    conversion = convert([V1_POOL, V1_CLASS])
    pool, node_class = by_kind(conversion, "NodePool"), by_kind(conversion, "EC2NodeClass")
    tspec = pool["spec"]["template"]["spec"]
    assert tspec["nodeClassRef"]["group"] == "jitnode.io"
    assert [r["key"] for r in tspec["requirements"]] == [
        "kubernetes.io/arch",
        "jitnode.io/instance-generation",
    ]
    assert (tspec["expireAfter"], tspec["terminationGracePeriod"]) == ("Never", "48h")
    assert pool["spec"]["disruption"] == V1_POOL["spec"]["disruption"]
    assert node_class["spec"]["amiSelectorTerms"] == [{"alias": "al2023@v20240807"}]
    assert "amiFamily" not in node_class["spec"]
    assert node_class["spec"]["kubelet"] == {"maxPods": 20, "kubeReserved": {"cpu": "200m"}}
    assert [f.path for f in conversion.dropped] == ["spec.kubelet.cpuCFSQuota"]
    assert NodePool.from_api(pool).expire_after is None
    assert EC2NodeClass.from_api(node_class).root_volume() is not None


def test_v1_class_without_role_uses_the_option() -> None:
    spec = {k: v for k, v in V1_CLASS["spec"].items() if k != "role"}
    conversion = convert([{**V1_CLASS, "spec": spec}], ConvertOptions(instance_profile="Profile"))
    assert by_kind(conversion, "EC2NodeClass")["spec"]["instanceProfile"] == "Profile"


def test_unknown_policy_and_ref_kind_are_invalid() -> None:
    bad_policy = {**V1_POOL, "spec": {**V1_POOL["spec"], "disruption": {"consolidationPolicy": "Sometimes"}}}
    with pytest.raises(ValidationError, match="consolidationPolicy"):
        convert([bad_policy])
    template = V1_POOL["spec"]["template"]
    ref = {"group": "example.com", "kind": "GCENodeClass", "name": "x"}
    bad_ref = {
        **V1_POOL,
        "spec": {**V1_POOL["spec"], "template": {"spec": {**template["spec"], "nodeClassRef": ref}}},
    }
    with pytest.raises(ValidationError, match=r"nodeClassRef\.kind"):
        convert([bad_ref])


def test_jitnode_objects_pass_through_so_converting_twice_changes_nothing() -> None:
    once = convert([V1_POOL, V1_CLASS])
    twice = convert(once.objects)
    assert twice.objects == once.objects
    assert twice.findings == []


def test_converted_output_that_jitnode_rejects_is_invalid_input() -> None:
    bad = {**V1_POOL, "spec": {**V1_POOL["spec"], "weight": 1000}}
    with pytest.raises(ValidationError, match=r"converted NodePool/default.*spec\.weight"):
        convert([bad])


@pytest.mark.parametrize(
    "document",
    [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "inflate"}},
        {"apiVersion": "karpenter.sh/v1alpha5", "kind": "Machine", "metadata": {"name": "m"}},
        ["not", "an", "object"],
    ],
)
def test_unknown_documents_are_invalid(document: object) -> None:
    with pytest.raises(ValidationError) as caught:
        convert([None, document])
    assert "document 2" in str(caught.value)


def test_duplicate_names_are_invalid() -> None:
    with pytest.raises(ValidationError, match="two NodePools named 'default'"):
        convert([V1_POOL, V1_POOL])


def test_findings_keep_their_severity_in_input_order() -> None:
    conversion = convert([{**V1_CLASS, "spec": {**V1_CLASS["spec"], "amiSelectorTerms": None}}])
    assert [f.severity for f in conversion.findings] == [Severity.NOTE, Severity.DROPPED]
