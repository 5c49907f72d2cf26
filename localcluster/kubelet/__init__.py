"""Simulated kubelets: EC2 instances of the cluster join as Nodes and run their pods."""

from localcluster.kubelet.instances import EC2Inventory, Instance, InstanceTypeInfo
from localcluster.kubelet.kubelets import FailToJoin, KubeletConfig, Kubelets, MemberState
from localcluster.kubelet.node import NodeSoftware

__all__ = [
    "EC2Inventory",
    "FailToJoin",
    "Instance",
    "InstanceTypeInfo",
    "KubeletConfig",
    "Kubelets",
    "MemberState",
    "NodeSoftware",
]
