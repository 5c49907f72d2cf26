"""The extender wire format as kube-scheduler speaks it (``k8s.io/kube-scheduler/extender/v1``).

Requests use Go field names (``Pod``, ``Nodes``, ``NodeNames``) in that order, with the unused
one ``null``; objects carry no ``apiVersion``/``kind``, as the scheduler's informer cache drops
them. Answers are decoded like Go's encoding/json: keys match case-insensitively (the last
spelling wins), so both ``NodeNames`` and the older ``nodenames`` work. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

Obj = Mapping[str, Any]
_TYPE_META: Final = frozenset({"apiVersion", "kind"})


class ExtenderError(Exception):
    """An extender call that failed: transport, HTTP status, undecodable answer or ``Error``."""


@dataclass(frozen=True, slots=True)
class FilterResult:
    """ExtenderFilterResult: the nodes that passed, and why the others failed."""

    node_names: tuple[str, ...]
    failed: Mapping[str, str] = field(default_factory=dict)
    failed_unresolvable: Mapping[str, str] = field(default_factory=dict)


def without_type_meta(obj: Obj) -> dict[str, Any]:
    """The object as a Go typed struct re-encodes it: no ``apiVersion``/``kind``."""
    return {k: v for k, v in obj.items() if k not in _TYPE_META}


def encode_args(pod: Obj, nodes: Sequence[Obj], *, node_cache_capable: bool) -> bytes:
    """ExtenderArgs for a filter or prioritize call (both send the same body)."""
    if node_cache_capable:
        names = [str((node.get("metadata") or {}).get("name", "")) for node in nodes]
        args: dict[str, Any] = {"Pod": without_type_meta(pod), "Nodes": None, "NodeNames": names}
    else:
        items = [without_type_meta(node) for node in nodes]
        args = {"Pod": without_type_meta(pod), "Nodes": {"metadata": {}, "items": items}, "NodeNames": None}
    return orjson.dumps(args)


def encode_binding(namespace: str, name: str, uid: str, node: str) -> bytes:
    """ExtenderBindingArgs."""
    return orjson.dumps({"PodName": name, "PodNamespace": namespace, "PodUID": uid, "Node": node})


def _fold(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {str(key).lower(): value for key, value in obj.items()}


def _decode(body: bytes, what: str) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ExtenderError(f"decoding {what} answer: {exc}") from None


def _string_map(value: object, key: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ExtenderError(f"{key} must map node names to messages, got {value!r}")
    return {str(k): v for k, v in value.items()}


def _error_field(folded: Mapping[str, Any]) -> str:
    error = folded.get("error")
    if error is None:
        return ""
    if not isinstance(error, str):
        raise ExtenderError(f"Error must be a string, got {error!r}")
    return error


def decode_filter_result(body: bytes, candidates: Sequence[str], *, node_cache_capable: bool) -> FilterResult:
    """ExtenderFilterResult; raises :class:`ExtenderError` on a non-empty ``Error``.

    As in ``HTTPExtender.Filter``: with nodeCacheCapable and ``NodeNames`` present, names are
    taken from it and must be among the candidates; otherwise the ``Nodes`` list is read; with
    neither, no node passed.
    """
    raw = _decode(body, "filter")
    if not isinstance(raw, dict):
        raise ExtenderError(f"filter answer must be an object, got {type(raw).__name__}")
    folded = _fold(raw)
    error = _error_field(folded)
    if error:
        raise ExtenderError(error)
    known = set(candidates)
    names: list[str] = []
    node_names = folded.get("nodenames")
    nodes = folded.get("nodes")
    if node_cache_capable and node_names is not None:
        if not isinstance(node_names, list) or not all(isinstance(n, str) for n in node_names):
            raise ExtenderError(f"NodeNames must be a list of names, got {node_names!r}")
        names = list(node_names)
    elif nodes is not None:
        if not isinstance(nodes, dict):
            raise ExtenderError(f"Nodes must be a NodeList, got {nodes!r}")
        for item in _fold(nodes).get("items") or []:
            meta = _fold(item).get("metadata") if isinstance(item, dict) else None
            name = _fold(meta).get("name") if isinstance(meta, dict) else None
            if not isinstance(name, str):
                raise ExtenderError(f"Nodes.items has a node without a name: {item!r}")
            names.append(name)
    for name in names:
        if name not in known:
            raise ExtenderError(f"claims a filtered node {name!r} which is not found in the input node list")
    return FilterResult(
        node_names=tuple(names),
        failed=_string_map(folded.get("failednodes"), "FailedNodes"),
        failed_unresolvable=_string_map(
            folded.get("failedandunresolvablenodes"), "FailedAndUnresolvableNodes"
        ),
    )


def decode_priorities(body: bytes) -> list[tuple[str, int]]:
    """HostPriorityList: ``[{"Host": name, "Score": n}]`` as (host, score) pairs."""
    raw = _decode(body, "prioritize")
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ExtenderError(f"prioritize answer must be a list, got {type(raw).__name__}")
    out: list[tuple[str, int]] = []
    for entry in raw:
        folded = _fold(entry) if isinstance(entry, dict) else None
        host = folded.get("host") if folded is not None else None
        score = folded.get("score", 0) if folded is not None else None
        if not isinstance(host, str) or isinstance(score, bool) or not isinstance(score, int):
            raise ExtenderError(f"bad HostPriority {entry!r}")
        out.append((host, score))
    return out


def decode_binding_result(body: bytes) -> None:
    """ExtenderBindingResult; raises :class:`ExtenderError` on a non-empty ``Error``."""
    raw = _decode(body, "bind")
    if isinstance(raw, dict):
        error = _error_field(_fold(raw))
        if error:
            raise ExtenderError(error)
