"""EKS max pods, kube-reserved and allocatable against the values EKS publishes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.eks import (
    GIB,
    MIB,
    allocatable,
    capacity,
    eni_max_pods,
    kube_reserved,
    kube_reserved_cpu,
    kube_reserved_memory,
    max_pods,
)
from shared.resources import CPU, EPHEMERAL_STORAGE, MEMORY, PODS, Resources


@pytest.mark.parametrize(
    ("enis", "ips", "vcpus", "uncapped", "capped"),
    [
        # Values of amazon-eks-ami's eni-max-pods.txt (uncapped) and nodeadm (capped).
        (3, 10, 2, 29, 29),  # m5.large
        (4, 15, 4, 58, 58),  # m5.xlarge
        (4, 15, 8, 58, 58),  # m5.2xlarge
        (8, 30, 16, 234, 110),  # m5.4xlarge
        (15, 50, 72, 737, 250),  # c5.18xlarge
        (2, 2, 1, 4, 4),  # t3.nano
        (3, 12, 2, 35, 35),  # t3.medium
    ],
)
def test_max_pods_matches_published_values(
    enis: int, ips: int, vcpus: int, uncapped: int, capped: int
) -> None:
    assert eni_max_pods(enis, ips) == uncapped
    assert max_pods(enis, ips) == uncapped
    assert max_pods(enis, ips, vcpus) == capped


def test_max_pods_rejects_impossible_network() -> None:
    with pytest.raises(ValueError, match="ENI"):
        max_pods(0, 10)


@pytest.mark.parametrize(
    ("vcpus", "millicores"),
    [(1, 60), (2, 70), (4, 80), (8, 90), (16, 110), (48, 190), (72, 250), (96, 310), (5, 82)],
)
def test_kube_reserved_cpu(vcpus: int, millicores: int) -> None:
    assert kube_reserved_cpu(vcpus) == millicores


def test_kube_reserved_memory_m5_large() -> None:
    assert kube_reserved_memory(29) == 574 * MIB
    assert kube_reserved(2, 29) == Resources(
        {CPU: 70, MEMORY: 574 * MIB, EPHEMERAL_STORAGE: GIB},
    )


def test_allocatable_m5_large() -> None:
    cap = capacity(vcpus=2, memory_mib=8192, max_pods=29, ephemeral_storage=20 * GIB)
    alloc = allocatable(cap, max_pods=29, vcpus=2)
    assert alloc[CPU] == 1930
    assert alloc[MEMORY] == (8192 - 574 - 100) * MIB
    assert alloc[PODS] == 29
    assert alloc[EPHEMERAL_STORAGE] == 20 * GIB - GIB - 2 * GIB
    assert alloc.to_api()["cpu"] == "1930m"


def test_allocatable_m5_xlarge_and_system_reserved() -> None:
    cap = capacity(vcpus=4, memory_mib=16384, max_pods=58)
    alloc = allocatable(cap, max_pods=58, vcpus=4, system_reserved=Resources({CPU: 100}))
    assert alloc[CPU] == 4000 - 80 - 100
    assert alloc[MEMORY] == (16384 - (58 * 11 + 255) - 100) * MIB
    assert EPHEMERAL_STORAGE not in alloc  # no disk known: no reservation either


def test_allocatable_c5_18xlarge() -> None:
    pods = max_pods(15, 50, 72)
    alloc = allocatable(capacity(72, 147456, pods), max_pods=pods, vcpus=72)
    assert alloc[CPU] == 71750
    assert alloc[MEMORY] == (147456 - (250 * 11 + 255) - 100) * MIB
    assert alloc[PODS] == 250


def test_allocatable_custom_eviction_threshold() -> None:
    cap = capacity(2, 8192, 29)
    assert allocatable(cap, 29, 2)[MEMORY] - allocatable(cap, 29, 2, eviction_hard_memory=500 * MIB)[
        MEMORY
    ] == (400 * MIB)


@given(
    vcpus=st.integers(min_value=1, max_value=448),
    memory_mib=st.integers(min_value=512, max_value=24 * 2**20),
    enis=st.integers(min_value=1, max_value=16),
    ips=st.integers(min_value=1, max_value=50),
)
def test_allocatable_never_exceeds_capacity(vcpus: int, memory_mib: int, enis: int, ips: int) -> None:
    pods = max_pods(enis, ips, vcpus)
    cap = capacity(vcpus, memory_mib, pods, ephemeral_storage=20 * GIB)
    alloc = allocatable(cap, pods, vcpus)
    assert alloc.fits_in(cap)
    assert all(amount >= 0 for amount in alloc.values())
    assert alloc[PODS] == pods
    # Reserved cpu grows with cores but stays a small share of them.
    assert 0 < cap[CPU] - alloc[CPU] <= max(60, cap[CPU] * 6 // 100)


@given(st.integers(min_value=0, max_value=500), st.integers(min_value=0, max_value=500))
def test_kube_reserved_cpu_is_monotonic(a: int, b: int) -> None:
    low, high = sorted((a, b))
    assert kube_reserved_cpu(low) <= kube_reserved_cpu(high)
