"""The interruption queue's messages: EventBridge events, as AWS delivers them to SQS (pure).

EventBridge rules send four kinds of event to the queue, each message body being the event's
JSON as AWS documents it:

- ``EC2 Spot Instance Interruption Warning`` (``aws.ec2``): the instance is reclaimed two minutes
  after the event's ``time``; ``detail.instance-action`` says how (terminate, stop, hibernate);
- ``EC2 Instance Rebalance Recommendation`` (``aws.ec2``): the instance is at elevated risk of
  interruption, with no deadline;
- ``AWS Health Event`` (``aws.health``) with ``detail.service`` EC2 and ``eventTypeCategory``
  ``scheduledChange``: maintenance from ``detail.startTime`` on the instances of
  ``detail.affectedEntities``;
- ``EC2 Instance State-change Notification`` (``aws.ec2``): ``detail.state`` became ``pending``,
  ``running``, ``stopping``, ``stopped``, ``shutting-down`` or ``terminated``.

:func:`parse_message` turns a body into one typed event or raises ``ValidationError`` naming
every bad field, so the caller can report the message and delete it (a body that cannot be read
now never will be: leaving it on the queue would only bring it back forever). AWS Health events
for other services or categories are read as :class:`Ignored`, like any well-formed event of a
kind the rules were not meant to send.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Final

import orjson

from shared.errors import FieldError, ValidationError

SPOT_INTERRUPTION: Final = "EC2 Spot Instance Interruption Warning"
REBALANCE_RECOMMENDATION: Final = "EC2 Instance Rebalance Recommendation"
STATE_CHANGE: Final = "EC2 Instance State-change Notification"
HEALTH_EVENT: Final = "AWS Health Event"
EC2_SOURCE: Final = "aws.ec2"
HEALTH_SOURCE: Final = "aws.health"
# A Spot instance is reclaimed two minutes after its interruption warning.
SPOT_NOTICE: Final = timedelta(minutes=2)
SPOT_ACTIONS: Final = ("terminate", "stop", "hibernate")
INSTANCE_STATES: Final = ("pending", "running", "stopping", "stopped", "shutting-down", "terminated")
# The states in which the instance is going or gone: its node must go too.
ENDING_STATES: Final = frozenset({"stopping", "stopped", "shutting-down", "terminated"})
SCHEDULED_CHANGE: Final = "scheduledChange"


@dataclass(frozen=True)
class SpotInterruption:
    """EC2 reclaims the Spot instance at ``action_time`` (two minutes after the warning)."""

    event_id: str
    time: datetime
    instance_id: str
    action: str

    @property
    def instance_ids(self) -> tuple[str, ...]:
        return (self.instance_id,)

    @property
    def action_time(self) -> datetime:
        return self.time + SPOT_NOTICE


@dataclass(frozen=True)
class RebalanceRecommendation:
    """The Spot instance is at elevated risk of interruption; no deadline."""

    event_id: str
    time: datetime
    instance_id: str

    @property
    def instance_ids(self) -> tuple[str, ...]:
        return (self.instance_id,)


@dataclass(frozen=True)
class ScheduledChange:
    """AWS Health: maintenance on the instances from ``start_time`` (``event_type`` says what)."""

    event_id: str
    time: datetime
    instance_ids: tuple[str, ...]
    event_type: str
    start_time: datetime | None


@dataclass(frozen=True)
class StateChange:
    """The instance entered ``state`` (one of :data:`INSTANCE_STATES`)."""

    event_id: str
    time: datetime
    instance_id: str
    state: str

    @property
    def instance_ids(self) -> tuple[str, ...]:
        return (self.instance_id,)

    @property
    def ending(self) -> bool:
        return self.state in ENDING_STATES


@dataclass(frozen=True)
class Ignored:
    """A well-formed event jitnode has nothing to do with (said why, for the log)."""

    event_id: str
    time: datetime
    why: str

    @property
    def instance_ids(self) -> tuple[str, ...]:
        return ()


InterruptionEvent = SpotInterruption | RebalanceRecommendation | ScheduledChange | StateChange | Ignored


def parse_message(body: str | bytes) -> InterruptionEvent:
    """One SQS message body as its event; raises ``ValidationError`` naming each bad field."""
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise ValidationError([FieldError("", f"not JSON: {error}")], "interruption message") from None
    if not isinstance(raw, Mapping):
        raise ValidationError([FieldError("", "expected a JSON object")], "interruption message")
    reader = _Reader()
    event = reader.event(raw)
    if reader.errors or event is None:
        raise ValidationError(reader.errors, "interruption message")
    return event


class _Reader:
    """Reads fields, collecting every error instead of stopping at the first."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def error(self, path: str, message: str) -> None:
        self.errors.append(FieldError(path, message))

    def string(self, obj: Mapping[str, Any], key: str, path: str) -> str:
        value = obj.get(key)
        if not isinstance(value, str) or not value:
            self.error(_join(path, key), "required" if value is None else "expected a non-empty string")
            return ""
        return value

    def choice(self, obj: Mapping[str, Any], key: str, path: str, allowed: tuple[str, ...]) -> str:
        value = self.string(obj, key, path)
        if value and value not in allowed:
            self.error(_join(path, key), f"{value!r} is not one of {', '.join(allowed)}")
        return value

    def mapping(self, obj: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
        value = obj.get(key)
        if not isinstance(value, Mapping):
            self.error(_join(path, key), "required" if value is None else "expected an object")
            return {}
        return value

    def time(self, obj: Mapping[str, Any], key: str, path: str, *, required: bool = True) -> datetime | None:
        value = obj.get(key)
        if value is None and not required:
            return None
        parsed = parse_time(value) if isinstance(value, str) else None
        if parsed is None:
            self.error(_join(path, key), "required" if value is None else f"{value!r} is not a time")
        return parsed

    def instance_id(self, obj: Mapping[str, Any], key: str, path: str) -> str:
        value = self.string(obj, key, path)
        if value and not value.startswith("i-"):
            self.error(_join(path, key), f"{value!r} is not an EC2 instance id")
        return value

    def event(self, raw: Mapping[str, Any]) -> InterruptionEvent | None:
        event_id = self.string(raw, "id", "")
        kind = self.string(raw, "detail-type", "")
        source = self.string(raw, "source", "")
        time = self.time(raw, "time", "") or datetime.fromtimestamp(0, UTC)
        detail = self.mapping(raw, "detail", "")
        if self.errors:
            return None
        expected_source = HEALTH_SOURCE if kind == HEALTH_EVENT else EC2_SOURCE
        known = (SPOT_INTERRUPTION, REBALANCE_RECOMMENDATION, STATE_CHANGE, HEALTH_EVENT)
        if kind in known and source != expected_source:
            self.error("source", f"{source!r} does not send {kind!r} (expected {expected_source!r})")
            return None
        if kind == SPOT_INTERRUPTION:
            return SpotInterruption(
                event_id,
                time,
                self.instance_id(detail, "instance-id", "detail"),
                self.choice(detail, "instance-action", "detail", SPOT_ACTIONS),
            )
        if kind == REBALANCE_RECOMMENDATION:
            return RebalanceRecommendation(event_id, time, self.instance_id(detail, "instance-id", "detail"))
        if kind == STATE_CHANGE:
            return StateChange(
                event_id,
                time,
                self.instance_id(detail, "instance-id", "detail"),
                self.choice(detail, "state", "detail", INSTANCE_STATES),
            )
        if kind == HEALTH_EVENT:
            return self.health(event_id, time, detail)
        return Ignored(event_id, time, f"{kind!r} from {source!r} is not an interruption event")

    def health(self, event_id: str, time: datetime, detail: Mapping[str, Any]) -> InterruptionEvent:
        service = self.string(detail, "service", "detail")
        category = self.string(detail, "eventTypeCategory", "detail")
        event_type = self.string(detail, "eventTypeCode", "detail")
        if self.errors:
            return Ignored(event_id, time, "unreadable")
        if service != "EC2" or category != SCHEDULED_CHANGE:
            why = f"AWS Health {category} event for {service}, not an EC2 scheduled change"
            return Ignored(event_id, time, why)
        entities = detail.get("affectedEntities")
        if not isinstance(entities, list) or not entities:
            self.error("detail.affectedEntities", "expected a non-empty list of affected instances")
            return Ignored(event_id, time, "unreadable")
        ids: list[str] = []
        for i, entity in enumerate(entities):
            if not isinstance(entity, Mapping):
                self.error(f"detail.affectedEntities[{i}]", "expected an object")
                continue
            # Health names EC2 instances by id; other entities (volumes, hosts) are not nodes.
            value = self.string(entity, "entityValue", f"detail.affectedEntities[{i}]")
            if value.startswith("i-"):
                ids.append(value)
        start = self.time(detail, "startTime", "detail", required=False)
        return ScheduledChange(event_id, time, tuple(dict.fromkeys(ids)), event_type, start)


def parse_time(value: str) -> datetime | None:
    """An event time: ISO 8601 (``2024-01-31T12:00:00Z``) or, as AWS Health writes ``startTime``,
    RFC 1123 (``Wed, 31 Jan 2024 12:00:00 GMT``). Always timezone-aware; None if neither."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
