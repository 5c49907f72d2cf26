"""Server-side apply and the ``managedFields`` bookkeeping of other writes, as pure functions.

Follows structured-merge-diff's rules: an applied configuration is merged into the live object
by the schema's list types; the fields it sets that change a value owned by another manager
are conflicts (409) unless forced, in which case the other manager loses them; fields the
manager applied before and no longer applies are removed unless someone else owns them. A
plain update takes ownership of what it changed from everyone else, never conflicting.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from localcluster.apiserver.managedfields import (
    Member,
    Path,
    changed,
    decode,
    encode,
    item_element,
    members,
    path_string,
    remove,
    tracked,
)
from localcluster.apiserver.schemas import EMPTY, Obj, Resolver, is_atomic_map, list_type

APPLY = "Apply"
UPDATE = "Update"
BEFORE_FIRST_APPLY = "before-first-apply"


@dataclass
class Entry:
    """One ``managedFields`` entry with its field set decoded."""

    manager: str
    operation: str
    api_version: str
    time: str
    fields: set[Path]
    subresource: str = ""
    extra: Obj = field(default_factory=dict)

    @property
    def ident(self) -> tuple[str, str, str, str]:
        # Apply entries are one per manager whatever the version, as in the real server.
        version = self.api_version if self.operation == UPDATE else ""
        return (self.manager, self.operation, version, self.subresource)

    def describe(self) -> str:
        """How conflict messages name the manager."""
        text = f'"{self.manager}"'
        if self.subresource:
            text += f' with subresource "{self.subresource}"'
        if self.operation == UPDATE:
            text += f" using {self.api_version}" + (f" at {self.time}" if self.time else "")
        return text

    def render(self) -> Obj:
        out: Obj = {
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": encode(self.fields),
        }
        if self.subresource:
            out["subresource"] = self.subresource
        return out


@dataclass(frozen=True)
class Conflict:
    entry: Entry
    path: Path


class ApplyConflicts(Exception):
    """Fields an apply would change that other managers own."""

    def __init__(self, conflicts: list[Conflict]) -> None:
        self.conflicts = conflicts
        super().__init__(self.message())

    def message(self) -> str:
        if len(self.conflicts) == 1:
            c = self.conflicts[0]
            return f"Apply failed with 1 conflict: conflict with {c.entry.describe()}: {path_string(c.path)}"
        by_manager: dict[str, list[str]] = {}
        for c in self.conflicts:
            by_manager.setdefault(c.entry.describe(), []).append(path_string(c.path))
        lines = []
        for manager in sorted(by_manager):
            lines.append(f"conflicts with {manager}:")
            lines.extend(f"- {p}" for p in by_manager[manager])
        return f"Apply failed with {len(self.conflicts)} conflicts: " + "\n".join(lines)

    def causes(self) -> list[Obj]:
        return [
            {
                "reason": "FieldManagerConflict",
                "message": f"conflict with {c.entry.describe()}",
                "field": path_string(c.path),
            }
            for c in self.conflicts
        ]


def entries_of(obj: Obj | None) -> list[Entry]:
    """The decoded ``managedFields`` of ``obj`` (entries that are not FieldsV1 are dropped)."""
    out = []
    for raw in ((obj or {}).get("metadata") or {}).get("managedFields") or []:
        if not isinstance(raw, dict) or raw.get("fieldsType", "FieldsV1") != "FieldsV1":
            continue
        out.append(
            Entry(
                manager=str(raw.get("manager", "")),
                operation=str(raw.get("operation", UPDATE)),
                api_version=str(raw.get("apiVersion", "")),
                time=str(raw.get("time", "")),
                fields=decode(raw.get("fieldsV1") or {}),
                subresource=str(raw.get("subresource", "")),
            )
        )
    return out


def _with_entries(obj: Obj, entries: list[Entry]) -> Obj:
    meta = dict(obj.get("metadata") or {})
    kept = [e.render() for e in entries if e.fields]
    if kept:
        meta["managedFields"] = kept
    else:
        meta.pop("managedFields", None)
    return {**obj, "metadata": meta}


def _find(entries: list[Entry], ident: tuple[str, str, str, str]) -> Entry | None:
    return next((e for e in entries if e.ident == ident), None)


@dataclass(frozen=True)
class Write:
    """Who writes, through which version and subresource, and when."""

    manager: str
    api_version: str
    time: str
    subresource: str = ""
    has_status: bool = False


def _members(obj: Obj | None, resolver: Resolver, w: Write) -> dict[Path, Member]:
    if obj is None:
        return {}
    return members(tracked(obj, w.subresource or None, w.has_status), resolver)


def track_update(old: Obj | None, new: Obj, resolver: Resolver, w: Write) -> Obj:
    """``new`` with managedFields recording an Update by ``w.manager`` of what changed since ``old``.

    A client that sends managedFields of its own (other than those of ``old``) sets them as is;
    an empty list clears them. Unchanged objects keep their entries untouched.
    """
    sent = (new.get("metadata") or {}).get("managedFields")
    previous = ((old or {}).get("metadata") or {}).get("managedFields")
    if sent is not None and sent != previous:
        return new
    before, after = _members(old, resolver, w), _members(new, resolver, w)
    touched = changed(before, after)
    gone = set(before) - set(after)
    entries = entries_of(old)
    if not touched and not gone:
        return _with_entries(new, entries) if previous is not None else new
    for e in entries:
        e.fields -= touched | gone
    mine = _find(entries, (w.manager, UPDATE, w.api_version, w.subresource))
    if mine is None:
        mine = Entry(w.manager, UPDATE, w.api_version, w.time, set(), w.subresource)
        entries.append(mine)
    mine.fields |= touched
    mine.time = w.time
    return _with_entries(new, entries)


def merge(live: Any, config: Any, node: Obj, resolver: Resolver) -> Any:
    """``config`` merged into ``live``: maps by key, ``map``/``set`` lists by item, the rest replaced."""
    if isinstance(config, dict) and isinstance(live, dict):
        free = "properties" not in node and not isinstance(node.get("additionalProperties"), dict)
        if is_atomic_map(node) or (free and node is not resolver.root):
            return config
        out = dict(live)
        for key, value in config.items():
            if value is None:
                out.pop(key, None)
                continue
            child = resolver.field(node, key)
            out[key] = merge(live.get(key), value, child[0] if child else EMPTY, resolver)
        return out
    if isinstance(config, list) and isinstance(live, list):
        kind, keys = list_type(node)
        if kind == "atomic":
            return config
        items = resolver.items(node)
        result = list(live)
        at = {item_element(item, kind, keys, n): n for n, item in enumerate(result)}
        for n, item in enumerate(config):
            element = item_element(item, kind, keys, n)
            if element[0] != "i" and element in at:
                if kind == "map":
                    result[at[element]] = merge(result[at[element]], item, items, resolver)
            else:
                at[element] = len(result)
                result.append(item)
        return result
    return config


def apply(live: Obj | None, config: Obj, resolver: Resolver, w: Write, *, force: bool) -> Obj:
    """The object after ``w.manager`` applies ``config`` to ``live`` (None: create); raises
    :class:`ApplyConflicts`."""
    entries = entries_of(live)
    live_members = _members(live, resolver, w)
    if live is not None and not entries and live_members:
        entries = [Entry(BEFORE_FIRST_APPLY, UPDATE, w.api_version, w.time, set(live_members))]
    applied = set(_members(config, resolver, w))
    merged: Obj = merge(live or {}, config, resolver.root, resolver)
    touched = changed(live_members, _members(merged, resolver, w)) & applied
    ident = (w.manager, APPLY, "", w.subresource)
    others = [e for e in entries if e.ident != ident]
    conflicts = [Conflict(e, p) for e in others for p in sorted(e.fields & touched, key=path_string)]
    if conflicts and not force:
        raise ApplyConflicts(conflicts)
    for e in others:
        e.fields -= touched
    mine = _find(entries, ident)
    previous = mine.fields if mine is not None else set()
    owned_by_others = set().union(*(e.fields for e in others)) if others else set()
    dropped = {p for p in previous - applied if not any(q[: len(p)] == p for q in owned_by_others | applied)}
    merged = remove(merged, dropped, resolver)
    if mine is None:
        mine = Entry(w.manager, APPLY, w.api_version, w.time, set(), w.subresource)
        entries.append(mine)
    mine.fields, mine.time, mine.api_version = applied, w.time, w.api_version
    return _with_entries(merged, entries)
