"""Field-path validation helpers shared by the API type parsers.

A :class:`Checker` walks a plain dict as the API server returns it and records every problem
with its field path instead of stopping at the first, so one :class:`ValidationError` tells a
user everything wrong with their manifest. Each getter returns a usable fallback (the default,
an empty value) after recording an error, so parsing can continue past bad fields.

Each API module declares the keys it accepts per path (``KEYS``), its enums (``ENUMS``) and its
defaults (``DEFAULTS``) as data; the parsers enforce them and ``tests/shared/test_crds.py``
checks the CRD schemas declare the same, so the two cannot drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NoReturn, TypeVar

from shared.errors import FieldError, ValidationError
from shared.resources import Resources

T = TypeVar("T")

# Keys every object carries at the top level; ``metadata`` is parsed by ObjectMeta.
ROOT_KEYS = frozenset({"apiVersion", "kind", "metadata", "spec", "status"})


def join(path: str, key: str | int) -> str:
    """``spec`` + ``limits`` -> ``spec.limits``; ``budgets`` + 0 -> ``budgets[0]``."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


class Checker:
    """Collects :class:`FieldError` while a parser walks an object (see the module docstring)."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def error(self, path: str, message: str) -> None:
        self.errors.append(FieldError(path, message))

    def run(self, parse: Callable[[], T], fallback: T) -> T:
        """Run a parser from another module, folding its errors into this checker."""
        try:
            return parse()
        except ValidationError as exc:
            self.errors.extend(exc.errors)
        except FieldError as exc:
            self.errors.append(exc)
        return fallback

    def done(self, kind: str) -> None:
        """Raise one :class:`ValidationError` with everything found, if anything was."""
        if self.errors:
            raise ValidationError(self.errors, kind)

    def fail(self, kind: str) -> NoReturn:
        raise ValidationError(self.errors, kind)

    # Structure.
    def mapping(self, raw: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
        """A nested object; absent or null reads as empty."""
        value = raw.get(key)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.error(join(path, key), f"expected an object, got {_show(value)}")
            return {}
        return value

    def items(
        self, raw: Mapping[str, Any], key: str, path: str, *, max_items: int | None = None
    ) -> list[Any]:
        value = raw.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.error(join(path, key), f"expected a list, got {_show(value)}")
            return []
        if max_items is not None and len(value) > max_items:
            self.error(join(path, key), f"must have at most {max_items} items")
        return value

    def objects(
        self, raw: Mapping[str, Any], key: str, path: str, *, max_items: int | None = None
    ) -> list[tuple[str, Mapping[str, Any]]]:
        """The items of a list of objects, each with its path; non-objects are reported."""
        out: list[tuple[str, Mapping[str, Any]]] = []
        for i, item in enumerate(self.items(raw, key, path, max_items=max_items)):
            item_path = f"{join(path, key)}[{i}]"
            if isinstance(item, Mapping):
                out.append((item_path, item))
            else:
                self.error(item_path, f"expected an object, got {_show(item)}")
        return out

    def keys(self, raw: Mapping[str, Any], path: str, allowed: Collection[str]) -> None:
        """Report keys the schema does not have (the API server would prune them silently)."""
        for key in raw:
            if key not in allowed:
                self.error(join(path, str(key)), "unknown field")

    def require(self, raw: Mapping[str, Any], path: str, *keys: str) -> None:
        for key in keys:
            if raw.get(key) is None:
                self.error(join(path, key), "required")

    # Scalars.
    def string(
        self,
        raw: Mapping[str, Any],
        key: str,
        path: str,
        *,
        required: bool = False,
        enum: Sequence[str] | None = None,
        pattern: str | None = None,
        max_length: int | None = None,
        min_length: int = 0,
        hint: str | None = None,
    ) -> str | None:
        """A string field; ``hint`` phrases a pattern mismatch for people (``"a duration"``)."""
        value = raw.get(key)
        where = join(path, key)
        if value is None:
            if required:
                self.error(where, "required")
            return None
        if not isinstance(value, str):
            self.error(where, f"expected a string, got {_show(value)}")
            return None
        if enum is not None and value not in enum:
            self.error(where, f"must be one of {', '.join(enum)}")
            return None
        if pattern is not None and re.search(pattern, value) is None:
            self.error(where, f"{value!r} is not {hint}" if hint else f"{value!r} does not match {pattern}")
            return None
        if len(value) < min_length:
            self.error(
                where, "must not be empty" if min_length == 1 else f"must be at least {min_length} long"
            )
            return None
        if max_length is not None and len(value) > max_length:
            self.error(where, f"must be at most {max_length} characters")
            return None
        return value

    def integer(
        self,
        raw: Mapping[str, Any],
        key: str,
        path: str,
        *,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> int | None:
        value = raw.get(key)
        where = join(path, key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(where, f"expected an integer, got {_show(value)}")
            return None
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            self.error(where, f"{value} is out of range {_range(minimum, maximum)}")
            return None
        return value

    def boolean(self, raw: Mapping[str, Any], key: str, path: str) -> bool | None:
        value = raw.get(key)
        if value is None:
            return None
        if not isinstance(value, bool):
            self.error(join(path, key), f"expected true or false, got {_show(value)}")
            return None
        return value

    def string_map(
        self,
        raw: Mapping[str, Any],
        key: str,
        path: str,
        *,
        check_key: Callable[[str], str | None] | None = None,
    ) -> dict[str, str]:
        """A ``map[string]string`` such as labels or tags; ``check_key`` returns a complaint or None."""
        out: dict[str, str] = {}
        for k, v in self.mapping(raw, key, path).items():
            where = join(join(path, key), str(k))
            if not isinstance(v, str):
                self.error(where, f"expected a string, got {_show(v)}")
                continue
            problem = check_key(str(k)) if check_key else None
            if problem:
                self.error(where, problem)
                continue
            out[str(k)] = v
        return out

    def resources(self, raw: Mapping[str, Any], key: str, path: str) -> Resources:
        """A resource list; each bad quantity is reported on its own path."""
        where = join(path, key)
        amounts: dict[str, int] = {}
        for name, value in self.mapping(raw, key, path).items():
            try:
                amounts[str(name)] = Resources.parse({name: value}, where).amount(str(name))
            except FieldError as exc:
                self.errors.append(exc)
        return Resources(amounts)

    def timestamp(self, raw: Mapping[str, Any], key: str, path: str) -> datetime | None:
        value = raw.get(key)
        if value is None:
            return None
        try:
            return parse_time(value)
        except ValueError:
            self.error(join(path, key), f"{_show(value)} is not an RFC 3339 time")
            return None


def parse_time(value: object) -> datetime:
    """An RFC 3339 time as the API sends it (``2024-05-01T10:00:00Z``), as an aware UTC datetime."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and "T" in value.upper():
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
    else:
        raise ValueError(f"{value!r} is not an RFC 3339 time")
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone")
    return parsed.astimezone(UTC)


def format_time(value: datetime) -> str:
    """RFC 3339 in UTC with ``Z``; fractions only when present (metav1.Time has whole seconds)."""
    value = value.astimezone(UTC)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}"
    return text + "Z"


def _show(value: object) -> str:
    return repr(value) if isinstance(value, str | int | float | bool) else type(value).__name__


def _range(minimum: int | None, maximum: int | None) -> str:
    if minimum is not None and maximum is not None:
        return f"{minimum}..{maximum}"
    return f">= {minimum}" if minimum is not None else f"<= {maximum}"
