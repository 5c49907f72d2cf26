# mypy: disable-error-code="arg-type, call-arg"
"""Leases: optimistic replace, and kubernetes-asyncio's LeaderElection acquiring one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.leaderelection import electionconfig, leaderelection
from kubernetes_asyncio.leaderelection.resourcelock.leaselock import LeaseLock

from localcluster.apiserver import APIServer
from localcluster.apiserver.testing import running_apiserver


@pytest.fixture
async def kube() -> AsyncIterator[tuple[APIServer, client.ApiClient]]:
    async with running_apiserver() as pair:
        yield pair


async def test_lease_replace_conflicts_on_stale_version(kube: tuple[APIServer, client.ApiClient]) -> None:
    _, api = kube
    coord = client.CoordinationV1Api(api)
    lease = await coord.create_namespaced_lease(
        "kube-system",
        {"metadata": {"name": "l"}, "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}},
    )
    lease.spec.holder_identity = "b"
    renewed = await coord.replace_namespaced_lease("l", "kube-system", lease)
    assert renewed.spec.holder_identity == "b"
    lease.spec.holder_identity = "c"  # stale resourceVersion
    with pytest.raises(ApiException) as conflict:
        await coord.replace_namespaced_lease("l", "kube-system", lease)
    assert conflict.value.status == 409
    assert (await coord.read_namespaced_lease("l", "kube-system")).spec.holder_identity == "b"


async def test_leader_election_acquires_lease(kube: tuple[APIServer, client.ApiClient]) -> None:
    _, api = kube
    leading = asyncio.Event()

    async def on_started() -> None:
        leading.set()

    async def on_stopped() -> None:
        return None

    config = electionconfig.Config(
        LeaseLock("jitnode-launcher", "kube-system", "candidate-1", api),
        lease_duration=4,
        renew_deadline=3,
        retry_period=1,
        onstarted_leading=on_started,
        onstopped_leading=on_stopped,
    )
    task = asyncio.create_task(leaderelection.LeaderElection(config).run())
    try:
        async with asyncio.timeout(8):
            await leading.wait()
        lease = await client.CoordinationV1Api(api).read_namespaced_lease("jitnode-launcher", "kube-system")
        assert lease.spec.holder_identity == "candidate-1"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
