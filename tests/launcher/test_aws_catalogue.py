"""The instance catalogue from moto's DescribeInstanceTypes, offerings and prices."""

from __future__ import annotations

import asyncio

import pytest

from launcher.aws import testing
from launcher.aws.catalogue import CatalogueSettings, InstanceCatalogue, build_catalogue, parse_instance_type
from launcher.aws.pricing import bundled_prices
from launcher.aws.session import AWSClients
from launcher.model import InstanceType
from localcluster.ec2 import MotoEC2
from shared import eks, labels
from shared.resources import CPU, GPU_NVIDIA, MEMORY, PODS

SAMPLE = ("m5.large", "m6g.large", "c5.xlarge", "g4dn.xlarge", "t3.nano", "m5.metal", "mac1.metal")


async def _catalogue(ec2: MotoEC2, names: tuple[str, ...] | None) -> tuple[list[InstanceType], str]:
    async with AWSClients(testing.moto_settings(ec2.endpoint)) as clients:
        catalogue = InstanceCatalogue(clients, CatalogueSettings(instance_types=names))
        types = await catalogue.instance_types()
        assert catalogue.cached() is types
        return types, catalogue.on_demand_source


async def test_catalogue_labels_allocatable_and_offerings(ec2: MotoEC2) -> None:
    types, source = await _catalogue(ec2, SAMPLE)
    by_name = {t.name: t for t in types}
    # Mac types run no Linux kubelet; every other sampled type is there.
    assert set(by_name) == set(SAMPLE) - {"mac1.metal"}
    assert source == "bundled-table"

    m5 = by_name["m5.large"]
    assert dict(m5.labels) == {
        labels.INSTANCE_TYPE: "m5.large",
        labels.INSTANCE_FAMILY: "m5",
        labels.INSTANCE_SIZE: "large",
        labels.INSTANCE_CATEGORY: "m",
        labels.INSTANCE_GENERATION: "5",
        labels.INSTANCE_CPU: "2",
        labels.INSTANCE_MEMORY: "8192",
        labels.ARCH: "amd64",
        labels.OS: "linux",
    }
    assert m5.capacity.amount(PODS) == 29
    assert m5.allocatable.amount(PODS) == 29
    assert m5.capacity.amount(CPU) == 2000
    assert m5.allocatable.amount(CPU) == 2000 - eks.kube_reserved_cpu(2)
    assert (
        m5.allocatable.amount(MEMORY)
        == 8192 * eks.MIB - eks.kube_reserved_memory(29) - eks.EVICTION_HARD_MEMORY
    )
    on_demand = [o for o in m5.offerings if o.capacity_type == "on-demand"]
    spot = [o for o in m5.offerings if o.capacity_type == "spot"]
    assert {o.zone for o in on_demand} >= {"us-east-1a", "us-east-1b", "us-east-1c"}
    assert all(o.price == bundled_prices()["m5.large"] for o in on_demand)
    assert spot
    assert all(o.price > 0 for o in spot)

    assert by_name["m6g.large"].labels[labels.ARCH] == "arm64"
    assert by_name["m6g.large"].architecture == "arm64"
    assert by_name["g4dn.xlarge"].capacity.amount(GPU_NVIDIA) == 1
    assert by_name["g4dn.xlarge"].allocatable.amount(GPU_NVIDIA) == 1
    # Bare metal is kept; a large type's pods are capped at 250 as nodeadm does.
    assert by_name["m5.metal"].capacity.amount(PODS) == 250
    assert by_name["t3.nano"].capacity.amount(PODS) == 4


def test_types_missing_from_every_price_source_are_estimated() -> None:
    raw = {
        "InstanceType": "zz9.large",
        "SupportedUsageClasses": ["on-demand"],
        "ProcessorInfo": {"SupportedArchitectures": ["x86_64"]},
        "VCpuInfo": {"DefaultVCpus": 2},
        "MemoryInfo": {"SizeInMiB": 4096},
        "NetworkInfo": {"MaximumNetworkInterfaces": 2, "Ipv4AddressesPerInterface": 4},
    }
    (only,) = build_catalogue([raw], {"zz9.large": ["us-east-1a"]}, {}, {})
    assert only.offerings[0].price > 0
    assert [o.capacity_type for o in only.offerings] == ["on-demand"]
    assert only.labels[labels.INSTANCE_GENERATION] == "9"
    assert only.capacity.amount(PODS) == eks.max_pods(2, 4, 2)


def test_unusable_types_are_skipped() -> None:
    base = {
        "InstanceType": "x.large",
        "VCpuInfo": {"DefaultVCpus": 2},
        "MemoryInfo": {"SizeInMiB": 4096},
        "NetworkInfo": {"MaximumNetworkInterfaces": 2, "Ipv4AddressesPerInterface": 4},
    }
    assert parse_instance_type({**base, "ProcessorInfo": {"SupportedArchitectures": ["x86_64_mac"]}}) is None
    assert parse_instance_type({**base, "ProcessorInfo": {"SupportedArchitectures": ["i386", "x86_64"]}})
    info = parse_instance_type({**base, "ProcessorInfo": {"SupportedArchitectures": ["x86_64"]}})
    assert info is not None
    # Not offered in any zone: not in the catalogue.
    assert (
        build_catalogue([base | {"ProcessorInfo": {"SupportedArchitectures": ["x86_64"]}}], {}, {}, {}) == []
    )


def test_families_with_dashes_and_no_generation() -> None:
    raw = {
        "InstanceType": "u-6tb1.metal",
        "ProcessorInfo": {"SupportedArchitectures": ["x86_64"]},
        "VCpuInfo": {"DefaultVCpus": 448},
        "MemoryInfo": {"SizeInMiB": 6291456},
        "NetworkInfo": {"MaximumNetworkInterfaces": 15, "Ipv4AddressesPerInterface": 50},
    }
    info = parse_instance_type(raw)
    assert info is not None
    assert (info.family, info.size, info.category, info.generation) == ("u-6tb1", "metal", "u", "6")


@pytest.mark.slow
async def test_full_catalogue_from_moto(ec2: MotoEC2) -> None:
    types, _ = await _catalogue(ec2, None)
    assert len(types) > 700
    assert all(o.price > 0 for t in types for o in t.offerings)
    assert {t.architecture for t in types} == {"amd64", "arm64"}
    assert all(t.allocatable.amount(PODS) == t.capacity.amount(PODS) > 0 for t in types)


async def test_background_refresh_fills_and_renews_the_cache(ec2: MotoEC2) -> None:
    settings = CatalogueSettings(instance_types=("m5.large",), refresh_period=0.05, spot_refresh_period=0.05)
    async with AWSClients(testing.moto_settings(ec2.endpoint)) as clients:
        catalogue = InstanceCatalogue(clients, settings)
        catalogue.start()
        try:
            async with asyncio.timeout(10):
                await catalogue.wait_refreshed()
                first = catalogue.refreshed_at
                await catalogue.wait_refreshed(first)
                assert catalogue.refreshed_at > first
        finally:
            await catalogue.stop()
    assert [t.name for t in catalogue.cached()] == ["m5.large"]


async def test_background_refresh_after_a_full_refresh_waits_for_the_period(ec2: MotoEC2) -> None:
    """A new leader refreshes, then starts the loop: that must not fetch everything again."""
    settings = CatalogueSettings(instance_types=("m5.large",), refresh_period=3600, spot_refresh_period=3600)
    async with AWSClients(testing.moto_settings(ec2.endpoint)) as clients:
        catalogue = InstanceCatalogue(clients, settings)
        await catalogue.refresh()
        fully = catalogue.fully_refreshed_at
        assert fully is not None
        catalogue.start()
        try:
            async with asyncio.timeout(10):
                await catalogue.wait_refreshed(catalogue.refreshed_at)  # the loop's first pass
        finally:
            await catalogue.stop()
        assert catalogue.fully_refreshed_at == fully


async def test_the_catalogue_is_built_off_the_event_loop(
    ec2: MotoEC2, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Building ~1,400 types takes long enough to stall lease renewal if done on the loop."""
    import threading

    from launcher.aws import catalogue as module

    threads: list[int] = []

    def recording_build(*args: object) -> list[InstanceType]:
        threads.append(threading.get_ident())
        return build_catalogue(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(module, "build_catalogue", recording_build)
    types, _ = await _catalogue(ec2, SAMPLE)
    assert types
    assert threads
    assert threading.get_ident() not in threads
