"""PodTopologySpread on parsed facts: filter and score against hand-computed upstream results.

Each expected value is worked out from the plugin's rules (podtopologyspread in kubernetes
v1.32): filter ``count + self - global minimum <= maxSkew``; score
``round(count * log(size + 2) + maxSkew - 1)`` summed over constraints, then reversed onto 0..100
as ``100 * (max + min - s) // max``. The arithmetic is written out next to each case.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aioboto3
import pytest
import yaml
from kubernetes_asyncio import client

from localcluster.apiserver.testing import running_apiserver
from localcluster.cluster import LocalCluster
from localcluster.ec2 import MotoEC2
from localcluster.kubelet import KubeletConfig
from localcluster.scheduler import Scheduler, load_scheduler_config
from localcluster.scheduler.cache import ClusterCache, NodeInfo, PodUsage
from localcluster.scheduler.config import (
    DEFAULT_SCORE_WEIGHTS,
    POD_TOPOLOGY_SPREAD,
    SYSTEM_SPREAD_ARGS,
    Scoring,
    SpreadArgs,
    parse_spread_args,
)
from localcluster.scheduler.filters import (
    REASON_NODE_AFFINITY,
    NodeStatus,
    run_filters,
    untolerated_taint_reason,
)
from localcluster.scheduler.model import pod_facts
from localcluster.scheduler.scoring import plugin_scores
from localcluster.scheduler.testing import node, pod, wait_for
from localcluster.scheduler.topologyspread import (
    NO_SPREAD,
    REASON_SPREAD,
    REASON_SPREAD_LABEL,
    constraints_for,
    spread_filter_state,
    spread_score_state,
    spread_scores,
    waits_for,
)
from localcluster.scheduler.workloads import REPLICA_SET, ControllerRef, WorkloadSelectors
from shared import labels
from shared.errors import FieldError
from shared.requirements import Requirements
from shared.taints import Taint
from shared.topologyspread import SpreadConstraint

HOST = "kubernetes.io/hostname"
ZONE = "topology.kubernetes.io/zone"
WEB = {"app": "web"}
SKEW = NodeStatus((REASON_SPREAD,), resolvable=True)
LABEL = NodeStatus((REASON_SPREAD_LABEL,), resolvable=False)
AFFINITY = NodeStatus((REASON_NODE_AFFINITY,), resolvable=False)
TAINT = {"key": "dedicated", "value": "db", "effect": "NoSchedule"}
UNTOLERATED = NodeStatus(
    (untolerated_taint_reason(Taint(key="dedicated", value="db", effect="NoSchedule")),), resolvable=False
)
_UNSET: Any = object()


def spread(
    key: str = ZONE, max_skew: int = 1, when: str = "DoNotSchedule", selector: Any = _UNSET, **extra: Any
) -> dict[str, Any]:
    """A TopologySpreadConstraint selecting ``app=web`` unless ``selector`` says otherwise
    (None: no labelSelector)."""
    out: dict[str, Any] = {"topologyKey": key, "maxSkew": max_skew, "whenUnsatisfiable": when, **extra}
    chosen = {"matchLabels": WEB} if selector is _UNSET else selector
    if chosen is not None:
        out["labelSelector"] = chosen
    return out


def zoned(name: str, zone: str | None, **kwargs: Any) -> dict[str, Any]:
    labels = {**kwargs.pop("labels", {}), **({ZONE: zone} if zone else {})}
    return node(name, labels=labels, **kwargs)


def webs(count: int, prefix: str, **kwargs: Any) -> list[dict[str, Any]]:
    return [pod(f"{prefix}-{i}", labels=kwargs.pop("labels", WEB), **kwargs) for i in range(count)]


def owned(raw: dict[str, Any], kind: tuple[str, str] = REPLICA_SET, name: str = "web-abc") -> dict[str, Any]:
    raw["metadata"]["ownerReferences"] = [
        {"apiVersion": kind[0], "kind": kind[1], "name": name, "uid": "u", "controller": True}
    ]
    return raw


def cluster(nodes: Sequence[dict[str, Any]], placed: Mapping[str, Sequence[dict[str, Any]]]) -> ClusterCache:
    cache = ClusterCache()
    for raw in nodes:
        cache.set_node(raw)
    for node_name, pods in placed.items():
        for p in pods:
            p["metadata"]["uid"] = f"uid-{p['metadata']['namespace']}-{p['metadata']['name']}-{node_name}"
            cache.add_pod(node_name, PodUsage.of(pod_facts(p)))
    return cache


# Three zones: z1 holds two web pods (on a1), z2 one (on b1), z3 none.
ZONES = [zoned("a1", "z1"), zoned("a2", "z1"), zoned("b1", "z2"), zoned("c1", "z3")]


def two_one_zero() -> dict[str, list[dict[str, Any]]]:
    return {"a1": webs(2, "a"), "b1": webs(1, "b")}


def rs_workloads(selector: Mapping[str, str] = WEB) -> WorkloadSelectors:
    workloads = WorkloadSelectors()
    rs = {
        "metadata": {"namespace": "default", "name": "web-abc"},
        "spec": {"selector": {"matchLabels": selector}},
    }
    workloads.set_controller(REPLICA_SET, rs)
    return workloads


def terminating(raw: dict[str, Any]) -> dict[str, Any]:
    raw["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return raw


Z1_OR_Z2 = {
    "nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [
                {"matchExpressions": [{"key": ZONE, "operator": "In", "values": ["z1", "z2"]}]}
            ]
        }
    }
}
LIST_ZONE_HARD = SpreadArgs((SpreadConstraint(ZONE, 1, hard=True),), system_defaulted=False)


@dataclass
class FilterCase:
    id: str
    incoming: dict[str, Any]
    expected: dict[str, NodeStatus | None]
    nodes: list[dict[str, Any]] = field(default_factory=lambda: ZONES)
    placed: dict[str, list[dict[str, Any]]] = field(default_factory=two_one_zero)
    args: SpreadArgs = SYSTEM_SPREAD_ARGS
    workloads: WorkloadSelectors | None = None


FILTER_CASES = [
    # counts z1=2 z2=1 z3=0, min 0: a 2+1=3, b 1+1=2 > 1; c 0+1=1.
    FilterCase(
        "zone-maxskew-1",
        pod("p", labels=WEB, topology_spread=[spread()]),
        {"a1": SKEW, "a2": SKEW, "b1": SKEW, "c1": None},
    ),
    # maxSkew 2: b 2 <= 2.
    FilterCase(
        "zone-maxskew-2",
        pod("p", labels=WEB, topology_spread=[spread(max_skew=2)]),
        {"a1": SKEW, "a2": SKEW, "b1": None, "c1": None},
    ),
    # The pod does not match its own selector: self 0, so a 2 > 1, b 1.
    FilterCase(
        "no-self-match",
        pod("p", labels={"app": "api"}, topology_spread=[spread()]),
        {"a1": SKEW, "a2": SKEW, "b1": None, "c1": None},
    ),
    # Hostname domains n1=1 n2=0 n3=0: n1 1+1-0=2.
    FilterCase(
        "hostname",
        pod("p", labels=WEB, topology_spread=[spread(HOST)]),
        {"n1": SKEW, "n2": None, "n3": None},
        nodes=[node("n1"), node("n2"), node("n3")],
        placed={"n1": webs(1, "n")},
    ),
    # Two domains with one pod each; minDomains 3 > 2 domains: min taken as 0, so 1+1-0=2.
    FilterCase(
        "min-domains-unmet",
        pod("p", labels=WEB, topology_spread=[spread(minDomains=3)]),
        {"a1": SKEW, "b1": SKEW},
        nodes=[zoned("a1", "z1"), zoned("b1", "z2")],
        placed={"a1": webs(1, "a"), "b1": webs(1, "b")},
    ),
    # minDomains 2 met: min 1, 1+1-1=1.
    FilterCase(
        "min-domains-met",
        pod("p", labels=WEB, topology_spread=[spread(minDomains=2)]),
        {"a1": None, "b1": None},
        nodes=[zoned("a1", "z1"), zoned("b1", "z2")],
        placed={"a1": webs(1, "a"), "b1": webs(1, "b")},
    ),
    # x lacks the zone: unresolvable, and its pods count nowhere (z1=1 z2=1, min 1).
    FilterCase(
        "node-without-the-key",
        pod("p", labels=WEB, topology_spread=[spread()]),
        {"a1": None, "b1": None, "x": LABEL},
        nodes=[zoned("a1", "z1"), zoned("b1", "z2"), zoned("x", None)],
        placed={"a1": webs(1, "a"), "b1": webs(1, "b"), "x": webs(5, "x", cpu="100m")},
    ),
    # x lacks the zone, so it is no hostname domain either: hostname min over a1=1 b1=1 is 1
    # (were x counted, min 0 and a1 2 > 1).
    FilterCase(
        "every-key-or-no-domain",
        pod("p", labels=WEB, topology_spread=[spread(HOST), spread(ZONE, 5)]),
        {"a1": None, "b1": None, "x": LABEL},
        nodes=[zoned("a1", "z1"), zoned("b1", "z2"), zoned("x", None)],
        placed={"a1": webs(1, "a"), "b1": webs(1, "b")},
    ),
    # Zone maxSkew 2 passes everywhere (z1=1 z2=0); hostname a1=1 others 0: a1 1+1=2 > 1.
    FilterCase(
        "zone-and-hostname",
        pod("p", labels=WEB, topology_spread=[spread(ZONE, 2), spread(HOST)]),
        {"a1": SKEW, "a2": None, "b1": None},
        nodes=[zoned("a1", "z1"), zoned("a2", "z1"), zoned("b1", "z2")],
        placed={"a1": webs(1, "a")},
    ),
    # nodeAffinityPolicy Honor (default): z3 is outside the pod's affinity, min over z1=2 z2=1
    # is 1, so b 1+1-1=1 passes; c1 fails NodeAffinity first.
    FilterCase(
        "node-affinity-honor",
        pod(
            "p",
            labels=WEB,
            topology_spread=[spread()],
            affinity=Z1_OR_Z2,
        ),
        {"a1": SKEW, "a2": SKEW, "b1": None, "c1": AFFINITY},
    ),
    # nodeAffinityPolicy Ignore: z3 counts (0), min 0, b 2 > 1.
    FilterCase(
        "node-affinity-ignore",
        pod("p", labels=WEB, topology_spread=[spread(nodeAffinityPolicy="Ignore")], affinity=Z1_OR_Z2),
        {"a1": SKEW, "a2": SKEW, "b1": SKEW, "c1": AFFINITY},
    ),
    # nodeTaintsPolicy Ignore (default): the tainted z3 counts, min 0, b fails.
    FilterCase(
        "node-taints-ignore",
        pod("p", labels=WEB, topology_spread=[spread()]),
        {"a1": SKEW, "a2": SKEW, "b1": SKEW, "c1": UNTOLERATED},
        nodes=[*ZONES[:3], zoned("c1", "z3", taints=[TAINT])],
    ),
    # nodeTaintsPolicy Honor: the untolerated z3 is left out, min 1, b passes.
    FilterCase(
        "node-taints-honor",
        pod("p", labels=WEB, topology_spread=[spread(nodeTaintsPolicy="Honor")]),
        {"a1": SKEW, "a2": SKEW, "b1": None, "c1": UNTOLERATED},
        nodes=[*ZONES[:3], zoned("c1", "z3", taints=[TAINT])],
    ),
    # matchLabelKeys: only revision v2 counts (z2=1), so z1 is free: a 0+1=1, b 1+1=2 > 1.
    FilterCase(
        "match-label-keys",
        pod(
            "p",
            labels={**WEB, "pod-template-hash": "v2"},
            topology_spread=[spread(matchLabelKeys=["pod-template-hash", "absent-key"])],
        ),
        {"a1": None, "a2": None, "b1": SKEW, "c1": None},
        placed={
            "a1": webs(2, "a", labels={**WEB, "pod-template-hash": "v1"}),
            "b1": webs(1, "b", labels={**WEB, "pod-template-hash": "v2"}),
        },
    ),
    # Pods of another namespace and terminating pods do not count: z1=0 z2=1 z3=0.
    FilterCase(
        "namespace-and-terminating",
        pod("p", labels=WEB, topology_spread=[spread()]),
        {"a1": None, "a2": None, "b1": SKEW, "c1": None},
        placed={
            "a1": [*webs(2, "other", namespace="other"), terminating(pod("gone", labels=WEB))],
            "b1": webs(1, "b"),
        },
    ),
    # A null labelSelector selects nothing: every count and the self-match are 0.
    FilterCase(
        "null-selector",
        pod("p", labels=WEB, topology_spread=[spread(selector=None)]),
        {"a1": None, "a2": None, "b1": None, "c1": None},
    ),
    # List defaults: a pod without constraints takes them, selected by its ReplicaSet.
    FilterCase(
        "list-defaults-replicaset",
        owned(pod("p", labels=WEB)),
        {"a1": SKEW, "a2": SKEW, "b1": SKEW, "c1": None},
        args=LIST_ZONE_HARD,
        workloads=rs_workloads(),
    ),
    # ... but only with a selector: a bare pod (nothing selects it) gets no default.
    FilterCase(
        "list-defaults-bare-pod",
        pod("p", labels=WEB),
        {"a1": None, "a2": None, "b1": None, "c1": None},
        args=LIST_ZONE_HARD,
        workloads=rs_workloads(),
    ),
    # ... and a pod with constraints of its own (here only a soft one) uses only those.
    FilterCase(
        "own-constraints-replace-defaults",
        owned(pod("p", labels=WEB, topology_spread=[spread(when="ScheduleAnyway")])),
        {"a1": None, "a2": None, "b1": None, "c1": None},
        args=LIST_ZONE_HARD,
        workloads=rs_workloads(),
    ),
    # The system defaults are ScheduleAnyway only: they never filter.
    FilterCase(
        "system-defaults-never-filter",
        owned(pod("p", labels=WEB)),
        {"a1": None, "a2": None, "b1": None, "c1": None},
        workloads=rs_workloads(),
    ),
]


def filter_all(case: FilterCase) -> dict[str, NodeStatus | None]:
    cache = cluster(case.nodes, case.placed)
    facts = pod_facts(case.incoming)
    hard = constraints_for(facts, hard=True, args=case.args, workloads=case.workloads)
    state = spread_filter_state(facts, hard, cache.nodes())
    return {info.name: run_filters(facts, info, (), None, state) for info in cache.nodes()}


@pytest.mark.parametrize("case", FILTER_CASES, ids=[c.id for c in FILTER_CASES])
def test_filter(case: FilterCase) -> None:
    assert filter_all(case) == case.expected


def test_no_constraint_is_the_skip_state() -> None:
    facts = pod_facts(pod("p", labels=WEB))
    cache = cluster(ZONES, two_one_zero())
    assert spread_filter_state(facts, (), cache.nodes()) is NO_SPREAD
    assert constraints_for(facts, hard=False, args=SYSTEM_SPREAD_ARGS, workloads=None) == ()
    assert all(run_filters(facts, info, (), None, NO_SPREAD) is None for info in cache.nodes())


@dataclass
class ScoreCase:
    id: str
    incoming: dict[str, Any]
    expected: dict[str, int]
    nodes: list[dict[str, Any]] = field(default_factory=lambda: ZONES)
    placed: dict[str, list[dict[str, Any]]] = field(default_factory=two_one_zero)
    feasible: Sequence[str] | None = None
    args: SpreadArgs = SYSTEM_SPREAD_ARGS
    workloads: WorkloadSelectors | None = None


ZONELESS = [zoned("a1", "z1"), zoned("a2", "z1"), zoned("b1", "z2"), zoned("d1", None)]
SOFT_DEFAULTS = [spread(HOST, 3, "ScheduleAnyway"), spread(ZONE, 5, "ScheduleAnyway")]

SCORE_CASES = [
    # Zone size 3, w = ln 5 = 1.609: raw a 2w = 3.22 -> 3, b w -> 2, c 0. min 0, max 3:
    # a 100*(3-3)//3 = 0, b 100*(3-2)//3 = 33, c 100.
    ScoreCase(
        "zone",
        pod("p", labels=WEB, topology_spread=[spread(when="ScheduleAnyway")]),
        {"a1": 0, "a2": 0, "b1": 33, "c1": 100},
    ),
    # Hostname over 4 feasible nodes, w = ln 6 = 1.792: a1 3.58 -> 4, b1 1.79 -> 2, others 0.
    ScoreCase(
        "hostname",
        pod("p", labels=WEB, topology_spread=[spread(HOST, when="ScheduleAnyway")]),
        {"a1": 0, "a2": 100, "b1": 50, "c1": 100},
    ),
    # maxSkew 3 adds 2: a 5.22 -> 5, b 3.61 -> 4, c 2. min 2, max 5: 100*(7-s)//5.
    ScoreCase(
        "max-skew-minus-one",
        pod("p", labels=WEB, topology_spread=[spread(max_skew=3, when="ScheduleAnyway")]),
        {"a1": 40, "a2": 40, "b1": 60, "c1": 100},
    ),
    # Only b1 and c1 feasible: size 2, w = ln 4 = 1.386: b 1.39 -> 1, c 0.
    ScoreCase(
        "feasible-subset",
        pod("p", labels=WEB, topology_spread=[spread(when="ScheduleAnyway")]),
        {"b1": 0, "c1": 100},
        feasible=["b1", "c1"],
    ),
    # No matching pod anywhere: every raw score 0, max 0, all 100.
    ScoreCase(
        "all-empty",
        pod("p", labels=WEB, topology_spread=[spread(when="ScheduleAnyway")]),
        {"a1": 100, "a2": 100, "b1": 100, "c1": 100},
        placed={},
    ),
    # System defaults (hostname 3, zone 5) for a ReplicaSet's pod; d1 has no zone but is still
    # scored. Hostname w = ln 6 = 1.792; zone domains z1, z2 and "" (d1): w = ln 5 = 1.609.
    # a1 2*1.792+2 + 2*1.609+4 = 12.80 -> 13; a2 2 + 7.22 -> 9; b1 3.79 + 5.61 -> 9; d1 2.
    # min 2, max 13: a1 100*2//13 = 15, a2/b1 100*6//13 = 46, d1 100.
    ScoreCase(
        "system-defaults-zoneless-node",
        owned(pod("p", labels=WEB)),
        {"a1": 15, "a2": 46, "b1": 46, "d1": 100},
        nodes=ZONELESS,
        workloads=rs_workloads(),
    ),
    # The same constraints as the pod's own: d1 lacks a key, is ignored and scores 0.
    # Hostname w = ln 5 = 1.609 (3 scored nodes); zone z1, z2: w = ln 4 = 1.386.
    # a1 5.22 + 6.77 = 11.99 -> 12; a2 2 + 6.77 -> 9; b1 3.61 + 5.39 = 9.00 -> 9.
    # min 9, max 12: a1 100*9//12 = 75, a2/b1 100.
    ScoreCase(
        "own-constraints-ignore-zoneless-node",
        pod("p", labels=WEB, topology_spread=SOFT_DEFAULTS),
        {"a1": 75, "a2": 100, "b1": 100, "d1": 0},
        nodes=ZONELESS,
    ),
    # List defaults require every key too (only the system defaults are lenient).
    ScoreCase(
        "list-defaults-ignore-zoneless-node",
        owned(pod("p", labels=WEB)),
        {"a1": 75, "a2": 100, "b1": 100, "d1": 0},
        nodes=ZONELESS,
        args=SpreadArgs(
            (SpreadConstraint(HOST, 3, hard=False), SpreadConstraint(ZONE, 5, hard=False)),
            system_defaulted=False,
        ),
        workloads=rs_workloads(),
    ),
    # A bare pod gets no default: the plugin is skipped (no scores at all).
    ScoreCase("system-defaults-bare-pod", pod("p", labels=WEB), {}, workloads=rs_workloads()),
]

POOLS = [
    zoned("a1", "z1", labels={"pool": "x"}),
    zoned("a2", "z1", labels={"pool": "y"}),
    zoned("b1", "z2", labels={"pool": "x"}),
]
SCORE_CASES += [
    # nodeAffinityPolicy Honor: a2 (pool y) is outside the pod's nodeSelector and its three pods
    # do not count: z1 0, z2 1, w = ln 4: a1 0, b1 1.39 -> 1.
    ScoreCase(
        "node-affinity-honor",
        pod("p", labels=WEB, node_selector={"pool": "x"}, topology_spread=[spread(when="ScheduleAnyway")]),
        {"a1": 100, "b1": 0},
        nodes=POOLS,
        placed={"a2": webs(3, "a"), "b1": webs(1, "b")},
        feasible=["a1", "b1"],
    ),
    # Ignore: z1 3 -> a1 4.16 -> 4, b1 1. min 1, max 4: a1 100*1//4 = 25, b1 100.
    ScoreCase(
        "node-affinity-ignore",
        pod(
            "p",
            labels=WEB,
            node_selector={"pool": "x"},
            topology_spread=[spread(when="ScheduleAnyway", nodeAffinityPolicy="Ignore")],
        ),
        {"a1": 25, "b1": 100},
        nodes=POOLS,
        placed={"a2": webs(3, "a"), "b1": webs(1, "b")},
        feasible=["a1", "b1"],
    ),
]


def score_all(case: ScoreCase) -> dict[str, int]:
    cache = cluster(case.nodes, case.placed)
    nodes = cache.nodes()
    feasible = [i for i in nodes if case.feasible is None or i.name in case.feasible]
    facts = pod_facts(case.incoming)
    soft = constraints_for(facts, hard=False, args=case.args, workloads=case.workloads)
    strict = bool(facts.spread_constraints) or not case.args.system_defaulted
    state = spread_score_state(facts, soft, feasible, nodes, require_all_keys=strict)
    return {} if state is None else spread_scores(feasible, state)


@pytest.mark.parametrize("case", SCORE_CASES, ids=[c.id for c in SCORE_CASES])
def test_score(case: ScoreCase) -> None:
    assert score_all(case) == case.expected


def test_plugin_scores_weighs_the_spread_score() -> None:
    cache = cluster(ZONES, two_one_zero())
    nodes: list[NodeInfo] = cache.nodes()
    facts = pod_facts(pod("p", labels=WEB, topology_spread=[spread(when="ScheduleAnyway")]))
    state = spread_score_state(facts, facts.spread_constraints, nodes, nodes, require_all_keys=True)
    assert state is not None
    only_spread = Scoring(weights={POD_TOPOLOGY_SPREAD: 2})
    assert plugin_scores(facts, nodes, only_spread, state) == {"a1": 0, "a2": 0, "b1": 66, "c1": 200}
    default = plugin_scores(facts, nodes, Scoring(), state)
    without = plugin_scores(facts, nodes, Scoring(), None)
    assert {n: default[n] - without[n] for n in default} == {"a1": 0, "a2": 0, "b1": 66, "c1": 200}
    off = Scoring(weights={**DEFAULT_SCORE_WEIGHTS, POD_TOPOLOGY_SPREAD: 0})
    assert plugin_scores(facts, nodes, off, state) == without


def test_hard_and_soft_constraints_are_split() -> None:
    facts = pod_facts(pod("p", labels=WEB, topology_spread=[spread(), spread(HOST, 2, "ScheduleAnyway")]))
    (hard,) = constraints_for(facts, hard=True, args=SYSTEM_SPREAD_ARGS, workloads=None)
    (soft,) = constraints_for(facts, hard=False, args=SYSTEM_SPREAD_ARGS, workloads=None)
    assert (hard.topology_key, hard.max_skew, hard.hard) == (ZONE, 1, True)
    assert (soft.topology_key, soft.max_skew, soft.hard) == (HOST, 2, False)
    assert (hard.min_domains, hard.honor_node_affinity, hard.honor_node_taints) == (1, True, False)
    assert hard.selector == Requirements.from_labels(WEB)


def test_queueing_hint_for_placed_pods() -> None:
    waiting = pod_facts(pod("p", labels=WEB, topology_spread=[spread(), spread(HOST, when="ScheduleAnyway")]))
    assert waits_for(waiting, "default", WEB)
    assert not waits_for(waiting, "other", WEB)
    assert not waits_for(waiting, "default", {"app": "db"})
    soft_only = pod_facts(pod("p", labels=WEB, topology_spread=[spread(when="ScheduleAnyway")]))
    assert not waits_for(soft_only, "default", WEB)


@pytest.mark.parametrize(
    ("constraint", "path"),
    [
        ({"topologyKey": ZONE, "whenUnsatisfiable": "DoNotSchedule"}, "maxSkew"),
        ({"topologyKey": ZONE, "maxSkew": 0, "whenUnsatisfiable": "DoNotSchedule"}, "maxSkew"),
        ({"maxSkew": 1, "whenUnsatisfiable": "DoNotSchedule"}, "topologyKey"),
        ({"topologyKey": ZONE, "maxSkew": 1}, "whenUnsatisfiable"),
        ({"topologyKey": ZONE, "maxSkew": 1, "whenUnsatisfiable": "Sometimes"}, "whenUnsatisfiable"),
        (spread(minDomains=0), "minDomains"),
        (spread(nodeAffinityPolicy="honor"), "nodeAffinityPolicy"),
        (spread(nodeTaintsPolicy="Always"), "nodeTaintsPolicy"),
        (spread(matchLabelKeys="app"), "matchLabelKeys"),
        (spread(selector="app=web"), "labelSelector"),
    ],
)
def test_bad_constraints_are_field_errors(constraint: dict[str, Any], path: str) -> None:
    with pytest.raises(FieldError, match=path):
        pod_facts(pod("p", topology_spread=[constraint]))


# Default selectors (helper.DefaultSelector) -------------------------------------------------


def service(name: str, selector: Mapping[str, str] | None, namespace: str = "default") -> dict[str, Any]:
    spec = {} if selector is None else {"selector": dict(selector)}
    return {"metadata": {"namespace": namespace, "name": name}, "spec": spec}


def test_default_selector_from_services_and_controllers() -> None:
    workloads = WorkloadSelectors()
    labels = {"app": "web", "tier": "front", "pod-template-hash": "abc"}
    assert workloads.default_selector("default", labels, None) is None
    workloads.set_service(service("nil", None))  # a nil selector selects nothing
    workloads.set_service(service("all", {}))  # an empty one selects every pod, adds nothing
    assert workloads.default_selector("default", labels, None) is None
    workloads.set_service(service("web", {"app": "web"}))
    workloads.set_service(service("front", {"tier": "front"}))
    workloads.set_service(service("db", {"app": "db"}))  # does not select the pod
    workloads.set_service(service("elsewhere", {"zone": "x"}, namespace="other"))
    assert workloads.default_selector("default", labels, None) == Requirements.from_labels(
        {"app": "web", "tier": "front"}
    )
    workloads.delete_service(service("front", None))
    rs = {
        "metadata": {"namespace": "default", "name": "web-abc"},
        "spec": {
            "selector": {
                "matchExpressions": [{"key": "pod-template-hash", "operator": "In", "values": ["abc"]}]
            }
        },
    }
    workloads.set_controller(REPLICA_SET, rs)
    controller = pod_facts(owned(pod("p", labels=labels))).controller
    assert workloads.default_selector("default", labels, controller) == Requirements.from_labels(
        {"app": "web", "pod-template-hash": "abc"}
    )
    # An owner of another apiVersion, or not marked as the controller, is not looked up.
    stale = pod_facts(owned(pod("p", labels=labels), kind=("apps/v1beta2", "ReplicaSet"))).controller
    assert workloads.default_selector("default", labels, stale) == Requirements.from_labels(WEB)
    not_controller = pod("p", labels=labels)
    not_controller["metadata"]["ownerReferences"] = [
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-abc"}
    ]
    assert pod_facts(not_controller).controller is None
    workloads.delete_controller(REPLICA_SET, rs)
    assert workloads.default_selector("default", labels, controller) == Requirements.from_labels(WEB)


def test_statefulsets_and_replication_controllers() -> None:
    workloads = WorkloadSelectors()
    sts = ("apps/v1", "StatefulSet")
    rc = ("v1", "ReplicationController")
    workloads.set_controller(
        sts, {"metadata": {"name": "db"}, "spec": {"selector": {"matchLabels": {"app": "db"}}}}
    )
    workloads.set_controller(rc, {"metadata": {"name": "old"}, "spec": {"selector": {"app": "old"}}})
    workloads.set_controller(REPLICA_SET, {"metadata": {"name": "empty"}, "spec": {"selector": {}}})
    for kind, name, expected in [(sts, "db", {"app": "db"}), (rc, "old", {"app": "old"})]:
        ref = pod_facts(owned(pod("p", labels=expected), kind=kind, name=name)).controller
        assert workloads.default_selector("default", expected, ref) == Requirements.from_labels(expected)
    # An empty controller selector adds nothing.
    empty = pod_facts(owned(pod("p", labels=WEB), name="empty")).controller
    assert workloads.default_selector("default", WEB, empty) is None


# PodTopologySpreadArgs ---------------------------------------------------------------------


def test_spread_args() -> None:
    errors: list[FieldError] = []
    assert parse_spread_args(None, "args", errors) is SYSTEM_SPREAD_ARGS
    assert parse_spread_args({"defaultingType": "System"}, "args", errors) is SYSTEM_SPREAD_ARGS
    listed = parse_spread_args(
        {
            "defaultingType": "List",
            "defaultConstraints": [
                {"topologyKey": ZONE, "maxSkew": 2, "whenUnsatisfiable": "DoNotSchedule", "minDomains": 3},
                {"topologyKey": ZONE, "maxSkew": 1, "whenUnsatisfiable": "ScheduleAnyway"},
            ],
        },
        "args",
        errors,
    )
    assert errors == []
    assert listed == SpreadArgs(
        (SpreadConstraint(ZONE, 2, hard=True, min_domains=3), SpreadConstraint(ZONE, 1, hard=False)),
        system_defaulted=False,
    )
    assert parse_spread_args({"defaultingType": "List"}, "args", errors) == SpreadArgs(
        (), system_defaulted=False
    )
    # What a default constraint cannot use is dropped, as the plugin never reads it: its
    # selector (and so matchLabelKeys) is replaced per pod, minDomains only filters.
    soft = spread(
        HOST, 2, "ScheduleAnyway", selector=None, minDomains=3, matchLabelKeys=["pod-template-hash"]
    )
    dropped = parse_spread_args({"defaultingType": "List", "defaultConstraints": [soft]}, "args", errors)
    assert errors == []
    assert dropped.default_constraints == (SpreadConstraint(HOST, 2, hard=False),)


@pytest.mark.parametrize(
    ("args", "path"),
    [
        ({"defaultConstraints": [spread(selector=None)]}, "args.defaultingType"),
        ({"defaultingType": "Sometimes"}, "args.defaultingType"),
        (
            {"defaultingType": "List", "defaultConstraints": [spread()]},
            "args.defaultConstraints[0].labelSelector",
        ),
        (
            {"defaultingType": "List", "defaultConstraints": [spread(selector=None, max_skew=0)]},
            "args.defaultConstraints[0].maxSkew",
        ),
        (
            {
                "defaultingType": "List",
                "defaultConstraints": [spread(selector=None), spread(selector=None, max_skew=2)],
            },
            "args.defaultConstraints[1]",
        ),
        ({"defaultingType": "List", "defaultConstraints": "zone"}, "args.defaultConstraints"),
    ],
)
def test_bad_spread_args(args: dict[str, Any], path: str) -> None:
    errors: list[FieldError] = []
    parse_spread_args(args, "args", errors)
    assert path in [e.path for e in errors]


# Through the scheduler loop ---------------------------------------------------------------

PACKING = """apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
podInitialBackoffSeconds: 0.05
podMaxBackoffSeconds: 0.2
profiles:
- schedulerName: default-scheduler
  pluginConfig:
  - name: NodeResourcesFit
    args: {scoringStrategy: {type: MostAllocated}}
"""


def deployment(name: str, replicas: int, spread_constraints: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    template = pod(name, labels={"app": name}, cpu="500m", memory="512Mi", topology_spread=spread_constraints)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": template["spec"]},
        },
    }


async def replica_sets(apps: Any) -> list[Any]:
    return list((await apps.list_namespaced_replica_set("default")).items)


async def bound_nodes(core: Any, app: str, count: int) -> list[str] | None:
    pods = (await core.list_namespaced_pod("default", label_selector=f"app={app}")).items
    nodes = [p.spec.node_name for p in pods if p.spec.node_name]
    return nodes if len(nodes) == count else None


@pytest.mark.parametrize(
    ("score", "spread_apart"),
    [("", True), ("[{name: PodTopologySpread}]", False)],
    ids=["scored", "not-scored"],
)
async def test_system_defaults_spread_a_deployment_over_hostnames(score: str, spread_apart: bool) -> None:
    """Two 500m/512Mi replicas on two 4-cpu/16Gi nodes under MostAllocated (weight 1). For the
    second one, packing scores the first one's node 15 + balanced 90 against 7 + 95 on the empty
    node; the system default hostname spreading (by the ReplicaSet's selector, which the
    scheduler's informer must have seen) adds 2*66 against 2*100: the replicas part only with
    PodTopologySpread scoring enabled."""
    extra = f"  plugins:\n    score:\n      disabled: {score}\n" if score else ""
    config = load_scheduler_config(PACKING + extra)
    async with running_apiserver() as (_, api):
        core: Any = client.CoreV1Api(api)
        apps: Any = client.AppsV1Api(api)
        for name in ("n1", "n2"):
            await core.create_node(node(name, cpu="4", memory="16Gi"))
        async with Scheduler(api, config, rng=random.Random(0)) as scheduler:
            await apps.create_namespaced_deployment("default", deployment("web", 0))
            (rs,) = await wait_for(lambda: replica_sets(apps))
            ref = ControllerRef("apps/v1", "ReplicaSet", rs.metadata.name)
            await wait_for(lambda: scheduler.workloads.default_selector("default", {"app": "web"}, ref))
            await apps.patch_namespaced_deployment_scale("web", "default", {"spec": {"replicas": 2}})
            first, second = await wait_for(lambda: bound_nodes(core, "web", 2))
    assert (first != second) is spread_apart


SHIPPED = Path(__file__).resolve().parents[2] / "manifests" / "scheduler" / "config.yaml"


def shipped_profile(*, spread_off: bool) -> str:
    """The shipped profile (MostAllocated packing, weight 5) for every pod, without its
    extender; ``spread_off`` disables PodTopologySpread everywhere (multiPoint)."""
    shipped = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    profiles = [{**p, "schedulerName": "default-scheduler"} for p in shipped["profiles"]]
    if spread_off:
        profiles[0].setdefault("plugins", {})["multiPoint"] = {"disabled": [{"name": POD_TOPOLOGY_SPREAD}]}
    return yaml.safe_dump(
        {"apiVersion": shipped["apiVersion"], "kind": shipped["kind"], "profiles": profiles}
    )


async def ready_nodes(core: Any) -> list[Any]:
    nodes = (await core.list_node()).items
    conditions = {n.metadata.name: (n.status.conditions if n.status else None) or [] for n in nodes}
    return [
        n for n in nodes if any(c.type == "Ready" and c.status == "True" for c in conditions[n.metadata.name])
    ]


@pytest.mark.parametrize("spread_off", [False, True], ids=["spread", "spread-off"])
async def test_zone_spread_deployment_on_the_local_cluster(moto_server: MotoEC2, spread_off: bool) -> None:
    """Six replicas with a zone spread (maxSkew 1, DoNotSchedule) over three running nodes, one
    per zone, under the shipped packing profile: two per zone. With PodTopologySpread off the
    same Deployment packs onto one node, in one zone."""
    constraint = spread(ZONE, selector={"matchLabels": {"app": "web"}})
    async with LocalCluster(
        kubelet_config=KubeletConfig.immediate(),
        ec2=moto_server,
        seed=0,
        scheduler_config=shipped_profile(spread_off=spread_off),
    ) as cluster:
        network = cluster.network
        async with aioboto3.Session().client("ec2", **cluster.ec2.client_kwargs()) as ec2:
            for zone in sorted(network.subnets):
                await ec2.run_instances(
                    ImageId=network.amis["x86_64"],
                    InstanceType="m5.xlarge",
                    MinCount=1,
                    MaxCount=1,
                    SubnetId=network.subnets[zone],
                    TagSpecifications=[
                        {
                            "ResourceType": "instance",
                            "Tags": [{"Key": labels.TAG_CLUSTER, "Value": network.cluster}],
                        }
                    ],
                )
        async with await cluster.api_client() as api:
            core: Any = client.CoreV1Api(api)
            apps: Any = client.AppsV1Api(api)
            nodes = await cluster.wait_for(lambda: _at_least(ready_nodes(core), 3))
            zone_of = {n.metadata.name: n.metadata.labels[ZONE] for n in nodes}
            assert sorted(zone_of.values()) == ["us-east-1a", "us-east-1b", "us-east-1c"]
            await apps.create_namespaced_deployment("default", deployment("web", 6, [constraint]))
            placed = await cluster.wait_for(lambda: bound_nodes(core, "web", 6))
            assert placed is not None
    per_zone = Counter(zone_of[name] for name in placed)
    if spread_off:
        assert len(set(placed)) == 1
    else:
        assert per_zone == {"us-east-1a": 2, "us-east-1b": 2, "us-east-1c": 2}


async def _at_least(items: Awaitable[list[Any]], count: int) -> list[Any] | None:
    found = await items
    return found if len(found) >= count else None
