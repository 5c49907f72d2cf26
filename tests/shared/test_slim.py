"""The informers' slim objects: what is dropped, and that nothing a decision reads is.

Every decision that reads a pod or a node from an informer is run on the whole object and on its
slim form and must answer the same; and a tracing run records every field those decisions read,
which the slim form must still hold. A reader added elsewhere belongs in ``POD_READERS`` or
``NODE_READERS``: a field it needs that ``shared.slim`` drops then fails here.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from extender.cache import node_state
from extender.interpod import Constraints
from launcher.disruption.donotdisrupt import node_protection, pod_protection
from launcher.disruption.drain import do_not_disrupt, evictable, is_critical
from launcher.disruption.inputs import pod_demand, pod_ready
from launcher.disruption.mark import node_mark
from launcher.lifecycle.decisions import node_is_ready
from launcher.podindex import pod_requests, repels, running_pod
from shared import podaffinity, pods
from shared.demand import PodDemand
from shared.pendingpods import judge
from shared.slim import slim_node, slim_pod
from shared.topologyspread import pod_spread_constraints

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
Obj = dict[str, Any]

POD_READERS: dict[str, Callable[[Any], object]] = {
    "effective_requests": pods.effective_requests,
    "scheduling_needs": pods.scheduling_needs,
    "is_terminal": pods.is_terminal,
    "is_bound": pods.is_bound,
    "is_daemonset_pod": pods.is_daemonset_pod,
    "is_mirror_pod": pods.is_mirror_pod,
    # Its callers read these of the condition (lastProbeTime, always null, is not kept).
    "unschedulable_condition": lambda p: (
        {k: c.get(k) for k in ("type", "status", "reason", "message", "lastTransitionTime")}
        if (c := pods.unschedulable_condition(p))
        else None
    ),
    "owner": pods.owner,
    "pod_key": pods.pod_key,
    "pod_uid": pods.pod_uid,
    "judge": judge,
    "demand": lambda p: PodDemand.from_pod(p, "unschedulable", 1.0),
    "exclusive_group": podaffinity.exclusive_group,
    "hard_inter_pod_constraint": podaffinity.hard_inter_pod_constraint,
    "spread": pod_spread_constraints,
    "interpod_constraints": Constraints.of,
    "evictable": evictable,
    "do_not_disrupt": do_not_disrupt,
    "is_critical": is_critical,
    "pod_protection": lambda p: pod_protection(p, NOW),
    "pod_ready": pod_ready,
    "disruption_demand": pod_demand,
    "pod_requests": pod_requests,
    "repels": repels,
    "running_pod": lambda p: running_pod(p, "n1"),
    "deletion": lambda p: (p.get("metadata") or {}).get("deletionTimestamp"),
    "priority_class": lambda p: (p.get("spec") or {}).get("priorityClassName"),
}
NODE_READERS: dict[str, Callable[[Any], object]] = {
    "node_state": node_state,
    "node_is_ready": node_is_ready,
    "node_mark": lambda n: node_mark(n, NOW),
    "node_protection": node_protection,
    "labels_and_name": pods.node_labels_and_name,
    "provider_id": lambda n: (n.get("spec") or {}).get("providerID"),
    "conditions": lambda n: (n.get("status") or {}).get("conditions"),
    "meta": lambda n: {
        k: (n.get("metadata") or {}).get(k)
        for k in ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp", "finalizers")
    },
}

_PROBE = {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 10, "failureThreshold": 3}
_MANAGED = [{"manager": "kubelet", "operation": "Update", "fieldsV1": {"f:status": {"f:phase": {}}}}]


def _container(name: str, cpu: str, memory: str, **extra: Any) -> Obj:
    return {
        "name": name,
        "image": f"registry.example.com/{name}:1.2.3",
        "env": [{"name": f"VAR_{i}", "value": str(i)} for i in range(6)],
        "ports": [{"containerPort": 8080, "protocol": "TCP"}],
        "resources": {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": memory}},
        "volumeMounts": [{"name": "config", "mountPath": "/etc/config"}],
        "livenessProbe": _PROBE,
        "readinessProbe": _PROBE,
        **extra,
    }


def _status(name: str, cpu: str, memory: str) -> Obj:
    return {
        "name": name,
        "ready": True,
        "restartCount": 0,
        "image": f"registry.example.com/{name}:1.2.3",
        "imageID": "sha256:" + "ab" * 32,
        "state": {"running": {"startedAt": "2026-12-01T10:00:00Z"}},
        "resources": {"requests": {"cpu": cpu, "memory": memory}},
    }


def _conditions(**overrides: Obj) -> list[Obj]:
    out = []
    for kind in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"):
        condition = {"type": kind, "status": "True", "lastProbeTime": None}
        condition["lastTransitionTime"] = "2026-12-01T10:00:00Z"
        condition.update(overrides.get(kind, {}))
        out.append(condition)
    return out


def rich_pod(name: str = "web-1", node: str | None = "n1", **changes: Any) -> Obj:
    """A pod with every scheduling feature and the bulk a real API server adds."""
    pod: Obj = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "generateName": "web-",
            "namespace": "shop",
            "uid": f"uid-{name}",
            "resourceVersion": "42",
            "creationTimestamp": "2026-12-01T09:59:00Z",
            "labels": {"app": "web", "pod-template-hash": "abc", "tier": "front"},
            "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": "{" + "x" * 2000 + "}",
                "jitnode.io/do-not-disrupt": "30m",
                "prometheus.io/scrape": "true",
            },
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": "web-abc",
                    "uid": "rs-uid",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
            "managedFields": _MANAGED,
        },
        "spec": {
            "volumes": [{"name": "config", "configMap": {"name": "web-config"}}],
            "containers": [_container("main", "500m", "512Mi"), _container("log", "50m", "64Mi")],
            "initContainers": [
                _container("migrate", "1", "1Gi"),
                _container("proxy", "100m", "128Mi", restartPolicy="Always"),
            ],
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {
                                "matchExpressions": [
                                    {
                                        "key": "topology.kubernetes.io/zone",
                                        "operator": "In",
                                        "values": ["a", "b"],
                                    }
                                ]
                            }
                        ]
                    },
                    "preferredDuringSchedulingIgnoredDuringExecution": [
                        {
                            "weight": 1,
                            "preference": {"matchExpressions": [{"key": "x", "operator": "Exists"}]},
                        }
                    ],
                },
                "podAntiAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": [
                        {
                            "topologyKey": "kubernetes.io/hostname",
                            "labelSelector": {"matchLabels": {"app": "web"}},
                        }
                    ]
                },
                "podAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": [
                        {
                            "topologyKey": "topology.kubernetes.io/zone",
                            "labelSelector": {"matchLabels": {"app": "cache"}},
                            "namespaces": ["shop", "cache"],
                        }
                    ]
                },
            },
            "topologySpreadConstraints": [
                {
                    "maxSkew": 1,
                    "topologyKey": "topology.kubernetes.io/zone",
                    "whenUnsatisfiable": "DoNotSchedule",
                    "labelSelector": {"matchLabels": {"app": "web"}},
                    "matchLabelKeys": ["pod-template-hash"],
                    "minDomains": 3,
                }
            ],
            "tolerations": [
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
                {"key": "dedicated", "operator": "Equal", "value": "web", "effect": "NoSchedule"},
            ],
            "priority": 1000,
            "priorityClassName": "high",
            "preemptionPolicy": "PreemptLowerPriority",
            "schedulerName": "default-scheduler",
            "overhead": {"cpu": "10m", "memory": "16Mi"},
            "serviceAccountName": "web",
            "dnsPolicy": "ClusterFirst",
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
        },
        "status": {
            "phase": "Running",
            "conditions": _conditions(),
            "hostIP": "10.0.0.1",
            "podIP": "10.1.0.1",
            "podIPs": [{"ip": "10.1.0.1"}],
            "startTime": "2026-12-01T10:00:00Z",
            "qosClass": "Burstable",
            "containerStatuses": [_status("main", "500m", "512Mi"), _status("log", "50m", "64Mi")],
        },
    }
    if node:
        pod["spec"]["nodeName"] = node
    for path, value in changes.items():
        *parents, last = path.split("__")
        target = pod
        for part in parents:
            target = target.setdefault(part, {})
        if value is _DROP:
            target.pop(last, None)
        else:
            target[last] = value
    return pod


_DROP = object()


def pod_variants() -> list[Obj]:
    """Pods in every state a decision distinguishes."""
    pending = _conditions(
        PodScheduled={"status": "False", "reason": "Unschedulable", "message": "0/3 nodes are available"},
        Ready={"status": "False"},
    )
    resizing = [_status("main", "250m", "512Mi"), _status("log", "50m", "64Mi")]
    return [
        rich_pod(),
        rich_pod("pending", None, status__conditions=pending, status__phase="Pending"),
        rich_pod("resizing", status__containerStatuses=resizing, status__resize="InProgress"),
        rich_pod(
            "infeasible",
            status__containerStatuses=resizing,
            status__conditions=[
                *_conditions(),
                {"type": "PodResizePending", "status": "True", "reason": "Infeasible"},
            ],
        ),
        rich_pod(
            "daemon",
            metadata__ownerReferences=[
                {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "ds", "controller": True}
            ],
        ),
        rich_pod("mirror", metadata__annotations={"kubernetes.io/config.mirror": "x"}),
        rich_pod("leaving", metadata__deletionTimestamp="2026-12-01T11:00:00Z"),
        rich_pod("done", status__phase="Succeeded"),
        rich_pod("critical", spec__priorityClassName="system-cluster-critical"),
        rich_pod("protected", metadata__annotations={"jitnode.io/do-not-disrupt": "true"}),
        rich_pod(
            "starting", status__conditions=_conditions(Ready={"status": "False"}), status__startTime=_DROP
        ),
        rich_pod("pod-level", spec__resources={"requests": {"cpu": "2", "memory": "1Gi"}}),
        rich_pod("bad-quantity", spec__overhead={"cpu": "lots"}),
        rich_pod(
            "bad-affinity",
            spec__affinity={"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{}]}},
        ),
        rich_pod("bad-spec", spec__containers="not a list"),
    ]


def rich_node(name: str = "n1", **changes: Any) -> Obj:
    node: Obj = {
        "metadata": {
            "name": name,
            "uid": f"uid-{name}",
            "resourceVersion": "7",
            "creationTimestamp": "2026-12-01T09:00:00Z",
            "labels": {"topology.kubernetes.io/zone": "a", "node.kubernetes.io/instance-type": "m5.large"},
            "annotations": {
                "jitnode.io/disrupting": orjson.dumps(
                    {"reason": "Empty", "since": "2026-12-01T11:00:00Z", "replacements": []}
                ).decode(),
                "jitnode.io/do-not-disrupt": "true",
            },
            "finalizers": ["jitnode.io/termination"],
            "managedFields": _MANAGED,
        },
        "spec": {
            "providerID": "aws:///a/i-0123",
            "taints": [{"key": "jitnode.io/disrupted", "effect": "NoSchedule"}],
            "unschedulable": True,
        },
        "status": {
            "capacity": {"cpu": "2", "memory": "8Gi", "pods": "29"},
            "allocatable": {"cpu": "1930m", "memory": "7Gi", "pods": "29"},
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "lastHeartbeatTime": "2026-12-01T11:59:00Z",
                    "lastTransitionTime": "2026-12-01T09:01:00Z",
                },
                {"type": "MemoryPressure", "status": "False", "lastTransitionTime": "2026-12-01T09:01:00Z"},
            ],
            "images": [
                {"names": [f"registry.example.com/image-{i}:1"], "sizeBytes": 10**8} for i in range(40)
            ],
            "volumesInUse": ["kubernetes.io/csi/ebs^vol-1"],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {"kubeletVersion": "v1.31.0", "architecture": "amd64"},
        },
    }
    node.update(changes)
    return node


def _answer(reader: Callable[[Any], object], obj: object) -> object:
    try:
        return ("ok", reader(obj))
    except Exception as exc:  # the same error, naming the same field, on both
        return ("error", type(exc).__name__, str(exc))


def test_pod_drops_what_nobody_reads() -> None:
    slim = slim_pod(rich_pod())
    assert "managedFields" not in slim["metadata"]
    assert "generateName" not in slim["metadata"]
    assert "kubectl.kubernetes.io/last-applied-configuration" not in slim["metadata"]["annotations"]
    assert slim["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "name": "web-abc",
            "uid": "rs-uid",
            "controller": True,
        }
    ]
    assert "volumes" not in slim["spec"]
    assert "serviceAccountName" not in slim["spec"]
    assert slim["spec"]["containers"][0] == {
        "name": "main",
        "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"memory": "512Mi"}},
    }
    assert slim["spec"]["initContainers"][1]["restartPolicy"] == "Always"
    assert [c["type"] for c in slim["status"]["conditions"]] == ["Ready", "PodScheduled"]
    assert set(slim["status"]["conditions"][0]) == {"type", "status", "lastTransitionTime"}
    # Container statuses that repeat the spec's requests add nothing: none is kept.
    assert set(slim["status"]) == {"phase", "conditions", "startTime"}
    assert len(orjson.dumps(slim)) * 3 < len(orjson.dumps(rich_pod()))


def test_pod_keeps_a_resize_in_progress() -> None:
    resizing = next(p for p in pod_variants() if p["metadata"]["name"] == "resizing")
    slim = slim_pod(resizing)
    assert slim["status"]["containerStatuses"] == [
        {"name": "main", "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}}}
    ]
    assert slim["status"]["resize"] == "InProgress"


def test_node_keeps_conditions_and_capacity_drops_images() -> None:
    slim = slim_node(rich_node())
    assert "managedFields" not in slim["metadata"]
    assert set(slim["status"]) == {"capacity", "allocatable", "conditions", "nodeInfo"}
    assert slim["status"]["conditions"][0]["lastTransitionTime"] == "2026-12-01T09:01:00Z"
    assert slim["spec"] == rich_node()["spec"]
    assert slim["metadata"]["finalizers"] == ["jitnode.io/termination"]


def test_every_pod_decision_answers_the_same_on_the_slim_pod() -> None:
    for pod in pod_variants():
        slim = slim_pod(copy.deepcopy(pod))
        for name, reader in POD_READERS.items():
            assert _answer(reader, slim) == _answer(reader, pod), (pod["metadata"]["name"], name)


def test_every_node_decision_answers_the_same_on_the_slim_node() -> None:
    nodes = [rich_node(), rich_node("plain", spec={}), rich_node("bad", status={"allocatable": {"cpu": "x"}})]
    for node in nodes:
        slim = slim_node(copy.deepcopy(node))
        for name, reader in NODE_READERS.items():
            assert _answer(reader, slim) == _answer(reader, node), (node["metadata"]["name"], name)


def test_slimming_is_idempotent_and_leaves_the_input_alone() -> None:
    for pod in pod_variants():
        before = copy.deepcopy(pod)
        once = slim_pod(pod)
        assert pod == before
        assert slim_pod(once) == once
    node = rich_node()
    assert slim_node(slim_node(node)) == slim_node(node)


# Tracing: the fields the readers touch ---------------------------------------------------------


class _Traced(Mapping[str, Any]):
    """A read-only view of a JSON object that records the path of every key read."""

    def __init__(self, data: Mapping[str, Any], path: str, reads: set[str]) -> None:
        self._data = data
        self._path = path
        self._reads = reads

    def __getitem__(self, key: str) -> Any:
        path = f"{self._path}.{key}"
        self._reads.add(path)
        return _trace(self._data[key], path, self._reads)

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


class _TracedList(list[Any]):
    pass


def _trace(value: Any, path: str, reads: set[str]) -> Any:
    if isinstance(value, Mapping):
        return _Traced(value, path, reads)
    if isinstance(value, list):
        return _TracedList(_trace(v, f"{path}[]", reads) for v in value)
    return value


def _values(obj: Any, path: list[str]) -> list[Any]:
    """Every value at ``path`` (``[]`` steps into each list item); absent: none."""
    if not path:
        return [obj]
    step, rest = path[0], path[1:]
    if step.endswith("[]"):
        inner = obj.get(step[:-2]) if isinstance(obj, Mapping) else None
        items = inner if isinstance(inner, list) else []
        return [v for item in items for v in _values(item, rest)] if rest else items
    if isinstance(obj, Mapping) and step in obj:
        return _values(obj[step], rest)
    return []


def _split(path: str) -> list[str]:
    return path.strip(".").split(".")


# Read, but dropped only where the value cannot change an answer: container statuses repeating
# their container's requests (the equivalence tests above prove the answers equal).
REDUNDANT = ".status.containerStatuses"


def test_every_field_a_decision_reads_survives_slimming() -> None:
    """Run the readers on traced pods and nodes; each field read that the whole object holds must
    be in the slim one too (a reader that needs a dropped field fails here, by name)."""
    cases: list[tuple[Obj, Obj, dict[str, Callable[[Any], object]]]] = [
        (p, slim_pod(p), POD_READERS) for p in pod_variants()
    ]
    cases += [(n, slim_node(n), NODE_READERS) for n in (rich_node(), rich_node("plain", spec={}))]
    missing = []
    for whole, slim, readers in cases:
        for name, reader in readers.items():
            reads: set[str] = set()
            _answer(reader, _trace(whole, "", reads))
            for path in reads:
                steps = _split(path)
                if path.startswith(REDUNDANT):
                    continue
                held = [v for v in _values(whole, steps) if v is not None]  # null: as good as absent
                if held and not _values(slim, steps):
                    missing.append((whole["metadata"]["name"], name, path))
    assert not missing, missing
    # The tracer does see reads: a reader of startTime and of container requests was traced.
    reads = set()
    _answer(POD_READERS["pod_protection"], _trace(rich_pod(), "", reads))
    assert ".status.startTime" in reads


# Properties ------------------------------------------------------------------------------------

_names = st.sampled_from(["a", "b", "app", "tier", "pod-template-hash"])
_quantities = st.sampled_from(["100m", "1", "2Gi", "512Mi", "bad", 3])
_resources = st.dictionaries(st.sampled_from(["cpu", "memory", "nvidia.com/gpu"]), _quantities, max_size=3)
_containers = st.lists(
    st.fixed_dictionaries(
        {
            "name": st.sampled_from(["main", "side"]),
            "resources": st.fixed_dictionaries({"requests": _resources}),
        },
        optional={"env": st.just([{"name": "X", "value": "1"}]), "restartPolicy": st.just("Always")},
    ),
    max_size=3,
)
_pods = st.fixed_dictionaries(
    {
        "metadata": st.fixed_dictionaries(
            {"name": st.sampled_from(["p1", "p2"]), "namespace": st.sampled_from(["default", "x"])},
            optional={
                "labels": st.dictionaries(_names, _names, max_size=3),
                "uid": st.sampled_from(["u1", "u2"]),
                "deletionTimestamp": st.just("2026-12-01T00:00:00Z"),
                "managedFields": st.just(_MANAGED),
            },
        ),
        "spec": st.fixed_dictionaries(
            {"containers": _containers},
            optional={
                "initContainers": _containers,
                "nodeName": st.sampled_from(["n1", "n2"]),
                "overhead": _resources,
                "priority": st.integers(-5, 5),
                "nodeSelector": st.dictionaries(_names, _names, max_size=2),
            },
        ),
        "status": st.fixed_dictionaries(
            {},
            optional={
                "phase": st.sampled_from(["Pending", "Running", "Succeeded"]),
                "conditions": st.lists(
                    st.fixed_dictionaries(
                        {
                            "type": st.sampled_from(["Ready", "PodScheduled", "Initialized"]),
                            "status": st.sampled_from(["True", "False"]),
                        },
                        optional={
                            "reason": st.just("Unschedulable"),
                            "lastTransitionTime": st.just("2026-12-01T00:00:00Z"),
                        },
                    ),
                    max_size=3,
                ),
                "containerStatuses": st.lists(
                    st.fixed_dictionaries(
                        {
                            "name": st.sampled_from(["main", "side"]),
                            "resources": st.fixed_dictionaries({"requests": _resources}),
                        }
                    ),
                    max_size=2,
                ),
                "resize": st.just("Infeasible"),
            },
        ),
    }
)


@settings(max_examples=300, deadline=None)
@given(_pods)
def test_generated_pods_decide_alike_whole_and_slim(pod: Obj) -> None:
    slim = slim_pod(pod)
    assert slim_pod(slim) == slim
    for name, reader in POD_READERS.items():
        assert _answer(reader, slim) == _answer(reader, pod), name
