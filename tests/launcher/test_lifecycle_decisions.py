"""The NodeClaim lifecycle's pure decisions, state by state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from launcher.lifecycle import decisions as d
from launcher.lifecycle.garbage import leaked_instances
from launcher.lifecycle.launch import launch_request
from launcher.model import Instance, InstanceType, LaunchRequest, Offering
from launcher.planner.offerings import UnavailableOfferings
from shared import labels
from shared.api.nodeclaim import NodeClaim
from shared.resources import Resources

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
TIMEOUT = timedelta(minutes=15)


def claim(
    *,
    instance_id: str | None = None,
    conditions: list[dict[str, Any]] | None = None,
    deleting: bool = False,
    types: list[str] | None = None,
) -> NodeClaim:
    metadata: dict[str, Any] = {
        "name": "default-abcde",
        "uid": "u-1",
        "resourceVersion": "7",
        "labels": {labels.NODEPOOL: "default"},
        "finalizers": [labels.TERMINATION_FINALIZER],
        "creationTimestamp": "2026-11-25T11:50:00Z",
    }
    if deleting:
        metadata["deletionTimestamp"] = "2026-11-25T11:59:00Z"
    status: dict[str, Any] = {"conditions": conditions or []}
    if instance_id:
        status["instanceID"] = instance_id
    return NodeClaim.from_api(
        {
            "apiVersion": "jitnode.io/v1",
            "kind": "NodeClaim",
            "metadata": metadata,
            "spec": {
                "nodeClassRef": {"group": "jitnode.io", "kind": "EC2NodeClass", "name": "default"},
                "requirements": [
                    {"key": "intent", "operator": "In", "values": ["apps"]},  # a pool label, not a type's
                    {
                        "key": labels.INSTANCE_TYPE,
                        "operator": "In",
                        "values": types or ["m5.large", "c5.large"],
                    },
                    {"key": labels.CAPACITY_TYPE, "operator": "In", "values": ["on-demand"]},
                ],
                "clientToken": "jitnode-token",
            },
            "status": status,
        }
    )


def instance(
    state: str = "running", launched: datetime = NOW - timedelta(minutes=1), tag: str = "default-abcde"
) -> Instance:
    return Instance(
        id="i-0123",
        instance_type="m5.large",
        zone="us-east-1a",
        capacity_type="on-demand",
        state=state,
        launch_time=launched,
        private_dns_name="ip-10-0-0-1.ec2.internal",
        image_id="ami-1",
        tags={labels.TAG_NODECLAIM: tag},
    )


def launched(at: str = "2026-11-25T11:59:00Z") -> dict[str, Any]:
    return {"type": "Launched", "status": "True", "reason": "Launched", "lastTransitionTime": at}


NODE = {
    "metadata": {"name": "ip-10-0-0-1.ec2.internal"},
    "status": {"conditions": [{"type": "Ready", "status": "True"}]},
}
NOT_READY_NODE = {"metadata": {"name": "ip-10-0-0-1.ec2.internal"}, "status": {"conditions": []}}


def step(c: NodeClaim, i: Instance | None = None, node: dict[str, Any] | None = None) -> d.Step:
    return d.next_step(c, i, node, NOW, registration_timeout=TIMEOUT)


def test_a_new_claim_launches() -> None:
    assert step(claim()) == d.Launch()


def test_an_instance_found_by_tag_is_adopted_not_launched_again() -> None:
    found = instance()
    assert step(claim(), found) == d.Adopt(found)


def test_a_recorded_instance_that_vanished_deletes_the_claim() -> None:
    result = step(claim(instance_id="i-0123", conditions=[launched()]), None)
    assert isinstance(result, d.Delete)
    assert "no longer exists" in result.reason


@pytest.mark.parametrize("state", ["shutting-down", "terminated", "stopped", "stopping"])
def test_an_instance_that_is_gone_deletes_the_claim(state: str) -> None:
    result = step(claim(instance_id="i-0123", conditions=[launched()]), instance(state))
    assert isinstance(result, d.Delete)
    assert state in result.reason


def test_waiting_for_registration_until_the_timeout() -> None:
    c = claim(instance_id="i-0123", conditions=[launched("2026-11-25T11:50:00Z")])
    assert isinstance(step(c, instance()), d.Wait)
    late = claim(instance_id="i-0123", conditions=[launched("2026-11-25T11:44:59Z")])
    result = step(late, instance())
    assert isinstance(result, d.Delete)
    assert "did not register" in result.reason


def test_registration_then_initialization() -> None:
    c = claim(instance_id="i-0123", conditions=[launched()])
    assert step(c, instance(), NODE) == d.Register("ip-10-0-0-1.ec2.internal")
    registered = claim(
        instance_id="i-0123",
        conditions=[
            launched(),
            {"type": "Registered", "status": "True", "lastTransitionTime": "2026-11-25T11:59:30Z"},
        ],
    )
    assert isinstance(step(registered, instance(), NOT_READY_NODE), d.Wait)
    assert step(registered, instance(), NODE) == d.Initialize("ip-10-0-0-1.ec2.internal")


def test_deletion_terminates_then_deletes_node_then_releases_finalizer() -> None:
    c = claim(instance_id="i-0123", conditions=[launched()], deleting=True)
    assert step(c, instance(), NODE) == d.TerminateInstance("i-0123")
    assert isinstance(step(c, instance("shutting-down"), NODE), d.Wait)
    assert step(c, instance("terminated"), NODE) == d.DeleteNode("ip-10-0-0-1.ec2.internal")
    assert step(c, None, None) == d.RemoveFinalizer()


def test_leaks_are_untracked_instances_past_the_grace_period() -> None:
    old = instance(launched=NOW - timedelta(minutes=10), tag="gone-claim")
    fresh = Instance(**{**old.__dict__, "id": "i-fresh", "launch_time": NOW - timedelta(seconds=5)})
    tracked = Instance(**{**old.__dict__, "id": "i-tracked", "tags": {labels.TAG_NODECLAIM: "live"}})
    by_id = Instance(**{**old.__dict__, "id": "i-by-id", "tags": {}})
    dead = Instance(**{**old.__dict__, "id": "i-dead", "state": "terminated"})
    result = leaked_instances(
        [old, fresh, tracked, by_id, dead], {"live"}, {"i-by-id"}, NOW, timedelta(seconds=30)
    )
    assert [i.id for i in result] == ["i-0123"]


def _type(
    name: str, price: float, arch: str = "amd64", zones: tuple[str, ...] = ("us-east-1a", "us-east-1b")
) -> InstanceType:
    return InstanceType(
        name=name,
        labels={labels.INSTANCE_TYPE: name, labels.ARCH: arch},
        capacity=Resources(cpu=2000, memory=8 * 2**30, pods=29),
        allocatable=Resources(cpu=1930, memory=7 * 2**30, pods=29),
        offerings=tuple(Offering(z, "on-demand", price) for z in zones)
        + tuple(Offering(z, "spot", price / 3) for z in zones),
    )


def test_launch_request_keeps_planned_order_and_drops_unavailable_offerings() -> None:
    catalogue = {"m5.large": _type("m5.large", 0.096), "c5.large": _type("c5.large", 0.085)}
    unavailable = UnavailableOfferings(clock=lambda: 0.0)
    request = launch_request(claim(), catalogue, unavailable, {labels.TAG_CLUSTER: "c"})
    assert isinstance(request, LaunchRequest)
    assert request.instance_types == ("m5.large", "c5.large")
    assert request.capacity_types == ("on-demand",)  # the claim forbids spot
    assert request.tags[labels.TAG_NODECLAIM] == "default-abcde"
    first_token = request.client_token
    assert first_token.startswith("jitnode-token-")
    assert len(first_token) <= 64
    again = launch_request(claim(), catalogue, unavailable, {})
    assert isinstance(again, LaunchRequest)
    assert again.client_token == first_token  # the same call retried: EC2 replays its answer
    for zone in ("us-east-1a", "us-east-1b"):
        unavailable.mark("m5.large", zone, "on-demand")
    request = launch_request(claim(), catalogue, unavailable, {})
    assert isinstance(request, LaunchRequest)
    assert request.instance_types == ("c5.large",)
    # Narrower after insufficient capacity: a new token, or EC2 answers IdempotentParameterMismatch.
    assert request.client_token != first_token
    assert request.client_token.startswith("jitnode-token-")
    for zone in ("us-east-1a", "us-east-1b"):
        unavailable.mark("c5.large", zone, "on-demand")
    assert isinstance(launch_request(claim(), catalogue, unavailable, {}), str)


def test_launch_request_uses_one_architecture() -> None:
    catalogue = {"m6g.large": _type("m6g.large", 0.07, "arm64"), "m5.large": _type("m5.large", 0.096)}
    request = launch_request(claim(types=["m6g.large", "m5.large"]), catalogue, UnavailableOfferings(), {})
    assert isinstance(request, LaunchRequest)
    assert request.instance_types == ("m6g.large",)
    assert request.architecture == "arm64"


def test_launch_request_names_the_unavailable_offerings_of_usable_types() -> None:
    # An interrupted or exhausted offering (type, zone, capacity type) is not asked for again,
    # though its type is still usable in other zones and its zone with other types.
    catalogue = {"m5.large": _type("m5.large", 0.096), "c5.large": _type("c5.large", 0.085)}
    unavailable = UnavailableOfferings(clock=lambda: 0.0)
    before = launch_request(claim(), catalogue, unavailable, {})
    assert isinstance(before, LaunchRequest)
    assert before.unavailable == frozenset()
    unavailable.mark("m5.large", "us-east-1a", "on-demand")
    unavailable.mark("m5.large", "us-east-1a", "spot")  # the claim forbids spot: not its concern
    after = launch_request(claim(), catalogue, unavailable, {})
    assert isinstance(after, LaunchRequest)
    assert after.instance_types == before.instance_types
    assert after.zones == before.zones
    assert after.unavailable == frozenset({("m5.large", "us-east-1a", "on-demand")})
    assert after.client_token != before.client_token  # other overrides: another call
