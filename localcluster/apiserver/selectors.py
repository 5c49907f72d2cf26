"""Label and field selectors: the query-string syntax and the structured ``LabelSelector``.

Pure functions on plain dicts. Parse errors raise :class:`SelectorError`, which the HTTP
layer turns into ``400 BadRequest`` like the real API server.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_PREFIX = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_SPECIAL = set(" \t,()=!<>")


class SelectorError(ValueError):
    """A selector that does not parse or names an unsupported field."""


@dataclass(frozen=True)
class Requirement:
    """One clause of a label selector: ``key op values``."""

    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!", "gt", "lt"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op in ("=", "in"):
            return present and value in self.values
        if self.op in ("!=", "notin"):
            return not present or value not in self.values
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if not present or value is None:
            return False
        try:
            have, want = int(value), int(self.values[0])
        except ValueError:
            return False
        return have > want if self.op == "gt" else have < want


LabelSelector = tuple[Requirement, ...]


def _check_key(key: str) -> None:
    prefix, _, name = key.rpartition("/")
    if "/" in key and not _PREFIX.match(prefix):
        raise SelectorError(f"invalid label key {key!r}: prefix must be a DNS subdomain")
    if not _NAME.match(name):
        raise SelectorError(f"invalid label key {key!r}: name part must be a valid label name")


def _check_value(value: str) -> None:
    if value and not _NAME.match(value):
        raise SelectorError(f"invalid label value: {value!r}: must be 63 characters or less and alphanumeric")


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in " \t":
            i += 1
        elif text.startswith(("==", "!="), i):
            out.append(text[i : i + 2])
            i += 2
        elif ch in _SPECIAL:
            out.append(ch)
            i += 1
        else:
            j = i
            while j < len(text) and text[j] not in _SPECIAL:
                j += 1
            out.append(text[i:j])
            i = j
    return out


def parse_label_selector(text: str) -> LabelSelector:
    """Parse ``a=b,c!=d,e in (f,g),!h`` into requirements (empty text selects everything)."""
    toks = _tokens(text)
    reqs: list[Requirement] = []
    pos = 0

    def peek() -> str | None:
        return toks[pos] if pos < len(toks) else None

    def take() -> str:
        nonlocal pos
        if pos >= len(toks):
            raise SelectorError(f"unable to parse requirement: unexpected end of selector {text!r}")
        pos += 1
        return toks[pos - 1]

    def ident(what: str) -> str:
        tok = take()
        if tok in _SPECIAL or tok in ("==", "!="):
            raise SelectorError(f"unable to parse requirement: found {tok!r}, expected: {what}")
        return tok

    while pos < len(toks):
        if peek() == "!":
            take()
            key = ident("identifier after '!'")
            _check_key(key)
            reqs.append(Requirement(key, "!"))
        else:
            key = ident("identifier")
            _check_key(key)
            op = peek()
            if op is None or op == ",":
                reqs.append(Requirement(key, "exists"))
            elif op in ("=", "==", "!="):
                take()
                value = ""
                if peek() not in (None, ","):
                    value = ident("value")
                _check_value(value)
                reqs.append(Requirement(key, "!=" if op == "!=" else "=", (value,)))
            elif op in ("in", "notin"):
                take()
                if take() != "(":
                    raise SelectorError(f"unable to parse requirement: expected '(' after {op}")
                values: list[str] = []
                while True:
                    tok = take()
                    if tok == ")":
                        break
                    if tok == ",":
                        continue
                    _check_value(tok)
                    values.append(tok)
                reqs.append(Requirement(key, op, tuple(values)))
            elif op in (">", "<"):
                take()
                value = ident("integer value")
                if not value.lstrip("-").isdigit():
                    raise SelectorError(f"unable to parse requirement: {value!r} is not an integer")
                reqs.append(Requirement(key, "gt" if op == ">" else "lt", (value,)))
            else:
                raise SelectorError(f"unable to parse requirement: found {op!r}, expected an operator")
        nxt = peek()
        if nxt is not None:
            if nxt != ",":
                raise SelectorError(f"found {nxt!r}, expected: ',' or 'end of string'")
            take()
            if peek() is None:
                raise SelectorError("found 'end of string', expected: identifier")
    return tuple(reqs)


def labels_match(selector: LabelSelector, labels: Mapping[str, str] | None) -> bool:
    labels = labels or {}
    return all(req.matches(labels) for req in selector)


_STRUCT_OPS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}


def from_label_selector(selector: Mapping[str, Any] | None) -> LabelSelector | None:
    """A structured ``LabelSelector`` as requirements; ``None`` (matches nothing) for a null selector."""
    if selector is None:
        return None
    reqs = [Requirement(k, "=", (str(v),)) for k, v in (selector.get("matchLabels") or {}).items()]
    for expr in selector.get("matchExpressions") or []:
        op = _STRUCT_OPS.get(str(expr.get("operator")))
        if op is None:
            raise SelectorError(f"{expr.get('operator')!r} is not a valid label selector operator")
        reqs.append(Requirement(str(expr.get("key", "")), op, tuple(expr.get("values") or ())))
    return tuple(reqs)


def selector_to_string(selector: LabelSelector) -> str:
    """Render requirements back in query syntax (``Scale.status.selector`` carries it)."""
    parts = []
    for req in sorted(selector, key=lambda r: r.key):
        if req.op in ("=", "!="):
            parts.append(f"{req.key}{req.op}{req.values[0]}")
        elif req.op in ("in", "notin"):
            parts.append(f"{req.key} {req.op} ({','.join(sorted(req.values))})")
        elif req.op == "exists":
            parts.append(req.key)
        elif req.op == "!":
            parts.append(f"!{req.key}")
        else:
            parts.append(f"{req.key}{'>' if req.op == 'gt' else '<'}{req.values[0]}")
    return ",".join(parts)


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    equal: bool
    value: str


FieldSelector = tuple[FieldRequirement, ...]


def _split_unescaped(text: str, sep: str) -> list[str]:
    parts, cur, i = [], [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            cur.append(text[i : i + 2])
            i += 2
            continue
        if text[i] == sep:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(text[i])
        i += 1
    parts.append("".join(cur))
    return parts


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


def parse_field_selector(text: str, supported: frozenset[str]) -> FieldSelector:
    """Parse ``spec.nodeName=n1,status.phase!=Failed``; unknown fields are an error, as on a real server."""
    reqs: list[FieldRequirement] = []
    for part in _split_unescaped(text, ","):
        if not part.strip():
            continue
        m = re.match(r"^\s*([^=!\s]+)\s*(==|=|!=)(.*)$", part)
        if not m:
            raise SelectorError(f"invalid selector: {text!r}; can't understand {part!r}")
        name, op, raw = m.group(1), m.group(2), m.group(3).strip()
        if name not in supported:
            raise SelectorError(f"field label not supported: {name}")
        reqs.append(FieldRequirement(name, op != "!=", _unescape(raw)))
    return tuple(reqs)


def field_value(obj: Mapping[str, Any], path: str) -> str:
    """The string form of a field a selector compares: missing is ``""``, booleans are lower case."""
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, Mapping):
            return ""
        cur = cur.get(part)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def fields_match(selector: FieldSelector, obj: Mapping[str, Any]) -> bool:
    return all((field_value(obj, r.field) == r.value) == r.equal for r in selector)


def object_filter(
    labels: LabelSelector, fields: FieldSelector, namespace: str | None
) -> Callable[[Mapping[str, Any]], bool]:
    """One predicate for list and watch: namespace, then labels, then fields."""

    def accept(obj: Mapping[str, Any]) -> bool:
        meta = obj.get("metadata") or {}
        if namespace is not None and meta.get("namespace") != namespace:
            return False
        if labels and not labels_match(labels, meta.get("labels")):
            return False
        return not fields or fields_match(fields, obj)

    return accept
