"""CapacityBuffer (autoscaling.x-k8s.io/v1beta1): parsing, validation by field path, round trip."""

from __future__ import annotations

from typing import Any

import pytest

from shared.api.capacitybuffer import ACTIVE_CAPACITY, CapacityBuffer, ScalableRef
from shared.errors import ValidationError
from shared.resources import Resources

FULL: dict[str, Any] = {
    "apiVersion": "autoscaling.x-k8s.io/v1beta1",
    "kind": "CapacityBuffer",
    "metadata": {"name": "web", "namespace": "shop", "uid": "u-1", "generation": 2},
    "spec": {
        "provisioningStrategy": ACTIVE_CAPACITY,
        "scalableRef": {"apiGroup": "apps", "kind": "Deployment", "name": "web"},
        "replicas": 2,
        "percentage": 20,
        "limits": {"cpu": "4", "memory": "8Gi"},
    },
    "status": {
        "replicas": 2,
        "provisioningStrategy": ACTIVE_CAPACITY,
        "conditions": [
            {
                "type": "ReadyForProvisioning",
                "status": "True",
                "reason": "BufferTranslated",
                "message": "2 chunks",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
                "observedGeneration": 2,
            }
        ],
    },
}


def minimal(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling.x-k8s.io/v1beta1",
        "kind": "CapacityBuffer",
        "metadata": {"name": "b", "namespace": "default"},
        "spec": spec or {"podTemplateRef": {"name": "t"}, "replicas": 1},
    }


def problems(obj: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ValidationError) as info:
        CapacityBuffer.from_api(obj)
    return {e.path: e.message for e in info.value.errors}


def test_full_buffer_parses_every_field() -> None:
    buffer = CapacityBuffer.from_api(FULL)
    assert buffer.key == "shop/web"
    assert buffer.scalable_ref == ScalableRef("Deployment", "web", "apps")
    assert buffer.pod_template_ref is None
    assert (buffer.replicas, buffer.percentage) == (2, 20)
    assert buffer.limits == Resources.parse({"cpu": "4", "memory": "8Gi"}, "limits")
    assert buffer.status.replicas == 2
    assert buffer.status.conditions[0].type == "ReadyForProvisioning"


def test_round_trip_keeps_the_object() -> None:
    buffer = CapacityBuffer.from_api(FULL)
    assert CapacityBuffer.from_api(buffer.to_api()) == buffer


def test_strategy_defaults_to_active_capacity() -> None:
    assert CapacityBuffer.from_api(minimal()).provisioning_strategy == ACTIVE_CAPACITY


def test_both_references_are_refused() -> None:
    obj = minimal(podTemplateRef={"name": "t"}, scalableRef={"kind": "Deployment", "name": "d"}, replicas=1)
    assert "not both" in problems(obj)["spec"]


def test_one_reference_is_required() -> None:
    assert "required" in problems(minimal(replicas=1))["spec"]


def test_a_pod_template_needs_replicas_or_limits() -> None:
    assert "replicas or limits" in problems(minimal(podTemplateRef={"name": "t"}))["spec"]
    CapacityBuffer.from_api(minimal(podTemplateRef={"name": "t"}, limits={"cpu": "2"}))


def test_percentage_applies_to_a_scalable_ref_only() -> None:
    obj = minimal(podTemplateRef={"name": "t"}, replicas=1, percentage=10)
    assert "scalableRef" in problems(obj)["spec.percentage"]


@pytest.mark.parametrize(
    ("spec", "path"),
    [
        ({"podTemplateRef": {"name": "t"}, "replicas": -1}, "spec.replicas"),
        ({"scalableRef": {"kind": "Deployment", "name": "d"}, "percentage": -5}, "spec.percentage"),
        ({"scalableRef": {"kind": "Deployment", "name": "d"}, "replicas": "2"}, "spec.replicas"),
        ({"podTemplateRef": {"name": ""}, "replicas": 1}, "spec.podTemplateRef.name"),
        ({"scalableRef": {"name": "d"}, "replicas": 1}, "spec.scalableRef.kind"),
        ({"scalableRef": {"kind": "Deployment", "name": "d", "extra": 1}}, "spec.scalableRef.extra"),
        ({"podTemplateRef": {"name": "t"}, "limits": {"cpu": "lots"}}, "spec.limits"),
        ({"podTemplateRef": {"name": "t"}, "replicas": 1, "size": 3}, "spec.size"),
    ],
)
def test_bad_fields_are_named(spec: dict[str, Any], path: str) -> None:
    found = problems(minimal(**spec))
    assert any(p == path or p.startswith(path + ".") for p in found), found
