"""Node selector requirements as an algebra on label sets (Karpenter-style).

A :class:`Requirement` is one ``NodeSelectorRequirement`` as written in a manifest. A
:class:`Requirements` is their conjunction, normalised to one :class:`Constraint` per label key so
that the planner can intersect a pod's needs with a NodePool's and an instance type's offer and
ask "is anything left?" without enumerating label sets.

Semantics follow kube-scheduler for matching a node's labels: ``In``, ``Exists``, ``Gt`` and ``Lt``
need the label present, ``NotIn`` and ``DoesNotExist`` are satisfied by an absent label, and
``Gt``/``Lt`` compare the label parsed as a base-10 int64 (a non-integer value never matches).
Karpenter's ``minValues`` (how many distinct values of a key a launch must leave open) rides along
and is combined by maximum; it does not change which label sets match.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, get_args

from shared import labels as wk
from shared.errors import FieldError, ValidationError
from shared.labelsyntax import label_key_problem

Operator = Literal["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"]
OPERATORS: Final[frozenset[str]] = frozenset(get_args(Operator))

# Karpenter bounds minValues to 1..50 in its CRD.
MIN_VALUES_MAX: Final = 50
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1
_INTEGER: Final = re.compile(r"[+-]?[0-9]+")


def parse_int64(value: str) -> int | None:
    """The label value as Go's ``strconv.ParseInt(value, 10, 64)`` reads it, or None."""
    if _INTEGER.fullmatch(value) is None:
        return None
    number = int(value)
    return number if _INT64_MIN <= number <= _INT64_MAX else None


@dataclass(frozen=True)
class Requirement:
    """One ``NodeSelectorRequirement`` (plus Karpenter's optional ``minValues``), validated."""

    key: str
    operator: str
    values: tuple[str, ...] = ()
    min_values: int | None = None

    @classmethod
    def from_api(cls, d: Mapping[str, Any], field: str = "requirement") -> Requirement:
        """Parse ``{"key", "operator", "values", "minValues"}``; raises FieldError naming the path."""
        if not isinstance(d, Mapping):
            raise FieldError(field, f"expected an object, got {_show(d)}")
        key = d.get("key")
        if not isinstance(key, str) or not key:
            raise FieldError(
                f"{field}.key", "is required" if not key else f"expected a string, got {_show(key)}"
            )
        problem = label_key_problem(key)
        if problem is not None:
            raise FieldError(f"{field}.key", problem)
        operator = d.get("operator")
        if not isinstance(operator, str) or operator not in OPERATORS:
            message = "is required" if operator is None else f"{_show(operator)} is not one of {_choices()}"
            raise FieldError(f"{field}.operator", message)
        raw_values = d.get("values")
        if raw_values is None:
            raw_values = []
        if not isinstance(raw_values, list | tuple):
            raise FieldError(f"{field}.values", f"expected a list of strings, got {_show(raw_values)}")
        for i, value in enumerate(raw_values):
            if not isinstance(value, str):
                raise FieldError(f"{field}.values[{i}]", f"expected a string, got {_show(value)}")
        values = tuple(raw_values)
        _check_values(str(operator), values, f"{field}.values")
        min_values = d.get("minValues")
        if min_values is not None:
            if isinstance(min_values, bool) or not isinstance(min_values, int):
                raise FieldError(f"{field}.minValues", f"expected an integer, got {_show(min_values)}")
            if not 1 <= min_values <= MIN_VALUES_MAX:
                raise FieldError(f"{field}.minValues", f"must be between 1 and {MIN_VALUES_MAX}")
            if operator == "In" and len(set(values)) < min_values:
                raise FieldError(f"{field}.minValues", "must not exceed the number of distinct values")
        return cls(key=key, operator=str(operator), values=values, min_values=min_values)

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {"key": self.key, "operator": self.operator}
        if self.values:
            out["values"] = list(self.values)
        if self.min_values is not None:
            out["minValues"] = self.min_values
        return out

    def __str__(self) -> str:
        return Constraint.of(self).with_min_values(None).describe(self.key)


def _check_values(operator: str, values: tuple[str, ...], path: str) -> None:
    if operator in ("In", "NotIn") and not values:
        raise FieldError(path, f"must be non-empty when `operator` is {operator!r}")
    if operator in ("Exists", "DoesNotExist") and values:
        raise FieldError(path, f"must be empty when `operator` is {operator!r}")
    if operator in ("Gt", "Lt"):
        if len(values) != 1:
            raise FieldError(path, f"must have exactly one value when `operator` is {operator!r}")
        if parse_int64(values[0]) is None:
            raise FieldError(f"{path}[0]", f"{values[0]!r} is not an integer")


@dataclass(frozen=True)
class Constraint:
    """Everything the requirements say about one label key, as a predicate on its value.

    ``absent_ok``: an absent label satisfies it. A present value ``v`` satisfies it when it is in
    ``values`` (or, if ``complement``, not in ``values``) and, if a bound is set, ``v`` is an
    integer strictly inside ``(gt, lt)``. Instances are normalised by :meth:`make`, so two
    constraints admitting the same labels compare equal (``Gt 2 ∧ Lt 5`` stays bounds, as ``03``
    is an integer label too; ``In`` with bounds is filtered down to plain values).
    """

    absent_ok: bool
    complement: bool
    values: frozenset[str]
    gt: int | None = None
    lt: int | None = None
    min_values: int | None = None

    @staticmethod
    def make(
        absent_ok: bool,
        complement: bool,
        values: Iterable[str],
        gt: int | None = None,
        lt: int | None = None,
        min_values: int | None = None,
    ) -> Constraint:
        """Build the normal form of a constraint (see the class docstring)."""
        vals = frozenset(values)
        bounded = gt is not None or lt is not None
        if bounded:
            # A bound needs a present label, so an absent one never satisfies it.
            absent_ok = False
            if gt is not None and lt is not None and lt - gt <= 1:
                return Constraint(False, False, frozenset(), None, None, min_values)
            inside = frozenset(v for v in vals if _within(v, gt, lt))
            if not complement:
                return Constraint(absent_ok, False, inside, None, None, min_values)
            # Excluding a value the bounds already exclude changes nothing.
            return Constraint(absent_ok, True, inside, gt, lt, min_values)
        return Constraint(absent_ok, complement, vals, None, None, min_values)

    @staticmethod
    def of(requirement: Requirement) -> Constraint:
        op, values, mv = requirement.operator, requirement.values, requirement.min_values
        if op == "In":
            return Constraint.make(False, False, values, min_values=mv)
        if op == "NotIn":
            return Constraint.make(True, True, values, min_values=mv)
        if op == "Exists":
            return Constraint.make(False, True, (), min_values=mv)
        if op == "DoesNotExist":
            return Constraint.make(True, False, (), min_values=mv)
        bound = parse_int64(values[0]) if len(values) == 1 else None
        if bound is None or op not in ("Gt", "Lt"):
            raise FieldError(requirement.key, f"invalid requirement {requirement!r}")
        if op == "Gt":
            return Constraint.make(False, True, (), gt=bound, min_values=mv)
        return Constraint.make(False, True, (), lt=bound, min_values=mv)

    def intersect(self, other: Constraint) -> Constraint:
        if self.complement and other.complement:
            complement, values = True, self.values | other.values
        elif self.complement:
            complement, values = False, other.values - self.values
        elif other.complement:
            complement, values = False, self.values - other.values
        else:
            complement, values = False, self.values & other.values
        # Bounds live only on complement constraints; make() applies them to the result.
        return Constraint.make(
            self.absent_ok and other.absent_ok,
            complement,
            values,
            _max_opt(self.gt, other.gt),
            _min_opt(self.lt, other.lt),
            _max_opt(self.min_values, other.min_values),
        )

    def with_min_values(self, min_values: int | None) -> Constraint:
        return Constraint(self.absent_ok, self.complement, self.values, self.gt, self.lt, min_values)

    def allows(self, value: str | None) -> bool:
        """Whether a label with ``value`` (None: the label is absent) satisfies the constraint."""
        if value is None:
            return self.absent_ok
        if (value in self.values) == self.complement:
            return False
        return _within(value, self.gt, self.lt)

    def any_value(self) -> bool:
        """Whether some present label value satisfies it (bounds admit ``"03"``, ``"+3"``...)."""
        return self.complement or bool(self.values)

    def is_satisfiable(self) -> bool:
        return self.absent_ok or self.any_value()

    def is_unconstrained(self) -> bool:
        """Admits every label set (``minValues`` alone is not kept: nothing in the API yields it)."""
        return self.absent_ok and self.complement and not self.values

    def allowed_values(self) -> frozenset[str] | None:
        """The finite set of allowed values, or None when infinitely many are."""
        return None if self.complement else self.values

    def to_requirements(self, key: str) -> list[Requirement]:
        """Requirements whose conjunction is exactly this constraint (for the API form)."""
        mv = self.min_values
        ordered = tuple(sorted(self.values))
        if not self.complement:
            if ordered:
                if self.absent_ok:  # not reachable from API input; "absent or In" has no API form
                    raise ValueError(f"{key}: constraint {self!r} has no API form")
                return [Requirement(key, "In", ordered, mv)]
            if self.absent_ok:
                return [Requirement(key, "DoesNotExist", (), mv)]
            # Nothing satisfies it: a label that both exists and does not.
            return [Requirement(key, "Exists", (), mv), Requirement(key, "DoesNotExist")]
        out: list[Requirement] = []
        if ordered:
            out.append(Requirement(key, "NotIn", ordered))
        if self.gt is not None:
            out.append(Requirement(key, "Gt", (str(self.gt),)))
        if self.lt is not None:
            out.append(Requirement(key, "Lt", (str(self.lt),)))
        if not self.absent_ok and self.gt is None and self.lt is None:
            out.append(Requirement(key, "Exists"))
        if not out:
            raise ValueError(f"{key}: an unconstrained constraint has no API form")
        if mv is not None:
            out[0] = Requirement(out[0].key, out[0].operator, out[0].values, mv)
        return out

    def describe(self, key: str) -> str:
        parts: list[str] = []
        listed = " ".join(sorted(self.values))
        if not self.complement:
            if self.values:
                parts.append(f"{key} in [{listed}]")
            elif self.absent_ok:
                parts.append(f"{key} does not exist")
            else:
                parts.append(f"{key} is impossible")
        else:
            if self.values:
                parts.append(f"{key} notin [{listed}]")
            if self.gt is not None:
                parts.append(f"{key} > {self.gt}")
            if self.lt is not None:
                parts.append(f"{key} < {self.lt}")
            if not self.absent_ok and self.gt is None and self.lt is None:
                parts.append(f"{key} exists")
            if not parts:
                parts.append(f"{key} any")
        if self.min_values is not None:
            parts[0] += f" (minValues {self.min_values})"
        return ", ".join(parts)

    def __str__(self) -> str:
        return self.describe("<key>")


UNCONSTRAINED: Final = Constraint(True, True, frozenset())


class Requirements:
    """An immutable, normalised conjunction of constraints per label key (module docstring).

    A key absent from a Requirements constrains nothing. Equality and hashing are on the
    normalised form, so requirements admitting the same label sets compare equal.
    """

    __slots__ = ("_by_key", "_hash")

    def __init__(self, constraints: Mapping[str, Constraint] | None = None) -> None:
        self._by_key: dict[str, Constraint] = {
            k: c for k, c in sorted((constraints or {}).items()) if not c.is_unconstrained()
        }
        self._hash: int | None = None

    # Construction.
    @classmethod
    def of(cls, *requirements: Requirement) -> Requirements:
        out: dict[str, Constraint] = {}
        for r in requirements:
            c = Constraint.of(r)
            out[r.key] = out[r.key].intersect(c) if r.key in out else c
        return cls(out)

    @classmethod
    def from_api(cls, raw: object, field: str = "requirements") -> Requirements:
        """Parse a list of ``NodeSelectorRequirement``; every bad item is reported at once."""
        return cls.of(*parse_requirement_list(raw, field))

    @classmethod
    def from_labels(cls, labels: Mapping[str, str]) -> Requirements:
        """Each label as ``key In [value]``: what a node (or a NodePool's labels) offers."""
        return cls({k: Constraint.make(False, False, (v,)) for k, v in labels.items()})

    # Algebra.
    def intersect(self, other: Requirements) -> Requirements:
        out = dict(self._by_key)
        for key, c in other._by_key.items():
            out[key] = out[key].intersect(c) if key in out else c
        return Requirements(out)

    def __and__(self, other: Requirements) -> Requirements:
        return self.intersect(other)

    def conflicts(self, other: Requirements) -> list[str]:
        """Keys whose combined constraint nothing satisfies, sorted; empty means compatible."""
        out: list[str] = []
        for key in sorted(self._by_key.keys() | other._by_key.keys()):
            mine, theirs = self._by_key.get(key), other._by_key.get(key)
            if mine is not None and theirs is not None:
                combined = mine.intersect(theirs)
            else:
                combined = mine if mine is not None else theirs or UNCONSTRAINED
            if not combined.is_satisfiable():
                out.append(key)
        return out

    def compatible(self, other: Requirements) -> bool:
        return not self.conflicts(other)

    def compatible_with_nodepool(
        self, nodepool_reqs: Requirements, well_known: frozenset[str] = wk.WELL_KNOWN_LABELS
    ) -> bool:
        """Karpenter's rule for whether a new node of a pool can satisfy these (pod) requirements.

        A key the pool leaves undefined is open only if it is well-known (the launcher picks
        its value, e.g. a zone) or the pod is content with the label being absent (NotIn,
        DoesNotExist): a new node carries no custom label its pool does not define.
        """
        return not self.nodepool_conflicts(nodepool_reqs, well_known)

    def nodepool_conflicts(
        self, nodepool_reqs: Requirements, well_known: frozenset[str] = wk.WELL_KNOWN_LABELS
    ) -> list[str]:
        """Why :meth:`compatible_with_nodepool` fails, one message per key (empty: it passes)."""
        reasons: list[str] = []
        for key, c in self._by_key.items():
            if key not in nodepool_reqs._by_key and key not in well_known and not c.absent_ok:
                reasons.append(f"label {key!r} is not defined by the nodepool ({c.describe(key)})")
        for key in self.conflicts(nodepool_reqs):
            wanted = self.get(key).describe(key) if key in self._by_key else f"{key} any"
            offered = nodepool_reqs.get(key).describe(key) if key in nodepool_reqs else "undefined"
            reasons.append(f"{wanted} conflicts with nodepool's {offered}")
        return reasons

    def is_satisfiable(self) -> bool:
        return all(c.is_satisfiable() for c in self._by_key.values())

    # Queries.
    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether a node with exactly these labels satisfies every key."""
        return all(c.allows(labels.get(key)) for key, c in self._by_key.items())

    def unsatisfied_by(self, labels: Mapping[str, str]) -> list[str]:
        """One human reason per key the labels fail (for events and logs); empty when matched."""
        reasons: list[str] = []
        for key, c in self._by_key.items():
            value = labels.get(key)
            if not c.allows(value):
                have = "absent" if value is None else f"{value!r}"
                reasons.append(f"requires {c.describe(key)}, label is {have}")
        return reasons

    def allows(self, key: str, value: str) -> bool:
        """Whether a node with ``key=value`` could satisfy the constraint on ``key``."""
        c = self._by_key.get(key)
        return True if c is None else c.allows(value)

    def allowed_values(self, key: str) -> frozenset[str] | None:
        """The finite set of values allowed for ``key``; None if unconstrained or open-ended."""
        c = self._by_key.get(key)
        return None if c is None else c.allowed_values()

    def get(self, key: str) -> Constraint:
        """The constraint on ``key`` (unconstrained when the key is not mentioned)."""
        return self._by_key.get(key, UNCONSTRAINED)

    def min_values(self, key: str) -> int | None:
        c = self._by_key.get(key)
        return None if c is None else c.min_values

    def keys(self) -> frozenset[str]:
        return frozenset(self._by_key)

    def items(self) -> Iterator[tuple[str, Constraint]]:
        return iter(self._by_key.items())

    def __contains__(self, key: object) -> bool:
        return key in self._by_key

    def __len__(self) -> int:
        return len(self._by_key)

    def __bool__(self) -> bool:
        return bool(self._by_key)

    def without(self, *keys: str) -> Requirements:
        """These requirements with the given keys dropped (e.g. a pseudo key such as a node name)."""
        return Requirements({k: c for k, c in self._by_key.items() if k not in keys})

    # Forms.
    def to_requirements(self) -> list[Requirement]:
        return [r for key, c in self._by_key.items() for r in c.to_requirements(key)]

    def to_api(self) -> list[dict[str, Any]]:
        """The normal form as ``NodeSelectorRequirement`` dicts; ``from_api`` reads it back equal."""
        return [r.to_api() for r in self.to_requirements()]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Requirements):
            return NotImplemented
        return self._by_key == other._by_key

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(frozenset(self._by_key.items()))
        return self._hash

    def __str__(self) -> str:
        return ", ".join(c.describe(k) for k, c in self._by_key.items()) or "<any>"

    def __repr__(self) -> str:
        return f"Requirements({self})"


EMPTY: Final = Requirements()


def parse_requirement_list(raw: object, field: str = "requirements") -> list[Requirement]:
    """Parse a list of requirements, collecting every bad item into one ValidationError."""
    if raw is None:
        return []
    if not isinstance(raw, list | tuple):
        raise ValidationError([FieldError(field, f"expected a list, got {_show(raw)}")], "requirements")
    out: list[Requirement] = []
    errors: list[FieldError] = []
    for i, item in enumerate(raw):
        try:
            out.append(Requirement.from_api(item, f"{field}[{i}]"))
        except FieldError as exc:
            errors.append(exc)
    if errors:
        raise ValidationError(errors, "requirements")
    return out


def _within(value: str, gt: int | None, lt: int | None) -> bool:
    if gt is None and lt is None:
        return True
    number = parse_int64(value)
    if number is None:
        return False
    return (gt is None or number > gt) and (lt is None or number < lt)


def _max_opt(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)


def _min_opt(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


def _choices() -> str:
    return ", ".join(sorted(OPERATORS))


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
