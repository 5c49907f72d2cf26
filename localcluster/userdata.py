"""What a node's bootstrap user data tells its kubelet: labels, taints, max pods and cluster.

A real EKS node learns its extra labels and taints from the user data the launcher wrote, through
the kubelet flags ``--node-labels`` and ``--register-with-taints``. The local kubelets read the
same user data, so a launcher bug in it shows up as a wrong Node, as it would on AWS. Formats:

- AL2023 ``nodeadm``: a MIME multipart document whose ``application/node.eks.aws`` parts hold
  ``node.eks.aws/v1alpha1`` ``NodeConfig`` YAML; labels, taints and ``--max-pods`` come from
  ``spec.kubelet.flags``, and ``spec.kubelet.config`` may set ``maxPods`` and
  ``registerWithTaints``. A bare NodeConfig document (no MIME) is accepted as nodeadm does.
  Shell-script parts are read for the AL2 form below.
- AL2 ``/etc/eks/bootstrap.sh <cluster> --kubelet-extra-args '...'`` in a shell script.
- Bottlerocket TOML: ``[settings.kubernetes.node-labels]``, ``[settings.kubernetes.node-taints]``
  (``key = "value:Effect"`` or a list of those) and ``settings.kubernetes.max-pods``.

Anything else (empty, or a script that does not bootstrap) is :attr:`BootstrapFormat.NONE` with
no labels. Malformed input raises :class:`UserDataError` naming the field; the kubelets then
refuse to join, as a node whose nodeadm or kubelet rejects its config never registers.
"""

from __future__ import annotations

import base64
import binascii
import email
import email.policy
import enum
import re
import shlex
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import yaml

from shared.errors import FieldError
from shared.labelsyntax import label_key_problem, label_value_problem
from shared.taints import EFFECTS, Taint

NODEADM_CONTENT_TYPE: Final = "application/node.eks.aws"
NODEADM_API_VERSION: Final = "node.eks.aws/v1alpha1"
BOOTSTRAP_SCRIPT: Final = "/etc/eks/bootstrap.sh"


class UserDataError(FieldError):
    """User data a node could not bootstrap from; the path names where in it."""


class BootstrapFormat(enum.StrEnum):
    NODEADM = "nodeadm"
    AL2 = "al2"
    BOTTLEROCKET = "bottlerocket"
    NONE = "none"


@dataclass(frozen=True)
class NodeBootstrap:
    """What the kubelet is told at boot; empty fields mean the AMI's defaults."""

    format: BootstrapFormat = BootstrapFormat.NONE
    cluster: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[Taint, ...] = ()
    max_pods: int | None = None


def decode_user_data(encoded: str, path: str = "userData") -> str:
    """The text of base64 user data as EC2 returns it."""
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise UserDataError(path, "is not valid base64") from exc
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserDataError(path, "is not UTF-8 text (gzip user data is not supported)") from exc


def parse_user_data(text: str) -> NodeBootstrap:
    """Read labels, taints and max pods from decoded user data (see the module docstring)."""
    stripped = text.lstrip()
    if not stripped:
        return NodeBootstrap()
    head = stripped[:4096].lower()
    if head.startswith(("mime-version:", "content-type:")) and "multipart/" in head:
        return _parse_mime(stripped)
    if _looks_like_nodeconfig(stripped):
        return _parse_nodeconfigs([stripped], "userData")
    if stripped.startswith("[") or "[settings." in stripped:
        return _parse_bottlerocket(stripped)
    return _parse_shell(stripped, "userData") or NodeBootstrap()


def parse_encoded_user_data(encoded: str) -> NodeBootstrap:
    """:func:`parse_user_data` on base64 user data as EC2 returns it."""
    return parse_user_data(decode_user_data(encoded))


# --- nodeadm ---------------------------------------------------------------------------------


def _looks_like_nodeconfig(text: str) -> bool:
    return NODEADM_API_VERSION in text[:4096] and "NodeConfig" in text


def _parse_mime(text: str) -> NodeBootstrap:
    message = email.message_from_string(text, policy=email.policy.compat32)
    if not message.is_multipart():
        raise UserDataError("userData", "declares a multipart document but has no parts")
    nodeconfigs: list[str] = []
    scripts: list[NodeBootstrap] = []
    for index, part in enumerate(p for p in message.walk() if not p.is_multipart()):
        path = f"userData.parts[{index}]"
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        try:
            body = payload.decode(part.get_content_charset() or "utf-8")
        except (UnicodeDecodeError, LookupError) as exc:
            raise UserDataError(path, "is not text") from exc
        content_type = part.get_content_type()
        if content_type == NODEADM_CONTENT_TYPE:
            nodeconfigs.append(body)
        elif content_type == "text/x-shellscript":
            script = _parse_shell(body, path)
            if script is not None:
                scripts.append(script)
    if nodeconfigs:
        return _parse_nodeconfigs(nodeconfigs, "userData.nodeConfig")
    return scripts[-1] if scripts else NodeBootstrap()


def _parse_nodeconfigs(documents: Iterable[str], path: str) -> NodeBootstrap:
    """Merge every NodeConfig, later ones adding flags as nodeadm merges them."""
    flags = _KubeletFlags()
    cluster: str | None = None
    found = False
    for doc_index, document in enumerate(documents):
        try:
            loaded = list(yaml.safe_load_all(document))
        except yaml.YAMLError as exc:
            raise UserDataError(f"{path}[{doc_index}]", f"is not valid YAML: {exc}") from exc
        for index, config in enumerate(c for c in loaded if c is not None):
            where = f"{path}[{doc_index}.{index}]"
            if not isinstance(config, dict) or config.get("kind") != "NodeConfig":
                raise UserDataError(where, "is not a NodeConfig")
            if config.get("apiVersion") != NODEADM_API_VERSION:
                raise UserDataError(f"{where}.apiVersion", f"must be {NODEADM_API_VERSION}")
            found = True
            spec = _mapping(config.get("spec"), f"{where}.spec")
            name = _mapping(spec.get("cluster"), f"{where}.spec.cluster").get("name")
            if name is not None:
                cluster = str(name)
            kubelet = _mapping(spec.get("kubelet"), f"{where}.spec.kubelet")
            raw_flags = kubelet.get("flags") or []
            if not isinstance(raw_flags, list) or not all(isinstance(f, str) for f in raw_flags):
                raise UserDataError(f"{where}.spec.kubelet.flags", "must be a list of strings")
            for flag_index, flag in enumerate(raw_flags):
                flags.parse(shlex.split(flag), f"{where}.spec.kubelet.flags[{flag_index}]")
            config_path = f"{where}.spec.kubelet.config"
            kubelet_config = _mapping(kubelet.get("config"), config_path)
            if "maxPods" in kubelet_config:
                flags.max_pods = _max_pods(kubelet_config["maxPods"], f"{config_path}.maxPods")
            for taint_index, raw in enumerate(kubelet_config.get("registerWithTaints") or []):
                taint_path = f"{config_path}.registerWithTaints[{taint_index}]"
                taint = _mapping(raw, taint_path)
                key, value, effect = (str(taint.get(k, "")) for k in ("key", "value", "effect"))
                flags.taints.append(_taint(key, value, effect, taint_path))
    if not found:
        raise UserDataError(path, "holds no NodeConfig")
    return flags.result(BootstrapFormat.NODEADM, cluster)


def _mapping(value: object, path: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise UserDataError(path, "must be a mapping")
    return value


# --- AL2 bootstrap.sh ------------------------------------------------------------------------


def _parse_shell(text: str, path: str) -> NodeBootstrap | None:
    """The bootstrap.sh call in a shell script, or None when the script does not bootstrap."""
    joined = re.sub(r"\\\r?\n", " ", text)
    for line_number, line in enumerate(joined.splitlines()):
        if BOOTSTRAP_SCRIPT not in line:
            continue
        where = f"{path}.line[{line_number + 1}]"
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError as exc:
            raise UserDataError(where, f"cannot be split as shell words: {exc}") from exc
        start = next((i for i, t in enumerate(tokens) if t.endswith(BOOTSTRAP_SCRIPT)), None)
        if start is None:
            continue
        return _parse_bootstrap_args(tokens[start + 1 :], where)
    return None


def _parse_bootstrap_args(args: list[str], path: str) -> NodeBootstrap:
    flags = _KubeletFlags()
    cluster: str | None = None
    index = 0
    while index < len(args):
        arg = args[index]
        if arg in {"&&", "||", ";", "|"}:
            break
        if arg.startswith("--"):
            name, has_value, value = arg.partition("=")
            if not has_value:
                if index + 1 >= len(args):
                    raise UserDataError(f"{path}.{name}", "needs a value")
                value = args[index + 1]
                index += 1
            if name == "--kubelet-extra-args":
                try:
                    flags.parse(shlex.split(value), f"{path}.--kubelet-extra-args")
                except ValueError as exc:
                    raise UserDataError(f"{path}.--kubelet-extra-args", str(exc)) from exc
        elif cluster is None:
            cluster = arg
        index += 1
    return flags.result(BootstrapFormat.AL2, cluster)


# --- Bottlerocket ----------------------------------------------------------------------------


def _parse_bottlerocket(text: str) -> NodeBootstrap:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserDataError("userData", f"is not valid TOML: {exc}") from exc
    path = "settings.kubernetes"
    kubernetes = _mapping(_mapping(document.get("settings"), "settings").get("kubernetes"), path)
    labels: dict[str, str] = {}
    for key, value in _mapping(kubernetes.get("node-labels"), f"{path}.node-labels").items():
        labels[key] = str(value)
        _check_label(key, labels[key], f"{path}.node-labels.{key}")
    taints: list[Taint] = []
    for key, raw in _mapping(kubernetes.get("node-taints"), f"{path}.node-taints").items():
        for index, entry in enumerate(raw if isinstance(raw, list) else [raw]):
            where = f"{path}.node-taints.{key}[{index}]"
            value, sep, effect = str(entry).rpartition(":")
            if not sep:
                raise UserDataError(where, f"{entry!r} is not 'value:Effect'")
            taints.append(_taint(key, value, effect, where))
    max_pods = None
    if "max-pods" in kubernetes:
        max_pods = _max_pods(kubernetes["max-pods"], f"{path}.max-pods")
    cluster = kubernetes.get("cluster-name")
    return NodeBootstrap(
        format=BootstrapFormat.BOTTLEROCKET,
        cluster=str(cluster) if cluster is not None else None,
        labels=labels,
        taints=tuple(taints),
        max_pods=max_pods,
    )


# --- kubelet flags ---------------------------------------------------------------------------


@dataclass
class _KubeletFlags:
    """Accumulates kubelet flags; repeated ``--node-labels`` merge, as the kubelet's map flag does."""

    labels: dict[str, str] = field(default_factory=dict)
    taints: list[Taint] = field(default_factory=list)
    max_pods: int | None = None

    def parse(self, args: list[str], path: str) -> None:
        index = 0
        while index < len(args):
            name, has_value, value = args[index].partition("=")
            if name in {"--node-labels", "--register-with-taints", "--max-pods"} and not has_value:
                if index + 1 >= len(args):
                    raise UserDataError(f"{path}.{name}", "needs a value")
                value = args[index + 1]
                index += 1
            if name == "--node-labels":
                self.labels.update(_parse_labels(value, f"{path}.--node-labels"))
            elif name == "--register-with-taints":
                self.taints.extend(_parse_taints(value, f"{path}.--register-with-taints"))
            elif name == "--max-pods":
                self.max_pods = _max_pods(value, f"{path}.--max-pods")
            index += 1

    def result(self, fmt: BootstrapFormat, cluster: str | None) -> NodeBootstrap:
        return NodeBootstrap(
            format=fmt,
            cluster=cluster,
            labels=dict(self.labels),
            taints=tuple(self.taints),
            max_pods=self.max_pods,
        )


def _parse_labels(value: str, path: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        key, sep, label_value = item.partition("=")
        if not sep:
            raise UserDataError(path, f"{item!r} is not key=value")
        _check_label(key, label_value, f"{path}.{key}")
        labels[key] = label_value
    return labels


def _parse_taints(value: str, path: str) -> list[Taint]:
    taints: list[Taint] = []
    for item in filter(None, (part.strip() for part in value.split(","))):
        key_value, sep, effect = item.rpartition(":")
        if not sep:
            raise UserDataError(path, f"{item!r} is not key=value:Effect")
        key, _, taint_value = key_value.partition("=")
        taints.append(_taint(key, taint_value, effect, f"{path}.{key}"))
    return taints


def _taint(key: str, value: str, effect: str, path: str) -> Taint:
    if effect not in EFFECTS:
        raise UserDataError(path, f"effect {effect!r} is not one of {sorted(EFFECTS)}")
    _check_label(key, value, path)
    return Taint(key=key, value=value, effect=effect)


def _check_label(key: str, value: str, path: str) -> None:
    """Validate a label (or taint) key and value as the API server would."""
    problem = label_key_problem(key) or label_value_problem(value)
    if problem is not None:
        raise UserDataError(path, problem)


def _max_pods(value: object, path: str) -> int:
    try:
        pods = int(str(value))
    except ValueError as exc:
        raise UserDataError(path, f"{value!r} is not an integer") from exc
    if pods < 1:
        raise UserDataError(path, "must be at least 1")
    return pods
