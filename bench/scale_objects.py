"""Realistic nodes and pods for the scale benchmark, as a real cluster's API server serves them.

A pod here is what a Deployment's replica looks like once it runs: two containers with env,
ports, probes and volume mounts, a projected service-account volume, the kubelet's full status
and the managedFields of the two writers: about 6 KB of JSON, as in issue 16's measurement.

The API server holding 150,000 of them must not need 150,000 private copies of what replicas
share: replicas of one Deployment share their spec, labels, owner and managedFields as nested
values (the store never mutates a stored object in place, so sharing is safe), and each pod owns
only what differs: its metadata, ``nodeName``, IPs, timestamps and container ids. Clients still
receive (and must decode) the whole 6 KB of every pod.
"""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Final

Obj = dict[str, Any]

NAMESPACES: Final = 50
REPLICAS_PER_DEPLOYMENT: Final = 25
INSTANCE_TYPE: Final = "m5.8xlarge"
ZONES: Final = ("us-east-1a", "us-east-1b", "us-east-1c")
# What the bench's pending pods select (the seed NodePool's requirement).
PENDING_SELECTOR: Final = {"intent": "apps"}
_ALPHABET: Final = "bcdfghjklmnpqrstvwxz2456789"


def rfc3339(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def node_name(index: int) -> str:
    return f"ip-10-{index // 65536}-{(index // 256) % 256}-{index % 256}.ec2.internal"


def node_object(index: int, now: float) -> Obj:
    """A Ready worker node (not jitnode's: no NodePool label) with room for 110 pods."""
    name = node_name(index)
    zone = ZONES[index % len(ZONES)]
    address = f"10.{index // 65536}.{(index // 256) % 256}.{index % 256}"
    stamp = rfc3339(now - 86_400)
    conditions = [
        {
            "type": kind,
            "status": "False",
            "lastHeartbeatTime": rfc3339(now),
            "lastTransitionTime": stamp,
            "reason": f"KubeletHasNo{kind}",
            "message": f"kubelet has no {kind}",
        }
        for kind in ("MemoryPressure", "DiskPressure", "PIDPressure")
    ]
    conditions.append(
        {
            "type": "Ready",
            "status": "True",
            "lastHeartbeatTime": rfc3339(now),
            "lastTransitionTime": stamp,
            "reason": "KubeletReady",
            "message": "kubelet is posting ready status",
        }
    )
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "uid": str(uuid.UUID(int=index + 1)),
            "creationTimestamp": stamp,
            "labels": {
                "beta.kubernetes.io/arch": "amd64",
                "beta.kubernetes.io/instance-type": INSTANCE_TYPE,
                "beta.kubernetes.io/os": "linux",
                "failure-domain.beta.kubernetes.io/region": "us-east-1",
                "failure-domain.beta.kubernetes.io/zone": zone,
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "node.kubernetes.io/instance-type": INSTANCE_TYPE,
                "topology.kubernetes.io/region": "us-east-1",
                "topology.kubernetes.io/zone": zone,
                "eks.amazonaws.com/nodegroup": "general",
            },
            "annotations": {
                "alpha.kubernetes.io/provided-node-ip": address,
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
        },
        "spec": {"providerID": f"aws:///{zone}/i-{index:017x}"},
        "status": {
            "capacity": {"cpu": "32", "memory": "130536Mi", "pods": "110", "ephemeral-storage": "83873772Ki"},
            "allocatable": {
                "cpu": "31850m",
                "memory": "127386Mi",
                "pods": "110",
                "ephemeral-storage": "76224326324",
            },
            "conditions": conditions,
            "addresses": [
                {"type": "InternalIP", "address": address},
                {"type": "Hostname", "address": name},
                {"type": "InternalDNS", "address": name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "architecture": "amd64",
                "bootID": str(uuid.UUID(int=(index + 1) << 64)),
                "containerRuntimeVersion": "containerd://1.7.11",
                "kernelVersion": "5.10.205-195.807.amzn2.x86_64",
                "kubeProxyVersion": "v1.31.0-eks-a737599",
                "kubeletVersion": "v1.31.0-eks-a737599",
                "machineID": f"ec2{index:029x}",
                "operatingSystem": "linux",
                "osImage": "Amazon Linux 2",
                "systemUUID": f"ec2{index:029x}",
            },
        },
    }


def _fields_v1(paths: list[str]) -> Obj:
    """A managedFields ``fieldsV1`` tree: every path segment a ``f:`` key, as the server writes it."""
    tree: Obj = {}
    for path in paths:
        node = tree
        for part in path.split("."):
            node = node.setdefault(f"f:{part}", {})
    return tree


def _container(name: str, image: str, port: int, cpu: str, memory: str, env: int) -> Obj:
    probe: Obj = {
        "httpGet": {"path": "/healthz", "port": port, "scheme": "HTTP"},
        "initialDelaySeconds": 5,
        "timeoutSeconds": 1,
        "periodSeconds": 10,
        "successThreshold": 1,
        "failureThreshold": 3,
    }
    return {
        "name": name,
        "image": image,
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
        "env": [
            {"name": f"{name.upper()}_SETTING_{i}", "value": f"value-{i}-for-{name}-with-some-length"}
            for i in range(env)
        ]
        + [
            {
                "name": "POD_NAME",
                "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}},
            },
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}},
        ],
        "resources": {
            "requests": {"cpu": cpu, "memory": memory},
            "limits": {"memory": memory},
        },
        "livenessProbe": probe,
        "readinessProbe": {**probe, "httpGet": {**probe["httpGet"], "path": "/ready"}},
        "volumeMounts": [
            {"name": "config", "mountPath": "/etc/app", "readOnly": True},
            {
                "name": "kube-api-access",
                "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                "readOnly": True,
            },
        ],
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "imagePullPolicy": "IfNotPresent",
    }


@dataclass
class Deployment:
    """What the replicas of one Deployment share (shared by reference in every pod)."""

    name: str
    namespace: str
    labels: Obj
    owner: list[Obj]
    managed: list[Obj]
    spec: Obj
    conditions: list[Obj]
    container_names: tuple[str, ...]
    images: tuple[str, ...]


def deployment(index: int, now: float) -> Deployment:
    namespace = f"team-{index % NAMESPACES}"
    name = f"service-{index}"
    template_hash = f"{index * 7919 % 0xFFFFFFFFFF:010x}"[:10]
    labels = {"app": name, "pod-template-hash": template_hash, "team": namespace, "tier": "backend"}
    rs_uid = str(uuid.UUID(int=(index + 1) << 32))
    owner = [
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "name": f"{name}-{template_hash}",
            "uid": rs_uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    containers = [
        _container(
            "app",
            f"123456789012.dkr.ecr.us-east-1.amazonaws.com/{name}:v1.{index % 40}",
            8080,
            "100m",
            "128Mi",
            8,
        ),
        _container(
            "proxy", "public.ecr.aws/appmesh/aws-appmesh-envoy:v1.27.2.0-prod", 9901, "50m", "64Mi", 3
        ),
    ]
    spec: Obj = {
        "volumes": [
            {"name": "config", "configMap": {"name": f"{name}-config", "defaultMode": 420}},
            {
                "name": "kube-api-access",
                "projected": {
                    "sources": [
                        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                        {
                            "configMap": {
                                "name": "kube-root-ca.crt",
                                "items": [{"key": "ca.crt", "path": "ca.crt"}],
                            }
                        },
                        {
                            "downwardAPI": {
                                "items": [
                                    {
                                        "path": "namespace",
                                        "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"},
                                    }
                                ]
                            }
                        },
                    ],
                    "defaultMode": 420,
                },
            },
        ],
        "containers": containers,
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst",
        "serviceAccountName": name,
        "serviceAccount": name,
        "securityContext": {"runAsNonRoot": True, "fsGroup": 2000},
        "schedulerName": "default-scheduler",
        "tolerations": [
            {
                "key": f"node.kubernetes.io/{t}",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 300,
            }
            for t in ("not-ready", "unreachable")
        ],
        "priority": 0,
        "enableServiceLinks": True,
        "preemptionPolicy": "PreemptLowerPriority",
    }
    stamp = rfc3339(now - 3_600)
    managed = [
        {
            "manager": "kube-controller-manager",
            "operation": "Update",
            "apiVersion": "v1",
            "time": stamp,
            "fieldsType": "FieldsV1",
            "fieldsV1": _fields_v1(
                [
                    "metadata.generateName",
                    "metadata.labels.app",
                    "metadata.labels.pod-template-hash",
                    "metadata.labels.team",
                    "metadata.labels.tier",
                    f'metadata.ownerReferences.k:{{"uid":"{rs_uid}"}}',
                    'spec.containers.k:{"name":"app"}.env',
                    'spec.containers.k:{"name":"app"}.image',
                    'spec.containers.k:{"name":"app"}.livenessProbe',
                    'spec.containers.k:{"name":"app"}.readinessProbe',
                    'spec.containers.k:{"name":"app"}.resources',
                    'spec.containers.k:{"name":"proxy"}.env',
                    'spec.containers.k:{"name":"proxy"}.image',
                    "spec.dnsPolicy",
                    "spec.restartPolicy",
                    "spec.securityContext",
                    'spec.volumes.k:{"name":"config"}.configMap',
                ]
            ),
        },
        {
            "manager": "kubelet",
            "operation": "Update",
            "apiVersion": "v1",
            "time": stamp,
            "fieldsType": "FieldsV1",
            "subresource": "status",
            "fieldsV1": _fields_v1(
                [
                    'status.conditions.k:{"type":"ContainersReady"}.status',
                    'status.conditions.k:{"type":"Initialized"}.status',
                    'status.conditions.k:{"type":"Ready"}.status',
                    "status.containerStatuses",
                    "status.hostIP",
                    "status.hostIPs",
                    "status.phase",
                    "status.podIP",
                    'status.podIPs.k:{"ip":"10.0.0.1"}.ip',
                    "status.startTime",
                ]
            ),
        },
    ]
    conditions = [
        {"type": kind, "status": "True", "lastProbeTime": None, "lastTransitionTime": stamp}
        for kind in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")
    ]
    return Deployment(
        name=name,
        namespace=namespace,
        labels=labels,
        owner=owner,
        managed=managed,
        spec=spec,
        conditions=conditions,
        container_names=("app", "proxy"),
        images=(containers[0]["image"], containers[1]["image"]),
    )


@dataclass
class PodFactory:
    """Makes running replicas bound to nodes, and their status updates, reproducibly."""

    nodes: int
    now: float = field(default_factory=time.time)
    seed: int = 0
    _deployments: list[Deployment] = field(default_factory=list)
    _made: int = 0

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def _deployment(self, index: int) -> Deployment:
        wanted = index // REPLICAS_PER_DEPLOYMENT
        while len(self._deployments) <= wanted:
            self._deployments.append(deployment(len(self._deployments), self.now))
        return self._deployments[wanted]

    def _suffix(self) -> str:
        return "".join(self._rng.choice(_ALPHABET) for _ in range(5))

    def running(self, index: int | None = None) -> Obj:
        """The next running pod (``index`` picks its Deployment and node; default: the next one)."""
        if index is None:
            index = self._made
        self._made += 1
        d = self._deployment(index)
        node = index % self.nodes
        host = f"10.{node // 65536}.{(node // 256) % 256}.{node % 256}"
        pod_ip = f"10.{100 + (self._made // 65536) % 100}.{(self._made // 256) % 256}.{self._made % 256}"
        started = rfc3339(self.now - 3_000)
        uid = str(uuid.UUID(int=(1 << 100) + self._made))
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"{d.name}-{d.labels['pod-template-hash']}-{self._suffix()}-{self._made}",
                "generateName": f"{d.name}-{d.labels['pod-template-hash']}-",
                "namespace": d.namespace,
                "uid": uid,
                "creationTimestamp": started,
                "labels": d.labels,
                "ownerReferences": d.owner,
                "managedFields": d.managed,
            },
            "spec": {**d.spec, "nodeName": node_name(node)},
            "status": self.status(d, host, pod_ip, started, uid, restarts=0),
        }

    @staticmethod
    def status(d: Deployment, host: str, pod_ip: str, started: str, uid: str, restarts: int) -> Obj:
        return {
            "phase": "Running",
            "conditions": d.conditions,
            "hostIP": host,
            "hostIPs": [{"ip": host}],
            "podIP": pod_ip,
            "podIPs": [{"ip": pod_ip}],
            "startTime": started,
            "containerStatuses": [
                {
                    "name": name,
                    "state": {"running": {"startedAt": started}},
                    "lastState": {},
                    "ready": True,
                    "restartCount": restarts,
                    "image": image,
                    "imageID": f"{image.split(':')[0]}@sha256:{uid.replace('-', '')}{uid.replace('-', '')}",
                    "containerID": f"containerd://{uid.replace('-', '')}{name}{restarts}",
                    "started": True,
                }
                for name, image in zip(d.container_names, d.images, strict=True)
            ],
            "qosClass": "Burstable",
        }

    def restarted(self, pod: Obj) -> Obj:
        """``pod`` after a container restart: a new status (what churn's status updates write)."""
        status = pod["status"]
        restarts = int(status["containerStatuses"][0]["restartCount"]) + 1
        d = self._deployment_of(pod)
        new_status = self.status(
            d, status["hostIP"], status["podIP"], rfc3339(time.time()), pod["metadata"]["uid"], restarts
        )
        return {**pod, "metadata": dict(pod["metadata"]), "status": new_status}

    def _deployment_of(self, pod: Obj) -> Deployment:
        app = pod["metadata"]["labels"]["app"]
        return self._deployments[int(app.rsplit("-", 1)[1])]


def pending_pod(index: int, now: float) -> Obj:
    """A pod the scheduler found no room for (``PodScheduled=False``, ``Unschedulable``)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"pending-{index}",
            "namespace": "default",
            "uid": str(uuid.UUID(int=(1 << 120) + index)),
            "creationTimestamp": rfc3339(now),
            "labels": {"app": "pending"},
        },
        "spec": {
            "containers": [
                {
                    "name": "inflate",
                    "image": "public.ecr.aws/eks-distro/kubernetes/pause:3.2",
                    "resources": {"requests": {"cpu": "1", "memory": "1536Mi"}},
                }
            ],
            "nodeSelector": dict(PENDING_SELECTOR),
            "schedulerName": "default-scheduler",
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "priority": 0,
        },
        "status": {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": "0/5000 nodes are available: 5000 node(s) didn't match Pod's node affinity.",
                    "lastProbeTime": None,
                    "lastTransitionTime": rfc3339(now),
                }
            ],
            "qosClass": "Burstable",
        },
    }
