"""``jitnode.io/do-not-disrupt`` with durations (Karpenter v1.12): pods, nodes, invalid values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from launcher.disruption.donotdisrupt import (
    FIELD,
    node_protection,
    parse_protection_duration,
    pod_protection,
)
from launcher.disruption.drain import do_not_disrupt
from launcher.disruption.inputs import node_info
from shared import labels
from shared.errors import FieldError

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def obj(value: str | None, started: datetime | str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "p", "namespace": "default", "uid": "u1"}
    if value is not None:
        meta["annotations"] = {labels.DO_NOT_DISRUPT_ANNOTATION: value}
    status: dict[str, Any] = {"phase": "Running"}
    if isinstance(started, datetime):
        status["startTime"] = started.strftime("%Y-%m-%dT%H:%M:%SZ")
    elif started is not None:
        status["startTime"] = started
    return {"metadata": meta, "spec": {"containers": [{"name": "c"}]}, "status": status}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("30m", timedelta(minutes=30)),
        ("1h30m", timedelta(minutes=90)),
        ("90s", timedelta(seconds=90)),
        ("1.5h", timedelta(minutes=90)),
        ("500ms", timedelta(milliseconds=500)),
    ],
)
def test_durations_parse_like_go(value: str, expected: timedelta) -> None:
    assert parse_protection_duration(value) == expected


@pytest.mark.parametrize("value", ["30", "0", "0s", "-5m", "forever", "", "5 m", "false", "1d"])
def test_invalid_durations_name_the_field(value: str) -> None:
    with pytest.raises(FieldError) as error:
        parse_protection_duration(value)
    assert error.value.path == FIELD
    assert labels.DO_NOT_DISRUPT_ANNOTATION in str(error.value)


def test_true_protects_a_pod_forever() -> None:
    assert pod_protection(obj("true", NOW - timedelta(days=400)), NOW).active
    assert pod_protection(obj("True"), NOW).active  # jitnode accepted any case before durations


def test_absent_annotation_protects_nothing() -> None:
    protection = pod_protection(obj(None, NOW), NOW)
    assert not protection.active
    assert protection.problem is None


def test_duration_protects_until_that_long_after_the_pod_started() -> None:
    started = NOW - timedelta(minutes=20)
    within = pod_protection(obj("30m", started), NOW)
    assert within.active
    assert within.until == started + timedelta(minutes=30)
    after = pod_protection(obj("30m", started), NOW + timedelta(minutes=10))
    assert not after.active
    assert after.until == within.until


def test_duration_counts_from_start_time_not_creation() -> None:
    pod = obj("10m", NOW - timedelta(minutes=5))
    pod["metadata"]["creationTimestamp"] = (NOW - timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert pod_protection(pod, NOW).active


def test_a_pod_not_started_yet_is_protected() -> None:
    assert pod_protection(obj("5m"), NOW).active
    assert pod_protection(obj("5m", "not-a-time"), NOW).active


@pytest.mark.parametrize("value", ["yes", "30", "-1h", "0s", "tomorrow"])
def test_invalid_pod_value_is_ignored_and_reported(value: str) -> None:
    protection = pod_protection(obj(value, NOW), NOW)
    assert not protection.active
    assert protection.problem is not None
    assert FIELD in protection.problem
    assert repr(value) in protection.problem


def test_nodes_take_true_only() -> None:
    assert node_protection(obj("true")).active
    assert not node_protection(obj(None)).active
    duration = node_protection(obj("30m"))
    assert not duration.active
    assert duration.problem is not None
    assert "pods only" in duration.problem


@settings(max_examples=200, deadline=None)
@given(minutes=st.integers(1, 10_000), age=st.integers(0, 20_000))
def test_property_protected_exactly_while_younger_than_the_duration(minutes: int, age: int) -> None:
    started = NOW - timedelta(minutes=age)
    assert pod_protection(obj(f"{minutes}m", started), NOW).active == (age < minutes)


def test_drain_helper_still_reads_true_only() -> None:
    assert do_not_disrupt(obj("true"))
    assert not do_not_disrupt(obj("30m"))


def _node(annotation: str | None) -> dict[str, Any]:
    node = obj(annotation)
    node["metadata"]["name"] = "n1"
    node["status"] = {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}}
    return node


def test_node_info_reads_durations_at_now() -> None:
    young = obj("1h", NOW - timedelta(minutes=30))
    old = obj("1h", NOW - timedelta(hours=2))
    old["metadata"] = {**old["metadata"], "name": "old", "uid": "u2"}
    info = node_info(_node(None), None, [young, old], {}, NOW)
    assert {p.demand.name: p.do_not_disrupt for p in info.pods} == {"p": True, "old": False}
    assert node_info(_node("true"), None, [], {}, NOW).do_not_disrupt
    assert not node_info(_node("30m"), None, [], {}, NOW).do_not_disrupt
