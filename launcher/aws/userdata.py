"""Render the user data that joins an instance to the cluster with its NodePool's labels and taints.

Pure functions, one per AMI family, in the formats the EKS AMIs read:

- AL2023: a MIME multipart document with an ``application/node.eks.aws`` part holding a nodeadm
  ``NodeConfig`` (``node.eks.aws/v1alpha1``): cluster name, endpoint, CA and service CIDR, the
  kubelet config (max pods, reservations) and kubelet flags ``--node-labels`` and
  ``--register-with-taints``. The NodeClass's own ``userData`` is merged as further MIME parts
  before ours, as EKS does, so nodeadm applies our NodeConfig last.
- AL2: a shell script calling ``/etc/eks/bootstrap.sh`` with ``--kubelet-extra-args``; custom user
  data runs first, in its own MIME part.
- Bottlerocket: TOML ``[settings.kubernetes]``, merged over the custom TOML.
- Custom: the NodeClass's user data verbatim (the AMI bootstraps itself).

Output is deterministic (sorted labels, a fixed MIME boundary), so the launch template's content
hash changes only when the content does.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import shlex
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import yaml

from shared.errors import FieldError
from shared.resources import EMPTY, Resources
from shared.taints import Taint

NODEADM_CONTENT_TYPE: Final = "application/node.eks.aws"
NODEADM_API_VERSION: Final = "node.eks.aws/v1alpha1"
SHELL_CONTENT_TYPE: Final = "text/x-shellscript"
CLOUD_CONFIG_CONTENT_TYPE: Final = "text/cloud-config"
BOOTSTRAP_SCRIPT: Final = "/etc/eks/bootstrap.sh"
DEFAULT_BOUNDARY: Final = "//"


@dataclass(frozen=True)
class ClusterInfo:
    """What a node needs to find and trust the API server (``certificate_authority`` in base64)."""

    name: str
    endpoint: str
    certificate_authority: str
    cidr: str = "10.100.0.0/16"
    dns_cluster_ip: str | None = None


@dataclass(frozen=True)
class NodeSettings:
    """Per-node kubelet settings: from the NodePool (labels, taints) and NodeClass (kubelet)."""

    labels: Mapping[str, str] = field(default_factory=dict)
    taints: Sequence[Taint] = ()
    max_pods: int | None = None
    kube_reserved: Resources = EMPTY
    system_reserved: Resources = EMPTY
    eviction_hard: Mapping[str, str] = field(default_factory=dict)


def label_flag(labels: Mapping[str, str]) -> str | None:
    if not labels:
        return None
    return "--node-labels=" + ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def taint_flag(taints: Sequence[Taint]) -> str | None:
    if not taints:
        return None
    return "--register-with-taints=" + ",".join(str(t) for t in taints)


def nodeconfig(cluster: ClusterInfo, node: NodeSettings) -> dict[str, Any]:
    """The nodeadm NodeConfig object (before YAML)."""
    kubelet_config: dict[str, Any] = {}
    if node.max_pods is not None:
        kubelet_config["maxPods"] = node.max_pods
    if node.kube_reserved:
        kubelet_config["kubeReserved"] = node.kube_reserved.to_api()
    if node.system_reserved:
        kubelet_config["systemReserved"] = node.system_reserved.to_api()
    if node.eviction_hard:
        kubelet_config["evictionHard"] = dict(sorted(node.eviction_hard.items()))
    if cluster.dns_cluster_ip:
        kubelet_config["clusterDNS"] = [cluster.dns_cluster_ip]
    flags = [f for f in (label_flag(node.labels), taint_flag(node.taints)) if f]
    kubelet: dict[str, Any] = {}
    if kubelet_config:
        kubelet["config"] = kubelet_config
    if flags:
        kubelet["flags"] = flags
    spec: dict[str, Any] = {
        "cluster": {
            "name": cluster.name,
            "apiServerEndpoint": cluster.endpoint,
            "certificateAuthority": cluster.certificate_authority,
            "cidr": cluster.cidr,
        }
    }
    if kubelet:
        spec["kubelet"] = kubelet
    return {"apiVersion": NODEADM_API_VERSION, "kind": "NodeConfig", "spec": spec}


@dataclass(frozen=True)
class MimePart:
    content_type: str
    body: str


def custom_parts(user_data: str | None) -> list[MimePart]:
    """The NodeClass's user data as MIME parts: its own parts if multipart, else one part."""
    if not user_data or not user_data.strip():
        return []
    head = user_data.lstrip()[:4096].lower()
    if head.startswith(("mime-version:", "content-type:")) and "multipart/" in head:
        message = email.message_from_string(user_data.lstrip(), policy=email.policy.compat32)
        parts: list[MimePart] = []
        for index, part in enumerate(p for p in message.walk() if not p.is_multipart()):
            payload = part.get_payload(decode=True)
            if not isinstance(payload, bytes):
                raise FieldError(f"spec.userData.parts[{index}]", "has no payload")
            try:
                body = payload.decode(part.get_content_charset() or "utf-8")
            except (UnicodeDecodeError, LookupError) as exc:
                raise FieldError(f"spec.userData.parts[{index}]", "is not text") from exc
            parts.append(MimePart(part.get_content_type(), body))
        return parts
    stripped = user_data.lstrip()
    if NODEADM_API_VERSION in stripped[:4096] and "NodeConfig" in stripped:
        return [MimePart(NODEADM_CONTENT_TYPE, user_data)]
    if stripped.startswith("#cloud-config"):
        return [MimePart(CLOUD_CONFIG_CONTENT_TYPE, user_data)]
    return [MimePart(SHELL_CONTENT_TYPE, user_data)]


def mime_document(parts: Sequence[MimePart]) -> str:
    """A ``multipart/mixed`` document; the boundary is fixed unless a body contains it."""
    boundary = DEFAULT_BOUNDARY
    if any(f"--{boundary}" in p.body for p in parts):
        digest = hashlib.sha256("".join(p.body for p in parts).encode()).hexdigest()[:24]
        boundary = f"jitnode-{digest}"
    lines = ["MIME-Version: 1.0", f'Content-Type: multipart/mixed; boundary="{boundary}"', ""]
    for part in parts:
        charset = '; charset="us-ascii"' if part.content_type.startswith("text/") else ""
        body = part.body if part.body.endswith("\n") else part.body + "\n"
        lines += [f"--{boundary}", f"Content-Type: {part.content_type}{charset}", "", body]
    lines.append(f"--{boundary}--")
    return "\n".join(lines) + "\n"


def al2023_user_data(cluster: ClusterInfo, node: NodeSettings, custom: str | None = None) -> str:
    document = "---\n" + yaml.safe_dump(nodeconfig(cluster, node), sort_keys=False, default_flow_style=False)
    return mime_document([*custom_parts(custom), MimePart(NODEADM_CONTENT_TYPE, document)])


def al2_user_data(cluster: ClusterInfo, node: NodeSettings, custom: str | None = None) -> str:
    extra = [f for f in (label_flag(node.labels), taint_flag(node.taints)) if f]
    args = [
        BOOTSTRAP_SCRIPT,
        shlex.quote(cluster.name),
        "--apiserver-endpoint",
        shlex.quote(cluster.endpoint),
        "--b64-cluster-ca",
        shlex.quote(cluster.certificate_authority),
    ]
    if cluster.dns_cluster_ip:
        args += ["--dns-cluster-ip", shlex.quote(cluster.dns_cluster_ip)]
    if node.max_pods is not None:
        args += ["--use-max-pods", "false"]
        extra.append(f"--max-pods={node.max_pods}")
    if extra:
        args += ["--kubelet-extra-args", shlex.quote(" ".join(extra))]
    script = (
        "#!/bin/bash -xe\nexec > >(tee /var/log/user-data.log | logger -t user-data -s 2>/dev/console) 2>&1\n"
    )
    script += " \\\n  ".join(args) + "\n"
    return mime_document([*custom_parts(custom), MimePart(SHELL_CONTENT_TYPE, script)])


def bottlerocket_user_data(cluster: ClusterInfo, node: NodeSettings, custom: str | None = None) -> str:
    try:
        settings: dict[str, Any] = tomllib.loads(custom) if custom and custom.strip() else {}
    except tomllib.TOMLDecodeError as exc:
        raise FieldError("spec.userData", f"is not valid TOML: {exc}") from exc
    kubernetes = settings.setdefault("settings", {}).setdefault("kubernetes", {})
    kubernetes.update(
        {
            "cluster-name": cluster.name,
            "api-server": cluster.endpoint,
            "cluster-certificate": cluster.certificate_authority,
        }
    )
    if cluster.dns_cluster_ip:
        kubernetes["cluster-dns-ip"] = cluster.dns_cluster_ip
    if node.max_pods is not None:
        kubernetes["max-pods"] = node.max_pods
    if node.labels:
        kubernetes.setdefault("node-labels", {}).update(node.labels)
    if node.taints:
        taints: dict[str, list[str]] = kubernetes.setdefault("node-taints", {})
        for taint in node.taints:
            taints.setdefault(taint.key, []).append(f"{taint.value}:{taint.effect}")
    return dump_toml(settings)


def dump_toml(document: Mapping[str, Any]) -> str:
    """A small TOML writer for tables of strings, numbers, booleans and lists of those."""
    lines: list[str] = []

    def scalar(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return repr(value)
        if isinstance(value, list):
            return "[" + ", ".join(scalar(v) for v in value) + "]"
        text = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{text}"'

    def key(name: str) -> str:
        return name if name.replace("-", "").replace("_", "").isalnum() else scalar(name)

    def table(path: list[str], values: Mapping[str, Any]) -> None:
        plain = {k: v for k, v in values.items() if not isinstance(v, Mapping)}
        nested = {k: v for k, v in values.items() if isinstance(v, Mapping)}
        if path and plain:
            lines.append(f"[{'.'.join(key(p) for p in path)}]")
        lines.extend(f"{key(k)} = {scalar(v)}" for k, v in sorted(plain.items()))
        if plain:
            lines.append("")
        for name, sub in sorted(nested.items()):
            table([*path, name], sub)

    table([], document)
    return "\n".join(lines).rstrip("\n") + "\n"


def render_user_data(
    ami_family: str, cluster: ClusterInfo, node: NodeSettings, custom: str | None = None
) -> str:
    """User data for ``ami_family`` (an EC2NodeClass ``amiFamily``: AL2023, AL2, Bottlerocket, ...)."""
    family = ami_family.lower()
    if family == "al2023":
        return al2023_user_data(cluster, node, custom)
    if family == "al2":
        return al2_user_data(cluster, node, custom)
    if family == "bottlerocket":
        return bottlerocket_user_data(cluster, node, custom)
    return custom or ""
