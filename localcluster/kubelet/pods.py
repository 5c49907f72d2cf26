"""The pod statuses a kubelet posts, and the pod IPs it hands out.

Pure. A started pod looks as it does on a real node once every container runs and passes its
probes: phase Running, the four standard conditions True, one running container status per
container (init containers completed), a pod IP and the host IP.
"""

from __future__ import annotations

import hashlib
import ipaddress
from datetime import datetime
from typing import Any, Final

from localcluster.kubelet.node import timestamp

Obj = dict[str, Any]

# Pod addresses come from the carrier-grade NAT range, as with the VPC CNI's custom networking,
# so they can never collide with the nodes' VPC addresses.
POD_NETWORK: Final = ipaddress.IPv4Network("100.64.0.0/10")
TERMINAL_PHASES: Final = frozenset({"Succeeded", "Failed"})


class PodAddresses:
    """Hands out pod IPs from :data:`POD_NETWORK`, one at a time, never twice while held."""

    def __init__(self) -> None:
        self._next = 1
        self._held: dict[str, str] = {}

    def acquire(self, pod_uid: str) -> str:
        held = self._held.get(pod_uid)
        if held is None:
            held = str(POD_NETWORK[self._next % (POD_NETWORK.num_addresses - 2) + 1])
            self._next += 1
            self._held[pod_uid] = held
        return held

    def release(self, pod_uid: str) -> None:
        self._held.pop(pod_uid, None)


def is_started(pod: Obj) -> bool:
    """True when the pod already shows Running and Ready (nothing left for the kubelet to do)."""
    status = pod.get("status") or {}
    if status.get("phase") != "Running":
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


def is_terminal(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in TERMINAL_PHASES


def uses_host_network(pod: Obj) -> bool:
    return bool((pod.get("spec") or {}).get("hostNetwork"))


def _container_id(pod_uid: str, name: str) -> str:
    return "containerd://" + hashlib.sha256(f"{pod_uid}/{name}".encode()).hexdigest()


def _image_id(image: str) -> str:
    repository = image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
    return f"{repository}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"


def running_status(pod: Obj, host_ip: str, pod_ip: str, now: datetime) -> Obj:
    """The status patch that makes ``pod`` Running and Ready, started at ``now``."""
    spec = pod.get("spec") or {}
    uid = str((pod.get("metadata") or {}).get("uid") or "")
    started = timestamp(now)
    ip = host_ip if uses_host_network(pod) else pod_ip
    conditions = [
        {"type": kind, "status": "True", "lastProbeTime": None, "lastTransitionTime": started}
        for kind in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")
    ]
    containers = [
        {
            "name": c["name"],
            "image": c.get("image", ""),
            "imageID": _image_id(c.get("image", "")),
            "containerID": _container_id(uid, c["name"]),
            "ready": True,
            "started": True,
            "restartCount": 0,
            "state": {"running": {"startedAt": started}},
        }
        for c in spec.get("containers") or []
    ]
    status: Obj = {
        "phase": "Running",
        "conditions": conditions,
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "startTime": started,
        "containerStatuses": containers,
    }
    init = spec.get("initContainers") or []
    if init:
        status["initContainerStatuses"] = [
            {
                "name": c["name"],
                "image": c.get("image", ""),
                "imageID": _image_id(c.get("image", "")),
                "containerID": _container_id(uid, c["name"]),
                "ready": True,
                "started": False,
                "restartCount": 0,
                "state": {
                    "terminated": {
                        "exitCode": 0,
                        "reason": "Completed",
                        "startedAt": started,
                        "finishedAt": started,
                    }
                },
            }
            for c in init
        ]
    return {"status": status}
