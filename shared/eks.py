"""What an EKS node keeps for itself: max pods, kube-reserved and the eviction threshold.

The EKS-optimized AMIs (AL2's ``bootstrap.sh``, AL2023's ``nodeadm``) configure the kubelet with
formulas of the instance type, so a node's allocatable is known before it boots. The launcher's
catalogue predicts allocatable with these functions and the local cluster's kubelets report
allocatable with the same functions, so a prediction and the node it describes always agree.

Formulas (as in ``amazon-eks-ami``):

- max pods with the VPC CNI (no prefix delegation): ``ENIs * (IPv4 per ENI - 1) + 2``, the
  value of ``eni-max-pods.txt``; nodeadm caps it at 110 on types with fewer than 30 vCPUs and at
  250 on larger ones;
- kube-reserved cpu: 6% of the first core, 1% of the second, 0.5% of the third and fourth and
  0.25% of every core above four, each range truncated to whole millicores;
- kube-reserved memory: ``11 MiB * max pods + 255 MiB``; ephemeral-storage: 1 GiB;
- eviction-hard: ``memory.available<100Mi`` and ``nodefs.available<10%``;
- no system-reserved by default (callers may pass one).

Capacity is what the kubelet reports; on real hardware memory capacity is a little below the
instance type's nominal size (the kernel keeps some), which callers may subtract beforehand.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Final

from shared.resources import CPU, EMPTY, EPHEMERAL_STORAGE, MEMORY, PODS, Resources

MIB: Final = 2**20
GIB: Final = 2**30

# nodeadm's caps on max pods: small types are held to the upstream default of 110.
SMALL_INSTANCE_MAX_PODS: Final = 110
LARGE_INSTANCE_MAX_PODS: Final = 250
LARGE_INSTANCE_MIN_VCPUS: Final = 30

# (start millicore, end millicore or None for unbounded, fraction reserved) per cpu range.
_CPU_RESERVED_RANGES: Final = (
    (0, 1000, Fraction(6, 100)),
    (1000, 2000, Fraction(1, 100)),
    (2000, 4000, Fraction(5, 1000)),
    (4000, None, Fraction(25, 10000)),
)
MEMORY_RESERVED_PER_POD: Final = 11 * MIB
MEMORY_RESERVED_BASE: Final = 255 * MIB
EPHEMERAL_STORAGE_RESERVED: Final = 1 * GIB
EVICTION_HARD_MEMORY: Final = 100 * MIB
EVICTION_HARD_NODEFS: Final = Fraction(10, 100)


def eni_max_pods(enis: int, ipv4_per_eni: int) -> int:
    """Pods the VPC CNI can address: one IP per ENI is the ENI's own, plus two host-network pods."""
    if enis < 1 or ipv4_per_eni < 1:
        raise ValueError(
            f"an instance type needs at least one ENI and one IP per ENI, got {enis}, {ipv4_per_eni}"
        )
    return enis * (ipv4_per_eni - 1) + 2


def max_pods(enis: int, ipv4_per_eni: int, vcpus: int | None = None) -> int:
    """Max pods as the kubelet is configured on EKS.

    Without ``vcpus`` this is the uncapped ``eni-max-pods.txt`` value; with it, nodeadm's cap
    (110 below 30 vCPUs, 250 from 30) applies as well.
    """
    pods = eni_max_pods(enis, ipv4_per_eni)
    if vcpus is None:
        return pods
    cap = SMALL_INSTANCE_MAX_PODS if vcpus < LARGE_INSTANCE_MIN_VCPUS else LARGE_INSTANCE_MAX_PODS
    return min(pods, cap)


def kube_reserved_cpu(vcpus: int) -> int:
    """Millicores kept for the kubelet and container runtime on a node with ``vcpus`` cores."""
    if vcpus < 0:
        raise ValueError(f"vcpus must not be negative, got {vcpus}")
    total = vcpus * 1000
    reserved = 0
    for start, end, fraction in _CPU_RESERVED_RANGES:
        if total <= start:
            break
        upper = total if end is None else min(total, end)
        reserved += int((upper - start) * fraction)
    return reserved


def kube_reserved_memory(max_pods: int) -> int:
    """Bytes kept for the kubelet: grows with the pods it may have to manage."""
    if max_pods < 0:
        raise ValueError(f"max_pods must not be negative, got {max_pods}")
    return MEMORY_RESERVED_PER_POD * max_pods + MEMORY_RESERVED_BASE


def kube_reserved(vcpus: int, max_pods: int) -> Resources:
    """The ``kubeReserved`` an EKS AMI writes into the kubelet config."""
    return Resources(
        {
            CPU: kube_reserved_cpu(vcpus),
            MEMORY: kube_reserved_memory(max_pods),
            EPHEMERAL_STORAGE: EPHEMERAL_STORAGE_RESERVED,
        }
    )


def eviction_hard(capacity: Resources, eviction_hard_memory: int = EVICTION_HARD_MEMORY) -> Resources:
    """The hard eviction thresholds as amounts: memory, and 10% of the node's filesystem."""
    nodefs = capacity.amount(EPHEMERAL_STORAGE)
    return Resources(
        {
            MEMORY: eviction_hard_memory,
            EPHEMERAL_STORAGE: int(nodefs * EVICTION_HARD_NODEFS),
        }
    )


def allocatable(
    capacity: Resources,
    max_pods: int,
    vcpus: int,
    eviction_hard_memory: int = EVICTION_HARD_MEMORY,
    system_reserved: Resources = EMPTY,
) -> Resources:
    """What the scheduler may place on the node: capacity minus reservations and eviction.

    ``capacity`` needs ``cpu`` and ``memory`` (and ``ephemeral-storage`` when known); ``pods`` is
    set to ``max_pods``. Reservations on a resource the node lacks are ignored, and nothing goes
    below zero, as the kubelet clamps.
    """
    reserved = (
        kube_reserved(vcpus, max_pods) + system_reserved + eviction_hard(capacity, eviction_hard_memory)
    )
    present = Resources({name: amount for name, amount in reserved.items() if capacity.amount(name)})
    out = (capacity - present).clamp_zero()
    return Resources({**out, PODS: max_pods})


def capacity(vcpus: int, memory_mib: int, max_pods: int, ephemeral_storage: int = 0) -> Resources:
    """The capacity a kubelet reports for an instance type (``ephemeral_storage`` in bytes)."""
    return Resources(
        {
            CPU: vcpus * 1000,
            MEMORY: memory_mib * MIB,
            PODS: max_pods,
            EPHEMERAL_STORAGE: ephemeral_storage,
        }
    )
