"""The demand stream: what extenders tell the launcher about pods that need capacity.

Wire format (``jitnode.io/demand/v1``, one JSON object per WebSocket message, UTF-8)::

    {"apiVersion": "jitnode.io/demand/v1", "kind": <kind>, "seq": <int >= 0>, "source": <str>, ...}

``source`` is the sending extender replica's id; ``seq`` increases by one per message from a
source within one connection, so a receiver can spot a gap and ask for a new snapshot. Kinds:

- ``Snapshot`` + ``"demands": [PodDemand...]``: the sender's full picture, sent first on every
  (re)connect; it replaces everything earlier from that ``source``.
- ``Upsert`` + ``"demand": PodDemand``: a pod's demand is new or changed (keyed by ``uid``).
- ``Withdraw`` + ``"uid": str, "reason": str``: the pod no longer needs capacity (bound,
  deleted, terminal...); ``reason`` is for logs only.
- ``Heartbeat`` + ``"sentAt": float`` (unix seconds) and optionally ``"interval": float``:
  keeps idle connections observably alive. ``interval`` announces the seconds until the
  sender's next heartbeat; the receiver calls the sender gone after three of them pass in
  silence, so each side may pick its own interval. Both sides send one at once on connect.
  A peer that announces nothing is judged by the receiver's own interval.

A ``PodDemand`` object::

    {"uid": str, "namespace": str, "name": str,
     "requests": {"cpu": "1500m", "memory": "2Gi", "pods": "1"},    # Resources.to_api()
     "requirements": [[NodeSelectorRequirement...], ...],            # ORed; each list ANDed
     "tolerations": [Toleration...], "priority": int,
     "owner": {"kind": str, "name": str} | null,
     "firstSeen": float, "reason": "unschedulable" | "predicted",
     "exclusive": str, "exclusiveZone": true,                        # optional, see below
     "labels": {str: str},
     "topologySpread": [SpreadConstraint...],                        # shared.topologyspread
     "podAffinity": [PodAffinityTerm...], "podAntiAffinity": [PodAffinityTerm...]}

``exclusive`` (absent when none) names the group of pods that may not share a node, because
a required pod anti-affinity term of theirs selects themselves (see ``shared.podaffinity``);
``exclusiveZone`` (absent when false) says they may not share a zone either.

The last four (each absent when empty) let the planner place pods as kube-scheduler's
PodTopologySpread and InterPodAffinity filters will judge them: the pod's labels (what other
pods' selectors match), its topology spread constraints with ``matchLabelKeys`` already folded
into the selector (``{"topologyKey", "maxSkew", "whenUnsatisfiable", "selector",
"minDomains"?, "nodeAffinityPolicy"?, "nodeTaintsPolicy"?}``), and its required pod affinity
and anti-affinity terms with their namespaces resolved (``{"topologyKey", "selector",
"namespaces"}``, ``null`` namespaces: every namespace). A selector is a list of
``{"key", "operator", "values"}`` label requirements, ``null`` when it selects no pod. A
sender that predates them sends none, and the receiver then plans the pod as before.

An empty ``requirements`` list means no node can take the pod; ``[[]]`` means any node can.
Receivers ignore fields they do not know (so a field can be added without a version bump) and
reject anything else malformed with a :class:`~shared.errors.ValidationError` naming the path.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Final, Literal, TypeAlias, TypeVar, get_args

import orjson

from shared import podaffinity, pods
from shared.errors import FieldError, ValidationError
from shared.podaffinity import PodAffinityTerm
from shared.requirements import Requirements
from shared.resources import Resources
from shared.taints import Toleration, parse_tolerations
from shared.topologyspread import SpreadConstraint, pod_spread_constraints

DEMAND_API_VERSION: Final = "jitnode.io/demand/v1"
T = TypeVar("T")

Reason = Literal["unschedulable", "predicted"]
REASONS: Final[frozenset[str]] = frozenset(get_args(Reason))


@dataclass(frozen=True)
class PodDemand:
    """One pending pod's need for capacity, as the launcher plans on it."""

    uid: str
    namespace: str
    name: str
    requests: Resources
    requirements: tuple[Requirements, ...]
    tolerations: tuple[Toleration, ...]
    priority: int
    owner_kind: str | None
    owner_name: str | None
    first_seen: float
    reason: Reason
    exclusive: str | None = None  # pods with the same key may not share a node
    exclusive_zone: bool = False  # ... nor a zone
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)
    spread: tuple[SpreadConstraint, ...] = ()  # topology spread constraints
    affinity: tuple[PodAffinityTerm, ...] = ()  # required pod affinity terms
    anti_affinity: tuple[PodAffinityTerm, ...] = ()  # required pod anti-affinity terms

    @property
    def constrained(self) -> bool:
        """Whether where the pod may run depends on other pods (spread, affinity, anti-affinity)."""
        return bool(self.spread or self.affinity or self.anti_affinity)

    @classmethod
    def from_pod(cls, pod: Mapping[str, Any], reason: Reason, first_seen: float) -> PodDemand:
        """The demand of an API pod; raises ValidationError on a pod kube-scheduler would reject."""
        needs = pods.scheduling_needs(pod)
        meta = pod.get("metadata")
        meta = meta if isinstance(meta, Mapping) else {}
        namespace = str(meta.get("namespace") or "default")
        spec = pod.get("spec")
        spec = spec if isinstance(spec, Mapping) else {}
        try:
            group = podaffinity.exclusive_group(pod)
            spread = pod_spread_constraints(pod)
            affinity = podaffinity.required_terms(spec, "podAffinity", namespace)
            anti_affinity = podaffinity.required_terms(spec, "podAntiAffinity", namespace)
        except FieldError as exc:
            raise ValidationError([exc], "pod") from None
        raw_labels = meta.get("labels")
        pod_labels = (
            {str(k): str(v) for k, v in raw_labels.items()} if isinstance(raw_labels, Mapping) else {}
        )
        controller = pods.owner(pod)
        return cls(
            uid=pods.pod_uid(pod),
            namespace=namespace,
            name=str(meta.get("name") or ""),
            requests=needs.requests,
            requirements=needs.requirements,
            tolerations=needs.tolerations,
            priority=needs.priority,
            owner_kind=controller[0] if controller else None,
            owner_name=controller[1] if controller else None,
            first_seen=first_seen,
            reason=reason,
            exclusive=group.key if group else None,
            exclusive_zone=group.per_zone if group else False,
            labels=pod_labels,
            spread=spread,
            affinity=affinity,
            anti_affinity=anti_affinity,
        )

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def to_wire(self) -> dict[str, Any]:
        owner = (
            {"kind": self.owner_kind, "name": self.owner_name}
            if self.owner_kind is not None and self.owner_name is not None
            else None
        )
        wire = {
            "uid": self.uid,
            "namespace": self.namespace,
            "name": self.name,
            "requests": self.requests.to_api(),
            "requirements": [alt.to_api() for alt in self.requirements],
            "tolerations": [t.to_api() for t in self.tolerations],
            "priority": self.priority,
            "owner": owner,
            "firstSeen": self.first_seen,
            "reason": self.reason,
        }
        if self.exclusive is not None:
            wire["exclusive"] = self.exclusive
        if self.exclusive_zone:
            wire["exclusiveZone"] = True
        if self.labels:
            wire["labels"] = dict(self.labels)
        if self.spread:
            wire["topologySpread"] = [c.to_wire() for c in self.spread]
        if self.affinity:
            wire["podAffinity"] = [t.to_wire() for t in self.affinity]
        if self.anti_affinity:
            wire["podAntiAffinity"] = [t.to_wire() for t in self.anti_affinity]
        return wire

    @classmethod
    def from_wire(cls, raw: object, path: str = "demand") -> PodDemand:
        """Parse a wire ``PodDemand``; every bad field is reported in one ValidationError."""
        r = _Reader(path)
        obj = r.obj(raw, path)
        r.done("demand")
        uid = r.string(obj, "uid", path)
        namespace = r.string(obj, "namespace", path)
        name = r.string(obj, "name", path)
        requests = (
            r.run(lambda: Resources.parse(r.obj(obj.get("requests"), f"{path}.requests"), f"{path}.requests"))
            or Resources()
        )
        alternatives: list[Requirements] = []
        for i, alt in enumerate(r.array(obj, "requirements", path)):
            parsed = r.run(partial(Requirements.from_api, alt, f"{path}.requirements[{i}]"))
            if parsed is not None:
                alternatives.append(parsed)
        tolerations = (
            r.run(lambda: parse_tolerations(r.array(obj, "tolerations", path), f"{path}.tolerations")) or ()
        )
        priority = r.integer(obj, "priority", path)
        owner_kind = owner_name = None
        owner = obj.get("owner")
        if owner is not None:
            owner_obj = r.obj(owner, f"{path}.owner")
            owner_kind = r.string(owner_obj, "kind", f"{path}.owner")
            owner_name = r.string(owner_obj, "name", f"{path}.owner")
        first_seen = r.number(obj, "firstSeen", path)
        reason = r.string(obj, "reason", path)
        if reason not in REASONS and not r.failed(f"{path}.reason"):
            r.error(f"{path}.reason", f"{reason!r} is not one of {', '.join(sorted(REASONS))}")
        exclusive = (
            r.string(obj, "exclusive", path, non_empty=True) if obj.get("exclusive") is not None else None
        )
        exclusive_zone = obj.get("exclusiveZone") or False
        if not isinstance(exclusive_zone, bool):
            r.error(f"{path}.exclusiveZone", f"expected a boolean, got {_kind(exclusive_zone)}")
        elif exclusive_zone and exclusive is None:
            r.error(f"{path}.exclusiveZone", "set without exclusive")
        pod_labels = r.string_map(obj, "labels", path)
        spread = r.items(obj, "topologySpread", path, SpreadConstraint.from_wire)
        affinity = r.items(obj, "podAffinity", path, PodAffinityTerm.from_wire)
        anti_affinity = r.items(obj, "podAntiAffinity", path, PodAffinityTerm.from_wire)
        r.done("demand")
        return cls(
            uid=uid,
            namespace=namespace,
            name=name,
            requests=requests,
            requirements=tuple(alternatives),
            tolerations=tolerations,
            priority=priority,
            owner_kind=owner_kind,
            owner_name=owner_name,
            first_seen=first_seen,
            reason=reason,  # type: ignore[arg-type]  # checked against REASONS above
            exclusive=exclusive,
            exclusive_zone=exclusive_zone is True,
            labels=pod_labels,
            spread=spread,
            affinity=affinity,
            anti_affinity=anti_affinity,
        )


@dataclass(frozen=True)
class Snapshot:
    """The sender's complete set of demands; replaces all earlier state from ``source``."""

    seq: int
    source: str
    demands: tuple[PodDemand, ...]


@dataclass(frozen=True)
class Upsert:
    seq: int
    source: str
    demand: PodDemand


@dataclass(frozen=True)
class Withdraw:
    seq: int
    source: str
    uid: str
    reason: str


@dataclass(frozen=True)
class Heartbeat:
    seq: int
    source: str
    sent_at: float
    interval: float | None = None  # seconds until the sender's next heartbeat, when announced


Message: TypeAlias = Snapshot | Upsert | Withdraw | Heartbeat
KINDS: Final = ("Snapshot", "Upsert", "Withdraw", "Heartbeat")


def encode(msg: Message) -> bytes:
    """The message as one UTF-8 JSON document (see the module docstring for the format)."""
    head: dict[str, Any] = {"apiVersion": DEMAND_API_VERSION, "kind": type(msg).__name__, "seq": msg.seq}
    head["source"] = msg.source
    if isinstance(msg, Snapshot):
        head["demands"] = [d.to_wire() for d in msg.demands]
    elif isinstance(msg, Upsert):
        head["demand"] = msg.demand.to_wire()
    elif isinstance(msg, Withdraw):
        head["uid"] = msg.uid
        head["reason"] = msg.reason
    else:
        head["sentAt"] = msg.sent_at
        if msg.interval is not None:
            head["interval"] = msg.interval
    return orjson.dumps(head)


def decode(data: bytes | str) -> Message:
    """Parse one message; anything malformed raises ValidationError naming the field path."""
    try:
        raw = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ValidationError([FieldError("", f"not JSON: {exc}")], "demand message") from None
    r = _Reader("")
    obj = r.obj(raw, "")
    r.done("demand message")
    version = obj.get("apiVersion")
    if version != DEMAND_API_VERSION:
        r.error("apiVersion", f"{version!r} is not {DEMAND_API_VERSION!r}")
    kind = obj.get("kind")
    if kind not in KINDS:
        r.error("kind", f"{kind!r} is not one of {', '.join(KINDS)}")
    seq = r.integer(obj, "seq", "", minimum=0)
    source = r.string(obj, "source", "", non_empty=True)
    r.done("demand message")
    if kind == "Snapshot":
        demands: list[PodDemand] = []
        for i, item in enumerate(r.array(obj, "demands", "", required=True)):
            demand = r.run(partial(PodDemand.from_wire, item, f"demands[{i}]"))
            if demand is not None:
                demands.append(demand)
        r.done("demand message")
        return Snapshot(seq, source, tuple(demands))
    if kind == "Upsert":
        demand = r.run(lambda: PodDemand.from_wire(obj.get("demand"), "demand"))
        r.done("demand message")
        if demand is None:  # not reached: a failed parse recorded an error and done() raised
            raise ValidationError([FieldError("demand", "is invalid")], "demand message")
        return Upsert(seq, source, demand)
    if kind == "Withdraw":
        uid = r.string(obj, "uid", "", non_empty=True)
        reason = r.string(obj, "reason", "")
        r.done("demand message")
        return Withdraw(seq, source, uid, reason)
    sent_at = r.number(obj, "sentAt", "")
    interval = None
    if obj.get("interval") is not None:
        interval = r.number(obj, "interval", "")
        if interval <= 0 and not r.failed("interval"):
            r.error("interval", "must be a positive number of seconds")
    r.done("demand message")
    return Heartbeat(seq, source, sent_at, interval)


class _Reader:
    """Reads fields off decoded JSON, collecting FieldErrors so one message reports them all."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.errors: list[FieldError] = []

    def error(self, path: str, message: str) -> None:
        self.errors.append(FieldError(path, message))

    def failed(self, path: str) -> bool:
        return any(e.path == path for e in self.errors)

    def done(self, kind: str) -> None:
        if self.errors:
            raise ValidationError(self.errors, kind)

    def run(self, parse: Callable[[], T]) -> T | None:
        try:
            return parse()
        except ValidationError as exc:
            self.errors.extend(exc.errors)
        except FieldError as exc:
            self.errors.append(exc)
        return None

    def obj(self, value: object, path: str) -> Mapping[str, Any]:
        if isinstance(value, Mapping):
            return value
        self.error(path, "is required" if value is None else f"expected an object, got {_kind(value)}")
        return {}

    def array(self, obj: Mapping[str, Any], key: str, path: str, *, required: bool = False) -> list[Any]:
        value = obj.get(key)
        if isinstance(value, list):
            return value
        if value is None and not required:
            return []
        self.error(
            _join(path, key), "is required" if value is None else f"expected a list, got {_kind(value)}"
        )
        return []

    def string(self, obj: Mapping[str, Any], key: str, path: str, *, non_empty: bool = False) -> str:
        value = obj.get(key)
        if isinstance(value, str) and (value or not non_empty):
            return value
        self.error(_join(path, key), "is required" if not value else f"expected a string, got {_kind(value)}")
        return ""

    def string_map(self, obj: Mapping[str, Any], key: str, path: str) -> dict[str, str]:
        """An optional object of strings (absent: empty)."""
        value = obj.get(key)
        if value is None:
            return {}
        if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
            self.error(_join(path, key), f"expected an object of strings, got {_kind(value)}")
            return {}
        return dict(value)

    def items(
        self, obj: Mapping[str, Any], key: str, path: str, parse: Callable[[object, str], T]
    ) -> tuple[T, ...]:
        """An optional list, each item parsed by ``parse(item, its path)`` (absent: empty)."""
        out: list[T] = []
        for i, item in enumerate(self.array(obj, key, path)):
            parsed = self.run(partial(parse, item, f"{_join(path, key)}[{i}]"))
            if parsed is not None:
                out.append(parsed)
        return tuple(out)

    def integer(self, obj: Mapping[str, Any], key: str, path: str, *, minimum: int | None = None) -> int:
        value = obj.get(key)
        if isinstance(value, bool) or not isinstance(value, int):
            message = "is required" if value is None else f"expected an integer, got {_kind(value)}"
            self.error(_join(path, key), message)
            return 0
        if minimum is not None and value < minimum:
            self.error(_join(path, key), f"must be at least {minimum}")
        return value

    def number(self, obj: Mapping[str, Any], key: str, path: str) -> float:
        value = obj.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            message = "is required" if value is None else f"expected a number, got {_kind(value)}"
            self.error(_join(path, key), message)
            return 0.0
        return float(value)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _kind(value: object) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean"}.get(
        type(value), type(value).__name__
    )
