"""Informer memory per pod, whole objects against slim ones, and plan inputs walked or indexed.

Each variant runs in a fresh process: it lists N realistic pods (two containers with env, ports,
probes and mounts, managedFields, the kubelet's full status: ~6.7 KB of JSON each) on N/10 nodes
through a real :class:`shared.informer.Informer` (paged, 500 a page, from an in-memory stub of the
list call) into the extender's handlers (cache and demand tracker) or the launcher's pod index,
and prints the resident memory the pods added (RSS, KiB per pod) and the list's decode time.
Then, in the launcher's variant, the time of the plan inputs that read bound pods (daemonset
overhead, node rooms, occupied zones, topology view), walked as before issue 16 and from the
index, with no pending pod constrained; and a disruption round's read of every node's pods, the
first one and the next with nothing changed. List times include making the pods' JSON.

    python bench/slim_cache_bench.py [--pods 20000] [--variants extender-slim,launcher-slim]

Lists freeze each page out of the garbage collector's reach as the services do
(``shared.informer.freeze_listed_pages``); ``JITNODE_BENCH_NO_FREEZE=1`` measures without it.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import resource
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

Obj = dict[str, Any]
_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_kib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE / 1024


def realistic_pod(i: int, node: str) -> Obj:
    app = f"app-{i % 200}"
    rs = f"{app}-7d9f8c6b5"
    ts = "2026-12-01T10:00:00Z"
    env = [{"name": f"VAR_{k}", "value": f"value-{k}-{i % 7}"} for k in range(8)]
    probe = {
        "httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"},
        "initialDelaySeconds": 5,
        "timeoutSeconds": 1,
        "periodSeconds": 10,
        "successThreshold": 1,
        "failureThreshold": 3,
    }

    def container(name: str, cpu: str, memory: str) -> Obj:
        return {
            "name": name,
            "image": f"registry.example.com/{app}/{name}:1.2.{i % 10}",
            "imagePullPolicy": "IfNotPresent",
            "command": ["/bin/server"],
            "args": ["--port=8080", "--log-level=info"],
            "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
            "env": env,
            "resources": {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": memory}},
            "volumeMounts": [
                {"name": "config", "mountPath": "/etc/config", "readOnly": True},
                {
                    "name": "token",
                    "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                    "readOnly": True,
                },
            ],
            "livenessProbe": probe,
            "readinessProbe": probe,
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File",
            "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True},
        }

    containers = [container("main", "250m", "256Mi"), container("sidecar", "50m", "64Mi")]
    managed: list[Obj] = [
        {
            "manager": manager,
            "operation": "Update",
            "apiVersion": "v1",
            "time": ts,
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:" + part: {"f:a": {}, "f:b": {}, "f:c": {}} for part in ("metadata", "spec", "status")
            },
        }
        for manager in ("kube-controller-manager", "kubelet")
    ]
    uid = str(uuid.UUID(int=(1 << 100) + i))
    return {
        "metadata": {
            "name": f"{rs}-{i:06x}",
            "generateName": f"{rs}-",
            "namespace": f"team-{i % 20}",
            "uid": uid,
            "resourceVersion": str(1000 + i),
            "creationTimestamp": ts,
            "labels": {"app": app, "pod-template-hash": "7d9f8c6b5", "team": str(i % 20)},
            "annotations": {"kubectl.kubernetes.io/restartedAt": ts},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": rs,
                    "uid": f"ffffffff-0000-0000-0000-{i % 200:012d}",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
            "managedFields": managed,
        },
        "spec": {
            "volumes": [
                {"name": "config", "configMap": {"name": f"{app}-config", "defaultMode": 420}},
                {"name": "token", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}},
            ],
            "containers": containers,
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default",
            "schedulerName": "default-scheduler",
            "nodeName": node,
            "tolerations": [
                {
                    "key": "node.kubernetes.io/not-ready",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                },
                {
                    "key": "node.kubernetes.io/unreachable",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                },
            ],
            "priority": 0,
            "enableServiceLinks": True,
            "preemptionPolicy": "PreemptLowerPriority",
        },
        "status": {
            "phase": "Running",
            "conditions": [
                {"type": t, "status": "True", "lastProbeTime": None, "lastTransitionTime": ts}
                for t in (
                    "PodReadyToStartContainers",
                    "Initialized",
                    "Ready",
                    "ContainersReady",
                    "PodScheduled",
                )
            ],
            "hostIP": "10.0.1.2",
            "podIP": f"10.1.{i // 250 % 250}.{i % 250}",
            "podIPs": [{"ip": f"10.1.{i // 250 % 250}.{i % 250}"}],
            "startTime": ts,
            "qosClass": "Burstable",
            "containerStatuses": [
                {
                    "name": c["name"],
                    "state": {"running": {"startedAt": ts}},
                    "lastState": {},
                    "ready": True,
                    "restartCount": 0,
                    "image": c["image"],
                    "imageID": "registry.example.com/x@sha256:" + "ab" * 32,
                    "containerID": "containerd://" + f"{i:064x}",
                    "started": True,
                    "resources": {"requests": dict(c["resources"]["requests"])},
                }
                for c in containers
            ],
        },
    }


def node_object(i: int) -> Obj:
    return {
        "metadata": {
            "name": f"node-{i}",
            "labels": {"topology.kubernetes.io/zone": "abc"[i % 3], "jitnode.io/nodepool": "default"},
        },
        "spec": {},
        "status": {
            "allocatable": {"cpu": "32", "memory": "128Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


class _Content:
    async def iter_any(self) -> Any:
        await asyncio.Event().wait()
        yield b""


class _Response:
    """What the informer reads of an aiohttp response."""

    status = 200

    def __init__(self, body: bytes) -> None:
        self._body = body
        self.content = _Content()

    async def read(self) -> bytes:
        body, self._body = self._body, b""
        return body

    def release(self) -> None:
        pass


class _PagedList:
    """A list call answering pages of pre-encoded pods, as the API server pages them."""

    def __init__(self, pods: int, nodes: int) -> None:
        self._pods = pods
        self._nodes = nodes

    async def __call__(self, **kwargs: Any) -> _Response:
        if kwargs.get("watch"):
            return _Response(b"")
        start = int(kwargs.get("_continue") or 0)
        end = min(self._pods, start + int(kwargs["limit"]))
        page = [realistic_pod(i, f"node-{i % self._nodes}") for i in range(start, end)]
        meta = {"resourceVersion": "1"} | ({"continue": str(end)} if end < self._pods else {})
        return _Response(orjson.dumps({"metadata": meta, "items": page}))


async def _list(handler: Any, pods: int, nodes: int, slim: bool) -> tuple[float, float, Any]:
    from shared.informer import Informer
    from shared.slim import slim_pod

    informer = Informer(_PagedList(pods, nodes), handler, name="pods", transform=slim_pod if slim else None)
    gc.collect()
    before = rss_kib()
    started = time.perf_counter()
    informer.start()
    await informer.wait_synced()
    elapsed = time.perf_counter() - started
    await informer.stop()
    gc.collect()
    return (rss_kib() - before) / pods, elapsed, informer


def _walk(store: Mapping[str, Obj]) -> dict[str, list[Obj]]:
    out: dict[str, list[Obj]] = {}
    for pod in store.values():
        out.setdefault(pod["spec"]["nodeName"], []).append(pod)
    return out


def _inputs_time(
    nodes: Mapping[str, Obj], by_node: Mapping[str, Sequence[Obj]], index: Any
) -> tuple[float, float]:
    from launcher.provisioning.inputs import (
        daemonset_overhead,
        indexed_topology_view,
        node_rooms,
        occupied_zones,
        topology_view,
    )

    started = time.perf_counter()
    daemonset_overhead(nodes, by_node)
    node_rooms(nodes, by_node)
    occupied_zones(nodes, by_node)
    topology_view(nodes, by_node, {})
    walked = time.perf_counter() - started
    started = time.perf_counter()
    daemonset_overhead(nodes, index.daemons_by_node())
    node_rooms(nodes, index.by_node(), index.requested)
    occupied_zones(nodes, index.repelling_by_node())
    indexed_topology_view(nodes, index, {})
    return walked, time.perf_counter() - started


def _disruption_time(nodes: Mapping[str, Obj], index: Any) -> tuple[float, float]:
    """A disruption round's read of every node's pods: the first (all read), and the next with
    nothing changed (all reused)."""
    from datetime import UTC, datetime

    from launcher.disruption.inputs import NodePodsCache

    cache = NodePodsCache(index)
    now = datetime.now(UTC)
    times = []
    for _ in range(2):
        started = time.perf_counter()
        for name in nodes:
            cache.get(name, now)
        times.append(time.perf_counter() - started)
    return times[0], times[1]


def child(variant: str, pods: int, node_count: int) -> None:
    from extender.cache import ClusterCache, PodEvents
    from extender.demand import DemandTracker
    from launcher.podindex import PodIndex
    from shared.informer import Fanout, freeze_listed_pages

    if os.environ.get("JITNODE_BENCH_NO_FREEZE") != "1":  # the services' entry points freeze pages
        freeze_listed_pages()
    slim = variant.endswith("slim")
    if variant.startswith("extender"):
        handler = Fanout(PodEvents(ClusterCache()), DemandTracker())
        per_pod, elapsed, _ = asyncio.run(_list(handler, pods, node_count, slim))
        print(
            orjson.dumps(
                {"variant": variant, "kib_per_pod": round(per_pod, 2), "list_s": round(elapsed, 2)}
            ).decode()
        )
        return
    index = PodIndex()
    per_pod, elapsed, informer = asyncio.run(_list(index, pods, node_count, slim))
    nodes = {f"node-{i}": node_object(i) for i in range(node_count)}
    walked, indexed = _inputs_time(nodes, _walk(informer.store()), index)
    cold, warm = _disruption_time(nodes, index)
    print(
        orjson.dumps(
            {
                "variant": variant,
                "kib_per_pod": round(per_pod, 2),
                "list_s": round(elapsed, 2),
                "inputs_walked_ms": round(walked * 1000, 1),
                "inputs_indexed_ms": round(indexed * 1000, 1),
                "round_cold_ms": round(cold * 1000, 1),
                "round_warm_ms": round(warm * 1000, 1),
            }
        ).decode()
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pods", type=int, default=20_000)
    parser.add_argument("--nodes", type=int, default=0, help="default: a tenth of --pods")
    parser.add_argument(
        "--variants",
        default="extender-whole,extender-slim,launcher-whole,launcher-slim",
        help="comma-separated",
    )
    parser.add_argument("--child", default="")
    args = parser.parse_args()
    nodes = args.nodes or max(1, args.pods // 10)
    if args.child:
        child(args.child, args.pods, nodes)
        return
    print(f"{args.pods} realistic pods on {nodes} nodes")
    print(
        f"{'variant':<16} {'KiB/pod':>8} {'list s':>7} {'inputs walked ms':>17} {'indexed ms':>11}"
        f" {'round cold ms':>14} {'warm ms':>8}"
    )
    for variant in args.variants.split(","):
        out = subprocess.run(
            [sys.executable, __file__, "--child", variant, "--pods", str(args.pods), "--nodes", str(nodes)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        row = orjson.loads(out.strip().splitlines()[-1])
        print(
            f"{variant:<16} {row['kib_per_pod']:>8} {row['list_s']:>7} "
            f"{row.get('inputs_walked_ms', ''):>17} {row.get('inputs_indexed_ms', ''):>11}"
            f" {row.get('round_cold_ms', ''):>14} {row.get('round_warm_ms', ''):>8}"
        )
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"largest child peak RSS: {peak:.0f} MiB")


if __name__ == "__main__":
    main()
