"""moto in a child process: seeded like the in-process double, reachable at once, gone on close."""

from __future__ import annotations

import asyncio
import socket
from typing import Any
from urllib.parse import urlsplit

import boto3
import botocore.loaders
import botocore.session
import pytest

from localcluster.cluster import LocalCluster
from localcluster.ec2 import ZONES, eks_ami_parameter
from localcluster.motoprocess import MotoProcess, MotoProcessError, share_botocore_loader


def test_sessions_share_one_botocore_loader_once_patched(monkeypatch: pytest.MonkeyPatch) -> None:
    # The test process must not keep the patch: monkeypatch puts the original back afterwards.
    monkeypatch.setattr(botocore.session, "create_loader", botocore.loaders.create_loader)
    loader = "data_loader"
    assert botocore.session.Session().get_component(loader) is not botocore.session.Session().get_component(
        loader
    )
    share_botocore_loader()
    share_botocore_loader()  # twice is the same as once
    assert botocore.session.Session().get_component(loader) is botocore.session.Session().get_component(
        loader
    )


def _port_open(endpoint: str) -> bool:
    address = urlsplit(endpoint)
    try:
        with socket.create_connection((address.hostname or "", address.port or 0), timeout=1):
            return True
    except OSError:
        return False


@pytest.mark.slow
async def test_child_serves_the_seeded_account_then_exits_when_closed() -> None:
    moto = MotoProcess.spawn(cluster="blue")
    try:
        # The endpoint is known before moto has started: the parent owns the listening socket.
        assert moto.endpoint.startswith("http://127.0.0.1:")
        assert _port_open(moto.endpoint)
        network = await moto.ready()
        assert network.cluster == "blue"
        assert sorted(network.subnets) == list(ZONES)

        def described() -> tuple[dict[str, Any], dict[str, Any]]:
            kwargs = moto.client_kwargs()
            subnets = boto3.client("ec2", **kwargs).describe_subnets(SubnetIds=list(network.subnets.values()))
            parameter = boto3.client("ssm", **kwargs).get_parameter(Name=eks_ami_parameter("arm64"))
            return subnets, parameter

        subnets, parameter = await asyncio.to_thread(described)
        assert {s["AvailabilityZone"]: s["SubnetId"] for s in subnets["Subnets"]} == network.subnets
        assert parameter["Parameter"]["Value"] == network.amis["arm64"]
    finally:
        await moto.stop()
    assert moto._process.returncode == 0
    assert not _port_open(moto.endpoint)
    await moto.stop()  # a second stop is harmless


@pytest.mark.slow
async def test_child_that_dies_before_it_is_ready_is_reported() -> None:
    moto = MotoProcess.spawn()
    moto._process.kill()
    with pytest.raises(MotoProcessError, match="exited with code"):
        await moto.ready()
    await moto.stop()


@pytest.mark.slow
async def test_local_cluster_refuses_a_moto_process_seeding_another_cluster() -> None:
    moto = MotoProcess.spawn(cluster="green")
    try:
        with pytest.raises(ValueError, match="'green', not 'jitnode-local'"):
            LocalCluster(ec2=moto)
    finally:
        await moto.stop()
