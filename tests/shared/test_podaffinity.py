"""Which pods may not share a node, and which carry constraints the simulations do not model."""

from __future__ import annotations

from typing import Any

import pytest

from shared.demand import PodDemand
from shared.errors import FieldError, ValidationError
from shared.podaffinity import exclusive_group, hard_inter_pod_constraint, label_selector

HOSTNAME = "kubernetes.io/hostname"


def exclusive_key(pod: dict[str, Any]) -> str | None:
    group = exclusive_group(pod)
    return group.key if group else None


def exclusive_per_zone(pod: dict[str, Any]) -> bool:
    group = exclusive_group(pod)
    return group is not None and group.per_zone


def replica(
    name: str,
    *,
    namespace: str = "shop",
    labels: dict[str, str] | None = None,
    anti: list[dict[str, Any]] | None = None,
    affinity: dict[str, Any] | None = None,
    spread: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "x"}]}
    if anti is not None:
        spec["affinity"] = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": anti}}
    if affinity is not None:
        spec["affinity"] = affinity
    if spread is not None:
        spec["topologySpreadConstraints"] = spread
    return {
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}", "labels": labels or {}},
        "spec": spec,
    }


def term(selector: dict[str, Any] | None, key: str = HOSTNAME, **extra: Any) -> dict[str, Any]:
    return {"labelSelector": selector, "topologyKey": key, **extra}


WEB = {"app": "web", "tier": "front"}


def test_replicas_that_select_themselves_share_one_key() -> None:
    anti = [term({"matchLabels": {"app": "web"}})]
    a = exclusive_key(replica("web-a", labels=WEB, anti=anti))
    b = exclusive_key(replica("web-b", labels=WEB, anti=anti))
    assert a is not None
    assert a == b
    # Another namespace, or another term, is another group.
    assert exclusive_key(replica("web-c", namespace="other", labels=WEB, anti=anti)) not in (None, a)
    zonal = [term({"matchLabels": {"app": "web"}}, key="topology.kubernetes.io/zone")]
    assert exclusive_key(replica("web-d", labels=WEB, anti=zonal)) not in (None, a)


def test_a_zone_term_that_selects_the_pod_keeps_its_replicas_a_zone_apart() -> None:
    zone = "topology.kubernetes.io/zone"
    own = {"matchLabels": {"app": "web"}}
    assert exclusive_per_zone(replica("a", labels=WEB, anti=[term(own, key=zone)]))
    assert exclusive_per_zone(replica("b", labels=WEB, anti=[term(own), term(own, key=zone)]))
    assert not exclusive_per_zone(replica("c", labels=WEB, anti=[term(own)]))
    # A zone term against another workload keeps nothing of its own apart.
    assert not exclusive_per_zone(
        replica("d", labels=WEB, anti=[term(own), term({"matchLabels": {"x": "y"}}, key=zone)])
    )
    demand = PodDemand.from_pod(replica("e", labels=WEB, anti=[term(own, key=zone)]), "unschedulable", 0.0)
    assert demand.exclusive_zone
    assert demand.to_wire()["exclusiveZone"] is True
    assert PodDemand.from_wire(demand.to_wire()) == demand


@pytest.mark.parametrize(
    "anti",
    [
        [term({"matchLabels": {"app": "db"}})],  # repels another workload only
        [term(None)],  # a null selector matches no pod
        [term({"matchLabels": {"app": "web"}}, namespaces=["elsewhere"])],  # not its namespace
        [term({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]})],
        [],
    ],
    ids=["other-workload", "null-selector", "other-namespace", "not-in-self", "no-terms"],
)
def test_terms_that_do_not_select_the_pod_itself_give_no_key(anti: list[dict[str, Any]]) -> None:
    assert exclusive_key(replica("web-a", labels=WEB, anti=anti)) is None


@pytest.mark.parametrize(
    "selector_or_scope",
    [
        {"labelSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "x"]}]}},
        {"labelSelector": {"matchExpressions": [{"key": "tier", "operator": "Exists"}]}},
        {"labelSelector": {}},  # an empty selector matches every pod
        {"labelSelector": {"matchLabels": {"app": "web"}}, "namespaces": ["shop"]},
        {"labelSelector": {"matchLabels": {"app": "web"}}, "namespaceSelector": {}},
    ],
)
def test_selectors_and_scopes_that_select_the_pod_itself_give_a_key(
    selector_or_scope: dict[str, Any],
) -> None:
    assert exclusive_key(replica("web-a", labels=WEB, anti=[{"topologyKey": HOSTNAME, **selector_or_scope}]))


def test_label_selector_matches_like_the_api() -> None:
    selector = label_selector(
        {
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "canary", "operator": "DoesNotExist"}],
        },
        "s",
    )
    assert selector is not None
    assert selector.matches({"app": "web"})
    assert not selector.matches({"app": "web", "canary": "true"})
    assert not selector.matches({"app": "db"})
    assert label_selector(None, "s") is None


def test_malformed_terms_name_the_field() -> None:
    with pytest.raises(FieldError, match="labelSelector"):
        exclusive_key(replica("web-a", labels=WEB, anti=[term({"matchLabels": ["app"]})]))
    not_a_term: Any = "not-a-term"
    with pytest.raises(ValidationError):
        PodDemand.from_pod(replica("web-a", labels=WEB, anti=[not_a_term]), "unschedulable", 0.0)


def test_demand_carries_the_key_across_the_wire() -> None:
    pod = replica("web-a", labels=WEB, anti=[term({"matchLabels": {"app": "web"}})])
    demand = PodDemand.from_pod(pod, "unschedulable", 1.0)
    assert demand.exclusive == exclusive_key(pod)
    assert PodDemand.from_wire(demand.to_wire()) == demand
    assert "exclusive" not in PodDemand.from_pod(replica("plain"), "unschedulable", 1.0).to_wire()


@pytest.mark.parametrize(
    ("pod", "expected"),
    [
        (replica("a", anti=[term({"matchLabels": {"app": "db"}})]), "required podAntiAffinity"),
        (
            replica(
                "b",
                affinity={
                    "podAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": [term({"matchLabels": {}})]
                    }
                },
            ),
            "required podAffinity",
        ),
        (
            replica(
                "c", spread=[{"maxSkew": 1, "topologyKey": HOSTNAME, "whenUnsatisfiable": "DoNotSchedule"}]
            ),
            f"a DoNotSchedule topology spread on {HOSTNAME}",
        ),
        (
            replica(
                "d", spread=[{"maxSkew": 1, "topologyKey": HOSTNAME, "whenUnsatisfiable": "ScheduleAnyway"}]
            ),
            None,
        ),
        (
            replica(
                "e",
                affinity={
                    "podAntiAffinity": {
                        "preferredDuringSchedulingIgnoredDuringExecution": [
                            {"weight": 1, "podAffinityTerm": term({"matchLabels": {}})}
                        ]
                    }
                },
            ),
            None,
        ),
        (replica("f"), None),
    ],
    ids=["anti-affinity", "affinity", "hard-spread", "soft-spread", "preferred-only", "none"],
)
def test_hard_inter_pod_constraints_are_named(pod: dict[str, Any], expected: str | None) -> None:
    assert hard_inter_pod_constraint(pod) == expected
