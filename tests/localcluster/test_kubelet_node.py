"""The pure Node builders: label precedence, capacity from the type, statuses."""

from __future__ import annotations

from datetime import UTC, datetime

from localcluster.kubelet.instances import Instance, InstanceTypeInfo
from localcluster.kubelet.node import (
    NodeSoftware,
    node_name,
    node_object,
    node_shape,
    ready_status,
    unknown_status,
    unreachable_taints,
)
from localcluster.kubelet.pods import PodAddresses, is_started, running_status
from localcluster.userdata import NodeBootstrap
from shared import labels
from shared.resources import GPU_NVIDIA
from shared.taints import Taint

INSTANCE = Instance(
    instance_id="i-0123456789abcdef0",
    instance_type="g4dn.xlarge",
    zone="us-west-2b",
    state="running",
    private_dns_name="",
    private_ip="10.0.12.34",
    architecture="x86_64",
)
G4DN = InstanceTypeInfo(
    name="g4dn.xlarge",
    vcpus=4,
    memory_mib=16384,
    enis=3,
    ipv4_per_eni=10,
    architectures=("x86_64",),
    nvidia_gpus=1,
)
NOW = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)


def test_name_without_private_dns_follows_ec2_naming() -> None:
    assert node_name(INSTANCE, "us-west-2") == "ip-10-0-12-34.us-west-2.compute.internal"
    assert node_name(INSTANCE, "us-east-1") == "ip-10-0-12-34.ec2.internal"


def test_user_data_labels_cannot_override_cloud_labels() -> None:
    boot = NodeBootstrap(
        labels={labels.INSTANCE_TYPE: "fake", labels.ZONE: "fake", "team": "ml", labels.OS: "windows"},
        taints=(Taint(key="nvidia.com/gpu", effect="NoSchedule"),),
        max_pods=20,
    )
    shape = node_shape(INSTANCE, G4DN, boot, "us-west-2")
    assert shape.labels[labels.INSTANCE_TYPE] == "g4dn.xlarge"
    assert shape.labels[labels.ZONE] == "us-west-2b"
    assert shape.labels[labels.REGION] == "us-west-2"
    assert shape.labels["team"] == "ml"
    assert shape.labels[labels.OS] == "windows"  # the kubelet lets --node-labels override its own
    assert shape.capacity[GPU_NVIDIA] == 1
    assert shape.allocatable[GPU_NVIDIA] == 1
    assert shape.allocatable["pods"] == 20  # maxPods from the user data wins over the ENI formula
    node = node_object(shape)
    assert node["spec"] == {
        "providerID": "aws:///us-west-2b/i-0123456789abcdef0",
        "taints": [{"key": "nvidia.com/gpu", "effect": "NoSchedule"}],
    }


def test_ready_then_unknown_status() -> None:
    shape = node_shape(INSTANCE, G4DN, NodeBootstrap(), "us-west-2")
    status = ready_status(shape, NOW, NOW, NodeSoftware())["status"]
    assert status["allocatable"]["cpu"] == "3920m"
    assert status["allocatable"]["pods"] == "29"
    assert status["nodeInfo"]["kernelVersion"].endswith(".x86_64")
    ready = {c["type"]: c for c in status["conditions"]}["Ready"]
    assert (ready["status"], ready["lastHeartbeatTime"]) == ("True", "2026-11-25T06:00:00Z")
    lost = unknown_status(NOW.replace(minute=5), status["conditions"])["status"]["conditions"]
    assert {c["status"] for c in lost} == {"Unknown"}
    assert {c["reason"] for c in lost} == {"NodeStatusUnknown"}
    assert all(c["lastTransitionTime"] == "2026-11-25T06:05:00Z" for c in lost)
    taints = unreachable_taints([{"key": "a", "effect": "NoSchedule"}], NOW)
    assert [t["key"] for t in unreachable_taints(taints, NOW)].count("node.kubernetes.io/unreachable") == 2


def test_running_status_and_addresses() -> None:
    addresses = PodAddresses()
    first, second = addresses.acquire("a"), addresses.acquire("b")
    assert first != second
    assert addresses.acquire("a") == first
    pod = {
        "metadata": {"uid": "a"},
        "spec": {"hostNetwork": True, "containers": [{"name": "c", "image": "i:1"}]},
    }
    patched = {**pod, **running_status(pod, "10.0.0.1", first, NOW)}
    assert is_started(patched)
    assert not is_started(pod)
    assert patched["status"]["podIP"] == "10.0.0.1"  # host network pods use the node's address
    assert patched["status"]["containerStatuses"][0]["imageID"].startswith("i@sha256:")
