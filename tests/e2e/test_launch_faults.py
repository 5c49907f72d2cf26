"""Launch faults on the full local stack: a crash mid-launch, insufficient capacity.

Faults are injected where the issue allows: moto's own CreateFleet handler (its backend runs
in this process) and the launcher process being stopped at the worst moment.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from kubernetes_asyncio import client
from moto.core.responses import ActionResult
from moto.ec2.responses.fleets import Fleets

from launcher.lifecycle.controller import ClaimController
from launcher.model import Instance
from localcluster.stack import JitnodeStack
from shared import labels
from shared.api.nodeclaim import NodeClaim
from tests.e2e.test_provisioning import inflate

pytestmark = pytest.mark.slow


async def _claims(stack: JitnodeStack) -> list[dict[str, Any]]:
    assert stack.api is not None
    listed = await client.CustomObjectsApi(stack.api).list_cluster_custom_object(
        "jitnode.io", "v1", "nodeclaims"
    )
    items: list[dict[str, Any]] = listed["items"]
    return items


async def _our_instances(stack: JitnodeStack) -> list[dict[str, Any]]:
    instances = await asyncio.to_thread(stack.cluster.ec2.instances)
    return [
        i
        for i in instances
        if i["State"]["Name"] != "terminated"
        and {t["Key"]: t["Value"] for t in i.get("Tags", [])}.get(labels.TAG_CLUSTER)
        == stack.settings.cluster
    ]


async def _all_running(stack: JitnodeStack, replicas: int) -> bool:
    assert stack.api is not None
    pods = (
        await client.CoreV1Api(stack.api).list_namespaced_pod("default", label_selector="app=inflate")
    ).items
    return len(pods) == replicas and all(p.status.phase == "Running" for p in pods)


async def test_a_launcher_killed_after_create_fleet_neither_launches_twice_nor_leaks(
    stack: JitnodeStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert stack.api is not None
    fleet_returned = asyncio.Event()

    async def die_before_recording(self: ClaimController, claim: NodeClaim, instance: Instance) -> None:
        fleet_returned.set()
        await asyncio.Event().wait()  # the process "dies" here: nothing is recorded

    monkeypatch.setattr(ClaimController, "_record_launch", die_before_recording)
    apps: Any = client.AppsV1Api(stack.api)
    await apps.create_namespaced_deployment("default", inflate(3))
    await asyncio.wait_for(fleet_returned.wait(), timeout=60)
    await asyncio.sleep(0.5)  # let any other launch of this plan reach CreateFleet too
    await stack.stop_launcher()
    monkeypatch.undo()

    before = await _our_instances(stack)
    assert before, "CreateFleet should have launched before the crash"
    assert all(not c.get("status", {}).get("instanceID") for c in await _claims(stack))

    await stack.start_launcher()
    await stack.cluster.wait_for(lambda: _all_running(stack, 3), timeout=60)

    async def adopted() -> bool:
        claims = await _claims(stack)
        return bool(claims) and all(c.get("status", {}).get("instanceID") for c in claims)

    await stack.cluster.wait_for(adopted, timeout=60)
    claims = await _claims(stack)
    after = await _our_instances(stack)
    assert sorted(i["InstanceId"] for i in after) == sorted(
        i["InstanceId"] for i in before
    )  # none launched twice
    recorded = sorted(c["status"]["instanceID"] for c in claims)
    assert recorded == sorted(i["InstanceId"] for i in after)  # every instance belongs to a claim: no leak


async def test_insufficient_capacity_marks_offerings_and_falls_back(
    stack: JitnodeStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert stack.api is not None
    original = Fleets.create_fleet
    refused: list[str] = []
    override_type = re.compile(r"LaunchTemplateConfigs\.1\.Overrides\.(\d+)\.InstanceType")

    def create_fleet(self: Fleets) -> ActionResult:
        types = sorted(
            (
                (int(m.group(1)), v[0])
                for k, v in self.querystring.items()
                if (m := override_type.fullmatch(k))
            ),
        )
        if types and not refused:
            refused.append(types[0][1])  # the cheapest offering of the first launch runs dry
        if types and types[0][1] == refused[0]:
            errors = [
                {
                    "LaunchTemplateAndOverrides": {
                        "Overrides": {"InstanceType": refused[0], "AvailabilityZone": zone}
                    },
                    "Lifecycle": "on-demand",
                    "ErrorCode": "InsufficientInstanceCapacity",
                    "ErrorMessage": f"We currently do not have sufficient {refused[0]} capacity.",
                }
                for zone in ("us-east-1a", "us-east-1b", "us-east-1c")
            ]
            return ActionResult({"FleetId": "fleet-0", "Errors": errors, "Instances": []})
        return original(self)

    monkeypatch.setattr(Fleets, "create_fleet", create_fleet)
    apps: Any = client.AppsV1Api(stack.api)
    await apps.create_namespaced_deployment("default", inflate(3))
    await stack.cluster.wait_for(lambda: _all_running(stack, 3), timeout=60)

    assert refused, "CreateFleet was never called"
    nodes = (await client.CoreV1Api(stack.api).list_node()).items
    assert nodes
    assert all(n.metadata.labels[labels.INSTANCE_TYPE] != refused[0] for n in nodes)
    assert stack.launcher is not None
    assert stack.launcher.unavailable.is_unavailable(refused[0], "us-east-1a", "on-demand")


async def test_refusals_that_teach_nothing_back_off_instead_of_spinning(
    stack: JitnodeStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EC2 keeps refusing an offering the launcher already avoids: each such answer is a failed
    attempt with its backoff, not a tight retry loop of CreateFleet calls."""
    assert stack.api is not None
    calls: list[str] = []

    def always_short(self: Fleets) -> ActionResult:
        calls.append(self.querystring.get("ClientToken", [""])[0])
        error = {
            "LaunchTemplateAndOverrides": {
                "Overrides": {"InstanceType": "c6a.xlarge", "AvailabilityZone": "us-east-1a"}
            },
            "Lifecycle": "on-demand",
            "ErrorCode": "InsufficientInstanceCapacity",
            "ErrorMessage": "We currently do not have sufficient c6a.xlarge capacity.",
        }
        return ActionResult({"FleetId": "fleet-0", "Errors": [error], "Instances": []})

    monkeypatch.setattr(Fleets, "create_fleet", always_short)
    apps: Any = client.AppsV1Api(stack.api)
    await apps.create_namespaced_deployment("default", inflate(1))
    await stack.cluster.wait_for(lambda: _fleet_calls_at_least(calls, 2), timeout=60)
    await asyncio.sleep(3.0)
    # One call learns the offering is out, the next learns nothing and ends the attempt; the
    # claim's later attempts back off. A spinning loop makes thousands of calls in 3 s.
    assert len(calls) <= 20, f"{len(calls)} CreateFleet calls: the launch loop spins"


async def _fleet_calls_at_least(calls: list[str], count: int) -> bool:
    return len(calls) >= count
