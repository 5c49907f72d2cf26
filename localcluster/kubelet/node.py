"""The Node object a kubelet registers for an EC2 instance, and the statuses it posts.

Pure: plain dicts in the API's JSON shape, built from the instance, its type and its bootstrap
user data. Names, labels, providerID, capacity and allocatable follow what an EKS node shows:
the name is the private DNS name, labels are the kubelet's own plus ``--node-labels`` plus what
the AWS cloud controller adds (type, zone, region), allocatable follows :mod:`shared.eks`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from localcluster.kubelet.instances import Instance, InstanceTypeInfo
from localcluster.userdata import NodeBootstrap
from shared import eks, labels
from shared.resources import GPU_NVIDIA, Resources

Obj = dict[str, Any]

KUBELET_PORT: Final = 10250
UNREACHABLE_TAINT: Final = "node.kubernetes.io/unreachable"
_ARCH: Final = {"x86_64": "amd64", "x86_64_mac": "amd64", "arm64": "arm64", "arm64_mac": "arm64"}


@dataclass(frozen=True)
class NodeSoftware:
    """The versions a node reports in ``status.nodeInfo`` (those of an EKS AL2023 AMI)."""

    kubelet_version: str = "v1.31.4-eks-0f56d01"
    os_image: str = "Amazon Linux 2023.6.20241121"
    kernel_version: str = "6.1.115-126.197.amzn2023"
    container_runtime_version: str = "containerd://1.7.23"
    root_volume_gib: int = 20


@dataclass(frozen=True)
class NodeShape:
    """Everything about a node that does not change while it lives."""

    name: str
    instance: Instance
    region: str
    arch: str
    capacity: Resources
    allocatable: Resources
    labels: dict[str, str]
    taints: list[dict[str, str]]


def timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with second precision, as the API server stores times."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def node_name(instance: Instance, region: str) -> str:
    """The private DNS name (EC2's resource-name-less hostname), as EKS names nodes."""
    if instance.private_dns_name:
        return instance.private_dns_name
    domain = "ec2.internal" if region == "us-east-1" else f"{region}.compute.internal"
    return f"ip-{instance.private_ip.replace('.', '-')}.{domain}"


def kubernetes_arch(instance: Instance, instance_type: InstanceTypeInfo) -> str:
    """``amd64``/``arm64`` from the AMI's architecture, else the type's first architecture."""
    ec2_arch = instance.architecture or next(iter(instance_type.architectures), "x86_64")
    return _ARCH.get(ec2_arch, ec2_arch)


def node_shape(
    instance: Instance,
    instance_type: InstanceTypeInfo,
    bootstrap: NodeBootstrap,
    region: str,
    software: NodeSoftware = NodeSoftware(),
) -> NodeShape:
    """Name, labels, taints, capacity and allocatable of the node for ``instance``."""
    name = node_name(instance, region)
    arch = kubernetes_arch(instance, instance_type)
    pods = bootstrap.max_pods or eks.max_pods(
        instance_type.enis, instance_type.ipv4_per_eni, instance_type.vcpus
    )
    capacity = eks.capacity(
        instance_type.vcpus,
        instance_type.memory_mib,
        pods,
        ephemeral_storage=software.root_volume_gib * eks.GIB,
    ) + Resources({GPU_NVIDIA: instance_type.nvidia_gpus})
    allocatable = eks.allocatable(capacity, pods, instance_type.vcpus)
    node_labels = {
        # The kubelet's own labels; --node-labels may override them, as the kubelet lets it.
        labels.HOSTNAME: name,
        labels.OS: "linux",
        labels.ARCH: arch,
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": arch,
        **bootstrap.labels,
        # Then the cloud controller's, which win.
        labels.INSTANCE_TYPE: instance.instance_type,
        "beta.kubernetes.io/instance-type": instance.instance_type,
        labels.ZONE: instance.zone,
        labels.REGION: region,
        "failure-domain.beta.kubernetes.io/zone": instance.zone,
        "failure-domain.beta.kubernetes.io/region": region,
    }
    return NodeShape(
        name=name,
        instance=instance,
        region=region,
        arch=arch,
        capacity=capacity,
        allocatable=allocatable,
        labels=node_labels,
        taints=[taint.to_api() for taint in bootstrap.taints],
    )


def provider_id(instance: Instance) -> str:
    return f"aws:///{instance.zone}/{instance.instance_id}"


def node_object(shape: NodeShape) -> Obj:
    """The Node the kubelet creates (metadata and spec; status goes through the subresource)."""
    spec: Obj = {"providerID": provider_id(shape.instance)}
    if shape.taints:
        spec["taints"] = shape.taints
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": shape.name,
            "labels": shape.labels,
            "annotations": {
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
        },
        "spec": spec,
    }


def _condition(kind: str, status: str, reason: str, message: str, heartbeat: str, since: str) -> Obj:
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastHeartbeatTime": heartbeat,
        "lastTransitionTime": since,
    }


_HEALTHY_CONDITIONS: Final = (
    ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
)


@dataclass(frozen=True)
class ReportedCondition:
    """A condition a kubelet (or a node agent beside it) reports instead of the healthy one,
    such as ``Ready`` ``False`` when the container runtime is down or ``DiskPressure`` ``True``."""

    status: str
    reason: str
    message: str
    since: datetime  # lastTransitionTime


def ready_status(
    shape: NodeShape,
    now: datetime,
    ready_since: datetime,
    software: NodeSoftware,
    reported: Mapping[str, ReportedCondition] | None = None,
) -> Obj:
    """The full status a kubelet posts (also its heartbeat): healthy, but for ``reported``."""
    beat, since = timestamp(now), timestamp(ready_since)
    reported = reported or {}
    conditions = [
        _condition(kind, status, reason, message, beat, since)
        for kind, status, reason, message in _HEALTHY_CONDITIONS
        if kind not in reported
    ] + [
        _condition(kind, r.status, r.reason, r.message, beat, timestamp(r.since))
        for kind, r in sorted(reported.items())
    ]
    machine = hashlib.sha256(shape.instance.instance_id.encode()).hexdigest()
    uuid = f"ec2{machine[3:8]}-{machine[8:12]}-{machine[12:16]}-{machine[16:20]}-{machine[20:32]}"
    kernel_arch = "x86_64" if shape.arch == "amd64" else "aarch64"
    return {
        "status": {
            "capacity": {**shape.capacity.to_api(), "hugepages-1Gi": "0", "hugepages-2Mi": "0"},
            "allocatable": {**shape.allocatable.to_api(), "hugepages-1Gi": "0", "hugepages-2Mi": "0"},
            "conditions": conditions,
            "addresses": [
                {"type": "InternalIP", "address": shape.instance.private_ip},
                {"type": "InternalDNS", "address": shape.name},
                {"type": "Hostname", "address": shape.name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": KUBELET_PORT}},
            "nodeInfo": {
                "machineID": machine[:32],
                "systemUUID": uuid,
                "bootID": machine[32:64],
                "kernelVersion": f"{software.kernel_version}.{kernel_arch}",
                "osImage": software.os_image,
                "containerRuntimeVersion": software.container_runtime_version,
                "kubeletVersion": software.kubelet_version,
                "kubeProxyVersion": software.kubelet_version,
                "operatingSystem": "linux",
                "architecture": shape.arch,
            },
        }
    }


def unknown_status(now: datetime, conditions: list[Obj] | None) -> Obj:
    """What the node lifecycle controller writes when the kubelet stops posting status."""
    since = timestamp(now)
    message = "Kubelet stopped posting node status."
    out: list[Obj] = []
    for condition in conditions or [{"type": "Ready"}]:
        updated = dict(condition)
        updated.update(status="Unknown", reason="NodeStatusUnknown", message=message)
        updated["lastTransitionTime"] = since
        updated.setdefault("lastHeartbeatTime", since)
        out.append(updated)
    return {"status": {"conditions": out}}


def unreachable_taints(existing: list[Obj] | None, now: datetime) -> list[Obj]:
    """The node's taints plus ``node.kubernetes.io/unreachable`` (NoSchedule and NoExecute)."""
    kept = [t for t in existing or [] if t.get("key") != UNREACHABLE_TAINT]
    return [
        *kept,
        {"key": UNREACHABLE_TAINT, "effect": "NoSchedule"},
        {"key": UNREACHABLE_TAINT, "effect": "NoExecute", "timeAdded": timestamp(now)},
    ]
