"""NodePools offer only the zones their EC2NodeClass has subnets in.

The catalogue sells every type in three zones, but the NodeClass's subnets cover two: a pod
pinned to the third must be reported unschedulable (with an Event), never planned onto a claim
CreateFleet cannot satisfy.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, cast

import pytest
from kubernetes_asyncio import client

from launcher.kube import NodeClaimWriter
from launcher.lifecycle.controller import ClaimController
from launcher.model import InstanceType
from launcher.planner import plan
from launcher.planner.offerings import UnavailableOfferings
from launcher.provisioning.inputs import NodeClassZones, occupied_zones, pool_requirements, pool_views
from launcher.provisioning.provisioner import Provisioner, ProvisionerSettings
from launcher.state import LauncherState
from shared import labels
from shared.api.group import API_GROUP, API_VERSION, NODEPOOL_PLURAL
from shared.api.nodeclaim import NodeClaim
from shared.api.nodepool import NodePool
from shared.demand import PodDemand
from shared.events import EventRecorder
from shared.podaffinity import exclusive_group
from tests.launcher.apiserver_state import launcher_state_on_apiserver
from tests.launcher.planner_fixtures import plain_instance_type, pod

GI = 2**30
ALL_ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")
SUBNET_ZONES = frozenset({"us-east-1a", "us-east-1b"})


def itype(name: str, cpu: int, memory_gi: int, price: float) -> InstanceType:
    return plain_instance_type(name, cpu, memory_gi, price, zones=ALL_ZONES, pods=58)


CATALOGUE = {t.name: t for t in (itype("m5.large", 2, 8, 0.096), itype("m5.xlarge", 4, 16, 0.192))}


def nodepool_body(
    nodeclass: str = "default", requirements: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": "jitnode.io/v1",
        "kind": "NodePool",
        "metadata": {"name": "default"},
        "spec": {
            "template": {
                "spec": {
                    "nodeClassRef": {"group": "jitnode.io", "kind": "EC2NodeClass", "name": nodeclass},
                    "requirements": requirements or [],
                }
            }
        },
    }


def subnet_zones(nodeclass: str) -> frozenset[str] | None:
    return SUBNET_ZONES if nodeclass == "default" else None


def pinned(uid: str, zone: str) -> PodDemand:
    return pod(uid, selector={labels.ZONE: zone})


# Pure -----------------------------------------------------------------------------------------


def test_pool_requirements_are_narrowed_to_subnet_zones() -> None:
    pool = NodePool.from_api(nodepool_body())
    narrowed = pool_requirements(pool, subnet_zones)
    assert narrowed.allowed_values(labels.ZONE) == SUBNET_ZONES
    # Unresolved NodeClass: zones unknown, the pool is left as it is.
    other = NodePool.from_api(nodepool_body("other"))
    assert pool_requirements(other, subnet_zones) == other.requirements()


def test_pool_zone_requirement_and_subnets_intersect() -> None:
    pool = NodePool.from_api(
        nodepool_body(
            requirements=[{"key": labels.ZONE, "operator": "In", "values": ["us-east-1b", "us-east-1c"]}]
        )
    )
    assert pool_requirements(pool, subnet_zones).allowed_values(labels.ZONE) == frozenset({"us-east-1b"})


def test_pod_pinned_to_a_zone_without_subnet_is_unschedulable_not_planned() -> None:
    pools = pool_views({"default": NodePool.from_api(nodepool_body())}, {}, {}, subnet_zones)
    demand = {
        "in-a": pinned("in-a", "us-east-1a"),
        "in-c": pinned("in-c", "us-east-1c"),
        "anywhere": pod("anywhere"),
    }
    result = plan(demand=demand, pools=pools, types=list(CATALOGUE.values()))
    assert set(result.unschedulable) == {"in-c"}
    assert "us-east-1c" in result.unschedulable["in-c"]
    assert "nodepool default" in result.unschedulable["in-c"]
    planned = {uid for claim in result.claims for uid in claim.pods}
    assert planned == {"in-a", "anywhere"}
    for claim in result.claims:
        assert claim.zones
        assert set(claim.zones) <= SUBNET_ZONES
        assert (claim.requirements.allowed_values(labels.ZONE) or frozenset()) <= SUBNET_ZONES


def test_without_subnet_zones_the_third_zone_would_be_planned() -> None:
    """The control: the same pod is planned when zones are unknown (what the fix prevents)."""
    pools = pool_views({"default": NodePool.from_api(nodepool_body())}, {}, {})
    result = plan(demand={"in-c": pinned("in-c", "us-east-1c")}, pools=pools, types=list(CATALOGUE.values()))
    assert not result.unschedulable
    assert [c.zones for c in result.claims] == [("us-east-1c",)]


# The provisioner against the local API server -----------------------------------------------


class _Book:
    """The demand book as the provisioner reads it: a fixed set of pending pods."""

    def __init__(self, demand: Mapping[str, PodDemand]) -> None:
        self.version = 1
        self._demand = dict(demand)

    def current(self) -> Mapping[str, PodDemand]:
        return self._demand

    def origin(self, uid: str) -> str | None:
        return "extender-0" if uid in self._demand else None


class _Catalogue:
    def get(self) -> Mapping[str, InstanceType]:
        return CATALOGUE


class _Claims:
    """Stands in for the claim controller: records the claims handed over for launch."""

    def __init__(self) -> None:
        self.enqueued: list[NodeClaim] = []

    def enqueue(self, claim: NodeClaim) -> None:
        self.enqueued.append(claim)


@pytest.fixture
async def cluster() -> AsyncIterator[tuple[client.ApiClient, LauncherState]]:
    async with launcher_state_on_apiserver() as (api, state):
        yield api, state


async def _apply_pool(api: client.ApiClient, state: LauncherState) -> None:
    """Create the test's NodePool and wait until the launcher's informer holds it."""
    await client.CustomObjectsApi(api).create_cluster_custom_object(
        API_GROUP, API_VERSION, NODEPOOL_PLURAL, nodepool_body()
    )
    for _ in range(200):
        if state.nodepools():
            break
        await asyncio.sleep(0.02)
    assert state.nodepools()


def _provisioner(
    api: client.ApiClient,
    state: LauncherState,
    demand: Mapping[str, PodDemand],
    claims: _Claims,
    *,
    zones: NodeClassZones,
    before_plan: Callable[[], Awaitable[bool]] | None = None,
) -> Provisioner:
    """A provisioner over a fixed demand, handing its claims to ``claims``."""
    return Provisioner(
        state=state,
        book=_Book(demand),
        catalogue=_Catalogue(),
        unavailable=UnavailableOfferings(ttl=180),
        claims=cast(ClaimController, claims),
        writer=NodeClaimWriter(api),
        events=EventRecorder(api, "jitnode-launcher"),
        settings=ProvisionerSettings(),
        nodeclass_zones=zones,
        before_plan=before_plan,
    )


async def test_provisioner_reports_the_zone_without_subnet_and_launches_the_rest(
    cluster: tuple[client.ApiClient, LauncherState],
) -> None:
    api, state = cluster
    await _apply_pool(api, state)
    claims = _Claims()
    demand = {"in-a": pinned("in-a", "us-east-1a"), "in-c": pinned("in-c", "us-east-1c")}
    provisioner = _provisioner(api, state, demand, claims, zones=subnet_zones)
    created = await provisioner.provision_once()
    assert [c.pods for c in created] == [("in-a",)]
    assert claims.enqueued == created
    zones = created[0].node_requirements().allowed_values(labels.ZONE)
    assert zones == frozenset({"us-east-1a"})
    events = (await client.CoreV1Api(api).list_namespaced_event("default")).items
    failed = [e for e in events if e.reason == "FailedProvisioning"]
    assert [e.involved_object.name for e in failed] == ["in-c"]
    assert failed[0].type == "Warning"
    assert "us-east-1c" in failed[0].message


async def test_a_plan_waits_for_the_nodeclass_being_resolved(
    cluster: tuple[client.ApiClient, LauncherState],
) -> None:
    """A NodePool applied just before its first demand: its NodeClass is still resolving when the
    demand arrives. The plan waits for that (``before_plan``) and so knows the subnet zones."""
    api, state = cluster
    await _apply_pool(api, state)
    resolved = asyncio.Event()

    def zones_once_resolved(nodeclass: str) -> frozenset[str] | None:
        return subnet_zones(nodeclass) if resolved.is_set() else None

    async def resolve() -> bool:
        await asyncio.sleep(0.05)  # the resolution under way
        resolved.set()
        return True

    demand = {"in-c": pinned("in-c", "us-east-1c")}
    provisioner = _provisioner(api, state, demand, _Claims(), zones=zones_once_resolved, before_plan=resolve)
    assert await provisioner.provision_once() == [], "us-east-1c has no subnet: nothing to launch there"


def test_zones_held_by_running_replicas_of_zone_exclusive_groups() -> None:
    def replica(name: str, node: str, *, phase: str = "Running", zone_key: bool = True) -> dict[str, Any]:
        key = labels.ZONE if zone_key else labels.HOSTNAME
        term = {"labelSelector": {"matchLabels": {"app": "zk"}}, "topologyKey": key}
        return {
            "metadata": {"name": name, "namespace": "default", "labels": {"app": "zk"}},
            "spec": {
                "nodeName": node,
                "containers": [{"name": "c", "image": "x"}],
                "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}},
            },
            "status": {"phase": phase},
        }

    nodes = {
        name: {"metadata": {"name": name, "labels": {labels.ZONE: zone}}}
        for name, zone in (("n-a", "us-east-1a"), ("n-b", "us-east-1b"), ("n-c", "us-east-1c"))
    }
    by_node = {
        "n-a": [replica("zk-0", "n-a")],
        "n-b": [replica("zk-1", "n-b", phase="Succeeded")],  # gone: its zone is free again
        "n-c": [replica("host-0", "n-c", zone_key=False), pod_dict("plain", "n-c")],
    }
    occupied = occupied_zones(nodes, by_node)
    group = exclusive_group(by_node["n-a"][0])
    assert group is not None
    assert occupied == {group.key: frozenset({"us-east-1a"})}


def pod_dict(name: str, node: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default"}, "spec": {"nodeName": node, "containers": []}}
