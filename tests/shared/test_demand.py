"""The demand wire format: round trips, the documented shape, and malformed input by path."""

from __future__ import annotations

import contextlib
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.demand import (
    DEMAND_API_VERSION,
    Heartbeat,
    Message,
    PodDemand,
    Snapshot,
    Upsert,
    Withdraw,
    decode,
    encode,
)
from shared.errors import ValidationError
from shared.podaffinity import PodAffinityTerm
from shared.requirements import Requirement, Requirements
from shared.resources import Resources
from shared.taints import Toleration
from shared.topologyspread import SpreadConstraint

POD: dict[str, Any] = {
    "metadata": {
        "name": "inflate-1",
        "namespace": "default",
        "uid": "0b9c",
        "ownerReferences": [{"kind": "ReplicaSet", "name": "inflate-5d", "controller": True}],
    },
    "spec": {
        "containers": [{"name": "c", "resources": {"requests": {"cpu": "1", "memory": "1536Mi"}}}],
        "nodeSelector": {"intent": "apps"},
        "tolerations": [{"key": "spot", "operator": "Exists", "effect": "NoSchedule"}],
        "priority": 5,
    },
}


def demand(**changes: Any) -> PodDemand:
    base = PodDemand.from_pod(POD, "unschedulable", 1700000000.25)
    return PodDemand(**{**base.__dict__, **changes})


def test_from_pod() -> None:
    d = demand()
    assert (d.uid, d.namespace, d.name, d.key) == ("0b9c", "default", "inflate-1", "default/inflate-1")
    assert d.requests == Resources(cpu=1000, memory=1536 * 2**20, pods=1)
    assert d.requirements == (Requirements.from_labels({"intent": "apps"}),)
    assert d.tolerations == (Toleration("spot", "Exists", effect="NoSchedule"),)
    assert (d.priority, d.owner_kind, d.owner_name) == (5, "ReplicaSet", "inflate-5d")
    assert (d.first_seen, d.reason) == (1700000000.25, "unschedulable")


def test_from_pod_rejects_bad_pods() -> None:
    bad = {
        **POD,
        "spec": {**POD["spec"], "containers": [{"name": "c", "resources": {"requests": {"cpu": "x"}}}]},
    }
    with pytest.raises(ValidationError, match=r"spec.containers\[0\].resources.requests.cpu"):
        PodDemand.from_pod(bad, "unschedulable", 0.0)


def test_wire_shape_is_the_documented_contract() -> None:
    wire = orjson.loads(encode(Upsert(7, "ext-0", demand())))
    assert wire == {
        "apiVersion": DEMAND_API_VERSION,
        "kind": "Upsert",
        "seq": 7,
        "source": "ext-0",
        "demand": {
            "uid": "0b9c",
            "namespace": "default",
            "name": "inflate-1",
            "requests": {"cpu": "1", "memory": "1536Mi", "pods": "1"},
            "requirements": [[{"key": "intent", "operator": "In", "values": ["apps"]}]],
            "tolerations": [{"key": "spot", "operator": "Exists", "effect": "NoSchedule"}],
            "priority": 5,
            "owner": {"kind": "ReplicaSet", "name": "inflate-5d"},
            "firstSeen": 1700000000.25,
            "reason": "unschedulable",
        },
    }
    assert orjson.loads(encode(Withdraw(8, "ext-0", "0b9c", "bound")))["kind"] == "Withdraw"
    assert orjson.loads(encode(Heartbeat(9, "ext-0", 12.5))) == {
        "apiVersion": DEMAND_API_VERSION,
        "kind": "Heartbeat",
        "seq": 9,
        "source": "ext-0",
        "sentAt": 12.5,
    }
    assert orjson.loads(encode(Heartbeat(9, "ext-0", 12.5, interval=5.0)))["interval"] == 5.0


KEYS = st.sampled_from(["intent", "kubernetes.io/arch", "jitnode.io/instance-cpu"])
REQS = st.builds(
    lambda key, op, vals, n: Requirement(
        key, op, tuple(vals) if op in ("In", "NotIn") else (str(n),) if op in ("Gt", "Lt") else ()
    ),
    KEYS,
    st.sampled_from(["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"]),
    st.lists(st.sampled_from(["a", "b", "4"]), min_size=1, max_size=3),
    st.integers(-5, 5),
)
DEMANDS = st.builds(
    PodDemand,
    uid=st.text(min_size=1, max_size=8),
    namespace=st.text(max_size=8),
    name=st.text(max_size=8),
    requests=st.dictionaries(
        st.sampled_from(["cpu", "memory", "pods", "nvidia.com/gpu"]), st.integers(0, 2**40)
    ).map(Resources),
    requirements=st.lists(st.lists(REQS, max_size=3).map(lambda rs: Requirements.of(*rs)), max_size=3).map(
        tuple
    ),
    tolerations=st.lists(
        st.sampled_from(
            [
                Toleration(operator="Exists"),
                Toleration("a", "Equal", "b", "NoExecute", 30),
                Toleration("spot", "Exists", effect="NoSchedule"),
            ]
        ),
        max_size=2,
    ).map(tuple),
    priority=st.integers(-(2**31), 2**31),
    owner_kind=st.none() | st.just("Job"),
    owner_name=st.none(),
    first_seen=st.floats(0, 2e9, allow_nan=False),
    reason=st.sampled_from(["unschedulable", "predicted"]),
    exclusive=st.none() | st.text(min_size=1, max_size=12),
    exclusive_zone=st.booleans(),
    labels=st.dictionaries(st.sampled_from(["app", "tier", "pod-template-hash"]), st.text(max_size=5)),
    spread=st.lists(
        st.builds(
            SpreadConstraint,
            topology_key=st.sampled_from(["topology.kubernetes.io/zone", "kubernetes.io/hostname"]),
            max_skew=st.integers(1, 5),
            hard=st.booleans(),
            selector=st.none()
            | st.lists(REQS.filter(lambda r: r.operator not in ("Gt", "Lt")), max_size=2).map(
                lambda rs: Requirements.of(*rs)
            ),
            min_domains=st.integers(1, 4),
            honor_node_affinity=st.booleans(),
            honor_node_taints=st.booleans(),
        ),
        max_size=2,
    ).map(tuple),
    affinity=st.lists(
        st.builds(
            PodAffinityTerm,
            st.sampled_from(["topology.kubernetes.io/zone", "kubernetes.io/hostname"]),
            st.none() | st.lists(REQS, max_size=2).map(lambda rs: Requirements.of(*rs)),
            st.none() | st.frozensets(st.sampled_from(["default", "team-a"]), min_size=1),
        ),
        max_size=2,
    ).map(tuple),
).map(
    lambda d: PodDemand(
        **{
            **d.__dict__,
            "owner_name": "j" if d.owner_kind else None,
            "exclusive_zone": d.exclusive_zone and d.exclusive is not None,
            "anti_affinity": d.affinity[::-1],
        }
    )
)
SOURCES = st.text(min_size=1, max_size=10)
SEQS = st.integers(0, 2**53)
MESSAGES = st.one_of(
    st.builds(Snapshot, SEQS, SOURCES, st.lists(DEMANDS, max_size=3).map(tuple)),
    st.builds(Upsert, SEQS, SOURCES, DEMANDS),
    st.builds(Withdraw, SEQS, SOURCES, st.text(min_size=1, max_size=8), st.text(max_size=8)),
    st.builds(
        Heartbeat,
        SEQS,
        SOURCES,
        st.floats(0, 2e9, allow_nan=False),
        st.none() | st.floats(1e-3, 1e4, allow_nan=False),
    ),
)


@given(MESSAGES)
def test_round_trip(msg: Message) -> None:
    data = encode(msg)
    assert decode(data) == msg
    assert decode(data.decode()) == msg


def base_upsert() -> dict[str, Any]:
    out: dict[str, Any] = orjson.loads(encode(Upsert(1, "ext", demand())))
    return out


def with_change(path: str, value: Any) -> dict[str, Any]:
    doc = base_upsert()
    *parents, last = path.split(".")
    target = doc
    for part in parents:
        target = target[part]
    if value is DELETE:
        del target[last]
    else:
        target[last] = value
    return doc


DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "error_path"),
    [
        ("apiVersion", "jitnode.io/demand/v2", "apiVersion"),
        ("apiVersion", DELETE, "apiVersion"),
        ("kind", "Delete", "kind"),
        ("seq", -1, "seq"),
        ("seq", "1", "seq"),
        ("seq", True, "seq"),
        ("source", "", "source"),
        ("demand", DELETE, "demand"),
        ("demand", [], "demand"),
        ("demand.uid", DELETE, "demand.uid"),
        ("demand.uid", 5, "demand.uid"),
        ("demand.requests", {"cpu": "1x"}, "demand.requests.cpu"),
        ("demand.requests", {"memory": "-1"}, "demand.requests.memory"),
        ("demand.requests", "1", "demand.requests"),
        ("demand.requirements", [[{"key": "k", "operator": "In"}]], "demand.requirements[0][0].values"),
        ("demand.requirements", [{"key": "k"}], "demand.requirements[0]"),
        ("demand.requirements", "any", "demand.requirements"),
        ("demand.tolerations", [{"operator": "Sometimes"}], "demand.tolerations[0].operator"),
        ("demand.priority", 1.5, "demand.priority"),
        ("demand.owner", {"kind": "Job"}, "demand.owner.name"),
        ("demand.owner", "Job/x", "demand.owner"),
        ("demand.firstSeen", "yesterday", "demand.firstSeen"),
        ("demand.reason", "bored", "demand.reason"),
        ("demand.exclusive", "", "demand.exclusive"),
        ("demand.exclusive", 7, "demand.exclusive"),
        ("demand.exclusiveZone", "yes", "demand.exclusiveZone"),
        ("demand.exclusiveZone", True, "demand.exclusiveZone"),  # without exclusive
    ],
)
def test_malformed_messages_name_the_field(path: str, value: Any, error_path: str) -> None:
    with pytest.raises(ValidationError) as err:
        decode(orjson.dumps(with_change(path, value)))
    assert error_path in [e.path for e in err.value.errors], err.value


@pytest.mark.parametrize(
    ("doc", "error_path"),
    [
        ({"apiVersion": DEMAND_API_VERSION, "kind": "Snapshot", "seq": 0, "source": "e"}, "demands"),
        (
            {
                "apiVersion": DEMAND_API_VERSION,
                "kind": "Snapshot",
                "seq": 0,
                "source": "e",
                "demands": [{"uid": 1}],
            },
            "demands[0].uid",
        ),
        ({"apiVersion": DEMAND_API_VERSION, "kind": "Withdraw", "seq": 0, "source": "e"}, "uid"),
        ({"apiVersion": DEMAND_API_VERSION, "kind": "Heartbeat", "seq": 0, "source": "e"}, "sentAt"),
        *[
            (
                {
                    "apiVersion": DEMAND_API_VERSION,
                    "kind": "Heartbeat",
                    "seq": 0,
                    "source": "e",
                    "sentAt": 1.0,
                    "interval": bad,
                },
                "interval",
            )
            for bad in (0, -5.0, "5s", True)
        ],
        ([1, 2], ""),
        ("Snapshot", ""),
    ],
)
def test_malformed_other_kinds(doc: Any, error_path: str) -> None:
    with pytest.raises(ValidationError) as err:
        decode(orjson.dumps(doc))
    assert error_path in [e.path for e in err.value.errors], err.value


@pytest.mark.parametrize("data", [b"", b"{", b"\xff", "not json", b"null"])
def test_not_json_is_a_validation_error(data: bytes | str) -> None:
    with pytest.raises(ValidationError):
        decode(data)


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    doc = base_upsert()
    doc["traceId"] = "abc"
    doc["demand"]["newField"] = [1]
    assert decode(orjson.dumps(doc)) == Upsert(1, "ext", demand())


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=20,
)


@given(JSON)
def test_arbitrary_json_never_raises_anything_but_validation_errors(doc: Any) -> None:
    for candidate in (doc, {**base_upsert(), "demand": doc}):
        with contextlib.suppress(ValidationError):
            decode(orjson.dumps(candidate))


SPREAD_POD: dict[str, Any] = {
    **POD,
    "metadata": {**POD["metadata"], "labels": {"app": "web", "pod-template-hash": "5d"}},
    "spec": {
        **POD["spec"],
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": {"matchLabels": {"app": "web"}},
                "matchLabelKeys": ["pod-template-hash"],
            }
        ],
        "affinity": {
            "podAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "topologyKey": "topology.kubernetes.io/zone",
                        "labelSelector": {"matchLabels": {"app": "db"}},
                    }
                ]
            },
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "topologyKey": "kubernetes.io/hostname",
                        "labelSelector": {"matchLabels": {"app": "batch"}},
                    }
                ]
            },
        },
    },
}


def test_the_inter_pod_fields_are_carried_in_the_documented_shape() -> None:
    d = PodDemand.from_pod(SPREAD_POD, "unschedulable", 1.0)
    assert d.constrained
    assert d.labels == {"app": "web", "pod-template-hash": "5d"}
    wire = orjson.loads(encode(Upsert(1, "ext-0", d)))["demand"]
    assert wire["labels"] == {"app": "web", "pod-template-hash": "5d"}
    assert wire["topologySpread"] == [
        {
            "topologyKey": "topology.kubernetes.io/zone",
            "maxSkew": 1,
            "whenUnsatisfiable": "DoNotSchedule",
            "selector": [
                {"key": "app", "operator": "In", "values": ["web"]},
                {"key": "pod-template-hash", "operator": "In", "values": ["5d"]},
            ],
        }
    ]
    assert wire["podAffinity"] == [
        {
            "topologyKey": "topology.kubernetes.io/zone",
            "selector": [{"key": "app", "operator": "In", "values": ["db"]}],
            "namespaces": ["default"],
        }
    ]
    assert wire["podAntiAffinity"][0]["topologyKey"] == "kubernetes.io/hostname"
    assert decode(encode(Upsert(1, "ext-0", d))) == Upsert(1, "ext-0", d)


def test_an_old_receiver_gets_exactly_what_it_got_before_and_an_old_sender_is_understood() -> None:
    """New fields are optional additions: without them the message is the one an older sender
    wrote for the pod, and that message decodes to the pod with no inter-pod constraints."""
    constrained = PodDemand.from_pod(SPREAD_POD, "unschedulable", 1.0)
    wire = orjson.loads(encode(Upsert(1, "ext-0", constrained)))
    new_keys = {"labels", "topologySpread", "podAffinity", "podAntiAffinity"}
    old_wire = {k: v for k, v in wire["demand"].items() if k not in new_keys}
    plain = PodDemand.from_pod(POD, "unschedulable", 1.0)
    assert old_wire == orjson.loads(encode(Upsert(1, "ext-0", plain)))["demand"]
    old = decode(orjson.dumps({**wire, "demand": old_wire}))
    assert isinstance(old, Upsert)
    assert old.demand == plain
    assert not old.demand.constrained


@pytest.mark.parametrize(
    ("key", "value", "error_path"),
    [
        ("labels", ["app"], "demand.labels"),
        ("labels", {"app": 1}, "demand.labels"),
        ("topologySpread", {}, "demand.topologySpread"),
        ("topologySpread", [{"topologyKey": "z", "maxSkew": 0}], "demand.topologySpread[0].maxSkew"),
        (
            "topologySpread",
            [{"topologyKey": "z", "maxSkew": 1, "whenUnsatisfiable": "Maybe"}],
            "demand.topologySpread[0].whenUnsatisfiable",
        ),
        ("podAffinity", [{"selector": None}], "demand.podAffinity[0].topologyKey"),
        (
            "podAntiAffinity",
            [{"topologyKey": "z", "namespaces": "x"}],
            "demand.podAntiAffinity[0].namespaces",
        ),
        (
            "podAntiAffinity",
            [{"topologyKey": "z", "selector": [{"key": "a", "operator": "Near"}]}],
            "demand.podAntiAffinity[0].selector[0].operator",
        ),
    ],
)
def test_malformed_inter_pod_fields_name_the_field(key: str, value: Any, error_path: str) -> None:
    doc = orjson.loads(encode(Upsert(1, "ext-0", demand())))
    doc["demand"][key] = value
    with pytest.raises(ValidationError) as info:
        decode(orjson.dumps(doc))
    assert error_path in [e.path for e in info.value.errors]
