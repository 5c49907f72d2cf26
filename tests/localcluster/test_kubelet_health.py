"""Unhealthy nodes in the kubelet emulation: a hung kubelet and conditions it reports.

A stopped kubelet stops its heartbeats; after ``node_monitor_grace_period`` its Node goes
Ready=Unknown with the unreachable taints, as the node lifecycle controller does. A reported
condition replaces the healthy one, with a transition time that moves only when the status does.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import aioboto3
import pytest
from kubernetes_asyncio import client as k8s

from localcluster.apiserver.testing import running_apiserver
from localcluster.ec2 import DEFAULT_CLUSTER, ClusterNetwork, MotoEC2
from localcluster.kubelet import KubeletConfig, Kubelets
from localcluster.kubelet.node import UNREACHABLE_TAINT
from tests.localcluster.test_kubelet import eventually, joined_node, launch_fleet, read_node, ready

GRACE = 0.6


@pytest.fixture
async def ec2_client(ec2: MotoEC2) -> AsyncIterator[Any]:
    async with aioboto3.Session().client("ec2", **ec2.client_kwargs()) as client:
        yield client


@pytest.fixture
async def kube() -> AsyncIterator[k8s.ApiClient]:
    async with running_apiserver() as (_, api_client):
        yield api_client


@pytest.fixture
async def kubelets(kube: k8s.ApiClient, ec2: MotoEC2) -> AsyncIterator[Kubelets]:
    config = KubeletConfig.immediate(heartbeat_interval=0.1, poll_interval=0.05)
    config = dataclasses.replace(config, node_monitor_grace_period=GRACE)
    async with Kubelets(
        kube, cluster=DEFAULT_CLUSTER, ec2_client_kwargs=ec2.client_kwargs(), config=config
    ) as k:
        await asyncio.wait_for(k.wait_synced(), 5)
        yield k


def condition(node: dict[str, Any] | None, kind: str) -> dict[str, Any]:
    conditions = ((node or {}).get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == kind), {})


def test_immediate_config_scales_the_monitor_grace_with_heartbeats() -> None:
    assert KubeletConfig.immediate(heartbeat_interval=1.0).node_monitor_grace_period == 4.0
    assert KubeletConfig().node_monitor_grace_period == 40.0


async def test_stopped_kubelet_goes_unknown_after_the_grace_period_and_recovers(
    kubelets: Kubelets, kube: k8s.ApiClient, ec2_client: Any, ec2_network: ClusterNetwork
) -> None:
    instance_id = await launch_fleet(ec2_client, ec2_network, "")
    node = await joined_node(kubelets, kube, instance_id)
    name = node["metadata"]["name"]
    loop = asyncio.get_running_loop()

    kubelets.stop_kubelet(name)
    stopped_at = loop.time()

    async def unknown() -> dict[str, Any] | None:
        current = await read_node(kube, name)
        return current if ready(current) == "Unknown" else None

    lost = await eventually(unknown)
    assert loop.time() - stopped_at >= GRACE - 0.15  # not before the grace period (last beat <= 0.1 s)
    assert condition(lost, "Ready")["reason"] == "NodeStatusUnknown"
    taints = {(t["key"], t["effect"]) for t in lost["spec"].get("taints") or []}
    assert {(UNREACHABLE_TAINT, "NoSchedule"), (UNREACHABLE_TAINT, "NoExecute")} <= taints
    beat = condition(lost, "Ready")["lastHeartbeatTime"]
    await asyncio.sleep(0.4)  # several heartbeat intervals: none comes
    assert condition(await read_node(kube, name), "Ready")["lastHeartbeatTime"] == beat

    await kubelets.start_kubelet(name)
    back = await read_node(kube, name)
    assert back is not None
    assert ready(back) == "True"
    assert not [t for t in back["spec"].get("taints") or [] if t["key"] == UNREACHABLE_TAINT]
    assert condition(back, "Ready")["lastTransitionTime"] >= condition(lost, "Ready")["lastTransitionTime"]


async def test_reported_conditions_replace_the_healthy_ones_and_keep_their_transition_time(
    kubelets: Kubelets, kube: k8s.ApiClient, ec2_client: Any, ec2_network: ClusterNetwork
) -> None:
    instance_id = await launch_fleet(ec2_client, ec2_network, "")
    name = (await joined_node(kubelets, kube, instance_id))["metadata"]["name"]

    await kubelets.report_condition(name, "Ready", "False", "KubeletNotReady", "container runtime is down")
    await kubelets.report_condition(name, "KernelReady", "False", "KernelBug", "soft lockup")
    node = await read_node(kube, name)
    assert condition(node, "Ready")["status"] == "False"
    assert condition(node, "Ready")["message"] == "container runtime is down"
    assert condition(node, "KernelReady")["reason"] == "KernelBug"
    assert condition(node, "DiskPressure")["status"] == "False"  # the others stay healthy
    since = condition(node, "Ready")["lastTransitionTime"]

    await asyncio.sleep(1.1)  # heartbeats go on with the reported status; its clock does not move
    await kubelets.report_condition(name, "Ready", "False", "KubeletNotReady", "still down")
    node = await read_node(kube, name)
    assert condition(node, "Ready")["lastTransitionTime"] == since
    assert condition(node, "Ready")["message"] == "still down"

    await kubelets.report_condition(name, "Ready", None)
    node = await read_node(kube, name)
    assert condition(node, "Ready")["status"] == "True"
    assert condition(node, "Ready")["lastTransitionTime"] > since


async def test_unknown_node_name_is_refused(kubelets: Kubelets) -> None:
    with pytest.raises(KeyError, match="no running kubelet"):
        kubelets.stop_kubelet("ip-10-0-0-1.ec2.internal")
    with pytest.raises(KeyError, match="no running kubelet"):
        await kubelets.report_condition("ip-10-0-0-1.ec2.internal", "Ready", "False")
