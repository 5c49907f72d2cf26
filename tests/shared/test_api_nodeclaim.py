"""NodeClaim parsing, conditions and phase."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from shared import labels
from shared.api.nodeclaim import NodeClaim, Phase, client_token_for
from shared.errors import ValidationError
from shared.resources import Resources

REF = {"group": "jitnode.io", "kind": "EC2NodeClass", "name": "default"}

FULL: dict[str, Any] = {
    "apiVersion": "jitnode.io/v1",
    "kind": "NodeClaim",
    "metadata": {
        "name": "default-x7k2p",
        "uid": "c0ffee",
        "resourceVersion": "9",
        "labels": {labels.NODEPOOL: "default", labels.INSTANCE_TYPE: "m5.large"},
        "finalizers": [labels.TERMINATION_FINALIZER],
        "creationTimestamp": "2024-05-01T10:00:00Z",
    },
    "spec": {
        "nodeClassRef": REF,
        "requirements": [
            {"key": labels.INSTANCE_TYPE, "operator": "In", "values": ["m5.large", "m5.xlarge"]},
            {"key": labels.NODEPOOL, "operator": "In", "values": ["default"]},
        ],
        "resources": {"requests": {"cpu": "1500m", "memory": "3Gi", "pods": "4"}},
        "expireAfter": "720h",
        "taints": [{"key": "dedicated", "value": "ml", "effect": "NoSchedule"}],
        "startupTaints": [{"key": "startup", "effect": "NoSchedule"}],
        "terminationGracePeriod": "1h",
        "clientToken": client_token_for("c0ffee"),
        "pods": ["default/web-1", "default/web-2"],
    },
    "status": {
        "providerID": "aws:///us-east-1a/i-0123",
        "instanceID": "i-0123",
        "nodeName": "ip-10-0-0-1.ec2.internal",
        "imageID": "ami-1",
        "capacity": {"cpu": "2", "memory": "8Gi", "pods": "29"},
        "allocatable": {"cpu": "1930m", "memory": "7Gi", "pods": "29"},
        "lastPodEventTime": "2024-05-01T10:05:00.250000Z",
        "conditions": [
            {
                "type": "Launched",
                "status": "True",
                "reason": "Launched",
                "lastTransitionTime": "2024-05-01T10:00:02Z",
            },
            {"type": "Registered", "status": "True", "observedGeneration": 1},
            {"type": "Initialized", "status": "False", "reason": "NotReady", "message": "kubelet starting"},
        ],
    },
}


def test_round_trip_and_accessors() -> None:
    claim = NodeClaim.from_api(FULL)
    assert claim.nodepool == "default"
    assert claim.requests == Resources(cpu=1500, memory=3 * 2**30, pods=4)
    assert claim.status.allocatable.amount("cpu") == 1930
    assert claim.status.last_pod_event_time == datetime(2024, 5, 1, 10, 5, 0, 250000, tzinfo=UTC)
    assert claim.node_requirements().allowed_values(labels.INSTANCE_TYPE) == frozenset(
        {"m5.large", "m5.xlarge"}
    )
    assert claim.pods == ("default/web-1", "default/web-2")
    assert claim.is_true("Registered")
    assert not claim.is_true("Initialized")
    assert not claim.is_true("Drifted")
    condition = claim.condition("Initialized")
    assert condition is not None
    assert condition.message == "kubelet starting"
    assert claim.phase() is Phase.REGISTERED
    assert claim.to_api() == FULL
    assert NodeClaim.from_api(claim.to_api()) == claim


def test_client_token_is_deterministic_and_valid() -> None:
    assert client_token_for("a") == client_token_for("a") != client_token_for("b")
    assert len(client_token_for("a" * 1000)) <= 64


def with_conditions(*conditions: dict[str, Any], deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "c"}
    if deleting:
        meta["deletionTimestamp"] = "2024-05-01T11:00:00Z"
    return {"metadata": meta, "spec": {"nodeClassRef": REF}, "status": {"conditions": list(conditions)}}


@pytest.mark.parametrize(
    ("conditions", "deleting", "phase"),
    [
        ((), False, Phase.PENDING),
        (({"type": "Launched", "status": "False"},), False, Phase.PENDING),
        (({"type": "Launched", "status": "True"},), False, Phase.LAUNCHED),
        (
            ({"type": "Launched", "status": "True"}, {"type": "Registered", "status": "True"}),
            False,
            Phase.REGISTERED,
        ),
        (({"type": "Initialized", "status": "True"},), False, Phase.READY),
        (({"type": "Ready", "status": "True"},), False, Phase.READY),
        (({"type": "Ready", "status": "True"},), True, Phase.TERMINATING),
    ],
)
def test_phase(conditions: tuple[dict[str, Any], ...], deleting: bool, phase: Phase) -> None:
    assert NodeClaim.from_api(with_conditions(*conditions, deleting=deleting)).phase() is phase


def test_defaults() -> None:
    claim = NodeClaim.from_api({"metadata": {"name": "c"}, "spec": {"nodeClassRef": REF}})
    assert claim.to_api()["spec"] == {
        "nodeClassRef": REF,
        "requirements": [],
        "resources": {},
        "expireAfter": "720h",
    }


def test_errors_by_path() -> None:
    bad = {
        "metadata": {"name": "c", "generation": "one"},
        "spec": {
            "nodeClassRef": {"group": "jitnode.io", "kind": "Other", "name": "x"},
            "requirements": [{"key": "k", "operator": "Gt", "values": ["x"]}],
            "resources": {"requests": {"cpu": "lots"}, "limits": {}},
            "expireAfter": "forever",
            "clientToken": "has space",
            "pods": ["ns/a", 3],
        },
        "status": {
            "capacity": {"memory": "-1Gi"},
            "lastPodEventTime": "yesterday",
            "conditions": [
                {"type": "Ready", "status": "Maybe"},
                {"type": "Ready", "status": "True"},
                {"status": "True"},
            ],
        },
        "extra": 1,
    }
    with pytest.raises(ValidationError) as info:
        NodeClaim.from_api(bad)
    assert {e.path for e in info.value.errors} == {
        "extra",
        "metadata.generation",
        "spec.nodeClassRef.kind",
        "spec.requirements[0].values[0]",
        "spec.resources.requests.cpu",
        "spec.resources.limits",
        "spec.expireAfter",
        "spec.clientToken",
        "spec.pods[1]",
        "status.capacity.memory",
        "status.lastPodEventTime",
        "status.conditions[0].status",
        "status.conditions[1].type",
        "status.conditions[2].type",
    }
