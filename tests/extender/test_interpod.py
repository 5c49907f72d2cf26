"""Room for a shape with spread or pod (anti-)affinity (``extender.interpod``), and the predictor using it."""

from __future__ import annotations

from typing import Any

from extender.cache import ClusterCache
from extender.demand import DemandTracker
from extender.interpod import Constraints, NodeView, room
from extender.predict import Predictor
from shared.podaffinity import PodAffinityTerm
from shared.requirements import Requirements
from shared.topologyspread import SpreadConstraint
from tests.extender.helpers import eventually, node, pod

ZONE = "topology.kubernetes.io/zone"
HOST = "kubernetes.io/hostname"
WEB = (("app", "web"),)
WEB_PODS = [("default", {"app": "web"})]
DB_PODS = [("default", {"app": "db"})]


def term(key: str, app: str) -> PodAffinityTerm:
    return PodAffinityTerm(key, Requirements.from_labels({"app": app}), frozenset({"default"}))


def web(
    spread: tuple[SpreadConstraint, ...] = (),
    affinity: tuple[PodAffinityTerm, ...] = (),
    anti: tuple[PodAffinityTerm, ...] = (),
) -> Constraints:
    return Constraints("default", WEB, spread, affinity, anti)


def view(name: str, zone: str, fit: int, pods: list[Any] | None = None, **kw: Any) -> NodeView:
    return NodeView(
        name,
        {HOST: name, ZONE: zone},
        fit,
        kw.get("affinity_ok", True),
        kw.get("taints_ok", True),
        pods or [],
    )


def spread(key: str = ZONE, max_skew: int = 1, **kw: Any) -> SpreadConstraint:
    return SpreadConstraint(key, max_skew, True, Requirements.from_labels({"app": "web"}), **kw)


NODES = [view("a1", "a", 10), view("a2", "a", 10), view("b1", "b", 10)]


def test_self_anti_affinity_by_hostname_is_one_per_free_node() -> None:
    assert room(web(anti=(term(HOST, "web"),)), NODES) == 3
    taken = [view("a1", "a", 10, WEB_PODS), *NODES[1:]]
    assert room(web(anti=(term(HOST, "web"),)), taken) == 2


def test_self_anti_affinity_by_zone_is_one_per_free_zone() -> None:
    assert room(web(anti=(term(ZONE, "web"),)), NODES) == 2
    taken = [view("a1", "a", 10, WEB_PODS), *NODES[1:]]
    assert room(web(anti=(term(ZONE, "web"),)), taken) == 1


def test_anti_affinity_to_another_workload_closes_its_domains() -> None:
    with_db = [view("a1", "a", 10, DB_PODS), *NODES[1:]]
    assert room(web(anti=(term(ZONE, "db"),)), with_db) == 10
    assert room(web(anti=(term(HOST, "db"),)), with_db) == 20


def test_affinity_counts_only_the_domains_holding_a_target() -> None:
    with_db = [view("a1", "a", 4), view("b1", "b", 2, DB_PODS), view("b2", "b", 3)]
    assert room(web(affinity=(term(ZONE, "db"),)), with_db) == 5
    assert room(web(affinity=(term(HOST, "db"),)), with_db) == 2


def test_affinity_without_a_target_anywhere() -> None:
    assert room(web(affinity=(term(ZONE, "db"),)), NODES) == 0
    # Matching its own terms, the first replica goes anywhere and the rest follow it.
    assert room(web(affinity=(term(ZONE, "web"),)), NODES) == 20


def test_zone_spread_caps_each_zone_at_the_fullest_the_emptiest_can_get_plus_skew() -> None:
    nodes = [view("a1", "a", 10), view("b1", "b", 1), view("c1", "c", 10)]
    assert room(web(spread=(spread(),)), nodes) == 2 + 1 + 2
    assert room(web(spread=(spread(max_skew=3),)), nodes) == 4 + 1 + 4
    counted = [view("a1", "a", 10, WEB_PODS * 3), view("b1", "b", 1), view("c1", "c", 10)]
    assert room(web(spread=(spread(),)), counted) == 0 + 1 + 2


def test_fewer_domains_than_min_domains_cap_each_at_max_skew() -> None:
    nodes = [view("a1", "a", 10), view("c1", "c", 10)]
    assert room(web(spread=(spread(min_domains=3),)), nodes) == 2
    assert room(web(spread=(spread(min_domains=2),)), nodes) == 20


def test_a_spread_not_selecting_the_pod_only_closes_domains_over_the_skew() -> None:
    db_spread = SpreadConstraint(ZONE, 1, True, Requirements.from_labels({"app": "db"}))
    nodes = [view("a1", "a", 10, DB_PODS * 3), view("b1", "b", 5)]
    assert room(web(spread=(db_spread,)), nodes) == 5


def test_nodes_without_the_key_or_outside_the_policy_do_not_count() -> None:
    keyless = NodeView("x", {HOST: "x"}, 10, True, True, [])
    assert room(web(spread=(spread(),)), [keyless]) == 0
    nodes = [view("a1", "a", 10), view("b1", "b", 0, affinity_ok=False, pods=[])]
    assert room(web(spread=(spread(),)), nodes) == 10  # b does not count: its node is not eligible
    ignoring = spread(honor_node_affinity=False)
    assert room(web(spread=(ignoring,)), nodes) == 1  # b counts, with 0 pods and no room


def test_constraints_are_read_from_the_pod_and_absent_without_them() -> None:
    plain = pod("p")
    assert Constraints.of(plain) is None
    spread_pod = with_labels(
        pod("s"),
        {"app": "web"},
        topologySpreadConstraints=[
            {"maxSkew": 1, "topologyKey": ZONE, "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": {}}
        ],
    )
    assert Constraints.of(spread_pod) is None  # soft spreads only score
    anti = anti_affinity_pod("w")
    read = Constraints.of(anti)
    assert read is not None
    assert read.anti_affinity == (term(HOST, "web"),)
    assert read.label_map == {"app": "web"}


def with_labels(raw: dict[str, Any], pod_labels: dict[str, str], **spec: Any) -> dict[str, Any]:
    return {**raw, "metadata": {**raw["metadata"], "labels": pod_labels}, "spec": {**raw["spec"], **spec}}


def anti_affinity_pod(name: str, node_name: str = "") -> dict[str, Any]:
    affinity = {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"topologyKey": HOST, "labelSelector": {"matchLabels": {"app": "web"}}}
            ]
        }
    }
    return with_labels(pod(name, cpu="1", node_name=node_name), {"app": "web"}, affinity=affinity)


async def test_the_predictor_sees_the_shortfall_anti_affinity_makes() -> None:
    """Two roomy nodes, one already holding a replica: resources say a dozen more fit, anti-affinity
    says one; with headroom 1 the next replica is predicted, a plain pod of the same size is not."""
    cache = ClusterCache()
    cache.upsert_node(node("a", cpu="8"))
    cache.upsert_node(node("b", cpu="8"))
    cache.upsert_pod(anti_affinity_pod("web-0", node_name="a"))
    tracker = DemandTracker(clock=lambda: 100.0)
    predictor = Predictor(cache, tracker, headroom=1, recheck_interval=0.01)
    predictor.start()
    try:
        predictor.offer(pod("plain"))
        predictor.offer(anti_affinity_pod("web-1"))
        await eventually(lambda: predictor.backlog == 0 and predictor.evaluations >= 2, within=3.0)
        await eventually(lambda: tracker.get("uid-web-1") is not None, within=3.0)
        assert tracker.get("uid-plain") is None
        predicted = tracker.get("uid-web-1")
        assert predicted is not None
        assert predicted.reason == "predicted"
        assert predicted.anti_affinity == (term(HOST, "web"),)  # the launcher plans it with its terms
    finally:
        await predictor.stop()
