"""End to end: a hedged warm start starts a spare beside the instance the pods wait for, and the
one left empty goes back to the pool.

The seed's pool gets ``warmPool: {size: 2, maxSize: 2, state: Stopped, hedgedStarts: 1}`` and a
``consolidateAfter`` of 2 s. Once two instances are parked, one inflate pod is created: the plan
takes one parked instance for it, and the spare is started beside it (two StartInstances, no
CreateFleet). The pod runs on whichever is Ready first; the other, empty, is consolidated and
parked again instead of terminated (``reuseOnScaleIn`` is off: a hedged instance was only lent).
Teardown leaves no instance.
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes_asyncio import client

from localcluster.ec2 import MotoEC2
from shared import labels
from tests.e2e.test_provisioning import inflate
from tests.e2e.test_warm_pool import _claims, _condition, _ours, tear_down_and_check_nothing_left, warm_stack

pytestmark = pytest.mark.slow


def _parked(claims: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        c
        for c in claims
        if c["metadata"]["labels"].get(labels.WARM_LABEL) == "true"
        and _condition(c, "Warm").get("reason") == "Stopped"
    ]


async def test_a_hedged_start_runs_the_pod_on_the_first_ready_and_parks_the_other(
    moto_server: MotoEC2,
) -> None:
    warm_pool = {"size": 2, "maxSize": 2, "state": "Stopped", "hedgedStarts": 1}
    async with warm_stack(moto_server, warm_pool, consolidate_after="2s") as (stack, calls):
        api = stack.api
        assert api is not None
        core = client.CoreV1Api(api)

        async def two_parked() -> bool:
            stopped = [i for i in await _ours(stack) if i["State"]["Name"] == "stopped"]
            return len(stopped) == 2 and len(_parked(await _claims(api))) == 2

        await stack.cluster.wait_for(two_parked, timeout=90)
        warm_ids = {i["InstanceId"] for i in await _ours(stack)}

        # One pod: its instance and a spare start.
        calls.clear()
        apps: Any = client.AppsV1Api(api)
        await apps.create_namespaced_deployment("default", inflate(1))

        async def running() -> Any:
            pods = (await core.list_namespaced_pod("default", label_selector="app=inflate")).items
            return pods[0] if len(pods) == 1 and pods[0].status.phase == "Running" else None

        pod = await stack.cluster.wait_for(running, timeout=60)
        assert calls.count("StartInstances") == 2, calls
        claims = await _claims(api)
        hedged = [c for c in claims if labels.WARM_HEDGED_ANNOTATION in c["metadata"].get("annotations", {})]
        assert len(hedged) == 2, "the instance taken for the pod and its spare are both marked"
        node = await core.read_node(pod.spec.node_name)
        assert node.spec.provider_id.rsplit("/", 1)[-1] in warm_ids

        # The one left empty is parked again; nothing is terminated or launched.
        async def one_parked_again() -> bool:
            stopped = [i for i in await _ours(stack) if i["State"]["Name"] == "stopped"]
            return len(stopped) == 1 and len(_parked(await _claims(api))) == 1

        await stack.cluster.wait_for(one_parked_again, timeout=60)
        assert "TerminateInstances" not in calls
        assert "CreateFleet" not in calls
        assert {i["InstanceId"] for i in await _ours(stack)} == warm_ids
        assert (await running()) is not None

        # Teardown: nothing left, running or stopped.
        await tear_down_and_check_nothing_left(stack)
