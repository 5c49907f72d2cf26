"""Small hand-made catalogues, pools and pods for the planner's tests."""

from __future__ import annotations

from typing import Any

from launcher.model import InstanceType, Offering
from launcher.planner import PoolView
from shared import labels
from shared.api.nodepool import NodePool
from shared.demand import PodDemand
from shared.requirements import Requirements
from shared.resources import Resources
from shared.taints import Toleration

GI = 2**30
ZONES = ("us-east-1a", "us-east-1b")


def instance_type(name: str, cpu: int, memory_gi: int, price: float, arch: str = "amd64") -> InstanceType:
    family, size = name.split(".")
    capacity = Resources(cpu=cpu * 1000, memory=memory_gi * GI, pods=58)
    allocatable = Resources(cpu=cpu * 1000 - 100, memory=memory_gi * GI - GI // 2, pods=58)
    return InstanceType(
        name=name,
        labels={
            labels.INSTANCE_TYPE: name,
            labels.ARCH: arch,
            labels.OS: "linux",
            labels.INSTANCE_FAMILY: family,
            labels.INSTANCE_SIZE: size,
            labels.INSTANCE_CPU: str(cpu),
        },
        capacity=capacity,
        allocatable=allocatable,
        offerings=tuple(Offering(z, "on-demand", price) for z in ZONES)
        + tuple(Offering(z, "spot", round(price * 0.35, 4)) for z in ZONES),
    )


def plain_instance_type(
    name: str,
    cpu: int,
    memory_gi: int,
    price: float,
    *,
    zones: tuple[str, ...] = ("us-east-1a",),
    pods: int = 110,
) -> InstanceType:
    """An on-demand amd64 type whose allocatable is its whole capacity: for tests where only size counts."""
    resources = Resources(cpu=cpu * 1000, memory=memory_gi * GI, pods=pods)
    return InstanceType(
        name=name,
        labels={labels.INSTANCE_TYPE: name, labels.ARCH: "amd64", labels.OS: "linux"},
        capacity=resources,
        allocatable=resources,
        offerings=tuple(Offering(zone, "on-demand", price) for zone in zones),
    )


CATALOGUE = [
    instance_type("t3.micro", 2, 1, 0.0104),
    instance_type("m5.large", 2, 8, 0.096),
    instance_type("m5.xlarge", 4, 16, 0.192),
    instance_type("m5.2xlarge", 8, 32, 0.384),
    instance_type("m5.4xlarge", 16, 64, 0.768),
    instance_type("c5.xlarge", 4, 8, 0.17),
    instance_type("c5.2xlarge", 8, 16, 0.34),
    instance_type("r5.xlarge", 4, 32, 0.252),
    instance_type("m6g.xlarge", 4, 16, 0.154, arch="arm64"),
]


def nodepool(
    name: str = "default",
    *,
    requirements: list[dict[str, Any]] | None = None,
    pool_labels: dict[str, str] | None = None,
    taints: list[dict[str, str]] | None = None,
    limits: dict[str, str] | None = None,
    weight: int | None = None,
) -> PoolView:
    spec: dict[str, Any] = {
        "template": {
            "metadata": {"labels": pool_labels or {}},
            "spec": {
                "nodeClassRef": {"group": "jitnode.io", "kind": "EC2NodeClass", "name": "default"},
                "requirements": requirements or [],
                "taints": taints or [],
            },
        }
    }
    if limits:
        spec["limits"] = limits
    if weight is not None:
        spec["weight"] = weight
    pool = NodePool.from_api(
        {"apiVersion": "jitnode.io/v1", "kind": "NodePool", "metadata": {"name": name}, "spec": spec}
    )
    return PoolView(pool, pool.requirements())


def pod(
    uid: str,
    cpu: str = "1",
    memory: str = "1Gi",
    *,
    selector: dict[str, str] | None = None,
    alternatives: tuple[Requirements, ...] | None = None,
    tolerations: tuple[Toleration, ...] = (),
    reason: str = "unschedulable",
    first_seen: float = 0.0,
    exclusive: str | None = None,
    exclusive_zone: bool = False,
) -> PodDemand:
    requests = Resources.parse({"cpu": cpu, "memory": memory}) + Resources(pods=1)
    return PodDemand(
        uid=uid,
        namespace="default",
        name=uid,
        requests=requests,
        requirements=alternatives or (Requirements.from_labels(selector or {}),),
        tolerations=tolerations,
        priority=0,
        owner_kind=None,
        owner_name=None,
        first_seen=first_seen,
        reason=reason,  # type: ignore[arg-type]
        exclusive=exclusive,
        exclusive_zone=exclusive_zone,
    )
