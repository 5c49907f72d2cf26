"""A pod's topology spread constraints, parsed as kube-scheduler reads them (``shared.topologyspread``)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.errors import FieldError
from shared.requirements import Requirements
from shared.topologyspread import SpreadConstraint, pod_spread_constraints

ZONE = "topology.kubernetes.io/zone"


def spread_pod(*constraints: dict[str, Any], pod_labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": "p", "namespace": "default", "labels": pod_labels or {"app": "web", "rev": "2"}},
        "spec": {"containers": [{"name": "c"}], "topologySpreadConstraints": list(constraints)},
    }


def constraint(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "maxSkew": 1,
        "topologyKey": ZONE,
        "whenUnsatisfiable": "DoNotSchedule",
        "labelSelector": {"matchLabels": {"app": "web"}},
    }
    return {**base, **fields}


def test_defaults_are_kube_schedulers() -> None:
    (c,) = pod_spread_constraints(spread_pod(constraint()))
    assert c == SpreadConstraint(ZONE, 1, True, Requirements.from_labels({"app": "web"}))
    assert (c.min_domains, c.honor_node_affinity, c.honor_node_taints) == (1, True, False)
    assert c.selects({"app": "web", "x": "y"})
    assert not c.selects({"app": "db"})


def test_every_field_is_read() -> None:
    (c,) = pod_spread_constraints(
        spread_pod(constraint(maxSkew=3, minDomains=4, nodeAffinityPolicy="Ignore", nodeTaintsPolicy="Honor"))
    )
    assert (c.max_skew, c.min_domains, c.honor_node_affinity, c.honor_node_taints) == (3, 4, False, True)
    soft = pod_spread_constraints(spread_pod(constraint(whenUnsatisfiable="ScheduleAnyway")))
    assert not soft[0].hard


def test_match_label_keys_add_the_pods_own_values_and_skip_keys_it_lacks() -> None:
    (c,) = pod_spread_constraints(spread_pod(constraint(matchLabelKeys=["rev", "missing"])))
    assert c.selector == Requirements.from_labels({"app": "web", "rev": "2"})
    assert not c.selects({"app": "web", "rev": "1"})


def test_a_null_selector_selects_no_pod() -> None:
    (c,) = pod_spread_constraints(spread_pod(constraint(labelSelector=None)))
    assert c.selector is None
    assert not c.selects({"app": "web"})


def test_no_constraints() -> None:
    assert pod_spread_constraints({"spec": {}}) == ()
    assert pod_spread_constraints({}) == ()


@pytest.mark.parametrize(
    ("bad", "path"),
    [
        (constraint(maxSkew=0), "spec.topologySpreadConstraints[0].maxSkew"),
        (constraint(maxSkew=True), "spec.topologySpreadConstraints[0].maxSkew"),
        (constraint(topologyKey=""), "spec.topologySpreadConstraints[0].topologyKey"),
        (constraint(topologyKey="bad key!"), "spec.topologySpreadConstraints[0].topologyKey"),
        (constraint(whenUnsatisfiable=None), "spec.topologySpreadConstraints[0].whenUnsatisfiable"),
        (constraint(nodeTaintsPolicy="Sometimes"), "spec.topologySpreadConstraints[0].nodeTaintsPolicy"),
        (
            constraint(whenUnsatisfiable="ScheduleAnyway", minDomains=2),
            "spec.topologySpreadConstraints[0].minDomains",
        ),
        (constraint(minDomains=0), "spec.topologySpreadConstraints[0].minDomains"),
        (
            constraint(labelSelector=None, matchLabelKeys=["app"]),
            "spec.topologySpreadConstraints[0].matchLabelKeys",
        ),
        (constraint(matchLabelKeys=["app"]), "spec.topologySpreadConstraints[0].matchLabelKeys"),
        ("not an object", "spec.topologySpreadConstraints[0]"),
    ],
)
def test_what_the_api_server_refuses_is_refused_by_path(bad: Any, path: str) -> None:
    with pytest.raises(FieldError) as info:
        pod_spread_constraints(spread_pod(bad))
    assert info.value.path == path


def test_duplicate_key_and_action_is_refused() -> None:
    with pytest.raises(FieldError, match="duplicate"):
        pod_spread_constraints(spread_pod(constraint(), constraint(maxSkew=2)))
    assert (
        len(pod_spread_constraints(spread_pod(constraint(), constraint(whenUnsatisfiable="ScheduleAnyway"))))
        == 2
    )


CONSTRAINTS = st.builds(
    SpreadConstraint,
    topology_key=st.sampled_from([ZONE, "kubernetes.io/hostname", "example.com/rack"]),
    max_skew=st.integers(1, 10),
    hard=st.booleans(),
    selector=st.none()
    | st.dictionaries(st.sampled_from(["app", "tier"]), st.text(min_size=1, max_size=4)).map(
        Requirements.from_labels
    ),
    min_domains=st.integers(1, 5),
    honor_node_affinity=st.booleans(),
    honor_node_taints=st.booleans(),
)


@given(CONSTRAINTS)
def test_the_wire_form_reads_back_equal(c: SpreadConstraint) -> None:
    assert SpreadConstraint.from_wire(c.to_wire(), "c") == c
