"""pytest fixtures that start the local test doubles (moto EC2, the local cluster) on loopback.

Loaded for the whole suite by ``tests/conftest.py``. The moto server lives for the session
(it starts in milliseconds but importing moto does not); each test gets it wiped and seeded.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Final

import pytest

from localcluster.ec2 import ClusterNetwork, MotoEC2

if TYPE_CHECKING:
    from kubernetes_asyncio.client import ApiClient

    from localcluster.cluster import LocalCluster

# Names a kubeconfig of a real cluster for the tests that take ``kube_api``.
REAL_CLUSTER_KUBECONFIG_ENV: Final = "JITNODE_TEST_KUBECONFIG"


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoEC2]:
    """One moto server for the session; prefer ``ec2`` which also wipes and seeds it."""
    server = MotoEC2()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def ec2(moto_server: MotoEC2) -> MotoEC2:
    """The moto server wiped clean, then seeded like an eksctl cluster (see ``ec2_network``)."""
    moto_server.reset()
    moto_server.seed_eksctl_cluster()
    return moto_server


@pytest.fixture
def ec2_network(ec2: MotoEC2) -> ClusterNetwork:
    """The VPC, subnets, security group and AMIs that ``ec2`` seeded."""
    assert ec2.network is not None
    return ec2.network


@asynccontextmanager
async def immediate_local_cluster(moto: MotoEC2) -> AsyncIterator[LocalCluster]:
    """A :class:`LocalCluster` on ``moto`` with every kubelet delay at zero and a fixed seed."""
    from localcluster.cluster import LocalCluster
    from localcluster.kubelet import KubeletConfig

    async with LocalCluster(kubelet_config=KubeletConfig.immediate(), ec2=moto, seed=0) as cluster:
        yield cluster


@pytest.fixture
async def local_cluster(moto_server: MotoEC2) -> AsyncIterator[LocalCluster]:
    """A fresh local cluster (API server, scheduler, kubelets, moto wiped and seeded), no delays.

    Take this in tests that need the emulation itself: launching instances in moto, the
    kubelets' state, the scheduler's configuration. Tests that only exercise public
    Kubernetes API behaviour should take ``kube_api`` so they can also run on a real cluster.
    """
    async with immediate_local_cluster(moto_server) as cluster:
        yield cluster


@pytest.fixture
async def kube_api(request: pytest.FixtureRequest) -> AsyncIterator[ApiClient]:
    """A kubernetes-asyncio client: for a real cluster when ``JITNODE_TEST_KUBECONFIG`` names a
    kubeconfig, else for a fresh local cluster (as ``local_cluster``; don't take both).

    Tests taking this must rely on public API behaviour only, as they may run against EKS.
    """
    from kubernetes_asyncio import client, config

    kubeconfig = os.environ.get(REAL_CLUSTER_KUBECONFIG_ENV)
    if kubeconfig:
        configuration = client.Configuration()
        await config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
        async with client.ApiClient(configuration) as api:
            yield api
        return
    moto: MotoEC2 = request.getfixturevalue("moto_server")
    async with immediate_local_cluster(moto) as cluster:
        api = await cluster.api_client()
        try:
            yield api
        finally:
            await api.close()
