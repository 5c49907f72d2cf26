"""From the launcher's view of the cluster to the planner's inputs, and the plan (pure).

Reads only plain data (parsed NodePools and NodeClaims, Node and Pod dicts, the catalogue),
so it is tested without a cluster.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from launcher.model import InstanceType
from launcher.planner import InFlightClaim, NodeRoom, Plan, PoolView, plan
from launcher.planner.exact import ExactSettings
from launcher.planner.inputs import ClusterNode, RunningPod
from launcher.planner.offerings import UnavailableOfferings
from launcher.planner.plan import EXACT
from launcher.podindex import PodIndex, repels, running_pod
from launcher.state import LauncherState
from launcher.warmpool import claims as warm
from launcher.warmpool.candidates import warm_in_flight
from shared import labels, podaffinity, pods
from shared.api.nodeclaim import INITIALIZED, NodeClaim
from shared.api.nodepool import NodePool
from shared.demand import PodDemand
from shared.errors import FieldError, ValidationError
from shared.requirements import Requirement, Requirements
from shared.resources import EMPTY, Resources
from shared.taints import Taint, parse_taints

Obj = Mapping[str, Any]
# EC2NodeClass name -> the zones of its resolved subnets; None while it is not resolved (unknown).
NodeClassZones = Callable[[str], frozenset[str] | None]
# How long a Ready claim's pods are still expected to bind to it rather than need a new node.
BIND_GRACE = timedelta(seconds=30)


def _requests(pod: Obj) -> Resources:
    try:
        return pods.effective_requests(pod)
    except ValidationError:
        return EMPTY


def _node_ready(node: Obj) -> bool:
    conditions = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _taints(node: Obj) -> tuple[Taint, ...]:
    try:
        return tuple(parse_taints((node.get("spec") or {}).get("taints") or [], "spec.taints"))
    except ValidationError:
        return ()


def daemonset_overhead(
    nodes: Mapping[str, Obj], pods_by_node: Mapping[str, Sequence[Obj]]
) -> dict[str, Resources]:
    """Per NodePool, the most any of its nodes gives to DaemonSet pods: a new node will too."""
    out: dict[str, Resources] = {}
    for node in nodes.values():
        meta = node.get("metadata") or {}
        pool = (meta.get("labels") or {}).get(labels.NODEPOOL)
        if not pool:
            continue
        daemons = [p for p in pods_by_node.get(str(meta.get("name")), []) if pods.is_daemonset_pod(p)]
        used = sum((_requests(p) for p in daemons), EMPTY)
        out[pool] = out.get(pool, EMPTY).max(used)
    return out


def node_rooms(
    nodes: Mapping[str, Obj],
    pods_by_node: Mapping[str, Sequence[Obj]],
    requested: Callable[[str], Resources] | None = None,
) -> list[NodeRoom]:
    """Free room on Ready, schedulable nodes that are not being disrupted.

    ``requested`` (the pod index's running sums) replaces summing each node's pods."""
    rooms = []
    for node in nodes.values():
        meta = node.get("metadata") or {}
        spec = node.get("spec") or {}
        taints = _taints(node)
        if not _node_ready(node) or spec.get("unschedulable"):
            continue
        if labels.DISRUPTING_ANNOTATION in (meta.get("annotations") or {}):
            continue
        if any(t.key == labels.DISRUPTED_TAINT for t in taints):
            continue
        try:
            allocatable = Resources.parse((node.get("status") or {}).get("allocatable"), "status.allocatable")
        except ValidationError:
            continue
        name = str(meta.get("name"))
        if requested is not None:
            used = requested(name)
        else:
            used = sum((_requests(p) for p in pods_by_node.get(name, []) if not pods.is_terminal(p)), EMPTY)
        rooms.append(
            NodeRoom(name, dict(meta.get("labels") or {}), taints, (allocatable - used).clamp_zero())
        )
    return rooms


def _claim_types(claim: NodeClaim) -> list[str]:
    for requirement in claim.requirements:
        if requirement.key == labels.INSTANCE_TYPE and requirement.operator == "In":
            return list(requirement.values)
    return []


def _ready_since(claim: NodeClaim) -> datetime | None:
    condition = claim.condition(INITIALIZED)
    if condition is None or not condition.is_true:
        return None
    return condition.last_transition_time or datetime.min.replace(tzinfo=UTC)


def in_flight_claims(
    claims: Iterable[NodeClaim],
    catalogue: Mapping[str, InstanceType],
    now: datetime | None = None,
    bind_grace: timedelta = BIND_GRACE,
    bound: Mapping[str, Resources] | None = None,
) -> list[InFlightClaim]:
    """Claims not being deleted that are not Ready, or became Ready within ``bind_grace``.

    A claim's pods stay with it for a while after its node is Ready, because the scheduler
    needs a moment to bind them; planning them again then would launch a second node.

    ``bound`` (uid -> requests of pods bound to a node) frees a launching claim's room of its
    pods already bound elsewhere: the scheduler binds pods wherever they fit, not where the
    plan put them, and the pods they displaced from that node will come here instead.
    """
    now = now or datetime.now(UTC)
    out = []
    for claim in claims:
        if claim.metadata.deletion_timestamp is not None or warm.is_warm(claim):
            continue  # warm claims are offered by launcher.warmpool.candidates
        ready_since = _ready_since(claim)
        if ready_since is not None and now - ready_since > bind_grace:
            continue
        launched_type = claim.metadata.labels.get(labels.INSTANCE_TYPE)
        names = [launched_type] if launched_type else _claim_types(claim)
        allocatables = [catalogue[n].allocatable for n in names if n in catalogue]
        if not allocatables:
            continue
        smallest = min(allocatables, key=lambda r: (r.amount("cpu"), r.amount("memory")))
        # Once Ready, the claim is a Node: its real free room is offered there (node_rooms), and
        # other pods may have taken what this claim was sized for. Counting the nominal room too
        # covered new pods with room that no longer existed, and they waited out bind_grace
        # before being planned (found by the rollout drill). Its own planned pods stay covered.
        served_pods, served_requests = warm.served(claim)  # a claim taken from a warm pool: its pods
        freed = sum((bound[uid] for uid in served_pods if uid in bound), EMPTY) if bound else EMPTY
        room = EMPTY if ready_since is not None else (smallest - served_requests + freed).clamp_zero()
        out.append(
            InFlightClaim(
                name=claim.name,
                nodepool=claim.nodepool or "",
                requirements=claim.node_requirements(),
                taints=claim.taints,
                room=room,
                pods=frozenset(served_pods),
                node=claim.status.node_name if ready_since is not None else None,
            )
        )
    return out


def pool_usage(claims: Iterable[NodeClaim], catalogue: Mapping[str, InstanceType]) -> dict[str, Resources]:
    """Capacity each pool's claims count toward its limits (launched: the real type)."""
    out: dict[str, Resources] = {}
    for claim in claims:
        pool = claim.nodepool
        if not pool:
            continue
        if claim.status.capacity:
            capacity = claim.status.capacity
        else:
            capacity = EMPTY
            for name in _claim_types(claim):
                if name in catalogue:
                    capacity = capacity.max(catalogue[name].capacity)
        out[pool] = out.get(pool, EMPTY) + capacity
    return out


def occupied_zones(
    nodes: Mapping[str, Obj], pods_by_node: Mapping[str, Sequence[Obj]]
) -> dict[str, frozenset[str]]:
    """Per exclusive key of a group kept a zone apart, the zones where a pod of it is bound."""
    out: dict[str, set[str]] = {}
    for name, pods_here in pods_by_node.items():
        node = nodes.get(name) or {}
        zone = ((node.get("metadata") or {}).get("labels") or {}).get(labels.ZONE)
        if not zone:
            continue
        for pod in pods_here:
            affinity = (pod.get("spec") or {}).get("affinity")
            if (
                not isinstance(affinity, Mapping)
                or not affinity.get("podAntiAffinity")
                or pods.is_terminal(pod)
            ):
                continue
            try:
                group = podaffinity.exclusive_group(pod)
            except FieldError:
                continue
            if group is not None and group.per_zone:
                out.setdefault(group.key, set()).add(str(zone))
    return {key: frozenset(zones) for key, zones in out.items()}


def topology_view(
    nodes: Mapping[str, Obj], pods_by_node: Mapping[str, Sequence[Obj]], demand: Mapping[str, PodDemand]
) -> tuple[list[ClusterNode], list[RunningPod]]:
    """Every node, and the pods bound to them, as topology spread and pod affinity count them.

    Only when some pending pod has such constraints are all pods read; otherwise only those whose
    required anti-affinity may keep a pending pod out of a zone (they repel it whatever it is).
    Pods finished or being deleted do not count.
    """
    every = any(d.constrained for d in demand.values())
    out_pods: list[RunningPod] = []
    for name, pods_here in pods_by_node.items():
        for pod in pods_here:
            if every or repels(pod):
                running = running_pod(pod, str(name))
                if running is not None:
                    out_pods.append(running)
    return cluster_nodes(nodes), out_pods


def indexed_topology_view(
    nodes: Mapping[str, Obj], index: PodIndex, demand: Mapping[str, PodDemand]
) -> tuple[list[ClusterNode], list[RunningPod]]:
    """:func:`topology_view` from the pod index: the running pods it keeps, never a walk of
    every pod when no pending pod has inter-pod constraints."""
    every = any(d.constrained for d in demand.values())
    return cluster_nodes(nodes), index.running() if every else index.repelling_running()


def cluster_nodes(nodes: Mapping[str, Obj]) -> list[ClusterNode]:
    return [
        ClusterNode(str((node.get("metadata") or {}).get("name")), _labels(node), _taints(node))
        for node in nodes.values()
    ]


def _labels(node: Obj) -> dict[str, str]:
    raw = (node.get("metadata") or {}).get("labels")
    return {str(k): str(v) for k, v in raw.items()} if isinstance(raw, Mapping) else {}


def unknown_zones(nodeclass: str) -> frozenset[str] | None:
    """No NodeClass's zones are known: pools are not narrowed (tests, and before any resolve)."""
    return None


def pool_requirements(pool: NodePool, zones: NodeClassZones = unknown_zones) -> Requirements:
    """The pool's requirements narrowed to the zones its EC2NodeClass has subnets in.

    CreateFleet can only place an instance in a zone where the NodeClass selected a subnet, so a
    zone without one is not offered (as in Karpenter); a pod pinned to such a zone is then
    reported unschedulable instead of being planned onto a claim that can never launch. While
    the NodeClass is not resolved its zones are unknown and the pool is left as it is (its
    launches fail on the missing launch template anyway, and are retried).
    """
    requirements = pool.requirements()
    subnet_zones = zones(pool.node_class_ref.name)
    if subnet_zones is None:
        return requirements
    return requirements.intersect(
        Requirements.of(Requirement(labels.ZONE, "In", tuple(sorted(subnet_zones))))
    )


def pool_views(
    pools: Mapping[str, NodePool],
    overhead: Mapping[str, Resources],
    usage: Mapping[str, Resources],
    zones: NodeClassZones = unknown_zones,
) -> list[PoolView]:
    """The planner's view of each pool; ``zones`` gives each EC2NodeClass's subnet zones."""
    return [
        PoolView(pool, pool_requirements(pool, zones), overhead.get(name, EMPTY), usage.get(name, EMPTY))
        for name, pool in sorted(pools.items())
    ]


def build_plan(
    *,
    demand: Mapping[str, PodDemand],
    state: LauncherState,
    catalogue: Mapping[str, InstanceType],
    unavailable: UnavailableOfferings,
    extra_claims: Sequence[NodeClaim] = (),
    zones: NodeClassZones = unknown_zones,
    exact: ExactSettings | None = EXACT,
) -> tuple[Plan, dict[str, NodePool]]:
    """Plan for ``demand`` against the cluster as ``state`` sees it now.

    ``extra_claims`` are claims just created that the informer may not show yet; ``zones``
    gives each EC2NodeClass's subnet zones (see :func:`pool_requirements`); ``exact`` when to
    solve a pool's new claims exactly (see ``launcher.planner.exact``).
    """
    pools = state.nodepools()
    # A claim just taken from a warm pool is in ``extra_claims`` before the informer shows it.
    claims = list({c.name: c for c in [*state.nodeclaims().values(), *extra_claims]}.values())
    nodes = state.nodes()
    # The index's narrow views: each pure function below reads only the pods they hold, so no
    # step walks every bound pod (see launcher.podindex).
    index = state.pod_index
    overhead = daemonset_overhead(nodes, index.daemons_by_node())
    views = pool_views(pools, overhead, pool_usage(claims, catalogue), zones)
    topology_nodes, running = indexed_topology_view(nodes, index, demand)
    result = plan(
        demand=demand,
        pools=views,
        types=list(catalogue.values()),
        in_flight=[
            *in_flight_claims(claims, catalogue, bound=index.bound_requests()),
            *warm_in_flight(claims, catalogue, overhead),
        ],
        nodes=node_rooms(nodes, index.by_node(), index.requested),
        is_unavailable=unavailable.is_unavailable,
        occupied_zones=occupied_zones(nodes, index.repelling_by_node()),
        cluster_nodes=topology_nodes,
        running=running,
        exact=exact,
    )
    return result, dict(pools)
