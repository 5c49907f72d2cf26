"""Server-assigned metadata and per-kind defaults: pure helpers for the write path."""

from __future__ import annotations

import re
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

Obj = dict[str, Any]

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
# Kubernetes' generateName alphabet: no vowels (no accidental words), no look-alike digits.
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
LABEL_NAMES = frozenset({"namespaces"})  # resources whose names must be DNS labels


def now_rfc3339() -> str:
    """Timestamps as Kubernetes writes them: UTC, second precision, ``Z`` suffix."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_micro() -> str:
    """``MicroTime`` fields (Lease renewTime, events.k8s.io eventTime)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_uid() -> str:
    return str(uuid.uuid4())


def generated_name(prefix: str) -> str:
    """``generateName`` plus five random characters, as the real server does."""
    return prefix + "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(5))


def name_problems(plural: str, name: Any) -> list[tuple[str, str]]:
    """Validation causes for ``metadata.name`` (empty when it is fine)."""
    if not isinstance(name, str) or not name:
        return [("metadata.name", "Required value: name or generateName is required")]
    pattern = _DNS_LABEL if plural in LABEL_NAMES else _DNS_SUBDOMAIN
    if not pattern.match(name):
        return [
            (
                "metadata.name",
                f"Invalid value: {name!r}: a lowercase RFC 1123 subdomain must consist of lower case "
                "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
            )
        ]
    return []


def spec_of(obj: Obj) -> Obj:
    """Everything but metadata and status: what ``generation`` tracks."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "kind", "apiVersion")}


def is_ready(pod: Obj) -> bool:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False


def is_active(pod: Obj) -> bool:
    """Counted by its ReplicaSet: not terminal and not being deleted."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not pod.get("metadata", {}).get("deletionTimestamp")


def controller_of(obj: Obj) -> dict[str, Any] | None:
    for ref in obj.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return dict(ref)
    return None


def qos_class(pod: Obj) -> str:
    """Pod QoS class from container requests and limits (Guaranteed, Burstable, BestEffort)."""
    containers = list((pod.get("spec") or {}).get("containers") or [])
    if not containers:
        return "BestEffort"
    any_set = False
    guaranteed = True
    for c in containers:
        res = c.get("resources") or {}
        requests, limits = res.get("requests") or {}, res.get("limits") or {}
        if requests or limits:
            any_set = True
        for r in ("cpu", "memory"):
            limit = limits.get(r)
            if limit is None or requests.get(r, limit) != limit:
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def default_pod(pod: Obj) -> None:
    """The spec defaults real clients read back (schedulers filter on ``schedulerName``)."""
    spec = pod.setdefault("spec", {})
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("priority", 0)
    spec.setdefault("enableServiceLinks", True)
    for c in spec.get("containers") or []:
        if isinstance(c, dict):
            c.setdefault("terminationMessagePath", "/dev/termination-log")
            c.setdefault("imagePullPolicy", "IfNotPresent")
            limits = (c.get("resources") or {}).get("limits")
            if limits:  # requests default to limits
                requests = c["resources"].setdefault("requests", {})
                for r, v in limits.items():
                    requests.setdefault(r, v)
    pod["status"] = {"phase": "Pending", "qosClass": qos_class(pod)}


def default_workload(obj: Obj, *, deployment: bool) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    if deployment:
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        spec.setdefault("strategy", {"type": "RollingUpdate"})
        if spec["strategy"].get("type") == "RollingUpdate":
            spec["strategy"].setdefault("rollingUpdate", {"maxSurge": "25%", "maxUnavailable": "25%"})
    template = spec.get("template")
    if isinstance(template, dict):
        tspec = template.setdefault("spec", {})
        tspec.setdefault("restartPolicy", "Always")
        tspec.setdefault("schedulerName", "default-scheduler")
        tspec.setdefault("terminationGracePeriodSeconds", 30)
        tspec.setdefault("dnsPolicy", "ClusterFirst")


def workload_problems(obj: Obj) -> list[tuple[str, str]]:
    """A Deployment or ReplicaSet needs a selector that selects its own template."""
    spec = obj.get("spec") or {}
    selector = spec.get("selector")
    if not isinstance(selector, dict) or not (
        selector.get("matchLabels") or selector.get("matchExpressions")
    ):
        return [("spec.selector", "Required value")]
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return [
                (
                    "spec.template.metadata.labels",
                    f"Invalid value: {labels!r}: `selector` does not match template `labels`",
                )
            ]
    replicas = spec.get("replicas")
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        return [("spec.replicas", f"Invalid value: {replicas!r}: must be greater than or equal to 0")]
    return []
