"""Hibernated warm pools, the pure parts: which types can hibernate, the template variant, and
which warm instances are hibernated rather than stopped."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from launcher.aws import testing
from launcher.aws.catalogue import build_catalogue, parse_instance_type
from launcher.aws.hibernation import (
    RAM_BUCKETS,
    hibernation_ram_gib,
    hibernation_variant,
    is_configured,
    ram_bucket_gib,
)
from launcher.aws.nodeclass import AMI, ResolvedNodeClass, Subnet
from launcher.aws.offline import offline_catalogue
from launcher.aws.templates import template_data, template_name
from launcher.model import Instance
from launcher.warmpool import steps
from launcher.warmpool.sizing import hibernating_types, warm_requirements, warm_types
from shared import labels
from shared.api.nodeclass import EC2NodeClass
from shared.api.warmpool import HIBERNATED, STOPPED, WarmPoolSpec
from tests.launcher.planner_fixtures import CATALOGUE, nodepool
from tests.launcher.test_warmpool import NOW, claim, instance

HIBERNATING = WarmPoolSpec(size=1, state=HIBERNATED)


def _resolved(nodeclass: EC2NodeClass) -> ResolvedNodeClass:
    return ResolvedNodeClass(
        nodeclass=nodeclass,
        ami_family="AL2023",
        amis={"amd64": AMI("ami-1", "amd64")},
        subnets=(Subnet("subnet-1", "us-east-1a"),),
        security_groups=("sg-1",),
        instance_profile="profile",
    )


def _data(**spec: Any) -> tuple[dict[str, Any], EC2NodeClass]:
    nodeclass = testing.nodeclass(**spec)
    data = template_data(_resolved(nodeclass), testing.nodepool(), "amd64", testing.cluster_info("c"))
    return data, nodeclass


def _raw_type(name: str, memory_mib: int, supported: bool | None) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "InstanceType": name,
        "ProcessorInfo": {"SupportedArchitectures": ["x86_64"]},
        "VCpuInfo": {"DefaultVCpus": 4},
        "MemoryInfo": {"SizeInMiB": memory_mib},
        "NetworkInfo": {"MaximumNetworkInterfaces": 4, "Ipv4AddressesPerInterface": 15},
        "SupportedUsageClasses": ["on-demand"],
    }
    if supported is not None:
        raw["HibernationSupported"] = supported
    return raw


# The catalogue ---------------------------------------------------------------------------


def test_a_type_can_hibernate_when_ec2_says_so_and_its_ram_is_within_150_gib() -> None:
    raw = [
        _raw_type("m5.xlarge", 16384, True),
        _raw_type("m5.12xlarge", 196608, True),  # 192 GiB: too much RAM
        _raw_type("x1.large", 16384, False),
        _raw_type("old.large", 16384, None),  # not said: no, conservatively
    ]
    info = parse_instance_type(raw[0])
    assert info is not None
    assert info.hibernation_supported
    catalogue = {
        t.name: t for t in build_catalogue(raw, {r["InstanceType"]: ["us-east-1a"] for r in raw}, {}, {})
    }
    assert {n for n, t in catalogue.items() if t.can_hibernate} == {"m5.xlarge"}
    assert catalogue["m5.xlarge"].memory_mib == 16384


def test_the_offline_catalogue_knows_hibernation_from_motos_data() -> None:
    catalogue = {t.name: t for t in offline_catalogue()}
    assert catalogue["m5.large"].can_hibernate
    assert catalogue["c5.xlarge"].can_hibernate
    assert not catalogue["r5.8xlarge"].can_hibernate  # 256 GiB


def test_hibernating_types_filter_the_catalogue_and_warm_types_choose_among_them() -> None:
    types = {t.name: t for t in CATALOGUE}
    able = {"m5.large", "m5.xlarge", "m5.2xlarge"}
    marked = {n: dataclasses.replace(t, can_hibernate=n in able) for n, t in types.items()}
    assert set(hibernating_types(marked)) == able
    chosen = warm_types(
        warm_requirements(nodepool().requirements),
        hibernating_types(marked),
        recent_types=["c5.xlarge", "m5.xlarge"],  # c5.xlarge cannot hibernate: not chosen
        existing_types=[],
        count=2,
        target=2,
    )
    assert [c[0] for c in chosen] == ["m5.xlarge", "m5.xlarge"]
    assert all(set(c) <= able for c in chosen)
    assert hibernating_types(types) == {}  # the conservative default: no type can


# The template variant ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("memory_mib", "bucket"),
    [(512, 1), (1024, 1), (3840, 4), (8192, 8), (16384, 16), (98304, 128), (147456, 150), (153600, 150)],
)
def test_ram_is_bucketed_to_powers_of_two_up_to_150_gib(memory_mib: int, bucket: int) -> None:
    assert ram_bucket_gib(memory_mib) == bucket
    assert bucket in RAM_BUCKETS


def test_the_variant_needs_the_largest_ram_of_the_fills_types() -> None:
    assert hibernation_ram_gib([8192, 16384, 4096]) == 16
    assert hibernation_ram_gib([]) is None
    assert len(RAM_BUCKETS) == 9  # at most nine variants of a template


def test_the_variant_configures_hibernation_and_grows_and_encrypts_the_default_root_volume() -> None:
    data, nodeclass = _data()
    variant = hibernation_variant(data, nodeclass, 16)
    assert variant["HibernationOptions"] == {"Configured": True}
    assert variant["BlockDeviceMappings"] == [
        {"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 36, "VolumeType": "gp3", "Encrypted": True}}
    ]
    # Everything else is the plain template's; the plain template is left as it was.
    assert {k: v for k, v in variant.items() if k not in ("HibernationOptions", "BlockDeviceMappings")} == {
        k: v for k, v in data.items() if k != "BlockDeviceMappings"
    }
    assert "HibernationOptions" not in data
    assert data["BlockDeviceMappings"][0]["Ebs"]["VolumeSize"] == 20
    # A content hash: each RAM bucket is its own template, the same bucket the same one.
    names = {template_name("c", hibernation_variant(data, nodeclass, gib)) for gib in RAM_BUCKETS}
    assert len(names) == len(RAM_BUCKETS)
    assert template_name("c", variant) == template_name("c", hibernation_variant(data, nodeclass, 16))
    assert template_name("c", variant) != template_name("c", data)


def test_the_variant_grows_the_nodeclasses_root_volume_and_leaves_the_others() -> None:
    data, nodeclass = _data(
        blockDeviceMappings=[
            {"deviceName": "/dev/xvdb", "ebs": {"volumeSize": "100Gi", "volumeType": "gp3"}},
            {
                "deviceName": "/dev/sda1",
                "rootVolume": True,
                "ebs": {"volumeSize": "50Gi", "kmsKeyID": "key-1"},
            },
        ]
    )
    variant = hibernation_variant(data, nodeclass, 32)
    assert variant["BlockDeviceMappings"] == [
        {"DeviceName": "/dev/xvdb", "Ebs": {"VolumeSize": 100, "VolumeType": "gp3"}},
        {"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 82, "KmsKeyId": "key-1", "Encrypted": True}},
    ]


def test_a_launched_instance_is_known_ready_for_hibernation_by_its_tag_or_its_options() -> None:
    assert is_configured({"jitnode.io/hibernation": "configured"})
    assert is_configured({}, {"HibernationOptions": {"Configured": True}})
    assert not is_configured({}, {"HibernationOptions": {"Configured": False}})
    assert not is_configured({labels.TAG_NODECLAIM: "a"})


# Which warm instances hibernate ---------------------------------------------------------------


def _instance(state: str, configured: bool) -> Instance:
    return instance(state, hibernation_configured=configured)


def test_only_an_instance_launched_for_hibernation_is_hibernated_the_others_parked_stopped() -> None:
    joined = claim(initialized=True)
    assert steps.next_warm_step(joined, _instance("running", True), None, [], HIBERNATING) == steps.Stop(
        "i-warm", True
    )
    # Not launched for it (a fill on a type that cannot hibernate, a node returned on scale-in):
    # stopped plainly, up front, and parked Stopped with the reason on its Warm condition.
    assert steps.next_warm_step(joined, _instance("running", False), None, [], HIBERNATING) == steps.Stop(
        "i-warm", False
    )
    step = steps.next_warm_step(joined, _instance("stopped", False), None, [], HIBERNATING)
    assert isinstance(step, steps.Park)
    assert step.state == STOPPED
    assert "not launched for hibernation" in step.message
    # A Stopped pool never hibernates, configured or not.
    stopped_pool = WarmPoolSpec(size=1, state=STOPPED)
    assert steps.next_warm_step(joined, _instance("running", True), None, [], stopped_pool) == steps.Stop(
        "i-warm", False
    )
    assert steps.next_warm_step(joined, _instance("stopped", True), None, [], stopped_pool) == steps.Park(
        STOPPED
    )


def test_after_a_restart_a_refused_hibernation_stays_parked_stopped() -> None:
    refused = claim(initialized=True, warm_condition=("True", STOPPED, NOW))
    assert steps.next_warm_step(refused, _instance("stopped", True), None, [], HIBERNATING) == steps.Wait(
        "parked"
    )
