"""CapacityBuffer decisions: how many chunks, their virtual pods, and the status written for them."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from launcher.buffers.decisions import (
    MAX_CHUNKS,
    Source,
    chunk_count,
    chunk_states,
    chunk_uid,
    invalid,
    is_buffer_uid,
    provisioning,
    status_patch,
    translate,
)
from launcher.planner.inputs import Plan, PlannedClaim
from shared.api.capacitybuffer import CapacityBuffer, CapacityBufferStatus
from shared.api.meta import Condition
from shared.errors import ValidationError
from shared.requirements import Requirements
from shared.resources import Resources

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
GIB = 1024**3
TEMPLATE: dict[str, Any] = {
    "metadata": {"labels": {"app": "web"}},
    "spec": {
        "nodeSelector": {"intent": "apps"},
        "containers": [{"name": "c", "image": "i", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}],
    },
}


def buffer(**spec: Any) -> CapacityBuffer:
    if "scalableRef" not in spec and "podTemplateRef" not in spec:
        spec["podTemplateRef"] = {"name": "t"}
    return CapacityBuffer.from_api(
        {
            "apiVersion": "autoscaling.x-k8s.io/v1beta1",
            "kind": "CapacityBuffer",
            "metadata": {
                "name": "web",
                "namespace": "shop",
                "generation": 3,
                "creationTimestamp": "2026-01-01T11:00:00Z",
            },
            "spec": spec,
        }
    )


def scalable(**spec: Any) -> CapacityBuffer:
    return buffer(scalableRef={"apiGroup": "apps", "kind": "Deployment", "name": "web"}, **spec)


CHUNK = Resources(cpu=1000, memory=GIB, pods=1)


# How many chunks --------------------------------------------------------------------------------


def test_replicas_alone() -> None:
    assert chunk_count(buffer(replicas=3), CHUNK, None) == 3


def test_percentage_of_the_workload_rounds_up() -> None:
    assert chunk_count(scalable(percentage=20), CHUNK, 10) == 2
    assert chunk_count(scalable(percentage=20), CHUNK, 11) == 3
    assert chunk_count(scalable(percentage=20), CHUNK, 0) == 0


def test_replicas_and_percentage_take_the_larger() -> None:
    assert chunk_count(scalable(replicas=1, percentage=50), CHUNK, 10) == 5
    assert chunk_count(scalable(replicas=7, percentage=50), CHUNK, 10) == 7


def test_limits_cap_the_chunks() -> None:
    assert chunk_count(buffer(replicas=10, limits={"cpu": "3500m"}), CHUNK, None) == 3
    assert chunk_count(buffer(replicas=10, limits={"memory": "2Gi", "cpu": "9"}), CHUNK, None) == 2


def test_limits_alone_fill_the_limits() -> None:
    assert chunk_count(buffer(limits={"cpu": "4", "memory": "10Gi"}), CHUNK, None) == 4


def test_limits_on_nothing_a_chunk_requests_cannot_size_a_buffer() -> None:
    found = chunk_count(buffer(limits={"nvidia.com/gpu": "2"}), CHUNK, None)
    assert isinstance(found, str)
    assert "spec.limits" in found
    # ... but do not stop replicas.
    assert chunk_count(buffer(replicas=2, limits={"nvidia.com/gpu": "2"}), CHUNK, None) == 2


def test_chunks_are_bounded() -> None:
    assert chunk_count(buffer(replicas=10**6), CHUNK, None) == MAX_CHUNKS


@given(
    replicas=st.none() | st.integers(0, 50),
    percentage=st.none() | st.integers(0, 300),
    workload=st.integers(0, 100),
    limit_cpu=st.none() | st.integers(0, 40_000),
    cpu=st.integers(1, 4000),
)
def test_chunk_count_follows_upstream_rules(
    replicas: int | None, percentage: int | None, workload: int, limit_cpu: int | None, cpu: int
) -> None:
    spec: dict[str, Any] = {}
    if replicas is not None:
        spec["replicas"] = replicas
    if percentage is not None:
        spec["percentage"] = percentage
    if limit_cpu is not None:
        spec["limits"] = {"cpu": f"{limit_cpu}m"}
    if not spec:
        spec["replicas"] = 0
        replicas = 0
    requests = Resources(cpu=cpu, pods=1)
    count = chunk_count(scalable(**spec), requests, workload)
    wanted = [
        v
        for v in (replicas, math.ceil(workload * percentage / 100) if percentage is not None else None)
        if v is not None
    ]
    assert isinstance(count, int)
    if limit_cpu is not None:
        assert count * cpu <= limit_cpu
        assert (count + 1) * cpu > limit_cpu or count == MAX_CHUNKS or (wanted and count == max(wanted))
    if wanted:
        assert count <= max(wanted)
    if limit_cpu is None:
        assert count == min(max(wanted), MAX_CHUNKS)


# Virtual pods and status ---------------------------------------------------------------------


def source(**kwargs: Any) -> Source:
    return Source(**{"template": TEMPLATE, "template_name": "t", "generation": 4, **kwargs})


def test_chunks_are_virtual_pods_shaped_like_the_template() -> None:
    done = translate(buffer(replicas=3), source(), CapacityBufferStatus(), NOW)
    assert [d.uid for d in done.demands] == [chunk_uid("shop", "web", i) for i in range(3)]
    assert all(is_buffer_uid(d.uid) for d in done.demands)
    assert not is_buffer_uid("0d5f7c1e-8a1b-4c3d-9e2f-123456789abc")
    first = done.demands[0]
    assert first.reason == "predicted"  # free room on nodes may hold it
    assert first.requests == Resources(cpu=1000, memory=GIB, pods=1)
    assert first.requirements == (Requirements.from_labels({"intent": "apps"}),)
    assert first.namespace == "shop"
    assert first.labels == {"app": "web"}
    assert first.first_seen == datetime(2026, 1, 1, 11, tzinfo=UTC).timestamp()
    assert (first.owner_kind, first.owner_name) == ("CapacityBuffer", "web")


def test_status_records_the_template_and_readiness() -> None:
    status = translate(buffer(replicas=3), source(), CapacityBufferStatus(), NOW).status
    assert (status.pod_template_ref, status.pod_template_generation, status.replicas) == ("t", 4, 3)
    (ready,) = status.conditions
    assert (ready.type, ready.status, ready.observed_generation) == ("ReadyForProvisioning", "True", 3)
    assert status_patch(status)["podTemplateRef"] == {"name": "t"}
    assert status_patch(status)["provisioningStrategy"] == "buffer.x-k8s.io/active-capacity"


def test_a_missing_template_is_reported_and_keeps_nothing() -> None:
    missing = Source(problem=("PodTemplateNotFound", "PodTemplate shop/t not found"))
    done = translate(buffer(replicas=3), missing, CapacityBufferStatus(), NOW)
    assert done.demands == ()
    assert not done.ready
    (ready,) = done.status.conditions
    assert (ready.status, ready.reason) == ("False", "PodTemplateNotFound")
    assert "shop/t" in ready.message


def test_a_bad_template_names_its_field() -> None:
    bad = {"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "lots"}}}]}}
    done = translate(buffer(replicas=1), source(template=bad), CapacityBufferStatus(), NOW)
    (ready,) = done.status.conditions
    assert ready.reason == "InvalidPodTemplate"
    assert "cpu" in ready.message


def test_an_invalid_buffer_gets_a_condition_not_a_crash() -> None:
    raw = {"metadata": {"name": "b", "namespace": "d", "generation": 2}, "spec": {"replicas": 1}}
    with pytest.raises(ValidationError) as info:
        CapacityBuffer.from_api(raw)
    done = invalid("d/b", raw, info.value, NOW)
    (ready,) = done.status.conditions
    assert (ready.status, ready.reason, ready.observed_generation) == ("False", "InvalidSpec", 2)
    assert "podTemplateRef" in ready.message


def test_transition_time_moves_only_with_the_status() -> None:
    earlier = NOW - timedelta(hours=1)
    old = CapacityBufferStatus(
        conditions=(Condition("ReadyForProvisioning", "True", "BufferTranslated", "", earlier, 3),)
    )
    again = translate(buffer(replicas=5), source(), old, NOW).status.conditions[0]
    assert again.last_transition_time == earlier
    broken = translate(buffer(replicas=5), Source(problem=("X", "y")), old, NOW).status.conditions[0]
    assert broken.last_transition_time == NOW


# Provisioning, from the plan --------------------------------------------------------------------


def planned(*uids: str) -> PlannedClaim:
    return PlannedClaim("default", uids, Requirements(), ("m5.large",), Resources(), 0.1)


def test_provisioned_when_free_room_on_nodes_holds_every_chunk() -> None:
    done = translate(buffer(replicas=2), source(), CapacityBufferStatus(), NOW)
    uids = [d.uid for d in done.demands]
    plan = Plan(covered={uids[0]: "node-a", uids[1]: "node-b"})
    condition = provisioning(done, plan, {"node-a", "node-b"}, 3, NOW)
    assert condition is not None
    assert (condition.type, condition.status, condition.reason) == ("Provisioning", "True", "Provisioned")


def test_scaling_up_while_chunks_wait_for_claims() -> None:
    done = translate(buffer(replicas=3), source(), CapacityBufferStatus(), NOW)
    uids = [d.uid for d in done.demands]
    plan = Plan(claims=(planned(uids[2]),), covered={uids[0]: "node-a", uids[1]: "claim-launching"})
    condition = provisioning(done, plan, {"node-a"}, 3, NOW)
    assert condition is not None
    assert (condition.status, condition.reason) == ("True", "ScalingUp")
    assert "1 of 3 chunks held" in condition.message
    assert "2 waiting" in condition.message


def test_chunks_the_planner_refuses_make_provisioning_false() -> None:
    done = translate(buffer(replicas=2), source(), CapacityBufferStatus(), NOW)
    uids = [d.uid for d in done.demands]
    plan = Plan(covered={uids[0]: "node-a"}, unschedulable={uids[1]: "nodepool default limits reached"})
    condition = provisioning(done, plan, {"node-a"}, 3, NOW)
    assert condition is not None
    assert (condition.status, condition.reason) == ("False", "CapacityUnavailable")
    assert "limits reached" in condition.message


def test_a_buffer_that_is_not_ready_gets_no_provisioning_verdict() -> None:
    done = translate(buffer(replicas=2), Source(problem=("X", "y")), CapacityBufferStatus(), NOW)
    assert provisioning(done, Plan(), set(), 3, NOW) is None


def test_chunk_states_count_every_chunk_once() -> None:
    uids = [chunk_uid("shop", "web", i) for i in range(4)]
    plan = Plan(
        claims=(planned(uids[1]),),
        covered={uids[0]: "node-a"},
        unschedulable={uids[2]: "no NodePool"},
    )
    # uids[3] is in no plan yet (the book changed after it): still on its way.
    assert chunk_states(uids, plan, {"node-a"}) == {"held": 1, "launching": 2, "unavailable": 1}
