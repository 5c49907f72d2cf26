"""Requirements: validation, normalisation, and the algebra checked against a naive matcher."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared import labels
from shared.errors import FieldError, ValidationError
from shared.requirements import Requirement, Requirements, parse_int64

KEYS = ["a", "b", "example.com/n"]
VALUES = ["x", "y", "z", "1", "3", "03", "+4", "5", "-2", "9223372036854775808"]


def naive_matches(r: Requirement, node: dict[str, str]) -> bool:
    """Kubernetes' per-requirement semantics, written independently as the oracle."""
    value = node.get(r.key)
    if r.operator == "In":
        return value is not None and value in r.values
    if r.operator == "NotIn":
        return value is None or value not in r.values
    if r.operator == "Exists":
        return value is not None
    if r.operator == "DoesNotExist":
        return value is None
    if value is None:
        return False
    try:
        number = int(value)
    except ValueError:
        return False
    if not -(2**63) <= number < 2**63 or "_" in value or value.strip() != value:
        return False
    bound = int(r.values[0])
    return number > bound if r.operator == "Gt" else number < bound


@st.composite
def requirements(draw: st.DrawFn) -> Requirement:
    key = draw(st.sampled_from(KEYS))
    op = draw(st.sampled_from(["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"]))
    if op in ("In", "NotIn"):
        values = tuple(draw(st.lists(st.sampled_from(VALUES), min_size=1, max_size=4)))
    elif op in ("Gt", "Lt"):
        values = (str(draw(st.integers(min_value=-3, max_value=6))),)
    else:
        values = ()
    return Requirement(key, op, values)


REQ_LISTS = st.lists(requirements(), max_size=5)
NODES = st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES))


def build(reqs: list[Requirement]) -> Requirements:
    return Requirements.of(*reqs)


@settings(max_examples=300)
@given(REQ_LISTS, NODES)
def test_normal_form_matches_exactly_what_the_conjunction_matches(
    reqs: list[Requirement], node: dict[str, str]
) -> None:
    assert build(reqs).matches(node) == all(naive_matches(r, node) for r in reqs)


@settings(max_examples=300)
@given(REQ_LISTS, REQ_LISTS, NODES)
def test_intersection_is_conjunction(
    a: list[Requirement], b: list[Requirement], node: dict[str, str]
) -> None:
    ra, rb = build(a), build(b)
    both = ra.intersect(rb)
    assert both.matches(node) == (ra.matches(node) and rb.matches(node))
    assert both == rb.intersect(ra)
    assert both == build(a + b)


@given(REQ_LISTS, REQ_LISTS, REQ_LISTS)
def test_intersection_is_associative(
    a: list[Requirement], b: list[Requirement], c: list[Requirement]
) -> None:
    ra, rb, rc = build(a), build(b), build(c)
    assert (ra & rb) & rc == ra & (rb & rc)


@settings(max_examples=300)
@given(REQ_LISTS)
def test_api_round_trip_and_idempotent_normalisation(reqs: list[Requirement]) -> None:
    r = build(reqs)
    assert Requirements.from_api(r.to_api()) == r
    assert r.intersect(r) == r
    assert Requirements.of(*r.to_requirements()) == r
    assert hash(Requirements.from_api(r.to_api())) == hash(r)


@settings(max_examples=300)
@given(REQ_LISTS, NODES)
def test_unsatisfiable_means_no_label_set_matches(reqs: list[Requirement], node: dict[str, str]) -> None:
    r = build(reqs)
    if not r.is_satisfiable():
        assert not r.matches(node)
        assert r.conflicts(Requirements())
    assert r.matches(node) == (not r.unsatisfied_by(node))


@given(REQ_LISTS, REQ_LISTS, NODES)
def test_a_label_set_both_accept_proves_compatibility(
    a: list[Requirement], b: list[Requirement], node: dict[str, str]
) -> None:
    ra, rb = build(a), build(b)
    if ra.matches(node) and rb.matches(node):
        assert ra.compatible(rb)
        assert not ra.conflicts(rb)


def test_intersection_examples() -> None:
    r = Requirements.from_api(
        [
            {"key": "k", "operator": "In", "values": ["a", "b"]},
            {"key": "k", "operator": "NotIn", "values": ["b"]},
        ]
    )
    assert r == Requirements.from_labels({"k": "a"})
    assert r.allowed_values("k") == frozenset({"a"})

    rng = Requirements.from_api(
        [{"key": "n", "operator": "Gt", "values": ["2"]}, {"key": "n", "operator": "Lt", "values": ["5"]}]
    )
    assert [v for v in ("2", "3", "4", "5", "04", "x") if rng.allows("n", v)] == ["3", "4", "04"]
    assert rng.allowed_values("n") is None
    narrowed = rng.intersect(
        Requirements.from_api([{"key": "n", "operator": "In", "values": ["1", "3", "x"]}])
    )
    assert narrowed.allowed_values("n") == frozenset({"3"})

    empty_range = Requirements.from_api(
        [{"key": "n", "operator": "Gt", "values": ["3"]}, {"key": "n", "operator": "Lt", "values": ["4"]}]
    )
    assert not empty_range.is_satisfiable()

    impossible = Requirements.from_api(
        [{"key": "k", "operator": "In", "values": ["a"]}, {"key": "k", "operator": "DoesNotExist"}]
    )
    assert not impossible.is_satisfiable()
    assert impossible.conflicts(Requirements()) == ["k"]

    both_absent = Requirements.from_api([{"key": "k", "operator": "DoesNotExist"}])
    assert both_absent.compatible(both_absent)
    assert both_absent.conflicts(Requirements.from_labels({"k": "v"})) == ["k"]


def test_matching_absent_labels() -> None:
    r = Requirements.from_api(
        [
            {"key": "zone", "operator": "NotIn", "values": ["z1"]},
            {"key": "legacy", "operator": "DoesNotExist"},
        ]
    )
    assert r.matches({})
    assert not r.matches({"legacy": ""})
    assert not r.matches({"zone": "z1"})
    assert not Requirements.from_api([{"key": "cpu", "operator": "Gt", "values": ["1"]}]).matches({})
    assert not Requirements.from_api([{"key": "k", "operator": "Exists"}]).matches({})
    assert Requirements().matches({"anything": "x"})


def test_str_and_reasons_are_readable() -> None:
    r = Requirements.from_api(
        [
            {"key": labels.INSTANCE_SIZE, "operator": "NotIn", "values": ["medium", "large"]},
            {"key": labels.ARCH, "operator": "In", "values": ["arm64"]},
        ]
    )
    assert str(r) == "jitnode.io/instance-size notin [large medium], kubernetes.io/arch in [arm64]"
    assert r.unsatisfied_by({labels.ARCH: "amd64", labels.INSTANCE_SIZE: "large"}) == [
        "requires jitnode.io/instance-size notin [large medium], label is 'large'",
        "requires kubernetes.io/arch in [arm64], label is 'amd64'",
    ]
    assert str(Requirement("n", "Gt", ("4",))) == "n > 4"
    assert str(Requirements()) == "<any>"


def test_keys_allows_and_allowed_values() -> None:
    r = Requirements.from_api([{"key": "a", "operator": "NotIn", "values": ["x"]}])
    assert r.keys() == frozenset({"a"})
    assert r.allows("a", "y")
    assert not r.allows("a", "x")
    assert r.allows("unmentioned", "x")
    assert r.allowed_values("a") is None
    assert r.allowed_values("unmentioned") is None


def test_compatible_with_nodepool_follows_karpenter() -> None:
    pool = Requirements.from_api(
        [
            {"key": "intent", "operator": "In", "values": ["apps"]},
            {"key": labels.CAPACITY_TYPE, "operator": "In", "values": ["spot", "on-demand"]},
        ]
    )
    wants_apps = Requirements.from_labels({"intent": "apps"})
    assert wants_apps.compatible_with_nodepool(pool)
    assert not Requirements.from_labels({"intent": "batch"}).compatible_with_nodepool(pool)
    # A custom label the pool does not define: new nodes will not carry it.
    team = Requirements.from_labels({"team": "a"})
    assert team.compatible(pool)
    assert not team.compatible_with_nodepool(pool)
    assert "label 'team' is not defined by the nodepool" in team.nodepool_conflicts(pool)[0]
    # ... unless the pod is content without it.
    assert Requirements.from_api(
        [{"key": "team", "operator": "NotIn", "values": ["b"]}]
    ).compatible_with_nodepool(pool)
    assert Requirements.from_api([{"key": "team", "operator": "DoesNotExist"}]).compatible_with_nodepool(pool)
    # Well-known keys the pool leaves open are the launcher's to choose.
    assert Requirements.from_labels({labels.ZONE: "us-east-1a"}).compatible_with_nodepool(pool)
    assert not Requirements.from_labels({labels.ZONE: "us-east-1a"}).compatible_with_nodepool(
        pool, frozenset()
    )
    assert not Requirements.from_labels({labels.CAPACITY_TYPE: "reserved"}).compatible_with_nodepool(pool)


@pytest.mark.parametrize(
    ("raw", "path", "message"),
    [
        ({"operator": "Exists"}, "r.key", "is required"),
        ({"key": "bad key", "operator": "Exists"}, "r.key", "qualified name"),
        ({"key": "a/b/c", "operator": "Exists"}, "r.key", "more than one"),
        ({"key": "Bad_Prefix/x", "operator": "Exists"}, "r.key", "DNS subdomain"),
        ({"key": "k", "operator": "Like"}, "r.operator", "is not one of"),
        ({"key": "k"}, "r.operator", "is required"),
        ({"key": "k", "operator": "In"}, "r.values", "non-empty"),
        ({"key": "k", "operator": "NotIn", "values": []}, "r.values", "non-empty"),
        ({"key": "k", "operator": "Exists", "values": ["a"]}, "r.values", "must be empty"),
        ({"key": "k", "operator": "Gt", "values": ["1", "2"]}, "r.values", "exactly one"),
        ({"key": "k", "operator": "Lt", "values": ["1.5"]}, "r.values[0]", "not an integer"),
        ({"key": "k", "operator": "In", "values": [1]}, "r.values[0]", "expected a string"),
        ({"key": "k", "operator": "In", "values": "a"}, "r.values", "expected a list"),
        ({"key": "k", "operator": "In", "values": ["a"], "minValues": 2}, "r.minValues", "distinct"),
        ({"key": "k", "operator": "Exists", "minValues": 0}, "r.minValues", "between"),
        ({"key": "k", "operator": "Exists", "minValues": True}, "r.minValues", "integer"),
        ([], "r", "expected an object"),
    ],
)
def test_bad_requirements_name_the_field(raw: object, path: str, message: str) -> None:
    with pytest.raises(FieldError, match=message) as err:
        Requirement.from_api(raw, "r")  # type: ignore[arg-type]
    assert err.value.path == path


def test_from_api_collects_every_bad_item() -> None:
    with pytest.raises(ValidationError) as err:
        Requirements.from_api(
            [
                {"key": "k", "operator": "In"},
                {"key": "ok", "operator": "Exists"},
                {"key": "", "operator": "Exists"},
            ],
            "spec.requirements",
        )
    assert [e.path for e in err.value.errors] == ["spec.requirements[0].values", "spec.requirements[2].key"]
    with pytest.raises(ValidationError, match="expected a list"):
        Requirements.from_api({"key": "k"})


def test_min_values_is_kept_and_combined_by_maximum() -> None:
    a = Requirements.from_api([{"key": "t", "operator": "In", "values": ["a", "b", "c"], "minValues": 2}])
    b = Requirements.from_api([{"key": "t", "operator": "Exists", "minValues": 3}])
    both = a & b
    assert both.min_values("t") == 3
    assert both.allowed_values("t") == frozenset({"a", "b", "c"})
    assert Requirements.from_api(both.to_api()) == both
    assert a != Requirements.from_api([{"key": "t", "operator": "In", "values": ["a", "b", "c"]}])


def test_parse_int64_matches_go() -> None:
    assert parse_int64("+3") == 3
    assert parse_int64("-03") == -3
    assert parse_int64("9223372036854775807") == 2**63 - 1
    assert parse_int64("9223372036854775808") is None
    assert parse_int64("1_0") is None
    assert parse_int64(" 1") is None
    assert parse_int64("") is None


@pytest.mark.parametrize("operator", [["In"], {"op": "In"}, 3, None])
def test_an_operator_that_is_not_a_string_is_a_field_error(operator: object) -> None:
    with pytest.raises(FieldError, match=r"r\.operator"):
        Requirement.from_api({"key": "a", "operator": operator, "values": ["x"]}, "r")
