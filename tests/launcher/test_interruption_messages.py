"""Interruption queue messages: the EventBridge events AWS sends, and bodies that are not one.

The bodies are AWS's documented examples (EC2 User Guide: Spot interruption notices, rebalance
recommendations, instance state-change events; AWS Health: the EventBridge schema's sample),
with ids and times of our own.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from launcher.interruption.messages import (
    INSTANCE_STATES,
    Ignored,
    RebalanceRecommendation,
    ScheduledChange,
    SpotInterruption,
    StateChange,
    parse_message,
    parse_time,
)
from shared.errors import ValidationError

TIME = "2026-12-02T22:00:00Z"
WHEN = datetime(2026, 12, 2, 22, 0, tzinfo=UTC)


def spot_warning(instance: str = "i-1234567890abcdef0", action: str = "terminate") -> dict[str, Any]:
    return {
        "version": "0",
        "id": "12345678-1234-1234-1234-123456789012",
        "detail-type": "EC2 Spot Instance Interruption Warning",
        "source": "aws.ec2",
        "account": "123456789012",
        "time": TIME,
        "region": "us-east-1",
        "resources": [f"arn:aws:ec2:us-east-1a:instance/{instance}"],
        "detail": {"instance-id": instance, "instance-action": action},
    }


def rebalance(instance: str = "i-1234567890abcdef0") -> dict[str, Any]:
    return {
        "version": "0",
        "id": "12345678-1234-1234-1234-123456789013",
        "detail-type": "EC2 Instance Rebalance Recommendation",
        "source": "aws.ec2",
        "account": "123456789012",
        "time": TIME,
        "region": "us-east-1",
        "resources": [f"arn:aws:ec2:us-east-1:123456789012:instance/{instance}"],
        "detail": {"instance-id": instance},
    }


def state_change(state: str, instance: str = "i-abcd1111") -> dict[str, Any]:
    return {
        "version": "0",
        "id": "7bf73129-1428-4cd3-a780-95db273d1602",
        "detail-type": "EC2 Instance State-change Notification",
        "source": "aws.ec2",
        "account": "123456789012",
        "time": TIME,
        "region": "us-east-1",
        "resources": [f"arn:aws:ec2:us-east-1:123456789012:instance/{instance}"],
        "detail": {"instance-id": instance, "state": state},
    }


def health(
    *entities: str,
    service: str = "EC2",
    category: str = "scheduledChange",
    start: str = "Sat, 05 Dec 2026 15:10:09 GMT",
) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "7fb65329-1628-4cf3-a740-95fg457h1402",
        "detail-type": "AWS Health Event",
        "source": "aws.health",
        "account": "123456789012",
        "time": TIME,
        "region": "us-east-1",
        "resources": list(entities),
        "detail": {
            "eventArn": "arn:aws:health:us-east-1::event/EC2/AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED/x",
            "service": service,
            "eventTypeCode": "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED",
            "eventTypeCategory": category,
            "startTime": start,
            "eventDescription": [{"language": "en_US", "latestDescription": "retirement"}],
            "affectedEntities": [{"entityValue": e} for e in entities],
        },
    }


def body(event: dict[str, Any]) -> bytes:
    return orjson.dumps(event)


def errors_of(raw: str | bytes) -> str:
    with pytest.raises(ValidationError) as caught:
        parse_message(raw)
    return str(caught.value)


def test_spot_interruption_warning_reclaims_two_minutes_after_its_time() -> None:
    event = parse_message(body(spot_warning(action="stop")))
    assert event == SpotInterruption(
        "12345678-1234-1234-1234-123456789012", WHEN, "i-1234567890abcdef0", "stop"
    )
    assert isinstance(event, SpotInterruption)
    assert event.action_time == WHEN + timedelta(minutes=2)
    assert event.instance_ids == ("i-1234567890abcdef0",)


def test_rebalance_recommendation() -> None:
    event = parse_message(body(rebalance("i-0aaa")))
    assert event == RebalanceRecommendation("12345678-1234-1234-1234-123456789013", WHEN, "i-0aaa")


@pytest.mark.parametrize("state", INSTANCE_STATES)
def test_state_change_of_every_state(state: str) -> None:
    event = parse_message(body(state_change(state)))
    assert isinstance(event, StateChange)
    assert event.state == state
    assert event.ending == (state in {"stopping", "stopped", "shutting-down", "terminated"})


def test_health_scheduled_change_names_its_instances_and_start() -> None:
    event = parse_message(body(health("i-abcd1111", "i-abcd2222", "vol-0123")))
    assert isinstance(event, ScheduledChange)
    assert event.instance_ids == ("i-abcd1111", "i-abcd2222")  # the volume is no node
    assert event.event_type == "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED"
    assert event.start_time == datetime(2026, 12, 5, 15, 10, 9, tzinfo=UTC)


def test_health_start_time_may_be_iso_or_absent() -> None:
    iso = parse_message(body(health("i-1", start="2026-12-05T15:10:09Z")))
    assert isinstance(iso, ScheduledChange)
    assert iso.start_time == datetime(2026, 12, 5, 15, 10, 9, tzinfo=UTC)
    raw = health("i-1")
    del raw["detail"]["startTime"]
    absent = parse_message(body(raw))
    assert isinstance(absent, ScheduledChange)
    assert absent.start_time is None


@pytest.mark.parametrize(
    ("service", "category"), [("EC2", "issue"), ("EC2", "accountNotification"), ("RDS", "scheduledChange")]
)
def test_other_health_events_are_ignored(service: str, category: str) -> None:
    event = parse_message(body(health("i-1", service=service, category=category)))
    assert isinstance(event, Ignored)
    assert service in event.why
    assert event.instance_ids == ()


def test_events_of_other_kinds_are_ignored() -> None:
    raw = spot_warning()
    raw["detail-type"] = "EC2 Fast Snapshot Restore State-change Notification"
    event = parse_message(body(raw))
    assert isinstance(event, Ignored)
    assert "Fast Snapshot" in event.why


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (b'"text"', "expected a JSON object"),
        (body({**spot_warning(), "detail": None}), "detail: required"),
        (body({**spot_warning(), "detail": []}), "detail: expected an object"),
        (body({**spot_warning(), "time": "yesterday"}), "time: 'yesterday' is not a time"),
        (body({k: v for k, v in spot_warning().items() if k != "id"}), "id: required"),
        (body({**spot_warning(), "source": "aws.s3"}), "source: 'aws.s3' does not send"),
        (
            body({**spot_warning(), "detail": {"instance-action": "terminate"}}),
            "detail.instance-id: required",
        ),
        (body(spot_warning(instance="vol-1")), "detail.instance-id: 'vol-1' is not an EC2 instance id"),
        (body(spot_warning(action="explode")), "detail.instance-action: 'explode' is not one of"),
        (body(state_change("rebooting")), "detail.state: 'rebooting' is not one of"),
        (
            body({**health("i-1"), "detail": {**health("i-1")["detail"], "affectedEntities": []}}),
            "affectedEntities",
        ),
        (body({**health("i-1"), "detail": {**health("i-1")["detail"], "startTime": "soon"}}), "startTime"),
        (body({**health("i-1"), "source": "aws.ec2"}), "source: 'aws.ec2' does not send"),
    ],
)
def test_bad_bodies_name_the_field(raw: bytes, field: str) -> None:
    assert field in errors_of(raw)


def test_every_missing_field_is_reported_at_once() -> None:
    message = errors_of(body({"detail": {}}))
    for field in ("id: required", "detail-type: required", "source: required", "time: required"):
        assert field in message


@given(st.binary(max_size=200) | st.text(max_size=200))
def test_any_body_parses_or_raises_a_validation_error(raw: bytes | str) -> None:
    with contextlib.suppress(ValidationError):
        parse_message(raw)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=10),
        lambda children: (
            st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=12), children, max_size=4)
        ),
        max_leaves=12,
    ),
    st.sampled_from(["detail", "detail-type", "time", "id", "source"]),
)
def test_any_field_value_parses_or_raises_a_validation_error(value: object, key: str) -> None:
    raw = {**spot_warning(), key: value}
    try:
        parse_message(body(raw))
    except ValidationError as error:
        named: list[object] = list(error.errors)
    else:
        named = ["parsed"]
    assert named, "a ValidationError names at least one field"


def test_parse_time_forms() -> None:
    assert parse_time("2026-12-02T22:00:00Z") == WHEN
    assert parse_time("Wed, 02 Dec 2026 22:00:00 GMT") == WHEN
    assert parse_time("2026-12-02T22:00:00") == WHEN  # naive: UTC
    assert parse_time("tomorrow") is None
