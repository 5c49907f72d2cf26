"""The simulated kubelets against moto (aioboto3 over HTTP) and the local API server.

Instances are launched the way the launcher does (a launch template with nodeadm user data, then
CreateFleet ``instant``), and the Node is read back through kubernetes-asyncio.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aioboto3
import pytest
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio.client.exceptions import ApiException

from localcluster.apiserver.testing import running_apiserver
from localcluster.ec2 import DEFAULT_CLUSTER, ClusterNetwork, MotoEC2
from localcluster.kubelet import KubeletConfig, Kubelets, MemberState
from shared import labels
from shared.resources import Resources

NODEADM_USER_DATA = """MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="//"

--//
Content-Type: application/node.eks.aws

apiVersion: node.eks.aws/v1alpha1
kind: NodeConfig
spec:
  cluster:
    name: {cluster}
  kubelet:
    flags:
    - --node-labels=jitnode.io/nodepool=default,jitnode.io/capacity-type=on-demand
    - --register-with-taints=dedicated=batch:NoSchedule

--//--
"""


async def eventually(
    check: Callable[[], Awaitable[Any]],
    timeout: float = 5.0,  # noqa: ASYNC109 - a per-check deadline keeps each test bounded
    interval: float = 0.05,
) -> Any:
    """Retry ``check`` until it returns a truthy value; its last result is returned."""
    async with asyncio.timeout(timeout):
        while True:
            result = await check()
            if result:
                return result
            await asyncio.sleep(interval)


@pytest.fixture
async def ec2_client(ec2: MotoEC2) -> AsyncIterator[Any]:
    async with aioboto3.Session().client("ec2", **ec2.client_kwargs()) as client:
        yield client


@pytest.fixture
async def kube() -> AsyncIterator[k8s.ApiClient]:
    async with running_apiserver() as (_, api_client):
        yield api_client


def _clock() -> Callable[[], datetime]:
    """A clock one second further on at every call, so each heartbeat is visibly newer."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    counter = itertools.count()
    return lambda: start + timedelta(seconds=next(counter))


@pytest.fixture
async def kubelets(kube: k8s.ApiClient, ec2: MotoEC2) -> AsyncIterator[Kubelets]:
    config = KubeletConfig.immediate(heartbeat_interval=0.2, poll_interval=0.05)
    async with Kubelets(
        kube,
        cluster=DEFAULT_CLUSTER,
        ec2_client_kwargs=ec2.client_kwargs(),
        config=config,
        clock=_clock(),
    ) as running:
        await asyncio.wait_for(running.wait_synced(), 5)
        yield running


async def launch_fleet(
    ec2_client: Any, network: ClusterNetwork, user_data: str, instance_type: str = "m5.large"
) -> str:
    arch = "arm64" if instance_type[2:3] == "g" else "x86_64"
    template = await ec2_client.create_launch_template(
        LaunchTemplateName=f"jitnode-{instance_type}-{len(user_data)}",
        LaunchTemplateData={
            "ImageId": network.amis[arch],
            "UserData": base64.b64encode(user_data.encode()).decode(),
            "TagSpecifications": [
                {"ResourceType": "instance", "Tags": [{"Key": labels.TAG_CLUSTER, "Value": network.cluster}]}
            ],
        },
    )
    fleet = await ec2_client.create_fleet(
        Type="instant",
        TargetCapacitySpecification={"TotalTargetCapacity": 1, "DefaultTargetCapacityType": "on-demand"},
        LaunchTemplateConfigs=[
            {
                "LaunchTemplateSpecification": {
                    "LaunchTemplateId": template["LaunchTemplate"]["LaunchTemplateId"],
                    "Version": "$Latest",
                },
                "Overrides": [{"InstanceType": instance_type, "SubnetId": network.subnets["us-east-1b"]}],
            }
        ],
    )
    instance_id: str = fleet["Instances"][0]["InstanceIds"][0]
    return instance_id


async def read_node(kube: k8s.ApiClient, name: str) -> dict[str, Any] | None:
    try:
        node = await k8s.CoreV1Api(kube).read_node(name)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    result: dict[str, Any] = kube.sanitize_for_serialization(node)
    return result


def ready(node: dict[str, Any] | None) -> str | None:
    if node is None:
        return None
    conditions = (node.get("status") or {}).get("conditions") or []
    return next((c["status"] for c in conditions if c["type"] == "Ready"), None)


async def joined_node(kubelets: Kubelets, kube: k8s.ApiClient, instance_id: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        name = kubelets.node_name(instance_id)
        node = await read_node(kube, name) if name else None
        return node if ready(node) == "True" else None

    node: dict[str, Any] = await eventually(check)
    return node


async def test_fleet_instance_joins_with_user_data_labels_and_taints(
    kubelets: Kubelets, kube: k8s.ApiClient, ec2_client: Any, ec2_network: ClusterNetwork
) -> None:
    instance_id = await launch_fleet(
        ec2_client, ec2_network, NODEADM_USER_DATA.format(cluster=ec2_network.cluster)
    )
    node = await joined_node(kubelets, kube, instance_id)
    described = await ec2_client.describe_instances(InstanceIds=[instance_id])
    instance = described["Reservations"][0]["Instances"][0]

    assert node["metadata"]["name"] == instance["PrivateDnsName"]
    assert node["metadata"]["name"].endswith(".ec2.internal")
    assert node["spec"]["providerID"] == f"aws:///us-east-1b/{instance_id}"
    node_labels = node["metadata"]["labels"]
    assert node_labels[labels.HOSTNAME] == instance["PrivateDnsName"]
    assert node_labels[labels.INSTANCE_TYPE] == "m5.large"
    assert node_labels[labels.ZONE] == "us-east-1b"
    assert node_labels[labels.REGION] == "us-east-1"
    assert node_labels[labels.ARCH] == "amd64"
    assert node_labels[labels.OS] == "linux"
    assert node_labels[labels.NODEPOOL] == "default"
    assert node_labels[labels.CAPACITY_TYPE] == "on-demand"
    assert node["spec"]["taints"] == [{"key": "dedicated", "value": "batch", "effect": "NoSchedule"}]

    status = node["status"]
    allocatable = Resources.parse(status["allocatable"])
    assert allocatable.amount("cpu") == 1930
    assert allocatable.amount("pods") == 29
    assert allocatable.amount("memory") == (8192 - 574 - 100) * 2**20
    assert Resources.parse(status["capacity"]).amount("cpu") == 2000
    assert status["nodeInfo"]["architecture"] == "amd64"
    assert status["nodeInfo"]["kubeletVersion"].startswith("v1.31.")
    addresses = {a["type"]: a["address"] for a in status["addresses"]}
    assert addresses == {
        "InternalIP": instance["PrivateIpAddress"],
        "InternalDNS": instance["PrivateDnsName"],
        "Hostname": instance["PrivateDnsName"],
    }
    ready_condition = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready_condition["reason"] == "KubeletReady"


async def test_heartbeats_advance(
    kubelets: Kubelets, kube: k8s.ApiClient, ec2_client: Any, ec2_network: ClusterNetwork
) -> None:
    instance_id = await launch_fleet(ec2_client, ec2_network, "")
    node = await joined_node(kubelets, kube, instance_id)

    def beat(n: dict[str, Any] | None) -> str:
        assert n is not None
        return str(next(c["lastHeartbeatTime"] for c in n["status"]["conditions"] if c["type"] == "Ready"))

    first = beat(node)

    async def newer() -> bool:
        return beat(await read_node(kube, node["metadata"]["name"])) > first

    await eventually(newer, timeout=3)


async def test_run_instances_arm64_without_user_data(
    kubelets: Kubelets, kube: k8s.ApiClient, ec2_client: Any, ec2_network: ClusterNetwork
) -> None:
    response = await ec2_client.run_instances(
        MinCount=1,
        MaxCount=1,
        ImageId=ec2_network.amis["arm64"],
        InstanceType="m6g.xlarge",
        SubnetId=ec2_network.subnets["us-east-1a"],
        TagSpecifications=[
            {
                "ResourceType": "instance",
                "Tags": [{"Key": f"kubernetes.io/cluster/{ec2_network.cluster}", "Value": "owned"}],
            }
        ],
    )
    instance_id = response["Instances"][0]["InstanceId"]
    node = await joined_node(kubelets, kube, instance_id)
    assert node["metadata"]["labels"][labels.ARCH] == "arm64"
    assert node["metadata"]["labels"][labels.ZONE] == "us-east-1a"
    assert labels.NODEPOOL not in node["metadata"]["labels"]
    assert not node["spec"].get("taints")
    assert Resources.parse(node["status"]["allocatable"]).amount("pods") == 58


async def test_other_clusters_instances_are_ignored(
    kubelets: Kubelets, kube: k8s.ApiClient, ec2_client: Any, ec2_network: ClusterNetwork
) -> None:
    untagged = await ec2_client.run_instances(
        MinCount=1, MaxCount=1, ImageId=ec2_network.amis["x86_64"], InstanceType="t3.small"
    )
    other = await ec2_client.run_instances(
        MinCount=1,
        MaxCount=1,
        ImageId=ec2_network.amis["x86_64"],
        InstanceType="t3.small",
        TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": labels.TAG_CLUSTER, "Value": "other-cluster"}]}
        ],
    )
    ours = await launch_fleet(ec2_client, ec2_network, "")
    await joined_node(kubelets, kube, ours)
    for response in (untagged, other):
        assert kubelets.state(response["Instances"][0]["InstanceId"]) is None
    nodes = await k8s.CoreV1Api(kube).list_node()
    assert len(nodes.items) == 1


async def test_bound_pod_becomes_running_and_ready(
    kubelets: Kubelets, kube: k8s.ApiClient, ec2_client: Any, ec2_network: ClusterNetwork
) -> None:
    instance_id = await launch_fleet(ec2_client, ec2_network, "")
    node = await joined_node(kubelets, kube, instance_id)
    core: Any = k8s.CoreV1Api(kube)
    await core.create_namespaced_pod(
        "default",
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "web"},
            "spec": {
                "nodeName": node["metadata"]["name"],
                "initContainers": [{"name": "init", "image": "busybox"}],
                "containers": [{"name": "app", "image": "nginx:1.27"}, {"name": "sidecar", "image": "envoy"}],
            },
        },
    )

    async def running() -> k8s.V1Pod | None:
        pod = await core.read_namespaced_pod("web", "default")
        return pod if pod.status.phase == "Running" else None

    pod = await eventually(running)
    conditions = {c.type: c.status for c in pod.status.conditions}
    for kind in ("Initialized", "Ready", "ContainersReady", "PodScheduled"):
        assert conditions[kind] == "True"
    assert [s.name for s in pod.status.container_statuses] == ["app", "sidecar"]
    assert all(s.ready and s.started and s.state.running for s in pod.status.container_statuses)
    assert pod.status.init_container_statuses[0].state.terminated.reason == "Completed"
    assert pod.status.host_ip == node["status"]["addresses"][0]["address"]
    assert pod.status.pod_ip.startswith("100.")
    assert pod.status.start_time is not None


async def test_unbound_pod_and_foreign_node_pod_are_left_alone(
    kubelets: Kubelets, kube: k8s.ApiClient, ec2_client: Any, ec2_network: ClusterNetwork
) -> None:
    instance_id = await launch_fleet(ec2_client, ec2_network, "")
    node = await joined_node(kubelets, kube, instance_id)
    core: Any = k8s.CoreV1Api(kube)
    for name, node_name in (("pending", None), ("elsewhere", "not-ours"), ("ours", node["metadata"]["name"])):
        spec: dict[str, Any] = {"containers": [{"name": "c", "image": "x"}]}
        if node_name:
            spec["nodeName"] = node_name
        await core.create_namespaced_pod("default", {"metadata": {"name": name}, "spec": spec})

    async def ours_running() -> bool:
        pod = await core.read_namespaced_pod("ours", "default")
        return bool(pod.status.phase == "Running")

    await eventually(ours_running)
    for name in ("pending", "elsewhere"):
        assert (await core.read_namespaced_pod(name, "default")).status.phase != "Running"


async def test_terminated_instance_node_goes_not_ready_then_deleted(
    kube: k8s.ApiClient, ec2: MotoEC2, ec2_client: Any, ec2_network: ClusterNetwork
) -> None:
    config = KubeletConfig.immediate(heartbeat_interval=0.2, poll_interval=0.05)
    config = KubeletConfig(**{**config.__dict__, "node_removal_delay": 0.6})
    async with Kubelets(
        kube, cluster=ec2_network.cluster, ec2_client_kwargs=ec2.client_kwargs(), config=config
    ) as kubelets:
        instance_id = await launch_fleet(ec2_client, ec2_network, "")
        node = await joined_node(kubelets, kube, instance_id)
        name = node["metadata"]["name"]
        core: Any = k8s.CoreV1Api(kube)
        await core.create_namespaced_pod(
            "default",
            {
                "metadata": {"name": "p"},
                "spec": {"nodeName": name, "containers": [{"name": "c", "image": "x"}]},
            },
        )
        await ec2_client.terminate_instances(InstanceIds=[instance_id])

        async def not_ready() -> dict[str, Any] | None:
            # Status and taints are two writes, as with the node lifecycle controller: wait for both.
            current = await read_node(kube, name)
            if current is None or ready(current) != "Unknown":
                return None
            taints = current["spec"].get("taints") or []
            return current if any(t["key"] == "node.kubernetes.io/unreachable" for t in taints) else None

        unknown = await eventually(not_ready, timeout=3, interval=0.02)
        condition = next(c for c in unknown["status"]["conditions"] if c["type"] == "Ready")
        assert condition["reason"] == "NodeStatusUnknown"
        assert {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"} in unknown["spec"]["taints"]

        async def gone() -> bool:
            return await read_node(kube, name) is None

        await eventually(gone, timeout=3)
        assert kubelets.state(instance_id) is MemberState.REMOVED
        pods = await core.list_namespaced_pod("default")
        assert [p.metadata.name for p in pods.items] == []


async def test_fail_to_join_instance_never_gets_a_node(
    kube: k8s.ApiClient, ec2: MotoEC2, ec2_client: Any, ec2_network: ClusterNetwork
) -> None:
    config = KubeletConfig.immediate(poll_interval=0.05)
    refused: set[str] = set()
    async with Kubelets(
        kube,
        cluster=ec2_network.cluster,
        ec2_client_kwargs=ec2.client_kwargs(),
        config=config,
        fail_to_join=lambda instance: instance.instance_type == "c5.large",
    ) as kubelets:
        bad = await launch_fleet(ec2_client, ec2_network, "", instance_type="c5.large")
        broken = await launch_fleet(
            ec2_client,
            ec2_network,
            NODEADM_USER_DATA.format(cluster=ec2_network.cluster).replace("=batch:", "=b:Bad"),
        )
        foreign = await launch_fleet(
            ec2_client, ec2_network, NODEADM_USER_DATA.format(cluster="another"), "m5.xlarge"
        )
        good = await launch_fleet(ec2_client, ec2_network, "", instance_type="t3.medium")
        await joined_node(kubelets, kube, good)

        async def all_refused() -> bool:
            refused.update(i for i in (bad, broken, foreign) if kubelets.state(i) is MemberState.REFUSED)
            return len(refused) == 3

        await eventually(all_refused)
        await asyncio.sleep(0.2)  # a few more polls: still nothing
        nodes = await k8s.CoreV1Api(kube).list_node()
        assert [n.spec.provider_id.rsplit("/", 1)[-1] for n in nodes.items] == [good]


async def test_stopped_then_started_instance_rejoins(
    kube: k8s.ApiClient, ec2: MotoEC2, ec2_client: Any, ec2_network: ClusterNetwork
) -> None:
    config = KubeletConfig(
        boot_delay=0,
        container_start_delay=0,
        heartbeat_interval=0.2,
        poll_interval=0.05,
        node_removal_delay=60,
    )
    async with Kubelets(
        kube, cluster=ec2_network.cluster, ec2_client_kwargs=ec2.client_kwargs(), config=config
    ) as kubelets:
        instance_id = await launch_fleet(ec2_client, ec2_network, "")
        name = (await joined_node(kubelets, kube, instance_id))["metadata"]["name"]
        await ec2_client.stop_instances(InstanceIds=[instance_id])

        async def unknown() -> bool:
            return ready(await read_node(kube, name)) == "Unknown"

        await eventually(unknown, timeout=3)
        assert kubelets.state(instance_id) is MemberState.LOST
        await ec2_client.start_instances(InstanceIds=[instance_id])

        async def back() -> dict[str, Any] | None:
            node = await read_node(kube, name)
            return node if ready(node) == "True" else None

        node = await eventually(back, timeout=3)
        assert kubelets.state(instance_id) is MemberState.JOINED
        assert not any(t["key"] == "node.kubernetes.io/unreachable" for t in node["spec"].get("taints") or [])


async def test_node_deleted_under_a_running_kubelet_is_not_recreated(
    kubelets: Kubelets, kube: k8s.ApiClient, ec2_client: Any, ec2_network: ClusterNetwork
) -> None:
    instance_id = await launch_fleet(ec2_client, ec2_network, "")
    name = (await joined_node(kubelets, kube, instance_id))["metadata"]["name"]
    await k8s.CoreV1Api(kube).delete_node(name)

    async def evicted() -> bool:
        return kubelets.state(instance_id) is MemberState.EVICTED

    await eventually(evicted, timeout=3)
    await asyncio.sleep(0.3)  # more heartbeats and polls than the interval
    assert await read_node(kube, name) is None


async def test_user_data_falls_back_to_the_launch_template(
    kubelets: Kubelets, kube: k8s.ApiClient, ec2: MotoEC2, ec2_client: Any, ec2_network: ClusterNetwork
) -> None:
    """An EC2 that does not copy user data onto the instance: read it from the template version."""
    from moto.ec2.models import ec2_backends

    from localcluster.ec2 import ACCOUNT_ID

    template = await ec2_client.create_launch_template(
        LaunchTemplateName="fallback",
        LaunchTemplateData={
            "ImageId": ec2_network.amis["x86_64"],
            "InstanceType": "t3.large",
            "UserData": base64.b64encode(
                NODEADM_USER_DATA.format(cluster=ec2_network.cluster).encode()
            ).decode(),
        },
    )
    # Not yet tagged for the cluster, so the kubelets cannot read it before the fault is in place.
    response = await ec2_client.run_instances(
        MinCount=1,
        MaxCount=1,
        LaunchTemplate={"LaunchTemplateId": template["LaunchTemplate"]["LaunchTemplateId"]},
        SubnetId=ec2_network.subnets["us-east-1a"],
    )
    instance_id = response["Instances"][0]["InstanceId"]
    ec2_backends[ACCOUNT_ID][ec2.region].get_instance(instance_id).user_data = None
    attribute = await ec2_client.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
    assert not attribute.get("UserData")
    await ec2_client.create_tags(
        Resources=[instance_id], Tags=[{"Key": labels.TAG_CLUSTER, "Value": ec2_network.cluster}]
    )
    node = await joined_node(kubelets, kube, instance_id)
    assert node["metadata"]["labels"][labels.NODEPOOL] == "default"
    assert node["spec"]["taints"] == [{"key": "dedicated", "value": "batch", "effect": "NoSchedule"}]


async def test_retiring_a_node_already_deleted_is_clean(
    kube: k8s.ApiClient, ec2: MotoEC2, ec2_client: Any, ec2_network: ClusterNetwork
) -> None:
    """The launcher deletes the Node right after TerminateInstances: the kubelet's retire must
    read the 404 as "gone" (no error, no NotReady patch on a missing node) and collect its pods."""
    # No heartbeat before the instance goes: the retire, not a heartbeat, meets the 404.
    config = KubeletConfig.immediate(heartbeat_interval=60, poll_interval=0.05)
    config = KubeletConfig(**{**config.__dict__, "node_removal_delay": 60})
    async with Kubelets(
        kube, cluster=ec2_network.cluster, ec2_client_kwargs=ec2.client_kwargs(), config=config
    ) as kubelets:
        instance_id = await launch_fleet(ec2_client, ec2_network, "")
        name = (await joined_node(kubelets, kube, instance_id))["metadata"]["name"]
        core: Any = k8s.CoreV1Api(kube)
        await core.create_namespaced_pod(
            "default",
            {
                "metadata": {"name": "p"},
                "spec": {"nodeName": name, "containers": [{"name": "c", "image": "x"}]},
            },
        )
        await core.delete_node(name)
        await ec2_client.terminate_instances(InstanceIds=[instance_id])

        async def removed() -> bool:
            return kubelets.state(instance_id) is MemberState.REMOVED

        await eventually(removed, timeout=3)  # long before node_removal_delay
        assert kubelets.errors == 0
        assert await read_node(kube, name) is None

        async def no_pods() -> bool:
            return not (await core.list_namespaced_pod("default")).items

        await eventually(no_pods, timeout=3)
        assert kubelets.errors == 0


async def test_an_instance_started_from_stopped_boots_in_its_own_delay(
    kube: k8s.ApiClient, ec2: MotoEC2, ec2_client: Any, ec2_network: ClusterNetwork
) -> None:
    """The warm-pool cycle: joined once, Node removed, stopped; started again, the kubelet
    registers after ``boot_from_stopped_delay`` (not the cold ``boot_delay``)."""
    config = KubeletConfig(
        boot_delay=0,
        boot_from_stopped_delay=1.0,
        container_start_delay=0,
        heartbeat_interval=0.2,
        poll_interval=0.05,
        node_removal_delay=0,
    )
    async with Kubelets(
        kube, cluster=ec2_network.cluster, ec2_client_kwargs=ec2.client_kwargs(), config=config
    ) as kubelets:
        instance_id = await launch_fleet(ec2_client, ec2_network, "")
        name = (await joined_node(kubelets, kube, instance_id))["metadata"]["name"]
        await k8s.CoreV1Api(kube).delete_node(name)  # as the warm pool does before stopping
        await ec2_client.stop_instances(InstanceIds=[instance_id])

        async def forgotten() -> bool:
            return kubelets.state(instance_id) in (None, MemberState.REMOVED)

        await eventually(forgotten, timeout=3)
        await ec2_client.start_instances(InstanceIds=[instance_id])
        started = asyncio.get_running_loop().time()
        await asyncio.sleep(0.5)
        assert await read_node(kube, name) is None, "registered before its boot-from-stopped delay"
        node = await joined_node(kubelets, kube, instance_id)
        assert asyncio.get_running_loop().time() - started >= 1.0
        assert node["metadata"]["name"] == name
