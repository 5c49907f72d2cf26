"""EC2NodeClass parsing: selectors, IAM, tags, disks, IMDS, kubelet; round trip."""

from __future__ import annotations

from typing import Any

import pytest

from shared import labels
from shared.api.nodeclass import EC2NodeClass, MetadataOptions
from shared.errors import ValidationError
from shared.resources import Resources


def minimal(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "apiVersion": "jitnode.io/v1",
        "kind": "EC2NodeClass",
        "metadata": {"name": "default"},
        "spec": {
            "amiSelectorTerms": [{"alias": "al2023@latest"}],
            "subnetSelectorTerms": [{"tags": {"jitnode.io/discovery": "demo"}}],
            "securityGroupSelectorTerms": [{"id": "sg-0123abcd"}],
            "role": "JitnodeNodeRole",
        },
    }
    base["spec"].update(spec)
    return base


FULL: dict[str, Any] = {
    "apiVersion": "jitnode.io/v1",
    "kind": "EC2NodeClass",
    "metadata": {"name": "custom", "uid": "u", "generation": 2},
    "spec": {
        "amiFamily": "AL2023",
        "amiSelectorTerms": [
            {"id": "ami-0abc123"},
            {"name": "my-ami-*", "owner": "123456789012", "tags": {"k": "v"}},
        ],
        "subnetSelectorTerms": [{"id": "subnet-0a1b"}, {"tags": {"tier": "private"}}],
        "securityGroupSelectorTerms": [{"name": "nodes", "tags": {"a": "b"}}],
        "instanceProfile": "JitnodeProfile",
        "tags": {"team": "infra"},
        "userData": "#!/bin/bash\necho hi\n",
        "blockDeviceMappings": [
            {
                "deviceName": "/dev/xvda",
                "rootVolume": True,
                "ebs": {
                    "volumeSize": "100Gi",
                    "volumeType": "gp3",
                    "iops": 3000,
                    "throughput": 125,
                    "encrypted": True,
                    "deleteOnTermination": True,
                    "kmsKeyID": "arn:aws:kms:us-east-1:1:key/x",
                    "snapshotID": "snap-1",
                },
            },
            {"deviceName": "/dev/xvdb", "ebs": {"volumeSize": "1Ti"}},
        ],
        "metadataOptions": {
            "httpEndpoint": "enabled",
            "httpProtocolIPv6": "enabled",
            "httpPutResponseHopLimit": 2,
            "httpTokens": "optional",
        },
        "detailedMonitoring": True,
        "associatePublicIPAddress": False,
        "kubelet": {
            "maxPods": 110,
            "kubeReserved": {"cpu": "100m", "memory": "1Gi"},
            "systemReserved": {"ephemeral-storage": "1Gi"},
            "evictionHard": {"memory.available": "5%", "nodefs.available": "10%"},
        },
    },
    "status": {
        "subnets": [{"id": "subnet-0a1b", "zone": "us-east-1a", "zoneID": "use1-az1"}],
        "securityGroups": [{"id": "sg-1", "name": "nodes"}],
        "amis": [
            {
                "id": "ami-0abc123",
                "name": "al2023",
                "requirements": [{"key": labels.ARCH, "operator": "In", "values": ["amd64"]}],
            }
        ],
        "instanceProfile": "JitnodeProfile",
        "conditions": [{"type": "Ready", "status": "True"}],
    },
}


def test_full_round_trip() -> None:
    node_class = EC2NodeClass.from_api(FULL)
    assert node_class.instance_profile == "JitnodeProfile"
    assert node_class.role is None
    assert node_class.root_volume() is not None
    assert node_class.block_device_mappings[0].ebs is not None
    assert node_class.block_device_mappings[0].ebs.volume_size == 100 * 2**30
    assert node_class.kubelet is not None
    assert node_class.kubelet.kube_reserved == Resources(cpu=100, memory=2**30)
    assert node_class.status.subnets[0].zone == "us-east-1a"
    assert node_class.condition("Ready") is not None
    assert node_class.effective_ami_family == "AL2023"
    assert node_class.to_api() == FULL
    assert EC2NodeClass.from_api(node_class.to_api()) == node_class


def test_defaults_imdsv2_and_alias_family() -> None:
    node_class = EC2NodeClass.from_api(minimal())
    assert node_class.metadata_options == MetadataOptions()
    assert node_class.to_api()["spec"]["metadataOptions"] == {
        "httpEndpoint": "enabled",
        "httpProtocolIPv6": "disabled",
        "httpPutResponseHopLimit": 1,
        "httpTokens": "required",
    }
    assert node_class.effective_ami_family == "AL2023"
    assert node_class.ami_selector_terms[0].alias_version == "latest"
    partial = EC2NodeClass.from_api(minimal(metadataOptions={"httpPutResponseHopLimit": 2}))
    assert partial.metadata_options == MetadataOptions(http_put_response_hop_limit=2)


@pytest.mark.parametrize(
    "alias",
    ["al2023@latest", "al2@v20240807", "bottlerocket@v1.20.3", "bottlerocket@1.2.3", "windows2022@latest"],
)
def test_valid_aliases(alias: str) -> None:
    assert (
        EC2NodeClass.from_api(minimal(amiSelectorTerms=[{"alias": alias}])).ami_selector_terms[0].alias
        == alias
    )


@pytest.mark.parametrize(
    ("spec", "paths"),
    [
        ({"amiSelectorTerms": [{"alias": "ubuntu@latest"}]}, {"spec.amiSelectorTerms[0].alias"}),
        ({"amiSelectorTerms": [{"alias": "al2@20240807"}]}, {"spec.amiSelectorTerms[0].alias"}),
        (
            {"amiSelectorTerms": [{"alias": "al2023@latest", "id": "ami-1"}]},
            {"spec.amiSelectorTerms[0].id", "spec.amiSelectorTerms[0].alias"},
        ),
        ({"amiSelectorTerms": [{"alias": "al2023@latest"}, {"id": "ami-1"}]}, {"spec.amiSelectorTerms"}),
        ({"amiSelectorTerms": [{"id": "ami-1"}]}, {"spec.amiFamily"}),
        ({"amiSelectorTerms": [{"owner": "amazon"}], "amiFamily": "AL2"}, {"spec.amiSelectorTerms[0]"}),
        ({"amiSelectorTerms": []}, {"spec.amiSelectorTerms"}),
        ({"amiFamily": "Ubuntu"}, {"spec.amiFamily"}),
        ({"subnetSelectorTerms": [{"id": "sub-1"}]}, {"spec.subnetSelectorTerms[0].id"}),
        ({"subnetSelectorTerms": [{"tags": {"a": ""}}]}, {"spec.subnetSelectorTerms[0].tags.a"}),
        ({"subnetSelectorTerms": [{}]}, {"spec.subnetSelectorTerms[0]"}),
        (
            {"subnetSelectorTerms": [{"name": "x"}]},
            {"spec.subnetSelectorTerms[0].name", "spec.subnetSelectorTerms[0]"},
        ),
        (
            {"securityGroupSelectorTerms": [{"id": "sg-1", "name": "x"}]},
            {"spec.securityGroupSelectorTerms[0].id"},
        ),
        ({"instanceProfile": "p"}, {"spec"}),
        ({"role": None}, {"spec"}),
        (
            {"tags": {labels.TAG_NODEPOOL: "x", "kubernetes.io/cluster/demo": "owned", "ok": 1}},
            {f"spec.tags.{labels.TAG_NODEPOOL}", "spec.tags.kubernetes.io/cluster/demo", "spec.tags.ok"},
        ),
        ({"blockDeviceMappings": [{"rootVolume": True}, {"rootVolume": True}]}, {"spec.blockDeviceMappings"}),
        (
            {"blockDeviceMappings": [{"ebs": {"volumeSize": "100Ti"}}]},
            {"spec.blockDeviceMappings[0].ebs.volumeSize"},
        ),
        (
            {"blockDeviceMappings": [{"ebs": {"volumeSize": "512Mi"}}]},
            {"spec.blockDeviceMappings[0].ebs.volumeSize"},
        ),
        (
            {"blockDeviceMappings": [{"ebs": {"volumeSize": 20}}]},
            {"spec.blockDeviceMappings[0].ebs.volumeSize"},
        ),
        (
            {"blockDeviceMappings": [{"ebs": {"volumeType": "gp9", "iops": -1, "size": 1}}]},
            {
                "spec.blockDeviceMappings[0].ebs.volumeType",
                "spec.blockDeviceMappings[0].ebs.iops",
                "spec.blockDeviceMappings[0].ebs.size",
            },
        ),
        (
            {"metadataOptions": {"httpTokens": "never", "httpPutResponseHopLimit": 65}},
            {"spec.metadataOptions.httpTokens", "spec.metadataOptions.httpPutResponseHopLimit"},
        ),
        (
            {
                "kubelet": {
                    "maxPods": -1,
                    "kubeReserved": {"gpu": "1", "cpu": "x"},
                    "evictionHard": {"memory.free": "1", "nodefs.available": "101%"},
                }
            },
            {
                "spec.kubelet.maxPods",
                "spec.kubelet.kubeReserved.gpu",
                "spec.kubelet.kubeReserved.cpu",
                "spec.kubelet.evictionHard.memory.free",
                "spec.kubelet.evictionHard.nodefs.available",
            },
        ),
        ({"detailedMonitoring": "yes", "userData": 5}, {"spec.detailedMonitoring", "spec.userData"}),
    ],
)
def test_rejects_with_paths(spec: dict[str, Any], paths: set[str]) -> None:
    with pytest.raises(ValidationError) as info:
        EC2NodeClass.from_api(minimal(**spec))
    assert {e.path for e in info.value.errors} == paths
