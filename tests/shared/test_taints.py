"""Taints and tolerations: API validation and the exact ``ToleratesTaint`` matching rules."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.errors import FieldError, ValidationError
from shared.taints import (
    Taint,
    Toleration,
    parse_taints,
    parse_tolerations,
    tolerates,
    tolerates_all,
    untolerated_taints,
)

GPU = Taint("nvidia.com/gpu", "NoSchedule", "true")
DEDICATED = Taint("dedicated", "NoExecute", "infra")
SOFT = Taint("spot", "PreferNoSchedule")


@pytest.mark.parametrize(
    ("toleration", "taint", "expected"),
    [
        (Toleration("nvidia.com/gpu", "Equal", "true", "NoSchedule"), GPU, True),
        (Toleration("nvidia.com/gpu", "Equal", "false", "NoSchedule"), GPU, False),
        (Toleration("nvidia.com/gpu", "Exists"), GPU, True),
        (Toleration("nvidia.com/gpu", "Exists", effect="NoExecute"), GPU, False),
        (Toleration("other", "Exists"), GPU, False),
        (Toleration("", "Exists"), GPU, True),
        (Toleration("", "Exists", effect="NoExecute"), DEDICATED, True),
        (Toleration("", "Exists", effect="NoSchedule"), DEDICATED, False),
        (Toleration("dedicated", "Equal", "infra"), DEDICATED, True),
        (Toleration("dedicated", "", "infra"), DEDICATED, True),
        (Toleration("dedicated", "Equal", ""), DEDICATED, False),
        (Toleration("spot", "Equal", ""), SOFT, True),
        (Toleration("dedicated", "Bogus", "infra"), DEDICATED, False),
    ],
)
def test_tolerates(toleration: Toleration, taint: Taint, expected: bool) -> None:
    assert tolerates(toleration, taint) is expected


def test_untolerated_taints_considers_hard_effects_only_by_default() -> None:
    taints = [GPU, DEDICATED, SOFT]
    assert untolerated_taints([], taints) == [GPU, DEDICATED]
    assert untolerated_taints([Toleration("dedicated", "Exists")], taints) == [GPU]
    assert untolerated_taints([], taints, frozenset({"PreferNoSchedule"})) == [SOFT]
    assert tolerates_all([Toleration(operator="Exists")], taints)
    assert not tolerates_all([Toleration("nvidia.com/gpu", "Exists")], taints)


@given(
    st.sampled_from(["a", "b", "example.com/c"]),
    st.sampled_from(["", "x", "y"]),
    st.sampled_from(["NoSchedule", "PreferNoSchedule", "NoExecute"]),
)
def test_wildcard_exists_tolerates_everything(key: str, value: str, effect: str) -> None:
    taint = Taint(key, effect, value)
    assert tolerates(Toleration(operator="Exists"), taint)
    assert tolerates(Toleration(key, "Exists"), taint)
    assert tolerates(Toleration(key, "Equal", value, effect), taint)
    assert not tolerates(Toleration(key, "Equal", value + "z", effect), taint)


def test_taint_api_round_trip() -> None:
    raw = {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule", "timeAdded": None}
    taint = Taint.from_api(raw)
    assert taint == GPU
    assert taint.to_api() == {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}
    assert Taint.from_api(SOFT.to_api()) == SOFT
    assert str(GPU) == "nvidia.com/gpu=true:NoSchedule"


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        ({"effect": "NoSchedule"}, "t.key"),
        ({"key": "a b", "effect": "NoSchedule"}, "t.key"),
        ({"key": "a", "effect": "Sometimes"}, "t.effect"),
        ({"key": "a"}, "t.effect"),
        ({"key": "a", "value": "no way", "effect": "NoSchedule"}, "t.value"),
        ({"key": 3, "effect": "NoSchedule"}, "t.key"),
        ("a=b:NoSchedule", "t"),
    ],
)
def test_bad_taints_name_the_field(raw: object, path: str) -> None:
    with pytest.raises(FieldError) as err:
        Taint.from_api(raw, "t")  # type: ignore[arg-type]
    assert err.value.path == path


def test_toleration_api_round_trip() -> None:
    raw = {
        "key": "dedicated",
        "operator": "Equal",
        "value": "infra",
        "effect": "NoExecute",
        "tolerationSeconds": 30,
    }
    tol = Toleration.from_api(raw)
    assert tol == Toleration("dedicated", "Equal", "infra", "NoExecute", 30)
    assert tol.to_api() == raw
    assert Toleration.from_api({"key": "a"}).operator == "Equal"
    assert Toleration.from_api({"operator": "Exists"}) == Toleration(operator="Exists")


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        ({"operator": "Equal", "value": "x"}, "tol.operator"),
        ({"key": "a", "operator": "Exists", "value": "x"}, "tol.value"),
        ({"key": "a", "operator": "Maybe"}, "tol.operator"),
        ({"key": "a", "effect": "Never"}, "tol.effect"),
        ({"key": "a", "effect": "NoSchedule", "tolerationSeconds": 5}, "tol.effect"),
        ({"key": "a", "effect": "NoExecute", "tolerationSeconds": "5"}, "tol.tolerationSeconds"),
        ({"key": "-bad-"}, "tol.key"),
    ],
)
def test_bad_tolerations_name_the_field(raw: dict[str, object], path: str) -> None:
    with pytest.raises(FieldError) as err:
        Toleration.from_api(raw, "tol")
    assert err.value.path == path


def test_list_parsers_collect_every_error() -> None:
    assert parse_taints(None) == ()
    assert parse_tolerations([{"operator": "Exists"}]) == (Toleration(operator="Exists"),)
    with pytest.raises(ValidationError) as err:
        parse_taints(
            [{"key": "a", "effect": "NoSchedule"}, {"key": "b"}, {"effect": "NoExecute"}], "spec.taints"
        )
    assert [e.path for e in err.value.errors] == ["spec.taints[1].effect", "spec.taints[2].key"]
    with pytest.raises(ValidationError, match=r"spec\.tolerations: expected a list"):
        parse_tolerations({"key": "a"}, "spec.tolerations")
