"""Which claims still hold room for pending pods: a Ready claim is a Node, its room is the Node's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from launcher.provisioning.inputs import BIND_GRACE, in_flight_claims
from shared import labels
from shared.api.nodeclaim import NodeClaim
from shared.resources import EMPTY, Resources
from tests.launcher.planner_fixtures import instance_type

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
CATALOGUE = {"m5.xlarge": instance_type("m5.xlarge", 4, 16, 0.192)}


def claim(initialized_at: datetime | None, node: str | None = None) -> NodeClaim:
    conditions: list[dict[str, Any]] = []
    if initialized_at is not None:
        at = initialized_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        conditions.append({"type": "Initialized", "status": "True", "lastTransitionTime": at})
    return NodeClaim.from_api(
        {
            "apiVersion": "jitnode.io/v1",
            "kind": "NodeClaim",
            "metadata": {"name": "default-abcde", "labels": {labels.NODEPOOL: "default"}},
            "spec": {
                "nodeClassRef": {"group": "jitnode.io", "kind": "EC2NodeClass", "name": "default"},
                "requirements": [{"key": labels.INSTANCE_TYPE, "operator": "In", "values": ["m5.xlarge"]}],
                "resources": {"requests": {"cpu": "1", "memory": "1Gi"}},
                "pods": ["uid-1", "uid-2"],
            },
            "status": {"conditions": conditions, **({"nodeName": node} if node else {})},
        }
    )


def test_a_launching_claim_offers_its_unplanned_room() -> None:
    (held,) = in_flight_claims([claim(None)], CATALOGUE, now=NOW)
    assert held.room.amount("cpu") == 3900 - 1000
    assert held.pods == frozenset({"uid-1", "uid-2"})


def test_a_ready_claim_keeps_its_pods_but_offers_no_phantom_room() -> None:
    (held,) = in_flight_claims([claim(NOW - timedelta(seconds=5))], CATALOGUE, now=NOW)
    assert held.room == EMPTY  # what is really free is offered by its Node
    assert held.pods == frozenset({"uid-1", "uid-2"})


def test_a_claim_ready_past_the_bind_grace_holds_nothing() -> None:
    assert in_flight_claims([claim(NOW - BIND_GRACE - timedelta(seconds=1))], CATALOGUE, now=NOW) == []


def test_a_ready_claim_names_its_node() -> None:
    (held,) = in_flight_claims([claim(NOW - timedelta(seconds=5), "node-1")], CATALOGUE, now=NOW)
    assert held.node == "node-1"
    (launching,) = in_flight_claims([claim(None)], CATALOGUE, now=NOW)
    assert launching.node is None


def test_a_launching_claims_pods_bound_elsewhere_free_their_room() -> None:
    """uid-2 was bound to another node: its share of the claim is free for that node's pods."""
    (held,) = in_flight_claims([claim(None)], CATALOGUE, now=NOW, bound={"uid-2": Resources(cpu=500)})
    assert held.room.amount("cpu") == 3900 - 1000 + 500
    (ready,) = in_flight_claims(
        [claim(NOW - timedelta(seconds=5))], CATALOGUE, now=NOW, bound={"uid-2": Resources(cpu=500)}
    )
    assert ready.room == EMPTY
