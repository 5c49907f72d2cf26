"""ExtenderArgs parsing and answer building, including hostile input."""

from __future__ import annotations

import contextlib

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from extender import protocol
from extender.protocol import ProtocolError, parse_args

POD = {"metadata": {"name": "p", "uid": "u"}, "spec": {"containers": []}}


def body(**keys: object) -> bytes:
    return orjson.dumps(keys)


@pytest.mark.parametrize(
    ("pod_key", "names_key"), [("Pod", "NodeNames"), ("pod", "nodenames"), ("POD", "nodeNames")]
)
def test_reads_keys_in_any_case(pod_key: str, names_key: str) -> None:
    args = parse_args(body(**{pod_key: POD, names_key: ["a", "b"], "Nodes": None}))
    assert args.node_cache_capable
    assert args.candidate_names() == ["a", "b"]
    assert args.pod == POD


def test_later_duplicate_key_wins_like_go() -> None:
    raw = b'{"Pod": {"metadata": {}}, "NodeNames": ["a"], "nodenames": ["b"]}'
    assert parse_args(raw).candidate_names() == ["b"]


def test_full_node_list() -> None:
    nodes = {"metadata": {}, "Items": [{"metadata": {"name": "n1"}}, {"metadata": {"name": "n2"}}]}
    args = parse_args(body(Pod=POD, Nodes=nodes, NodeNames=None))
    assert not args.node_cache_capable
    assert args.candidate_names() == ["n1", "n2"]
    answer = orjson.loads(protocol.filter_result(args, ["n2"], unresolvable={"n1": "going away"}))
    assert answer["Nodes"]["items"] == [{"metadata": {"name": "n2"}}]
    assert answer["NodeNames"] is None
    assert answer["FailedAndUnresolvableNodes"] == {"n1": "going away"}
    assert answer["Error"] == ""


def test_empty_candidate_list_is_valid() -> None:
    args = parse_args(body(Pod=POD, NodeNames=[]))
    assert orjson.loads(protocol.filter_result(args, []))["NodeNames"] == []


@pytest.mark.parametrize(
    ("raw", "path", "words"),
    [
        (b"{not json", "body", "not JSON"),
        (b"[1, 2]", "body", "JSON object"),
        (b'{"NodeNames": ["a"]}', "Pod", "missing"),
        (b'{"Pod": 3, "NodeNames": ["a"]}', "Pod", "not an object"),
        (b'{"Pod": {}, "NodeNames": "a"}', "NodeNames", "list of strings"),
        (b'{"Pod": {}, "NodeNames": [1]}', "NodeNames", "list of strings"),
        (b'{"Pod": {}, "Nodes": []}', "Nodes", "NodeList"),
        (b'{"Pod": {}, "Nodes": {"items": {}}}', "Nodes.items", "list"),
        (b'{"Pod": {}, "Nodes": {"items": [{"metadata": {}}]}}', "Nodes.items[0]", "metadata.name"),
        (b'{"Pod": {}}', "NodeNames", "no candidate"),
        (b'{"Pod": {}, "NodeNames": null, "Nodes": null}', "NodeNames", "no candidate"),
    ],
)
def test_rejects_malformed_bodies_naming_the_problem(raw: bytes, path: str, words: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_args(raw)
    assert info.value.path == path
    assert words in str(info.value)


def test_rejects_oversized_body() -> None:
    raw = body(Pod=POD, NodeNames=["n" * 100] * 100)
    with pytest.raises(ProtocolError, match="over the limit of 1000"):
        parse_args(raw, max_bytes=1000)
    assert parse_args(raw, max_bytes=len(raw)).candidate_names()[0] == "n" * 100


def test_priority_list_clamps_scores() -> None:
    answer = orjson.loads(protocol.priority_list(["a", "b", "c"], [-3, 7, 99]))
    assert answer == [{"Host": "a", "Score": 0}, {"Host": "b", "Score": 7}, {"Host": "c", "Score": 10}]


def test_filter_error_passes_every_candidate() -> None:
    args = parse_args(body(Pod=POD, NodeNames=["a", "b"]))
    answer = orjson.loads(protocol.filter_error(args, "boom"))
    assert answer["Error"] == "boom"
    assert answer["NodeNames"] == ["a", "b"]


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


@given(
    st.dictionaries(
        st.sampled_from(["Pod", "pod", "Nodes", "nodes", "NodeNames", "nodenames", "other"]),
        json_values,
        max_size=4,
    )
)
def test_parse_never_fails_otherwise_than_protocol_error(raw: dict[str, object]) -> None:
    try:
        args = parse_args(orjson.dumps(raw))
    except ProtocolError as exc:
        problem = exc.path
    else:
        problem = ""
    if problem:
        return
    names = args.candidate_names()
    assert all(isinstance(name, str) for name in names)
    protocol.filter_result(args, names)


@given(st.binary(max_size=200))
def test_parse_arbitrary_bytes(raw: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        parse_args(raw)
