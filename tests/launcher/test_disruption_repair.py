"""Pure node repair: policies, per-pool opt-in, toleration durations and the 20% rule."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from launcher.config import LauncherConfig, RepairSettings
from launcher.disruption.mark import EXPIRED, UNDERUTILIZED, Mark
from launcher.disruption.repair import (
    UNHEALTHY,
    NodeCondition,
    NodeHealth,
    decide_repairs,
    node_health,
    repair_actions,
    repair_enabled,
    unhealthy,
    unhealthy_limit,
)
from launcher.disruption.repairer import NodeRepairSettings
from launcher.disruption.repairpolicy import DEFAULT_POLICIES, RepairPolicy, parse_policies
from shared.api.nodepool import REPAIR_DISABLED, REPAIR_ENABLED, NodePool
from shared.config import load_config
from shared.errors import ValidationError
from tests.launcher.test_disruption_decisions import NOW, TYPES, demand, node, pod, snap

POLICIES = parse_policies({"Ready:False": 1800, "Ready:Unknown": 1800, "DiskPressure:True": 600}, "policies")
HALF_HOUR = timedelta(minutes=30)


def health(
    name: str,
    *conditions: tuple[str, str, timedelta | None],
    pool_name: str | None = "default",
    **kwargs: Any,
) -> NodeHealth:
    """A node whose conditions are (type, status, how long ago they turned so)."""
    return NodeHealth(
        name=name,
        nodeclaim=f"claim-{name}" if pool_name else None,
        nodepool=pool_name,
        conditions=tuple(
            NodeCondition(kind, status, NOW - ago if ago is not None else None)
            for kind, status, ago in conditions
        ),
        created=NOW - timedelta(days=1),
        **kwargs,
    )


def healthy(name: str, **kwargs: Any) -> NodeHealth:
    return health(name, ("Ready", "True", timedelta(days=1)), **kwargs)


def not_ready(
    name: str, ago: timedelta = timedelta(hours=1), status: str = "False", **kwargs: Any
) -> NodeHealth:
    return health(name, ("Ready", status, ago), **kwargs)


def decide(*nodes: NodeHealth, enabled: bool = True, percent: int = 20, **kwargs: Any) -> Any:
    return decide_repairs(
        nodes,
        enabled=kwargs.pop("pools", lambda _: enabled),
        policies=POLICIES,
        now=NOW,
        max_unhealthy_percent=percent,
        **kwargs,
    )


def repaired(decisions: Any) -> list[str]:
    return [r.node for r in decisions.repairs]


# Policies ----------------------------------------------------------------------------------


def test_policies_parse_sorted_with_their_tolerations() -> None:
    assert [(p.condition, p.status, p.toleration) for p in POLICIES] == [
        ("DiskPressure", "True", timedelta(minutes=10)),
        ("Ready", "False", HALF_HOUR),
        ("Ready", "Unknown", HALF_HOUR),
    ]


def test_default_policies_are_karpenters_aws_ones() -> None:
    defaults = {(p.condition, p.status): p.toleration for p in parse_policies(DEFAULT_POLICIES, "p")}
    assert defaults[("Ready", "False")] == defaults[("Ready", "Unknown")] == HALF_HOUR
    assert defaults[("AcceleratedHardwareReady", "False")] == timedelta(minutes=10)
    assert len(defaults) == 7


@pytest.mark.parametrize(
    ("key", "seconds", "problem"),
    [
        ("Ready", 60.0, "expected ConditionType:Status"),
        (":False", 60.0, "expected ConditionType:Status"),
        ("Ready:Maybe", 60.0, "status 'Maybe' must be one of True, False, Unknown"),
        ("Ready:False", -1.0, "toleration must be a duration of 0s or more"),
    ],
)
def test_bad_policies_name_the_entry(key: str, seconds: float, problem: str) -> None:
    with pytest.raises(ValidationError) as raised:
        parse_policies({"Ready:Unknown": 60.0, key: seconds}, "repair.policies")
    (error,) = raised.value.errors
    assert error.path == f"repair.policies.{key}"
    assert problem in error.message


def test_config_reads_policies_from_yaml_and_env_and_rejects_bad_ones(tmp_path: Any) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        'repair:\n  enabled: true\n  policies:\n    "DiskPressure:True": 5m\n  replacement_wait: 2m\n'
    )
    config = load_config(LauncherConfig, path, env={}, env_prefix="X_")
    assert config.repair == RepairSettings(
        enabled=True, policies={"DiskPressure:True": 300.0}, replacement_wait=120.0
    )
    settings_ = NodeRepairSettings.from_config(config.repair)
    assert settings_.policies == (RepairPolicy("DiskPressure", "True", timedelta(minutes=5)),)
    assert settings_.replacement_wait == timedelta(minutes=2)
    env = load_config(LauncherConfig, env={"X_REPAIR_POLICIES": "Ready:Unknown=90s"}, env_prefix="X_")
    assert env.repair.policies == {"Ready:Unknown": 90.0}
    assert env.repair.enabled is False  # opt-in
    with pytest.raises(ValidationError, match=r"policies\.Ready:Sick"):
        load_config(LauncherConfig, env={"X_REPAIR_POLICIES": "Ready:Sick=90s"}, env_prefix="X_")
    with pytest.raises(ValidationError, match="max_unhealthy_percent"):
        load_config(LauncherConfig, env={"X_REPAIR_MAX_UNHEALTHY_PERCENT": "101"}, env_prefix="X_")


# Opt-in -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pool_setting", "default", "expected"),
    [
        (None, False, False),
        (None, True, True),
        (REPAIR_ENABLED, False, True),
        (REPAIR_ENABLED, True, True),
        (REPAIR_DISABLED, False, False),
        (REPAIR_DISABLED, True, False),
    ],
)
def test_the_pool_setting_wins_over_the_launcher_default(
    pool_setting: str | None, default: bool, expected: bool
) -> None:
    assert repair_enabled(pool_setting, default) is expected


def nodepool(disruption: dict[str, Any]) -> dict[str, Any]:
    ref = {"group": "jitnode.io", "kind": "EC2NodeClass", "name": "default"}
    return {
        "apiVersion": "jitnode.io/v1",
        "kind": "NodePool",
        "metadata": {"name": "p"},
        "spec": {"template": {"spec": {"nodeClassRef": ref}}, "disruption": disruption},
    }


def test_nodepool_repair_field_parses_round_trips_and_is_validated() -> None:
    assert NodePool.from_api(nodepool({})).disruption.repair is None
    parsed = NodePool.from_api(nodepool({"repair": "Enabled"}))
    assert parsed.disruption.repair == REPAIR_ENABLED
    assert NodePool.from_api(parsed.to_api()) == parsed
    assert "repair" not in NodePool.from_api(nodepool({})).to_api()["spec"]["disruption"]
    with pytest.raises(ValidationError) as raised:
        NodePool.from_api(nodepool({"repair": "Sometimes"}))
    assert [e.path for e in raised.value.errors] == ["spec.disruption.repair"]


def test_disabled_pools_are_not_looked_at() -> None:
    decisions = decide(not_ready("a"), not_ready("b", pool_name="other"), pools=lambda p: p == "other")
    assert repaired(decisions) == ["b"]
    assert not decisions.blocked


def test_foreign_nodes_are_never_repaired() -> None:
    assert repaired(decide(not_ready("foreign", pool_name=None))) == []


# Durations --------------------------------------------------------------------------------


def test_node_not_ready_past_the_toleration_is_repaired_with_a_message() -> None:
    (repair,) = decide(not_ready("a", ago=timedelta(minutes=31))).repairs
    assert (repair.node, repair.nodeclaim, repair.nodepool) == ("a", "claim-a", "default")
    assert (repair.condition, repair.status, repair.toleration) == ("Ready", "False", HALF_HOUR)
    assert repair.message == "Ready has been False since 2025-01-01T11:29:00Z, longer than 30m"


@pytest.mark.parametrize("status", ["False", "Unknown"])
@pytest.mark.parametrize(
    ("ago", "due"), [(timedelta(minutes=29), False), (HALF_HOUR, True), (timedelta(hours=5), True)]
)
def test_repair_waits_for_the_whole_toleration(status: str, ago: timedelta, due: bool) -> None:
    decisions = decide(not_ready("a", ago=ago, status=status))
    assert repaired(decisions) == (["a"] if due else [])
    assert decisions.recheck_at == (None if due else NOW - ago + HALF_HOUR)


def test_healthy_conditions_and_unlisted_ones_do_not_count() -> None:
    node_ = health("a", ("Ready", "True", timedelta(hours=2)), ("MemoryPressure", "True", timedelta(hours=2)))
    decisions = decide(node_)
    assert repaired(decisions) == []
    assert decisions.recheck_at is None


def test_of_several_matching_policies_the_one_due_first_names_the_repair() -> None:
    node_ = health(
        "a", ("Ready", "False", timedelta(minutes=20)), ("DiskPressure", "True", timedelta(minutes=11))
    )
    (repair,) = decide(node_).repairs
    assert (repair.condition, repair.status) == ("DiskPressure", "True")
    found = unhealthy(node_, POLICIES)
    assert found is not None
    assert found.due == NOW - timedelta(minutes=1)


def test_without_a_transition_time_the_clock_starts_at_the_nodes_creation() -> None:
    young = replace(health("a", ("Ready", "Unknown", None)), created=NOW - timedelta(minutes=5))
    old = replace(health("b", ("Ready", "Unknown", None)), created=NOW - timedelta(hours=2))
    unknown_age = replace(health("c", ("Ready", "Unknown", None)), created=None)
    decisions = decide(young, old, unknown_age, *(healthy(f"h{i}") for i in range(12)))
    assert repaired(decisions) == ["b"]
    assert decisions.recheck_at == NOW + timedelta(minutes=25)


# In progress ------------------------------------------------------------------------------


def test_nodes_already_going_are_left_to_it() -> None:
    being_repaired = not_ready("a", mark=Mark(UNHEALTHY, NOW, (), NOW + HALF_HOUR))
    interrupted = not_ready("b", mark=Mark("Interrupted", NOW, (), NOW + timedelta(minutes=2)))
    deleting = not_ready("c", deleting=True)
    others = [healthy(f"h{i}") for i in range(12)]
    assert repaired(decide(being_repaired, interrupted, deleting, *others)) == []


def test_a_voluntary_or_expiry_disruption_without_deadline_is_taken_over() -> None:
    stuck = not_ready("a", mark=Mark(UNDERUTILIZED, NOW - timedelta(hours=2)))
    expired = not_ready("b", mark=Mark(EXPIRED, NOW - timedelta(hours=2)))
    assert repaired(decide(stuck, expired, *(healthy(f"h{i}") for i in range(8)))) == ["a", "b"]


# The 20% rule -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "sick", "repairs"),
    [(1, 1, 1), (3, 1, 1), (5, 1, 1), (5, 2, 0), (10, 2, 2), (10, 3, 0), (6, 2, 2), (11, 3, 3), (11, 4, 0)],
)
def test_no_repair_when_more_than_20_percent_of_the_pool_is_unhealthy(
    total: int, sick: int, repairs: int
) -> None:
    nodes = [not_ready(f"s{i}") for i in range(sick)] + [healthy(f"h{i}") for i in range(total - sick)]
    decisions = decide(*nodes)
    assert len(decisions.repairs) == repairs
    if not repairs:
        assert set(decisions.blocked) == {f"s{i}" for i in range(sick)}
        assert f"{sick} of {total} nodes of nodepool default are unhealthy" in decisions.blocked["s0"]


def test_nodes_not_yet_due_and_nodes_going_count_as_unhealthy() -> None:
    # 2 of 5 unhealthy: one due, one only for a minute; the due one waits.
    nodes = [not_ready("a"), not_ready("b", ago=timedelta(minutes=1))] + [healthy(f"h{i}") for i in range(3)]
    assert repaired(decide(*nodes)) == []
    # The first repair's node still counts until it is gone: a second one waits too.
    nodes = [not_ready("a", mark=Mark(UNHEALTHY, NOW, (), NOW + HALF_HOUR)), not_ready("b")] + [
        healthy(f"h{i}") for i in range(3)
    ]
    assert repaired(decide(*nodes)) == []


def test_the_rule_applies_per_nodepool() -> None:
    sick_pool = [not_ready(f"a{i}", pool_name="a") for i in range(2)] + [
        healthy(f"ah{i}", pool_name="a") for i in range(3)
    ]
    fine_pool = [not_ready("b0", pool_name="b")] + [healthy(f"bh{i}", pool_name="b") for i in range(4)]
    decisions = decide(*sick_pool, *fine_pool)
    assert repaired(decisions) == ["b0"]
    assert set(decisions.blocked) == {"a0", "a1"}


def test_percent_is_configurable() -> None:
    nodes = [not_ready("a"), not_ready("b")] + [healthy(f"h{i}") for i in range(3)]
    assert repaired(decide(*nodes, percent=40)) == ["a", "b"]
    assert repaired(decide(*nodes, percent=0)) == []


@settings(max_examples=200, deadline=None)
@given(
    pools=st.lists(
        st.tuples(st.integers(0, 12), st.lists(st.integers(0, 120), max_size=12)), min_size=1, max_size=3
    ),
    percent=st.integers(0, 100),
)
def test_repairs_respect_the_threshold_and_the_toleration(
    pools: list[tuple[int, list[int]]], percent: int
) -> None:
    nodes: list[NodeHealth] = []
    for p, (well, sick_minutes) in enumerate(pools):
        nodes += [healthy(f"p{p}-h{i}", pool_name=f"p{p}") for i in range(well)]
        nodes += [
            not_ready(f"p{p}-s{i}", ago=timedelta(minutes=m), pool_name=f"p{p}")
            for i, m in enumerate(sick_minutes)
        ]
    decisions = decide(*nodes, percent=percent)
    for p, (well, sick_minutes) in enumerate(pools):
        total, sick = well + len(sick_minutes), len(sick_minutes)
        mine = [r for r in decisions.repairs if r.nodepool == f"p{p}"]
        due = sum(1 for m in sick_minutes if m >= 30)
        if sick > math.ceil(total * percent / 100):
            assert not mine
        else:
            assert len(mine) == due
        assert all(NOW - r.since >= HALF_HOUR for r in mine)
    later = decide_repairs(
        nodes,
        enabled=lambda _: True,
        policies=POLICIES,
        now=NOW + timedelta(hours=1),
        max_unhealthy_percent=percent,
    )
    assert set(repaired(decisions)) <= set(repaired(later))  # time only adds repairs


def test_unhealthy_limit_rounds_up() -> None:
    assert [unhealthy_limit(n, 20) for n in (0, 1, 4, 5, 6, 10, 11)] == [0, 1, 1, 1, 2, 2, 3]


# Reading a Node ---------------------------------------------------------------------------


def test_node_health_reads_conditions_with_their_transition_times() -> None:
    raw = {
        "metadata": {"name": "n1", "creationTimestamp": "2025-01-01T10:00:00Z"},
        "status": {
            "conditions": [
                {"type": "Ready", "status": "Unknown", "lastTransitionTime": "2025-01-01T11:00:00Z"},
                {"type": "DiskPressure", "status": "True", "lastTransitionTime": "yesterday"},
                {"status": "True"},
            ]
        },
    }
    read = node_health(raw, nodeclaim="c1", nodepool="default")
    assert read.conditions == (
        NodeCondition("Ready", "Unknown", NOW - timedelta(hours=1)),
        NodeCondition("DiskPressure", "True", None),
    )
    assert read.created == NOW - timedelta(hours=2)
    assert read.managed
    assert not read.deleting
    assert node_health(
        {"metadata": {"name": "x", "deletionTimestamp": "2025-01-01T11:00:00Z"}},
        nodeclaim=None,
        nodepool=None,
    ).deleting


# Actions ----------------------------------------------------------------------------------


def _repairs(*names: str) -> Any:
    return decide(*(not_ready(n) for n in names), percent=100).repairs


def test_pods_that_fit_elsewhere_need_no_replacement() -> None:
    s = snap(node("sick", pod("p1"), schedulable=False), node("other"))
    (action,) = repair_actions(_repairs("sick"), s)
    assert (action.node, action.reason, action.replacements) == ("sick", UNHEALTHY, ())
    assert action.message.endswith("its pods fit on other nodes")


def test_pods_that_fit_nowhere_get_replacements_and_pending_pods_come_first() -> None:
    s = snap(
        node("sick", pod("p1", 3000), pod("p2", 3000), schedulable=False),
        node("other", cpu=4),
        pending=[demand("waiting", 3500)],
    )
    (action,) = repair_actions(_repairs("sick"), s)
    assert len(action.replacements) == 1
    assert set(action.replacements[0].pods) == {"p1", "p2"}
    assert "1 replacement(s) for 2 pods" in action.message


def test_repaired_unschedulable_and_busy_nodes_are_no_destinations() -> None:
    s = snap(
        node("sick-a", pod("a1", 6000), schedulable=False),
        node("sick-b", pod("b1", 6000), schedulable=False),
        node("cordoned", schedulable=False),
        node("busy"),
    )
    actions = repair_actions(_repairs("sick-a", "sick-b", "busy"), s, busy={"busy"})
    assert [a.node for a in actions] == ["sick-a", "sick-b"]
    assert all(len(a.replacements) == 1 for a in actions)


def test_a_node_already_disrupted_keeps_its_replacements() -> None:
    s = snap(node("sick", pod("p1", 7000), schedulable=False, mark=Mark(UNDERUTILIZED, NOW)))
    (action,) = repair_actions(_repairs("sick"), s)
    assert action.replacements == ()
    assert TYPES  # the catalogue was there to plan with
