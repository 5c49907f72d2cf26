"""The demo's eyes: polls the API for pods, NodeClaims and Nodes, and EC2 for instance states.

Polling rather than watching keeps the demo a plain client of any cluster (the local one or a
real one with ``--kubeconfig``) and gives one consistent snapshot per tick. Objects that existed
before the demo started (a real cluster's other NodeClaims and Nodes) are left out, so the demo
counts only what it caused. Lists are decoded straight from JSON with orjson.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import aiohttp
import orjson
from kubernetes_asyncio import client

from launcher.aws.session import AWSClients
from localcluster.demo.snapshot import PriceOf, Snapshot, build_snapshot, is_jitnode_node
from shared import labels
from shared.api.group import API_GROUP, API_VERSION, NODECLAIM_PLURAL

# States in which an instance still runs up a bill (or may again): a leak if jitnode is done.
RUNNING_STATES: Final = frozenset({"pending", "running", "stopping", "stopped"})
GONE_STATES: Final = frozenset({"shutting-down", "terminated"})


class ListError(Exception):
    """The API answered a list with an error status."""


async def _items(response: aiohttp.ClientResponse) -> list[dict[str, Any]]:
    try:
        body = await response.read()
        if response.status != 200:
            raise ListError(f"HTTP {response.status}: {body[:300]!r}")
    finally:
        response.release()
    items = orjson.loads(body).get("items") or []
    return [item for item in items if isinstance(item, dict)]


def _name(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


@dataclass
class ClusterWatcher:
    """Lists the Deployment's pods and jitnode's claims and nodes, as one :class:`Snapshot`."""

    api: client.ApiClient
    namespace: str
    selector: str  # label selector of the Deployment's pods, e.g. "app=inflate"
    price_of: PriceOf
    ignored_claims: set[str] = field(default_factory=set)
    ignored_nodes: set[str] = field(default_factory=set)

    async def lists(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
        # Typed as Any: the generated stubs don't know the raw-response form of the calls.
        core: Any = client.CoreV1Api(self.api)
        custom: Any = client.CustomObjectsApi(self.api)
        pods = await _items(
            await core.list_namespaced_pod(
                self.namespace, label_selector=self.selector, _preload_content=False
            )
        )
        claims = await _items(
            await custom.list_cluster_custom_object(
                API_GROUP, API_VERSION, NODECLAIM_PLURAL, _preload_content=False
            )
        )
        nodes = await _items(await core.list_node(_preload_content=False))
        return pods, claims, nodes

    async def baseline(self) -> None:
        """Ignore every NodeClaim and jitnode Node that exists now: the demo did not cause them."""
        _, claims, nodes = await self.lists()
        self.ignored_claims = {_name(c) for c in claims}
        self.ignored_nodes = {_name(n) for n in nodes if is_jitnode_node(n)}

    async def snapshot(self) -> Snapshot:
        pods, claims, nodes = await self.lists()
        return build_snapshot(
            pods,
            [c for c in claims if _name(c) not in self.ignored_claims],
            [n for n in nodes if _name(n) not in self.ignored_nodes],
            self.price_of,
        )


@dataclass(frozen=True)
class InstanceReport:
    """EC2's view at the end: which launched instances are gone, and which still run."""

    terminated: frozenset[str]
    running: frozenset[str]


class InstanceChecker:
    """Asks EC2 about the demo's instances (and, when ``cluster`` is set, all the cluster's)."""

    def __init__(self, clients: AWSClients, cluster: str | None) -> None:
        self._clients = clients
        self._cluster = cluster

    async def check(self, launched: Iterable[str]) -> InstanceReport:
        """States of the ``launched`` instances plus every instance tagged for the cluster.

        With a cluster name (the local cluster, where every jitnode instance is the demo's) any
        instance tagged for it that still runs counts as a leak; on a real cluster, where other
        workloads have nodes too, only the instances the demo saw launched are checked.
        """
        states: dict[str, str] = {}
        ec2 = self._clients.ec2
        launched_ids = sorted(set(launched))
        if launched_ids:
            paginator = ec2.get_paginator("describe_instances")
            async for page in paginator.paginate(InstanceIds=launched_ids):
                states.update(_states(page))
        if self._cluster is not None:
            paginator = ec2.get_paginator("describe_instances")
            filters = [{"Name": f"tag:{labels.TAG_CLUSTER}", "Values": [self._cluster]}]
            async for page in paginator.paginate(Filters=filters):
                states.update(_states(page))
        return InstanceReport(
            # An id EC2 no longer knows at all has long been terminated.
            terminated=frozenset(i for i in launched_ids if states.get(i, "terminated") in GONE_STATES),
            running=frozenset(i for i, state in states.items() if state in RUNNING_STATES),
        )


def _states(page: Mapping[str, Any]) -> dict[str, str]:
    return {
        instance["InstanceId"]: instance["State"]["Name"]
        for reservation in page.get("Reservations", [])
        for instance in reservation.get("Instances", [])
    }
