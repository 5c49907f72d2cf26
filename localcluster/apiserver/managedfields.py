"""Field sets as the real server tracks them in ``metadata.managedFields`` (fieldsV1).

A path is a tuple of elements ``("f", name)`` (struct field or map key), ``("k", json)`` (item of
a ``map`` list, by its key fields), ``("v", json)`` (item of a ``set`` list) and ``("i", n)``.
Members of an object's set are, as in structured-merge-diff, its scalar leaves, its atomic
lists and maps, and the items of associative lists; the maps on the way are not members.
Pure: nothing here mutates its inputs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from localcluster.apiserver.schemas import EMPTY, Resolver, is_atomic_map, list_type

Obj = dict[str, Any]
Element = tuple[str, Any]
Path = tuple[Element, ...]

# Fields no manager owns: identity and bookkeeping the server sets itself.
IGNORED_METADATA = frozenset(
    {
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "managedFields",
        "selfLink",
    }
)


@dataclass(frozen=True)
class Member:
    value: Any
    leaf: bool  # scalar, atomic list or atomic map (compared by value); items are not leaves


def _dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def tracked(obj: Obj, subresource: str | None, has_status: bool) -> Obj:
    """The part of ``obj`` managed fields describe for a write to ``subresource``."""
    if subresource == "status":
        return {"status": obj["status"]} if "status" in obj else {}
    out = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
    if has_status:
        out.pop("status", None)
    meta = out.get("metadata")
    if isinstance(meta, dict):
        kept = {k: v for k, v in meta.items() if k not in IGNORED_METADATA}
        if kept:
            out["metadata"] = kept
        else:
            out.pop("metadata")
    return out


def item_element(item: Any, kind: str, keys: tuple[str, ...], index: int) -> Element:
    """The path element naming one item of a list of type ``kind``."""
    if kind == "map" and isinstance(item, dict):
        present = {k: item[k] for k in keys if k in item}
        if present:
            return ("k", _dumps(present))
    if kind == "set":
        return ("v", _dumps(item))
    return ("i", index)


def members(obj: Any, resolver: Resolver) -> dict[Path, Member]:
    """Every member path of ``obj`` with its value."""
    out: dict[Path, Member] = {}
    _walk(obj, resolver.root, resolver, (), out)
    return out


def _walk(value: Any, node: Obj, resolver: Resolver, path: Path, out: dict[Path, Member]) -> None:
    if isinstance(value, dict):
        free = "properties" not in node and not isinstance(node.get("additionalProperties"), dict)
        if is_atomic_map(node) or (free and node is not resolver.root):
            out[path] = Member(value, True)
            return
        for key, sub in value.items():
            child = resolver.field(node, key)
            _walk(sub, child[0] if child else EMPTY, resolver, (*path, ("f", key)), out)
        return
    if isinstance(value, list):
        kind, keys = list_type(node)
        if kind == "atomic":
            out[path] = Member(value, True)
            return
        items = resolver.items(node)
        for n, item in enumerate(value):
            item_path = (*path, item_element(item, kind, keys, n))
            if kind == "set":
                out[item_path] = Member(item, True)
            else:
                out[item_path] = Member(item, False)
                _walk(item, items, resolver, item_path, out)
        return
    out[path] = Member(value, True)


def changed(old: dict[Path, Member], new: dict[Path, Member]) -> set[Path]:
    """Paths of ``new`` that ``old`` lacks or holds another value at (items: only when added)."""
    out = set()
    for path, member in new.items():
        before = old.get(path)
        if before is None or (member.leaf and (not before.leaf or before.value != member.value)):
            out.add(path)
    return out


# ---------------------------------------------------------------- fieldsV1 encoding
def _element_key(element: Element) -> str:
    kind, value = element
    return f"{kind}:{value}"


def encode(paths: Iterable[Path]) -> Obj:
    """The fieldsV1 trie of a set of member paths."""
    root: Obj = {}
    for path in sorted(paths, key=lambda p: [_element_key(e) for e in p]):
        node = root
        for element in path:
            node = node.setdefault(_element_key(element), {})
        node["."] = {}
    return _finish(root)


def _finish(node: Obj) -> Obj:
    children = {k: _finish(v) for k, v in node.items() if k != "."}
    if "." in node and children:
        return {".": {}, **children}
    return children


def decode(fields: Any) -> set[Path]:
    """The member paths a fieldsV1 trie names (malformed entries are skipped)."""
    out: set[Path] = set()

    def walk(node: Any, path: Path) -> None:
        if not isinstance(node, dict):
            return
        if (not node or "." in node) and path:
            out.add(path)
        for key, sub in node.items():
            if key == "." or ":" not in key:
                continue
            kind, value = key.split(":", 1)
            element: Element = (kind, int(value) if kind == "i" and value.isdigit() else value)
            walk(sub, (*path, element))

    walk(fields, ())
    return out


def path_string(path: Path) -> str:
    """``.spec.template.spec.containers[name="c"].image``, as conflicts print paths."""
    parts = []
    for kind, value in path:
        if kind == "f":
            parts.append(f".{value}")
        elif kind == "k":
            keys = orjson.loads(value)
            parts.append("[" + ",".join(f"{k}={_dumps(v)}" for k, v in keys.items()) + "]")
        elif kind == "v":
            parts.append(f"[={value}]")
        else:
            parts.append(f"[{value}]")
    return "".join(parts)


# ---------------------------------------------------------------- removing fields
def remove(obj: Obj, paths: set[Path], resolver: Resolver) -> Obj:
    """``obj`` without the members at ``paths`` (maps left empty by it are dropped too)."""
    if not paths:
        return obj
    tree: dict[Element, Any] = {}
    for path in paths:
        node = tree
        for element in path[:-1]:
            node = node.setdefault(element, {})
        node[path[-1]] = None  # None marks removal of the whole member
    result = _remove(obj, tree, resolver.root, resolver)
    return result if isinstance(result, dict) else {}


def _remove(value: Any, tree: dict[Element, Any], node: Obj, resolver: Resolver) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, sub in value.items():
            element = ("f", key)
            if element not in tree:
                out[key] = sub
                continue
            if tree[element] is None:
                continue
            child = resolver.field(node, key)
            kept = _remove(sub, tree[element], child[0] if child else EMPTY, resolver)
            if kept != {} or sub == {}:
                out[key] = kept
        return out
    if isinstance(value, list):
        kind, keys = list_type(node)
        items = resolver.items(node)
        out_list = []
        for n, item in enumerate(value):
            element = item_element(item, kind, keys, n)
            if element not in tree:
                out_list.append(item)
            elif tree[element] is not None:
                out_list.append(_remove(item, tree[element], items, resolver))
        return out_list
    return value
