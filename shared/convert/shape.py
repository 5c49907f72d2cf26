"""Typed reads of a manifest that is still plain YAML data, failing by field path.

The converter reads Karpenter objects no parser has checked yet; a field of the wrong type is
invalid input (``FieldError`` naming the path), never a ``KeyError`` or a silently empty value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.api._fields import join as join  # re-exported: the API parsers' path spelling
from shared.errors import FieldError


def mapping(raw: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
    """``raw[key]`` as a mapping; absent or null reads as empty."""
    value = raw.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise FieldError(join(path, key), f"expected an object, got {type(value).__name__}")
    return value


def items(raw: Mapping[str, Any], key: str, path: str) -> list[Any]:
    """``raw[key]`` as a list; absent or null reads as empty."""
    value = raw.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise FieldError(join(path, key), f"expected a list, got {type(value).__name__}")
    return value


def objects(raw: Mapping[str, Any], key: str, path: str) -> list[tuple[str, Mapping[str, Any]]]:
    """``raw[key]`` as a list of objects, each with its path (``taints[1]``)."""
    out: list[tuple[str, Mapping[str, Any]]] = []
    for i, item in enumerate(items(raw, key, path)):
        where = join(join(path, key), i)
        if not isinstance(item, Mapping):
            raise FieldError(where, f"expected an object, got {type(item).__name__}")
        out.append((where, item))
    return out


def string(raw: Mapping[str, Any], key: str, path: str) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise FieldError(join(path, key), f"expected a string, got {value!r}")
    return value


def string_map(raw: Mapping[str, Any], key: str, path: str) -> dict[str, str]:
    """A map of strings (labels, tags, selectors); YAML numbers and booleans are refused, as the API does."""
    out: dict[str, str] = {}
    for name, value in mapping(raw, key, path).items():
        if not isinstance(value, str):
            raise FieldError(join(join(path, key), str(name)), f"expected a string, got {value!r}")
        out[str(name)] = value
    return out


def whole_seconds(raw: Mapping[str, Any], key: str, path: str) -> int | None:
    """A non-negative integer count of seconds (Karpenter's ``ttlSeconds...`` fields)."""
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise FieldError(join(path, key), f"expected a non-negative whole number of seconds, got {value!r}")
    return value
