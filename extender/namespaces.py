"""Namespace labels in memory, for the admission webhook's opt-in check.

The webhook answers inside the API server's admission chain (2 s timeout, ``failurePolicy:
Ignore``), so it must never call the API: an informer on namespaces feeds this cache and the
webhook reads a dict. Only the labels are kept (a namespace object carries much more). Pure:
fed by informer events, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

_NO_LABELS: Mapping[str, str] = MappingProxyType({})


def _name_and_labels(obj: Mapping[str, Any]) -> tuple[str, Mapping[str, str]]:
    meta = obj.get("metadata") or {}
    found = meta.get("labels")
    labels = MappingProxyType(dict(found)) if isinstance(found, Mapping) and found else _NO_LABELS
    return str(meta.get("name") or ""), labels


class NamespaceLabels:
    """Labels of every namespace the informer has seen, by name (an informer ``EventHandler``)."""

    def __init__(self) -> None:
        self._labels: dict[str, Mapping[str, str]] = {}

    def __len__(self) -> int:
        return len(self._labels)

    def get(self, name: str) -> Mapping[str, str] | None:
        """The namespace's labels (read-only), or None when it is not known (yet)."""
        return self._labels.get(name)

    def on_added(self, obj: dict[str, Any]) -> None:
        name, labels = _name_and_labels(obj)
        if name:
            self._labels[name] = labels

    def on_modified(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        self.on_added(new)

    def on_deleted(self, obj: dict[str, Any]) -> None:
        name, _ = _name_and_labels(obj)
        self._labels.pop(name, None)
