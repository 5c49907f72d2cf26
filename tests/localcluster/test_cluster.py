"""LocalCluster wiring: startup time, CRDs, kubeconfig, scheduling onto a joined node, clean stop."""

from __future__ import annotations

import asyncio
import base64
import threading
from typing import Any

import aioboto3
import pytest
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config

from localcluster.cluster import LocalCluster
from localcluster.ec2 import MotoEC2
from localcluster.kubelet import KubeletConfig
from shared import labels

USER_DATA = """MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="//"

--//
Content-Type: application/node.eks.aws

apiVersion: node.eks.aws/v1alpha1
kind: NodeConfig
spec:
  kubelet:
    flags:
    - --node-labels=jitnode.io/nodepool=default

--//--
"""


async def test_starts_and_serves_crds(ec2: MotoEC2) -> None:
    # Startup time is a figure, not an assertion: bench/localcluster_bench.py measures it.
    async with LocalCluster(kubelet_config=KubeletConfig.immediate(), ec2=ec2) as cluster:
        assert cluster.startup_seconds > 0
        async with await cluster.api_client() as api:
            crds = await k8s.ApiextensionsV1Api(api).list_custom_resource_definition()
            names = {crd.metadata.name for crd in crds.items}
            assert {"nodepools.jitnode.io", "nodeclaims.jitnode.io", "ec2nodeclasses.jitnode.io"} <= names
        assert cluster.network.cluster == cluster.cluster
        assert set(cluster.network.subnets) == {"us-east-1a", "us-east-1b", "us-east-1c"}


async def test_kubeconfig_reaches_the_api_server(local_cluster: LocalCluster) -> None:
    configuration = k8s.Configuration()
    await k8s_config.load_kube_config(
        config_file=str(local_cluster.kubeconfig_path), client_configuration=configuration
    )
    assert configuration.host == local_cluster.api_url
    async with k8s.ApiClient(configuration) as api:
        namespaces = await k8s.CoreV1Api(api).list_namespace()
    assert "default" in {ns.metadata.name for ns in namespaces.items}


async def test_kube_api_fixture_talks_to_a_cluster(kube_api: k8s.ApiClient) -> None:
    core = k8s.CoreV1Api(kube_api)
    namespaces = await core.list_namespace()
    assert {"default", "kube-system"} <= {ns.metadata.name for ns in namespaces.items}


async def test_pod_is_scheduled_onto_a_launched_instance_and_runs(local_cluster: LocalCluster) -> None:
    network = local_cluster.network
    async with aioboto3.Session().client("ec2", **local_cluster.ec2.client_kwargs()) as ec2:
        template = await ec2.create_launch_template(
            LaunchTemplateName="jitnode-default",
            LaunchTemplateData={
                "ImageId": network.amis["x86_64"],
                "UserData": base64.b64encode(USER_DATA.encode()).decode(),
                "TagSpecifications": [
                    {
                        "ResourceType": "instance",
                        "Tags": [{"Key": labels.TAG_CLUSTER, "Value": network.cluster}],
                    }
                ],
            },
        )
        await ec2.create_fleet(
            Type="instant",
            TargetCapacitySpecification={"TotalTargetCapacity": 1, "DefaultTargetCapacityType": "on-demand"},
            LaunchTemplateConfigs=[
                {
                    "LaunchTemplateSpecification": {
                        "LaunchTemplateId": template["LaunchTemplate"]["LaunchTemplateId"],
                        "Version": "$Latest",
                    },
                    "Overrides": [{"InstanceType": "m5.xlarge", "SubnetId": network.subnets["us-east-1c"]}],
                }
            ],
        )
    async with await local_cluster.api_client() as api:
        core: Any = k8s.CoreV1Api(api)
        await core.create_namespaced_pod(
            "default",
            {
                "metadata": {"name": "app"},
                "spec": {
                    "nodeSelector": {labels.NODEPOOL: "default"},
                    "containers": [
                        {"name": "app", "image": "nginx", "resources": {"requests": {"cpu": "3"}}}
                    ],
                },
            },
        )

        async def running() -> Any:
            pod = await core.read_namespaced_pod("app", "default")
            return pod if pod.status.phase == "Running" else None

        pod = await local_cluster.wait_for(running, timeout=10)
        node = await core.read_node(pod.spec.node_name)
        assert node.metadata.labels[labels.INSTANCE_TYPE] == "m5.xlarge"
        assert node.metadata.labels[labels.ZONE] == "us-east-1c"
        assert node.status.allocatable["pods"] == "58"


async def test_wait_for_times_out_with_a_clear_error(local_cluster: LocalCluster) -> None:
    def never() -> bool:
        return False

    with pytest.raises(TimeoutError, match="never"):
        await local_cluster.wait_for(never, timeout=0.1)
    assert await local_cluster.wait_for(lambda: 42) == 42


async def test_stops_cleanly_with_its_own_moto(ec2: MotoEC2) -> None:
    # ``ec2`` only makes sure moto is imported (so this start is not the cold one).
    threads_before = set(threading.enumerate())
    tasks_before = asyncio.all_tasks()
    cluster = LocalCluster(kubelet_config=KubeletConfig.immediate(), crds_dir=None)
    async with cluster:
        endpoint = cluster.ec2.endpoint
        assert endpoint != ec2.endpoint
        kubeconfig = cluster.kubeconfig_path
        assert kubeconfig.is_file()
    await asyncio.sleep(0)  # let cancelled client connections finish closing
    assert asyncio.all_tasks() == tasks_before
    # The loop's default executor keeps its idle to_thread workers until the loop closes.
    leaked = [
        t
        for t in set(threading.enumerate()) - threads_before
        if t.is_alive() and not t.name.startswith("asyncio_")
    ]
    assert leaked == []
    assert not kubeconfig.exists()  # the temporary kubeconfig folder is removed
    host, port = endpoint.removeprefix("http://").split(":")
    with pytest.raises(OSError):  # moto's server is gone
        await asyncio.open_connection(host, int(port))
