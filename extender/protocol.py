"""kube-scheduler's HTTP extender protocol (``k8s.io/kube-scheduler/extender/v1``), as bytes.

The Go types carry no JSON tags, so the scheduler sends Go field names (``Pod``, ``Nodes``,
``NodeNames``) and decodes our answers with encoding/json, which matches keys case-insensitively.
Old schedulers send lower-case keys. Reading a request with the wrong spelling finds no
candidates and answers an empty list, which makes every pod unschedulable (a silent, total
outage), so requests are read case-insensitively and answers use the Go names exactly.

Which answer shape the scheduler expects follows from the request: with ``nodeCacheCapable``
it sends ``NodeNames`` (and ``"Nodes": null``) and reads ``NodeNames`` back; without it sends a
full NodeList in ``Nodes`` and reads ``Nodes`` back. Answering the other key is also an outage.

Filter answers from the candidate names alone, and kube-scheduler waits for it inside its
scheduling cycle, so :func:`node_names_only` reads just the names out of a body as Go encodes
it (``{"Pod":{...},"Nodes":null,"NodeNames":[...]}``: the names come last), without decoding
the pod: the answer path then costs the same for a 2 KB pod as for a 50 KB one. The full parse
(:func:`parse_args`) reads the pod later, off the answer path, and still decides every body
not in that shape (lower-case keys, NodeLists, bad input).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import orjson

from shared.errors import FieldError

# HostPriority.Score is clamped by the scheduler to [0, MaxExtenderPriority].
MAX_EXTENDER_PRIORITY: Final = 10


class ProtocolError(FieldError):
    """A request body that is not valid ExtenderArgs; the path names the offending key."""


@dataclass(frozen=True, slots=True)
class ExtenderArgs:
    """One filter or prioritize request.

    ``node_names`` is set when the scheduler is nodeCacheCapable, ``nodes`` (the NodeList's
    items, as plain dicts) when it is not; exactly one of them is not None.
    """

    pod: Mapping[str, Any]
    node_names: Sequence[str] | None
    nodes: Sequence[Mapping[str, Any]] | None

    @property
    def node_cache_capable(self) -> bool:
        return self.node_names is not None

    def candidate_names(self) -> list[str]:
        """The candidate node names, in the order the scheduler sent them."""
        if self.node_names is not None:
            return list(self.node_names)
        assert self.nodes is not None
        return [_node_name(node) for node in self.nodes]


def _fold(obj: Mapping[str, Any]) -> dict[str, Any]:
    """Keys folded to lower case; a later duplicate wins, as in Go's decoder."""
    return {key.lower(): value for key, value in obj.items()}


def _node_name(node: Mapping[str, Any]) -> str:
    metadata = node.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    return name if isinstance(name, str) else ""


def _all_strings(values: list[Any]) -> bool:
    """Whether every item is a str: ``str.join`` checks in C, faster than a type per item."""
    try:
        "".join(values)
    except TypeError:
        return False
    return True


# Go's encoding of ExtenderArgs: fields in declaration order (Pod, Nodes, NodeNames), no spaces.
_GO_PREFIX: Final = b'{"Pod":{'
_NAMES_KEY: Final = b'"NodeNames":'


def node_names_only(body: bytes) -> list[str] | None:
    """The candidate names of a body as kube-scheduler encodes it, read without decoding the pod.

    None when the body is not in that shape; :func:`parse_args` then decides it, errors included.
    Searching from the end finds the last ``"NodeNames":`` key after scanning only the names.
    That the rest of the body, minus its closing brace, decodes as one JSON value proves the
    key belongs to the top-level object and is its last member, as the full parse would read it
    (a key nested in the pod leaves unbalanced closing brackets behind its value, and a quote
    inside a JSON string is always escaped, so a string never matches). The pod's bytes are not
    read here: a body whose pod is malformed is answered from its names, and the full parse
    after the answer finds the fault.
    """
    if not body.startswith(_GO_PREFIX):
        return None
    end = len(body)
    if body[-1:] != b"}":
        body = body.rstrip()
        end = len(body)
        if body[-1:] != b"}":
            return None
    at = body.rfind(_NAMES_KEY)
    if at < 0:
        return None
    try:
        names = orjson.loads(memoryview(body)[at + len(_NAMES_KEY) : end - 1])
    except orjson.JSONDecodeError:
        return None
    if not isinstance(names, list) or not _all_strings(names):
        return None
    return names


_NULL_NODES: Final = b',"Nodes":null,'


def pod_only(body: bytes) -> dict[str, Any] | None:
    """The pod of a body :func:`node_names_only` read, decoded without its names (they are known).

    None unless the body is exactly ``{"Pod":<object>,"Nodes":null,"NodeNames":...}``: the pod's
    bytes then decode as one JSON object, so no other top-level key can hide among them.
    """
    at = body.rfind(_NAMES_KEY)
    if at < 0 or not body.startswith(_GO_PREFIX) or not body.endswith(_NULL_NODES, 0, at):
        return None
    try:
        pod = orjson.loads(memoryview(body)[len(_GO_PREFIX) - 1 : at - len(_NULL_NODES)])
    except orjson.JSONDecodeError:
        return None
    return pod if isinstance(pod, dict) else None


def parse_args(body: bytes, max_bytes: int | None = None) -> ExtenderArgs:
    """Parse an ExtenderArgs body; raises :class:`ProtocolError` naming the problem."""
    if max_bytes is not None and len(body) > max_bytes:
        raise ProtocolError("body", f"is {len(body)} bytes, over the limit of {max_bytes}")
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError("body", f"is not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ProtocolError("body", f"must be a JSON object (ExtenderArgs), got {type(raw).__name__}")
    args = _fold(raw)
    pod = args.get("pod")
    if not isinstance(pod, dict):
        raise ProtocolError("Pod", "missing or not an object")
    node_names = args.get("nodenames")
    nodes = args.get("nodes")
    if node_names is not None:
        if not isinstance(node_names, list) or not _all_strings(node_names):
            raise ProtocolError("NodeNames", "must be a list of strings")
        return ExtenderArgs(pod=pod, node_names=node_names, nodes=None)
    if nodes is not None:
        if not isinstance(nodes, dict):
            raise ProtocolError("Nodes", "must be a NodeList object")
        items = _fold(nodes).get("items")
        if items is None:
            items = []
        if not isinstance(items, list):
            raise ProtocolError("Nodes.items", "must be a list of nodes")
        for index, node in enumerate(items):
            if not isinstance(node, dict) or not _node_name(node):
                raise ProtocolError(f"Nodes.items[{index}]", "must be a node with metadata.name")
        return ExtenderArgs(pod=pod, node_names=None, nodes=items)
    raise ProtocolError("NodeNames", "neither NodeNames nor Nodes is set: no candidate nodes")


def filter_result(
    args: ExtenderArgs,
    passed: Iterable[str],
    failed: Mapping[str, str] | None = None,
    unresolvable: Mapping[str, str] | None = None,
    error: str = "",
) -> bytes:
    """An ExtenderFilterResult answering ``args`` in the shape its scheduler reads back.

    ``failed`` nodes may become feasible by preemption; ``unresolvable`` ones cannot (a node
    being deleted stays useless however many pods are evicted from it). Raises
    :class:`ProtocolError` naming the node when a node to send back cannot be encoded.
    """
    if args.node_names is not None:
        return names_filter_result(passed, failed, unresolvable, error)
    keep = set(passed)
    assert args.nodes is not None
    items = [n for n in args.nodes if _node_name(n) in keep]
    try:
        return orjson.dumps(
            {
                "Nodes": {"metadata": {}, "items": items},
                "NodeNames": None,
                "FailedNodes": dict(failed or {}),
                "FailedAndUnresolvableNodes": dict(unresolvable or {}),
                "Error": error,
            }
        )
    except orjson.JSONEncodeError:
        raise _unechoable(args.nodes) from None


def _unechoable(nodes: Sequence[Mapping[str, Any]]) -> ProtocolError:
    """The error naming the first node orjson cannot encode back (nested deeper than 255 levels:
    orjson decodes up to 1024), found only once an answer has failed to encode."""
    for index, node in enumerate(nodes):
        try:
            orjson.dumps(node)
        except orjson.JSONEncodeError as exc:
            return ProtocolError(f"Nodes.items[{index}]", f"cannot be sent back in the answer: {exc}")
    return ProtocolError("Nodes", "cannot be sent back in the answer")


def names_filter_result(
    passed: Iterable[str],
    failed: Mapping[str, str] | None = None,
    unresolvable: Mapping[str, str] | None = None,
    error: str = "",
) -> bytes:
    """:func:`filter_result` for a nodeCacheCapable request, which needs nothing but the names."""
    return orjson.dumps(
        {
            "NodeNames": list(passed),
            "Nodes": None,
            "FailedNodes": dict(failed or {}),
            "FailedAndUnresolvableNodes": dict(unresolvable or {}),
            "Error": error,
        }
    )


def filter_error(args: ExtenderArgs | None, error: str) -> bytes:
    """A filter answer that reports an internal failure in ``Error`` (the scheduler logs it).

    It passes every candidate, so that an ignorable extender that breaks never blocks
    scheduling even if the scheduler looks at the node list before the error.
    """
    if args is not None:
        with contextlib.suppress(ProtocolError):  # a node that cannot be echoed: no list at all
            return filter_result(args, args.candidate_names(), error=error)
    return orjson.dumps({"NodeNames": None, "Nodes": None, "FailedNodes": {}, "Error": error})


def priority_list(hosts: Sequence[str], scores: Sequence[int]) -> bytes:
    """A HostPriorityList: ``[{"Host": name, "Score": 0..10}]``, scores clamped to range."""
    return orjson.dumps(
        [{"Host": host, "Score": score} for host, score in zip(hosts, _clamped(scores), strict=True)]
    )


def _clamped(scores: Sequence[int]) -> Sequence[int]:
    if scores and (min(scores) < 0 or max(scores) > MAX_EXTENDER_PRIORITY):
        return [max(0, min(MAX_EXTENDER_PRIORITY, score)) for score in scores]
    return scores


# What follows ``{"Host":"<name>","Score":`` for each score, indexed by score, for
# :func:`render_priorities`; the last entry of a list has no comma.
_TAIL_ARRAY: Final = np.array([b"%d}," % s for s in range(MAX_EXTENDER_PRIORITY + 1)], dtype=object)
_LAST_TAILS: Final = tuple(b"%d}" % score for score in range(MAX_EXTENDER_PRIORITY + 1))


def priority_head(host: str) -> bytes:
    """The JSON of one HostPriority up to its score: ``{"Host":"<host>","Score":``."""
    return b'{"Host":' + orjson.dumps(host) + b',"Score":'


def render_priorities(heads: npt.NDArray[np.object_], scores: npt.NDArray[np.intp]) -> bytes:
    """:func:`priority_list` from each host's :func:`priority_head` and an array of scores.

    Interleaving two object arrays and one join: no Python int, tuple or dict per host, which
    is what makes a 500-host answer cheap. Scores are clamped to range, as in :func:`priority_list`.
    """
    count = len(heads)
    if count != len(scores):
        raise ValueError(f"{count} hosts but {len(scores)} scores")
    if count == 0:
        return b"[]"
    parts: npt.NDArray[np.object_] = np.empty(2 * count + 2, dtype=object)
    parts[0] = b"["
    parts[1:-1:2] = heads
    parts[2:-1:2] = _TAIL_ARRAY.take(scores, mode="clip")  # "clip" clamps the scores, too
    parts[-2] = _LAST_TAILS[max(0, min(MAX_EXTENDER_PRIORITY, int(scores[-1])))]
    parts[-1] = b"]"
    return b"".join(parts.tolist())


def error_body(problem: str) -> bytes:
    """The JSON body of a 400 answer: ``{"error": "..."}``."""
    return orjson.dumps({"error": problem})
