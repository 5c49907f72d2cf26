"""Taints and tolerations with Kubernetes' matching rules.

The extender, the local scheduler and the launcher's planner must agree exactly on whether a pod
tolerates a node (existing, or one a NodePool would launch), so the rules of
``k8s.io/api/core/v1.Toleration.ToleratesTaint`` live here once, on plain frozen values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeVar, get_args

from shared.errors import FieldError, ValidationError
from shared.labelsyntax import label_key_problem, label_value_problem

T = TypeVar("T")

Effect = Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]
TolerationOperator = Literal["Equal", "Exists"]

NO_SCHEDULE: Final = "NoSchedule"
PREFER_NO_SCHEDULE: Final = "PreferNoSchedule"
NO_EXECUTE: Final = "NoExecute"
EFFECTS: Final[frozenset[str]] = frozenset(get_args(Effect))
OPERATORS: Final[frozenset[str]] = frozenset(get_args(TolerationOperator))
# The effects that keep a pod off a node (the TaintToleration filter); PreferNoSchedule only scores.
HARD_EFFECTS: Final[frozenset[str]] = frozenset({NO_SCHEDULE, NO_EXECUTE})


@dataclass(frozen=True, slots=True)
class Taint:
    """A node taint; ``timeAdded`` is dropped as no scheduling decision depends on it."""

    key: str
    effect: str
    value: str = ""

    @classmethod
    def from_api(cls, d: Mapping[str, Any], field: str = "taint") -> Taint:
        """Parse and validate a taint as the API sends it (``{"key", "value", "effect"}``)."""
        if not isinstance(d, Mapping):
            raise FieldError(field, f"expected an object, got {_show(d)}")
        key = _string(d, "key", field, required=True)
        problem = label_key_problem(key)
        if problem is not None:
            raise FieldError(f"{field}.key", problem)
        value = _string(d, "value", field)
        problem = label_value_problem(value)
        if problem is not None:
            raise FieldError(f"{field}.value", problem)
        effect = _string(d, "effect", field, required=True)
        if effect not in EFFECTS:
            raise FieldError(f"{field}.effect", f"{effect!r} is not one of {_choices(EFFECTS)}")
        return cls(key=key, effect=effect, value=value)

    def to_api(self) -> dict[str, str]:
        out = {"key": self.key, "effect": self.effect}
        if self.value:
            out["value"] = self.value
        return out

    def __str__(self) -> str:
        return f"{self.key}={self.value}:{self.effect}" if self.value else f"{self.key}:{self.effect}"


@dataclass(frozen=True, slots=True)
class Toleration:
    """A pod toleration; an empty ``effect`` tolerates every effect, an empty key every key."""

    key: str = ""
    operator: str = "Equal"
    value: str = ""
    effect: str = ""
    toleration_seconds: int | None = None

    @classmethod
    def from_api(cls, d: Mapping[str, Any], field: str = "toleration") -> Toleration:
        """Parse and validate a toleration with the API server's rules (``ValidateTolerations``)."""
        if not isinstance(d, Mapping):
            raise FieldError(field, f"expected an object, got {_show(d)}")
        key = _string(d, "key", field)
        if key:
            problem = label_key_problem(key)
            if problem is not None:
                raise FieldError(f"{field}.key", problem)
        operator = _string(d, "operator", field) or "Equal"
        if operator not in OPERATORS:
            raise FieldError(f"{field}.operator", f"{operator!r} is not one of {_choices(OPERATORS)}")
        if not key and operator != "Exists":
            raise FieldError(f"{field}.operator", "must be 'Exists' when `key` is empty")
        value = _string(d, "value", field)
        if operator == "Exists" and value:
            raise FieldError(f"{field}.value", "must be empty when `operator` is 'Exists'")
        problem = label_value_problem(value)
        if problem is not None:
            raise FieldError(f"{field}.value", problem)
        effect = _string(d, "effect", field)
        if effect and effect not in EFFECTS:
            raise FieldError(f"{field}.effect", f"{effect!r} is not one of {_choices(EFFECTS)}")
        seconds = d.get("tolerationSeconds")
        if seconds is not None:
            if isinstance(seconds, bool) or not isinstance(seconds, int):
                raise FieldError(f"{field}.tolerationSeconds", f"expected an integer, got {_show(seconds)}")
            if effect != NO_EXECUTE:
                raise FieldError(f"{field}.effect", "must be 'NoExecute' when `tolerationSeconds` is set")
        return cls(key=key, operator=operator, value=value, effect=effect, toleration_seconds=seconds)

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {"operator": self.operator}
        if self.key:
            out["key"] = self.key
        if self.value:
            out["value"] = self.value
        if self.effect:
            out["effect"] = self.effect
        if self.toleration_seconds is not None:
            out["tolerationSeconds"] = self.toleration_seconds
        return out

    def __str__(self) -> str:
        key = self.key or "*"
        match = f"{key}={self.value}" if self.operator == "Equal" else f"{key} exists"
        return f"{match}:{self.effect or '*'}"


def tolerates(toleration: Toleration, taint: Taint) -> bool:
    """Whether ``toleration`` tolerates ``taint``, exactly as ``Toleration.ToleratesTaint``."""
    if toleration.effect and toleration.effect != taint.effect:
        return False
    if toleration.key and toleration.key != taint.key:
        return False
    if toleration.operator in ("", "Equal"):
        return toleration.value == taint.value
    return toleration.operator == "Exists"


def tolerates_all(
    tolerations: Iterable[Toleration], taints: Iterable[Taint], effects: frozenset[str] = HARD_EFFECTS
) -> bool:
    """Whether every taint with one of ``effects`` is tolerated (the TaintToleration filter)."""
    return not untolerated_taints(tolerations, taints, effects)


def untolerated_taints(
    tolerations: Iterable[Toleration], taints: Iterable[Taint], effects: frozenset[str] = HARD_EFFECTS
) -> list[Taint]:
    """The taints with one of ``effects`` that no toleration tolerates, in the order given."""
    tols = tuple(tolerations)
    return [t for t in taints if t.effect in effects and not any(tolerates(tol, t) for tol in tols)]


def parse_taints(raw: object, field: str = "taints") -> tuple[Taint, ...]:
    """Parse a list of taints, reporting every bad item at once; None reads as no taints."""
    return _parse_list(raw, field, Taint.from_api, "taints")


def parse_tolerations(raw: object, field: str = "tolerations") -> tuple[Toleration, ...]:
    """Parse a list of tolerations, reporting every bad item at once; None reads as none."""
    return _parse_list(raw, field, Toleration.from_api, "tolerations")


def _parse_list(raw: object, field: str, parse: Callable[[Any, str], T], kind: str) -> tuple[T, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list | tuple):
        raise ValidationError([FieldError(field, f"expected a list, got {_show(raw)}")], kind)
    out: list[T] = []
    errors: list[FieldError] = []
    for i, item in enumerate(raw):
        try:
            out.append(parse(item, f"{field}[{i}]"))
        except FieldError as exc:
            errors.append(exc)
    if errors:
        raise ValidationError(errors, kind)
    return tuple(out)


def _string(d: Mapping[str, Any], key: str, field: str, *, required: bool = False) -> str:
    value = d.get(key)
    if value is None or value == "":
        if required:
            raise FieldError(f"{field}.{key}", "is required")
        return ""
    if not isinstance(value, str):
        raise FieldError(f"{field}.{key}", f"expected a string, got {_show(value)}")
    return value


def _choices(values: frozenset[str]) -> str:
    return ", ".join(repr(v) for v in sorted(values))


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
