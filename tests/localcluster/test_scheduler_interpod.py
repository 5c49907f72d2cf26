"""InterPodAffinity's required terms: kube-scheduler's filtering.go on parsed facts."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest

from localcluster.scheduler.cache import ClusterCache, PodUsage
from localcluster.scheduler.filters import (
    NO_INTER_POD,
    REASON_EXISTING_ANTI_AFFINITY,
    REASON_POD_AFFINITY,
    REASON_POD_ANTI_AFFINITY,
    NodeStatus,
    inter_pod_state,
    matches_all_terms,
    run_filters,
)
from localcluster.scheduler.model import PodFacts, pod_facts
from localcluster.scheduler.queue import SchedulingQueue, Where
from localcluster.scheduler.testing import node, pod
from shared.errors import FieldError
from shared.podaffinity import PodAffinityTerm

HOST = "kubernetes.io/hostname"
ZONE = "topology.kubernetes.io/zone"
WEB = {"app": "web"}
_UNSET: Any = object()

ANTI = NodeStatus((REASON_POD_ANTI_AFFINITY,), resolvable=True)
EXISTING = NodeStatus((REASON_EXISTING_ANTI_AFFINITY,), resolvable=True)
AFFINITY = NodeStatus((REASON_POD_AFFINITY,), resolvable=False)


def term(
    key: str,
    selector: Mapping[str, str] | None = None,
    *,
    raw_selector: Any = _UNSET,
    namespaces: Sequence[str] = (),
    namespace_selector: Any = _UNSET,
) -> dict[str, Any]:
    """A PodAffinityTerm; ``selector`` is matchLabels, ``raw_selector`` the labelSelector as is."""
    out: dict[str, Any] = {"topologyKey": key}
    if raw_selector is not _UNSET:
        if raw_selector is not None:
            out["labelSelector"] = raw_selector
    else:
        out["labelSelector"] = {"matchLabels": dict(selector or {})}
    if namespaces:
        out["namespaces"] = list(namespaces)
    if namespace_selector is not _UNSET:
        out["namespaceSelector"] = namespace_selector
    return out


def anti(*terms: dict[str, Any]) -> dict[str, Any]:
    return {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": list(terms)}}


def affinity(*terms: dict[str, Any]) -> dict[str, Any]:
    return {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": list(terms)}}


def zoned(name: str, zone: str | None) -> dict[str, Any]:
    return node(name, labels={ZONE: zone} if zone else None)


def cluster(nodes: Sequence[dict[str, Any]], placed: Mapping[str, Sequence[dict[str, Any]]]) -> ClusterCache:
    cache = ClusterCache()
    for raw in nodes:
        cache.set_node(raw)
    for node_name, pods in placed.items():
        for p in pods:
            p["metadata"]["uid"] = f"uid-{p['metadata']['namespace']}-{p['metadata']['name']}"
            cache.add_pod(node_name, PodUsage.of(pod_facts(p)))
    return cache


def schedule(p: dict[str, Any], cache: ClusterCache) -> dict[str, NodeStatus | None]:
    """Each node's status for ``p``, with the PreFilter state computed once over the cluster."""
    facts = pod_facts(p)
    state = inter_pod_state(facts, cache.nodes())
    return {info.name: run_filters(facts, info, (), state) for info in cache.nodes()}


def test_hostname_anti_affinity_against_a_replica() -> None:
    replica = pod("web-0", labels=WEB, affinity=anti(term(HOST, WEB)))
    cache = cluster([node("a"), node("b")], {"a": [replica]})
    incoming = pod("web-1", labels=WEB, affinity=anti(term(HOST, WEB)))
    assert schedule(incoming, cache) == {"a": ANTI, "b": None}
    # Without the state run_filters looks at the node's own pods: the same answer per node.
    for info in cache.nodes():
        assert run_filters(pod_facts(incoming), info) == schedule(incoming, cache)[info.name]
    # A pod the term does not select does not count.
    other = cluster([node("a")], {"a": [pod("db-0", labels={"app": "db"})]})
    assert schedule(incoming, other) == {"a": None}


def test_zone_anti_affinity_blocks_every_node_of_the_zone() -> None:
    cache = cluster([zoned("a", "z1"), zoned("b", "z1"), zoned("c", "z2")], {"a": [pod("web-0", labels=WEB)]})
    incoming = pod("web-1", labels=WEB, affinity=anti(term(ZONE, WEB)))
    assert schedule(incoming, cache) == {"a": ANTI, "b": ANTI, "c": None}


def test_nodes_without_the_topology_label() -> None:
    """A node without the key is its own domain that no pod shares: anti-affinity holds there,
    affinity does not."""
    cache = cluster([zoned("a", None), zoned("b", None), zoned("c", "z1")], {"a": [pod("web-0", labels=WEB)]})
    incoming = pod("web-1", labels=WEB, affinity=anti(term(ZONE, WEB)))
    assert schedule(incoming, cache) == {"a": None, "b": None, "c": None}
    # The same replica on a zoned node blocks its zone only.
    cache = cluster([zoned("a", None), zoned("c", "z1"), zoned("d", "z1")], {"c": [pod("web-0", labels=WEB)]})
    assert schedule(incoming, cache) == {"a": None, "c": ANTI, "d": ANTI}
    # Required affinity needs every topology key on the node, even for the first pod of a group.
    first = pod("web-1", labels=WEB, affinity=affinity(term(ZONE, WEB)))
    assert schedule(first, cluster([zoned("a", None), zoned("b", "z1")], {})) == {"a": AFFINITY, "b": None}


def test_existing_pods_anti_affinity_rejects_the_incoming_pod() -> None:
    """Symmetry: the incoming pod has no terms, an existing pod's term selects it."""
    db = pod("db-0", labels={"app": "db"}, affinity=anti(term(HOST, WEB)))
    cache = cluster([node("a"), node("b")], {"a": [db]})
    assert schedule(pod("web-0", labels=WEB), cache) == {"a": EXISTING, "b": None}
    assert run_filters(pod_facts(pod("web-0", labels=WEB)), cache.nodes()[0]) == EXISTING
    # A pod the existing term does not select is not affected.
    assert schedule(pod("api-0", labels={"app": "api"}), cache) == {"a": None, "b": None}
    # At zone level it keeps the pod out of the whole zone; on a node without the key, nowhere.
    zonal = pod("db-0", labels={"app": "db"}, affinity=anti(term(ZONE, WEB)))
    nodes = [zoned("a", "z1"), zoned("b", "z1"), zoned("c", "z2"), zoned("d", None)]
    assert schedule(pod("web-0", labels=WEB), cluster(nodes, {"b": [zonal]})) == {
        "a": EXISTING,
        "b": EXISTING,
        "c": None,
        "d": None,
    }
    nodes = [zoned("a", "z1"), zoned("d", None)]
    assert schedule(pod("web-0", labels=WEB), cluster(nodes, {"d": [zonal]})) == {"a": None, "d": None}


def test_existing_anti_affinity_is_scoped_to_its_owners_namespace() -> None:
    db = pod("db-0", namespace="data", labels={"app": "db"}, affinity=anti(term(HOST, WEB)))
    cache = cluster([node("a")], {"a": [db]})
    assert schedule(pod("web-0", labels=WEB), cache) == {"a": None}
    assert schedule(pod("web-0", namespace="data", labels=WEB), cache) == {"a": EXISTING}


def test_namespace_scoping_of_the_incoming_pods_terms() -> None:
    elsewhere = pod("web-0", namespace="other", labels=WEB)
    cache = cluster([node("a")], {"a": [elsewhere]})
    # Neither namespaces nor namespaceSelector: the pod's own namespace only.
    assert schedule(pod("web-1", labels=WEB, affinity=anti(term(HOST, WEB))), cache) == {"a": None}
    listed = anti(term(HOST, WEB, namespaces=["other"]))
    assert schedule(pod("web-1", labels=WEB, affinity=listed), cache) == {"a": ANTI}
    listed_not_other = anti(term(HOST, WEB, namespaces=["default", "third"]))
    assert schedule(pod("web-1", labels=WEB, affinity=listed_not_other), cache) == {"a": None}
    # namespaceSelector {} selects every namespace, with or without a namespaces list.
    everywhere = anti(term(HOST, WEB, namespace_selector={}))
    assert schedule(pod("web-1", labels=WEB, affinity=everywhere), cache) == {"a": ANTI}
    both = anti(term(HOST, WEB, namespaces=["default"], namespace_selector={}))
    assert schedule(pod("web-1", labels=WEB, affinity=both), cache) == {"a": ANTI}
    # A non-empty namespaceSelector cannot be evaluated (no Namespace labels): all namespaces.
    labelled = anti(term(HOST, WEB, namespace_selector={"matchLabels": {"team": "x"}}))
    assert schedule(pod("web-1", labels=WEB, affinity=labelled), cache) == {"a": ANTI}


def test_null_selector_matches_nothing_and_empty_matches_everything() -> None:
    cache = cluster([node("a"), node("b")], {"a": [pod("anything", labels={"x": "y"})]})
    null = pod("p", affinity=anti(term(HOST, raw_selector=None)))
    assert schedule(null, cache) == {"a": None, "b": None}
    empty = pod("p", affinity=anti(term(HOST, raw_selector={})))
    assert schedule(empty, cache) == {"a": ANTI, "b": None}
    # Even a pod without labels is matched by {}.
    assert schedule(empty, cluster([node("a")], {"a": [pod("bare")]})) == {"a": ANTI}
    # Expressions work as in label selectors.
    exprs = {"matchExpressions": [{"key": "x", "operator": "NotIn", "values": ["y"]}]}
    assert schedule(pod("p", affinity=anti(term(HOST, raw_selector=exprs))), cache) == {"a": None, "b": None}
    # A null selector in an existing pod's term selects no incoming pod either.
    guard = pod("guard", affinity=anti(term(HOST, raw_selector=None)))
    assert schedule(pod("p", labels=WEB), cluster([node("a")], {"a": [guard]})) == {"a": None}
    facts = pod_facts(null)
    assert facts.anti_affinity_terms == (PodAffinityTerm(HOST, None, frozenset({"default"})),)


def test_required_pod_affinity_satisfied_and_unsatisfied() -> None:
    cache_pod = pod("cache-0", labels={"app": "cache"})
    nodes = [zoned("a", "z1"), zoned("b", "z1"), zoned("c", "z2")]
    web = pod("web-0", labels=WEB, affinity=affinity(term(ZONE, {"app": "cache"})))
    assert schedule(web, cluster(nodes, {"a": [cache_pod]})) == {"a": None, "b": None, "c": AFFINITY}
    # By hostname: only the node the cache pod runs on.
    on_host = pod("web-0", labels=WEB, affinity=affinity(term(HOST, {"app": "cache"})))
    assert schedule(on_host, cluster(nodes, {"a": [cache_pod]})) == {"a": None, "b": AFFINITY, "c": AFFINITY}
    # No cache pod at all, and the web pod is not one itself: nowhere.
    unrelated = {"a": [pod("db-0", labels={"app": "db"})]}
    assert schedule(web, cluster(nodes, unrelated)) == {"a": AFFINITY, "b": AFFINITY, "c": AFFINITY}
    # A cache pod in another namespace does not count.
    other_ns = {"a": [pod("cache-0", namespace="other", labels={"app": "cache"})]}
    assert schedule(web, cluster(nodes, other_ns)) == {"a": AFFINITY, "b": AFFINITY, "c": AFFINITY}


def test_pod_affinity_terms_need_one_pod_matching_all_of_them() -> None:
    nodes = [zoned("a", "z1")]
    both = affinity(term(HOST, {"app": "cache"}), term(HOST, {"tier": "hot"}))
    web = pod("web-0", labels=WEB, affinity=both)
    split = {"a": [pod("c", labels={"app": "cache"}), pod("t", labels={"tier": "hot"})]}
    assert schedule(web, cluster(nodes, split)) == {"a": AFFINITY}
    one = {"a": [pod("ct", labels={"app": "cache", "tier": "hot"})]}
    assert schedule(web, cluster(nodes, one)) == {"a": None}


def test_first_pod_of_a_self_affine_group() -> None:
    nodes = [zoned("a", "z1"), zoned("b", "z2")]
    group = affinity(term(ZONE, WEB))
    first = pod("web-0", labels=WEB, affinity=group)
    # Nobody matches the term yet and the pod matches it itself: any zoned node will do.
    assert schedule(first, cluster(nodes, {})) == {"a": None, "b": None}
    assert schedule(first, cluster(nodes, {"a": [pod("db-0", labels={"app": "db"})]})) == {
        "a": None,
        "b": None,
    }
    # Once one member runs, the rest follow it into its zone.
    assert schedule(first, cluster(nodes, {"b": [pod("web-1", labels=WEB)]})) == {"a": AFFINITY, "b": None}
    # A pod that does not match its own term gets no such exemption.
    stranger = pod("api-0", labels={"app": "api"}, affinity=group)
    assert schedule(stranger, cluster(nodes, {})) == {"a": AFFINITY, "b": AFFINITY}


def test_fast_path_when_no_pod_has_terms() -> None:
    nodes = [node("a", cpu="2"), node("b", cpu="500m"), zoned("c", "z1")]
    cache = cluster(nodes, {"a": [pod("x", labels=WEB, cpu="1")], "c": [pod("y", labels=WEB)]})
    facts = pod_facts(pod("p", labels=WEB, cpu="1"))
    assert inter_pod_state(facts, cache.nodes()) is NO_INTER_POD
    assert schedule(pod("p", labels=WEB, cpu="1"), cache) == {
        "a": None,
        "b": NodeStatus(("Insufficient cpu",)),
        "c": None,
    }
    assert all(not info.anti_affinity_pods for info in cache.nodes())
    # Affinity terms on existing pods do not bind the incoming pod either (required affinity
    # is checked for the pod being scheduled only).
    cache.add_pod("a", PodUsage.of(pod_facts(pod("z", affinity=affinity(term(HOST, {"app": "none"}))))))
    assert inter_pod_state(facts, cache.nodes()) is NO_INTER_POD


def test_filter_order_and_assumed_pods() -> None:
    """NodeResourcesFit runs first; an assumed pod's anti-affinity counts at once and goes with it."""
    cache = cluster([node("a", cpu="1"), node("b", cpu="4")], {})
    raw = pod("web-0", labels=WEB, cpu="1", affinity=anti(term(HOST, WEB)))
    raw["metadata"]["uid"] = "u0"
    first = pod_facts(raw)
    cache.assume("a", first)
    incoming = pod("web-1", labels=WEB, cpu="1", affinity=anti(term(HOST, WEB)))
    assert schedule(incoming, cache) == {"a": NodeStatus(("Insufficient cpu",)), "b": None}
    plain = pod("api-0", labels=WEB, cpu="100m")
    cache = cluster([node("a"), node("b")], {})
    cache.assume("a", first)
    assert schedule(plain, cache) == {"a": EXISTING, "b": None}
    cache.forget(first.uid)
    assert schedule(plain, cache) == {"a": None, "b": None}
    assert all(not info.anti_affinity_pods for info in cache.nodes())


def test_pod_is_not_its_own_neighbour() -> None:
    """A pod already counted (assumed) is not matched against itself when it is retried."""
    raw = pod("web-0", labels=WEB, affinity=anti(term(HOST, WEB)))
    raw["metadata"]["uid"] = "u0"
    facts = pod_facts(raw)
    cache = cluster([node("a")], {})
    cache.assume("a", facts)
    assert run_filters(facts, cache.nodes()[0], (), inter_pod_state(facts, cache.nodes())) is None


@pytest.mark.parametrize(
    ("raw_term", "path"),
    [
        ({"labelSelector": {}}, "topologyKey"),
        ({"topologyKey": "", "labelSelector": {}}, "topologyKey"),
        ({"topologyKey": HOST, "labelSelector": "app=web"}, "labelSelector"),
        ({"topologyKey": HOST, "namespaces": "default"}, "namespaces"),
    ],
)
def test_bad_terms_are_field_errors(raw_term: dict[str, Any], path: str) -> None:
    with pytest.raises(FieldError, match=path):
        pod_facts(pod("p", affinity=anti(raw_term)))


def test_queue_moves_only_pods_waiting_for_a_match() -> None:
    queue = SchedulingQueue(0.05, 0.2, 300.0)
    waiting = pod("web-0", labels=WEB, affinity=affinity(term(HOST, {"app": "cache"})))
    waiting["metadata"]["uid"] = "w"
    plain = pod("api-0")
    plain["metadata"]["uid"] = "p"
    for raw in (waiting, plain):
        queue.add(raw, pod_facts(raw), 0.0)
    for _ in range(2):
        popped = queue.pop(0.0)
        assert popped is not None
        queue.failed(popped.facts.uid, 0.0, unschedulable=True)

    def wanted_by(labels: Mapping[str, str]) -> Callable[[PodFacts], bool]:
        return lambda facts: matches_all_terms(facts.affinity_terms, "default", labels)

    assert not queue.move_matching(1.0, wanted_by({"app": "db"}))
    assert queue.move_matching(1.0, wanted_by({"app": "cache"}))
    assert queue.counts() == {"active": 1, "backoff": 0, "unschedulable": 1, "in-flight": 0}
    moved = queue.get("w")
    assert moved is not None
    assert moved.where is Where.ACTIVE


def test_namespace_selector_with_the_namespaces_labels() -> None:
    """Given the Namespaces' labels, a namespaceSelector selects as kube-scheduler's does: the
    namespaces whose labels match, plus those listed; ``{}`` every one."""
    namespaces = {"default": {"team": "x"}, "other": {"team": "y"}, "third": {}}
    cache = cluster([node("a"), node("b")], {"a": [pod("web-0", namespace="other", labels=WEB)]})

    def place(p: dict[str, Any], c: ClusterCache = cache) -> dict[str, NodeStatus | None]:
        facts = pod_facts(p)
        state = inter_pod_state(facts, c.nodes(), namespaces)
        return {info.name: run_filters(facts, info, (), state) for info in c.nodes()}

    team_y = anti(term(HOST, WEB, namespace_selector={"matchLabels": {"team": "y"}}))
    team_x = anti(term(HOST, WEB, namespace_selector={"matchLabels": {"team": "x"}}))
    assert place(pod("web-1", labels=WEB, affinity=team_y)) == {"a": ANTI, "b": None}
    assert place(pod("web-1", labels=WEB, affinity=team_x)) == {"a": None, "b": None}
    listed = anti(term(HOST, WEB, namespaces=["other"], namespace_selector={"matchLabels": {"team": "x"}}))
    assert place(pod("web-1", labels=WEB, affinity=listed)) == {"a": ANTI, "b": None}
    everywhere = anti(term(HOST, WEB, namespace_selector={}))
    assert place(pod("web-1", namespace="third", labels=WEB, affinity=everywhere)) == {"a": ANTI, "b": None}
    # Required affinity: the peer must be in a selected namespace.
    follow_y = affinity(term(HOST, WEB, namespace_selector={"matchLabels": {"team": "y"}}))
    follow_x = affinity(term(HOST, WEB, namespace_selector={"matchLabels": {"team": "x"}}))
    assert place(pod("api-0", labels={"app": "api"}, affinity=follow_y)) == {"a": None, "b": AFFINITY}
    assert place(pod("api-0", labels={"app": "api"}, affinity=follow_x)) == {"a": AFFINITY, "b": AFFINITY}
    # An existing pod's term is read against the incoming pod's namespace labels.
    guard = pod("guard", namespace="other", affinity=team_x)
    guarded = cluster([node("a"), node("b")], {"a": [guard]})
    assert place(pod("web-1", labels=WEB), guarded) == {"a": EXISTING, "b": None}
    assert place(pod("web-1", namespace="third", labels=WEB), guarded) == {"a": None, "b": None}
