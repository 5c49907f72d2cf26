"""Kubernetes protobuf request bodies decoded into the dicts the JSON path produces.

kubectl's imperative commands (``kubectl create namespace|configmap|secret|serviceaccount|
deployment|service|poddisruptionbudget|role|clusterrole|rolebinding|clusterrolebinding``) build
typed objects and send them as ``application/vnd.kubernetes.protobuf``; the rest of the server
only knows JSON-shaped objects, so this module turns the wire bytes into exactly what the same
command's JSON would decode to: camelCase keys, ``metav1.Time`` as RFC 3339, quantities and
int-or-strings as their JSON forms, ``[]byte`` as base64.

The envelope is ``k8s\\x00`` then a ``runtime.Unknown`` (typeMeta, raw, contentEncoding,
contentType) whose ``raw`` is the object's message. Go's protobuf encoder writes every
non-pointer field, even empty, while ``encoding/json`` leaves out zero values of ``omitempty``
fields; so zero scalars are dropped unless the field is marked ``!`` (a pointer, or not
``omitempty``), and empty nested messages stay ``{}`` as Go's JSON writes empty structs.

The tables give, per message, field number -> JSON name and kind. Field numbers are the wire
format of k8s.io/api and k8s.io/apimachinery 1.32 (their ``generated.proto``). They cover every
field of the messages kubectl's generators write and of the pod template, scheduling and
common volume types around them; anything else is refused with the message and field number,
never dropped, because a dropped field would silently create a different object.
"""

from __future__ import annotations

import base64
import datetime
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from shared.errors import FieldError

MAGIC = b"k8s\x00"
CONTENT_TYPE = "application/vnd.kubernetes.protobuf"

# Wire types.
VARINT, FIXED64, BYTES, FIXED32 = 0, 1, 2, 5

# Scalar kinds; any other kind names a message in MESSAGES.
SCALARS = frozenset({"str", "int", "bool", "bytes", "quantity", "intstr", "time", "fieldsv1"})
# ``omitempty`` drops only these; Go's JSON writes a zero Quantity, IntOrString or Time (structs).
_OMITTED_WHEN_ZERO = frozenset({"str", "int", "bool", "bytes"})

# Field syntax: ``<number> <jsonName>[!] [kind]``; kind defaults to ``str``, ``[]kind`` repeats,
# ``map`` is map<string,string> and ``map[kind]`` map<string,kind>; ``!`` keeps zero values;
# the JSON name ``-`` is an embedded struct whose fields JSON inlines.
_SPECS: dict[str, str] = {
    # ---------------------------------------------------------------- meta/v1
    "ObjectMeta": "1 name; 2 generateName; 3 namespace; 4 selfLink; 5 uid; 6 resourceVersion;"
    " 7 generation int; 8 creationTimestamp time; 9 deletionTimestamp time;"
    " 10 deletionGracePeriodSeconds! int; 11 labels map; 12 annotations map;"
    " 13 ownerReferences []OwnerReference; 14 finalizers []str; 17 managedFields []ManagedFieldsEntry",
    "OwnerReference": "1 kind!; 3 name!; 4 uid!; 5 apiVersion!; 6 controller! bool;"
    " 7 blockOwnerDeletion! bool",
    "ManagedFieldsEntry": "1 manager; 2 operation; 3 apiVersion; 4 time time; 6 fieldsType;"
    " 7 fieldsV1 fieldsv1; 8 subresource",
    "LabelSelector": "1 matchLabels map; 2 matchExpressions []LabelSelectorRequirement",
    "LabelSelectorRequirement": "1 key!; 2 operator!; 3 values []str",
    "Condition": "1 type!; 2 status!; 3 observedGeneration int; 4 lastTransitionTime time;"
    " 5 reason!; 6 message!",
    "DeleteOptions": "1 gracePeriodSeconds! int; 2 preconditions Preconditions; 3 orphanDependents! bool;"
    " 4 propagationPolicy!; 5 dryRun []str; 6 ignoreStoreReadErrorWithClusterBreakingPotential! bool",
    "Preconditions": "1 uid!; 2 resourceVersion!",
    # ---------------------------------------------------------------- core/v1 objects
    "Namespace": "1 metadata ObjectMeta; 2 spec NamespaceSpec; 3 status NamespaceStatus",
    "NamespaceSpec": "1 finalizers []str",
    "NamespaceStatus": "1 phase; 2 conditions []NamespaceCondition",
    "NamespaceCondition": "1 type!; 2 status!; 4 lastTransitionTime time; 5 reason; 6 message",
    "ConfigMap": "1 metadata ObjectMeta; 2 data map; 3 binaryData map[bytes]; 4 immutable! bool",
    "Secret": "1 metadata ObjectMeta; 2 data map[bytes]; 3 type; 4 stringData map; 5 immutable! bool",
    "ServiceAccount": "1 metadata ObjectMeta; 2 secrets []ObjectReference;"
    " 3 imagePullSecrets []LocalObjectReference; 4 automountServiceAccountToken! bool",
    "ObjectReference": "1 kind; 2 namespace; 3 name; 4 uid; 5 apiVersion; 6 resourceVersion; 7 fieldPath",
    "LocalObjectReference": "1 name",
    "Service": "1 metadata ObjectMeta; 2 spec ServiceSpec; 3 status ServiceStatus",
    "ServiceSpec": "1 ports []ServicePort; 2 selector map; 3 clusterIP; 4 type; 5 externalIPs []str;"
    " 7 sessionAffinity; 8 loadBalancerIP; 9 loadBalancerSourceRanges []str; 10 externalName;"
    " 11 externalTrafficPolicy; 12 healthCheckNodePort int; 13 publishNotReadyAddresses bool;"
    " 14 sessionAffinityConfig SessionAffinityConfig; 17 ipFamilyPolicy!; 18 clusterIPs []str;"
    " 19 ipFamilies []str; 20 allocateLoadBalancerNodePorts! bool; 21 loadBalancerClass!;"
    " 22 internalTrafficPolicy!; 23 trafficDistribution!",
    "ServicePort": "1 name; 2 protocol; 3 port! int; 4 targetPort intstr; 5 nodePort int; 6 appProtocol!",
    "SessionAffinityConfig": "1 clientIP ClientIPConfig",
    "ClientIPConfig": "1 timeoutSeconds! int",
    "ServiceStatus": "1 loadBalancer LoadBalancerStatus; 2 conditions []Condition",
    "LoadBalancerStatus": "1 ingress []LoadBalancerIngress",
    "LoadBalancerIngress": "1 ip; 2 hostname; 3 ipMode!; 4 ports []PortStatus",
    "PortStatus": "1 port! int; 2 protocol!; 3 error!",
    # ---------------------------------------------------------------- core/v1 pod template
    "PodTemplateSpec": "1 metadata ObjectMeta; 2 spec PodSpec",
    "PodSpec": "1 volumes []Volume; 2 containers! []Container; 3 restartPolicy;"
    " 4 terminationGracePeriodSeconds! int; 5 activeDeadlineSeconds! int; 6 dnsPolicy; 7 nodeSelector map;"
    " 8 serviceAccountName; 9 serviceAccount; 10 nodeName; 11 hostNetwork bool; 12 hostPID bool;"
    " 13 hostIPC bool; 14 securityContext PodSecurityContext; 15 imagePullSecrets []LocalObjectReference;"
    " 16 hostname; 17 subdomain; 18 affinity Affinity; 19 schedulerName; 20 initContainers []Container;"
    " 21 automountServiceAccountToken! bool; 22 tolerations []Toleration; 23 hostAliases []HostAlias;"
    " 24 priorityClassName; 25 priority! int; 26 dnsConfig PodDNSConfig;"
    " 27 shareProcessNamespace! bool; 28 readinessGates []PodReadinessGate; 29 runtimeClassName!;"
    " 30 enableServiceLinks! bool; 31 preemptionPolicy!; 32 overhead map[quantity];"
    " 33 topologySpreadConstraints []TopologySpreadConstraint; 35 setHostnameAsFQDN! bool; 36 os PodOS;"
    " 37 hostUsers! bool; 38 schedulingGates []PodSchedulingGate; 39 resourceClaims []PodResourceClaim;"
    " 40 resources ResourceRequirements",
    "Container": "1 name!; 2 image; 3 command []str; 4 args []str; 5 workingDir; 6 ports []ContainerPort;"
    " 7 env []EnvVar; 8 resources ResourceRequirements; 9 volumeMounts []VolumeMount;"
    " 10 livenessProbe Probe; 11 readinessProbe Probe; 12 lifecycle Lifecycle; 13 terminationMessagePath;"
    " 14 imagePullPolicy; 15 securityContext SecurityContext; 16 stdin bool; 17 stdinOnce bool;"
    " 18 tty bool; 19 envFrom []EnvFromSource; 20 terminationMessagePolicy;"
    " 21 volumeDevices []VolumeDevice; 22 startupProbe Probe; 23 resizePolicy []ContainerResizePolicy;"
    " 24 restartPolicy!",
    "ContainerPort": "1 name; 2 hostPort int; 3 containerPort! int; 4 protocol; 5 hostIP",
    "EnvVar": "1 name!; 2 value; 3 valueFrom EnvVarSource",
    "EnvVarSource": "1 fieldRef ObjectFieldSelector; 2 resourceFieldRef ResourceFieldSelector;"
    " 3 configMapKeyRef ConfigMapKeySelector; 4 secretKeyRef SecretKeySelector",
    "ObjectFieldSelector": "1 apiVersion; 2 fieldPath!",
    "ResourceFieldSelector": "1 containerName; 2 resource!; 3 divisor quantity",
    "ConfigMapKeySelector": "1 - LocalObjectReference; 2 key!; 3 optional! bool",
    "SecretKeySelector": "1 - LocalObjectReference; 2 key!; 3 optional! bool",
    "EnvFromSource": "1 prefix; 2 configMapRef ConfigMapEnvSource; 3 secretRef SecretEnvSource",
    "ConfigMapEnvSource": "1 - LocalObjectReference; 2 optional! bool",
    "SecretEnvSource": "1 - LocalObjectReference; 2 optional! bool",
    "ResourceRequirements": "1 limits map[quantity]; 2 requests map[quantity]; 3 claims []ResourceClaim",
    "ResourceClaim": "1 name!; 2 request",
    "ContainerResizePolicy": "1 resourceName!; 2 restartPolicy!",
    "VolumeMount": "1 name!; 2 readOnly bool; 3 mountPath!; 4 subPath; 5 mountPropagation!;"
    " 6 subPathExpr; 7 recursiveReadOnly!",
    "VolumeDevice": "1 name!; 2 devicePath!",
    "Probe": "1 - ProbeHandler; 2 initialDelaySeconds int; 3 timeoutSeconds int; 4 periodSeconds int;"
    " 5 successThreshold int; 6 failureThreshold int; 7 terminationGracePeriodSeconds! int",
    "ProbeHandler": "1 exec ExecAction; 2 httpGet HTTPGetAction; 3 tcpSocket TCPSocketAction;"
    " 4 grpc GRPCAction",
    "Lifecycle": "1 postStart LifecycleHandler; 2 preStop LifecycleHandler",
    "LifecycleHandler": "1 exec ExecAction; 2 httpGet HTTPGetAction; 3 tcpSocket TCPSocketAction;"
    " 4 sleep SleepAction",
    "ExecAction": "1 command []str",
    "HTTPGetAction": "1 path; 2 port! intstr; 3 host; 4 scheme; 5 httpHeaders []HTTPHeader",
    "HTTPHeader": "1 name!; 2 value!",
    "TCPSocketAction": "1 port! intstr; 2 host",
    "GRPCAction": "1 port! int; 2 service!",
    "SleepAction": "1 seconds! int",
    "PodSecurityContext": "1 seLinuxOptions SELinuxOptions; 2 runAsUser! int; 3 runAsNonRoot! bool;"
    " 4 supplementalGroups []int; 5 fsGroup! int; 6 runAsGroup! int; 7 sysctls []Sysctl;"
    " 8 windowsOptions WindowsSecurityContextOptions; 9 fsGroupChangePolicy!;"
    " 10 seccompProfile SeccompProfile; 11 appArmorProfile AppArmorProfile;"
    " 12 supplementalGroupsPolicy!; 13 seLinuxChangePolicy!",
    "SecurityContext": "1 capabilities Capabilities; 2 privileged! bool; 3 seLinuxOptions SELinuxOptions;"
    " 4 runAsUser! int; 5 runAsNonRoot! bool; 6 readOnlyRootFilesystem! bool;"
    " 7 allowPrivilegeEscalation! bool; 8 runAsGroup! int; 9 procMount!;"
    " 10 windowsOptions WindowsSecurityContextOptions; 11 seccompProfile SeccompProfile;"
    " 12 appArmorProfile AppArmorProfile",
    "Capabilities": "1 add []str; 2 drop []str",
    "SELinuxOptions": "1 user; 2 role; 3 type; 4 level",
    "SeccompProfile": "1 type!; 2 localhostProfile!",
    "AppArmorProfile": "1 type!; 2 localhostProfile!",
    "WindowsSecurityContextOptions": "1 gmsaCredentialSpecName!; 2 gmsaCredentialSpec!;"
    " 3 runAsUserName!; 4 hostProcess! bool",
    "Sysctl": "1 name!; 2 value!",
    "HostAlias": "1 ip!; 2 hostnames []str",
    "PodDNSConfig": "1 nameservers []str; 2 searches []str; 3 options []PodDNSConfigOption",
    "PodDNSConfigOption": "1 name; 2 value!",
    "PodReadinessGate": "1 conditionType!",
    "PodSchedulingGate": "1 name!",
    "PodOS": "1 name!",
    "PodResourceClaim": "1 name!; 3 resourceClaimName!; 4 resourceClaimTemplateName!",
    "Toleration": "1 key; 2 operator; 3 value; 4 effect; 5 tolerationSeconds! int",
    "Affinity": "1 nodeAffinity NodeAffinity; 2 podAffinity PodAffinity; 3 podAntiAffinity PodAntiAffinity",
    "NodeAffinity": "1 requiredDuringSchedulingIgnoredDuringExecution NodeSelector;"
    " 2 preferredDuringSchedulingIgnoredDuringExecution []PreferredSchedulingTerm",
    "NodeSelector": "1 nodeSelectorTerms! []NodeSelectorTerm",
    "NodeSelectorTerm": "1 matchExpressions []NodeSelectorRequirement;"
    " 2 matchFields []NodeSelectorRequirement",
    "NodeSelectorRequirement": "1 key!; 2 operator!; 3 values []str",
    "PreferredSchedulingTerm": "1 weight! int; 2 preference NodeSelectorTerm",
    "PodAffinity": "1 requiredDuringSchedulingIgnoredDuringExecution []PodAffinityTerm;"
    " 2 preferredDuringSchedulingIgnoredDuringExecution []WeightedPodAffinityTerm",
    "PodAntiAffinity": "1 requiredDuringSchedulingIgnoredDuringExecution []PodAffinityTerm;"
    " 2 preferredDuringSchedulingIgnoredDuringExecution []WeightedPodAffinityTerm",
    "PodAffinityTerm": "1 labelSelector LabelSelector; 2 namespaces []str; 3 topologyKey!;"
    " 4 namespaceSelector LabelSelector; 5 matchLabelKeys []str; 6 mismatchLabelKeys []str",
    "WeightedPodAffinityTerm": "1 weight! int; 2 podAffinityTerm PodAffinityTerm",
    "TopologySpreadConstraint": "1 maxSkew! int; 2 topologyKey!; 3 whenUnsatisfiable!;"
    " 4 labelSelector LabelSelector; 5 minDomains! int; 6 nodeAffinityPolicy!; 7 nodeTaintsPolicy!;"
    " 8 matchLabelKeys []str",
    "Volume": "1 name!; 2 - VolumeSource",
    # Only the common sources; the rest (cloud disks, iSCSI, CSI, ...) are refused by number.
    "VolumeSource": "1 hostPath HostPathVolumeSource; 2 emptyDir EmptyDirVolumeSource;"
    " 6 secret SecretVolumeSource; 10 persistentVolumeClaim PersistentVolumeClaimVolumeSource;"
    " 16 downwardAPI DownwardAPIVolumeSource; 19 configMap ConfigMapVolumeSource;"
    " 26 projected ProjectedVolumeSource",
    "HostPathVolumeSource": "1 path!; 2 type!",
    "EmptyDirVolumeSource": "1 medium; 2 sizeLimit quantity",
    "SecretVolumeSource": "1 secretName; 2 items []KeyToPath; 3 defaultMode! int; 4 optional! bool",
    "ConfigMapVolumeSource": "1 - LocalObjectReference; 2 items []KeyToPath; 3 defaultMode! int;"
    " 4 optional! bool",
    "PersistentVolumeClaimVolumeSource": "1 claimName!; 2 readOnly bool",
    "KeyToPath": "1 key!; 2 path!; 3 mode! int",
    "DownwardAPIVolumeSource": "1 items []DownwardAPIVolumeFile; 2 defaultMode! int",
    "DownwardAPIVolumeFile": "1 path!; 2 fieldRef ObjectFieldSelector;"
    " 3 resourceFieldRef ResourceFieldSelector; 4 mode! int",
    "ProjectedVolumeSource": "1 sources! []VolumeProjection; 2 defaultMode! int",
    "VolumeProjection": "1 secret SecretProjection; 2 downwardAPI DownwardAPIProjection;"
    " 3 configMap ConfigMapProjection; 4 serviceAccountToken ServiceAccountTokenProjection",
    "SecretProjection": "1 - LocalObjectReference; 2 items []KeyToPath; 4 optional! bool",
    "ConfigMapProjection": "1 - LocalObjectReference; 2 items []KeyToPath; 4 optional! bool",
    "DownwardAPIProjection": "1 items []DownwardAPIVolumeFile",
    "ServiceAccountTokenProjection": "1 audience; 2 expirationSeconds! int; 3 path!",
    # ---------------------------------------------------------------- apps/v1
    "Deployment": "1 metadata ObjectMeta; 2 spec DeploymentSpec; 3 status DeploymentStatus",
    "DeploymentSpec": "1 replicas! int; 2 selector LabelSelector; 3 template PodTemplateSpec;"
    " 4 strategy DeploymentStrategy; 5 minReadySeconds int; 6 revisionHistoryLimit! int; 7 paused bool;"
    " 9 progressDeadlineSeconds! int",
    "DeploymentStrategy": "1 type; 2 rollingUpdate RollingUpdateDeployment",
    "RollingUpdateDeployment": "1 maxUnavailable intstr; 2 maxSurge intstr",
    "DeploymentStatus": "1 observedGeneration int; 2 replicas int; 3 updatedReplicas int;"
    " 4 availableReplicas int; 5 unavailableReplicas int; 6 conditions []DeploymentCondition;"
    " 7 readyReplicas int; 8 collisionCount! int",
    "DeploymentCondition": "1 type!; 2 status!; 4 reason; 5 message; 6 lastUpdateTime time;"
    " 7 lastTransitionTime time",
    # ---------------------------------------------------------------- policy/v1
    "PodDisruptionBudget": "1 metadata ObjectMeta; 2 spec PodDisruptionBudgetSpec;"
    " 3 status PodDisruptionBudgetStatus",
    "PodDisruptionBudgetSpec": "1 minAvailable intstr; 2 selector LabelSelector; 3 maxUnavailable intstr;"
    " 4 unhealthyPodEvictionPolicy!",
    "PodDisruptionBudgetStatus": "1 observedGeneration int; 2 disruptedPods map[time];"
    " 3 disruptionsAllowed! int; 4 currentHealthy! int; 5 desiredHealthy! int; 6 expectedPods! int;"
    " 7 conditions []Condition",
    "Eviction": "1 metadata ObjectMeta; 2 deleteOptions DeleteOptions",
    # ---------------------------------------------------------------- rbac.authorization.k8s.io/v1
    "Role": "1 metadata ObjectMeta; 2 rules! []PolicyRule",
    "ClusterRole": "1 metadata ObjectMeta; 2 rules! []PolicyRule; 3 aggregationRule AggregationRule",
    "PolicyRule": "1 verbs! []str; 2 apiGroups []str; 3 resources []str; 4 resourceNames []str;"
    " 5 nonResourceURLs []str",
    "AggregationRule": "1 clusterRoleSelectors []LabelSelector",
    "RoleBinding": "1 metadata ObjectMeta; 2 subjects []Subject; 3 roleRef RoleRef",
    "ClusterRoleBinding": "1 metadata ObjectMeta; 2 subjects []Subject; 3 roleRef RoleRef",
    "Subject": "1 kind!; 2 apiGroup; 3 name!; 4 namespace",
    "RoleRef": "1 apiGroup!; 2 kind!; 3 name!",
}

# (apiVersion, kind) of the envelope -> the message of its raw bytes.
KINDS: dict[tuple[str, str], str] = {
    ("v1", "Namespace"): "Namespace",
    ("v1", "ConfigMap"): "ConfigMap",
    ("v1", "Secret"): "Secret",
    ("v1", "ServiceAccount"): "ServiceAccount",
    ("v1", "Service"): "Service",
    ("apps/v1", "Deployment"): "Deployment",
    ("policy/v1", "PodDisruptionBudget"): "PodDisruptionBudget",
    ("policy/v1", "Eviction"): "Eviction",
    ("rbac.authorization.k8s.io/v1", "Role"): "Role",
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): "ClusterRole",
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): "RoleBinding",
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): "ClusterRoleBinding",
}


@dataclass(frozen=True, slots=True)
class Field:
    """One field of a message: its JSON name and how to read its value."""

    json: str  # "" for an embedded struct that JSON inlines
    kind: str  # a scalar kind or a message name
    repeated: bool = False
    map_value: str | None = None  # value kind of a map<string, ...>
    keep_zero: bool = False


class UnsupportedKind(Exception):
    """An envelope naming a type these tables do not describe (the caller answers 415)."""

    def __init__(self, api_version: str, kind: str) -> None:
        super().__init__(f"{api_version} {kind}")
        self.api_version = api_version
        self.kind = kind


def _parse_field(text: str) -> tuple[int, Field]:
    parts = text.split()
    number, name = int(parts[0]), parts[1]
    kind = parts[2] if len(parts) > 2 else "str"
    keep = name.endswith("!")
    name = name.rstrip("!")
    repeated, map_value = False, None
    if kind.startswith("[]"):
        repeated, kind = True, kind[2:]
    elif kind == "map":
        map_value, kind = "str", "map"
    elif kind.startswith("map["):
        map_value, kind = kind[4:-1], "map"
    return number, Field("" if name == "-" else name, kind, repeated, map_value, keep)


def _parse(specs: dict[str, str]) -> dict[str, dict[int, Field]]:
    messages = {
        name: dict(_parse_field(f) for f in spec.split(";") if f.strip()) for name, spec in specs.items()
    }
    for name, fields in messages.items():  # a typo in a table is a bug at import, not at request time
        for f in fields.values():
            for kind in (f.kind, f.map_value):
                if kind is not None and kind != "map" and kind not in SCALARS and kind not in messages:
                    raise AssertionError(f"{name}.{f.json or '(inline)'}: unknown kind {kind}")
    return messages


MESSAGES = _parse(_SPECS)
_UNKNOWN: dict[int, Field] = {
    1: Field("typeMeta", "TypeMeta"),
    2: Field("raw", "bytes"),
    3: Field("contentEncoding", "str"),
    4: Field("contentType", "str"),
}


def is_protobuf(content_type: str) -> bool:
    return content_type.split(";")[0].strip().lower() == CONTENT_TYPE


def decode(body: bytes) -> dict[str, Any]:
    """The object in a protobuf request body, as the JSON decoder would have produced it.

    Raises :class:`UnsupportedKind` for a type without tables and ``FieldError`` (field path,
    message name and field number) for bytes that are not a valid message of their type.
    """
    if not body.startswith(MAGIC):
        raise FieldError("", "protobuf body does not start with the 'k8s\\x00' prefix")
    envelope: dict[str, Any] = {}
    for number, wire, value in _fields(body[len(MAGIC) :], "Unknown", ""):
        field = _UNKNOWN.get(number)
        if field is None:
            raise FieldError("", f"unknown field {number} in message runtime.Unknown")
        data = _expect_bytes(value, wire, "runtime.Unknown", number, "")
        if field.kind == "TypeMeta":
            envelope.update(_type_meta(data))
        else:
            envelope[field.json] = data if field.kind == "bytes" else _text(data, "")
    if envelope.get("contentEncoding"):
        raise FieldError("", f"unsupported protobuf content encoding {envelope['contentEncoding']!r}")
    api_version, kind = envelope.get("apiVersion", ""), envelope.get("kind", "")
    message = KINDS.get((api_version, kind))
    if message is None:
        raise UnsupportedKind(api_version, kind)
    out: dict[str, Any] = {"apiVersion": api_version, "kind": kind}
    out.update(_message(message, envelope.get("raw", b""), ""))
    return out


def _type_meta(data: bytes) -> dict[str, str]:
    names = {1: "apiVersion", 2: "kind"}
    out: dict[str, str] = {}
    for number, wire, value in _fields(data, "TypeMeta", ""):
        if number not in names:
            raise FieldError("", f"unknown field {number} in message runtime.TypeMeta")
        out[names[number]] = _text(_expect_bytes(value, wire, "runtime.TypeMeta", number, ""), "")
    return out


def _varint(data: bytes, pos: int, message: str, path: str) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise FieldError(path, f"truncated or overlong varint in message {message}")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _fields(data: bytes, message: str, path: str) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) of each field on the wire, in order."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos, message, path)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise FieldError(path, f"field number 0 in message {message}")
        if wire == VARINT:
            value, pos = _varint(data, pos, message, path)
            yield number, wire, value
            continue
        if wire == BYTES:
            size, pos = _varint(data, pos, message, path)
        elif wire == FIXED64:
            size = 8
        elif wire == FIXED32:
            size = 4
        else:
            raise FieldError(path, f"unsupported wire type {wire} for field {number} in message {message}")
        if pos + size > len(data):
            raise FieldError(path, f"field {number} of message {message} runs past the end of its bytes")
        yield number, wire, data[pos : pos + size]
        pos += size


def _expect_bytes(value: int | bytes, wire: int, message: str, number: int, path: str) -> bytes:
    if wire != BYTES or not isinstance(value, bytes):
        raise FieldError(path, f"field {number} of message {message} has wire type {wire}, not bytes")
    return value


def _text(raw: bytes, path: str) -> str:
    try:
        return raw.decode()
    except UnicodeDecodeError as exc:
        raise FieldError(path, "string field is not valid UTF-8") from exc


def _signed(value: int) -> int:
    """int32 and int64 both travel as 64-bit two's complement varints."""
    return value - (1 << 64) if value >= 1 << 63 else value


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path and name else path or name


def _message(name: str, data: bytes, path: str) -> dict[str, Any]:
    fields = MESSAGES[name]
    out: dict[str, Any] = {}
    for number, wire, value in _fields(data, name, path):
        field = fields.get(number)
        if field is None:
            where = f" at {path}" if path else ""
            raise FieldError(path, f"unknown field {number} in message {name}{where}")
        here = _join(path, field.json)
        if field.kind == "map":
            key, item = _map_entry(field, _expect_bytes(value, wire, name, number, here), here)
            out.setdefault(field.json, {})[key] = item
        elif field.repeated and wire == BYTES and field.kind in ("int", "bool"):  # packed
            values = out.setdefault(field.json, [])
            raw, pos = _expect_bytes(value, wire, name, number, here), 0
            while pos < len(raw):
                item, pos = _varint(raw, pos, name, here)
                values.append(_signed(item) if field.kind == "int" else bool(item))
        elif field.repeated:
            index = len(out.get(field.json, []))
            out.setdefault(field.json, []).append(
                _value(field.kind, wire, value, name, number, f"{here}[{index}]")
            )
        elif not field.json:  # embedded struct: JSON inlines its fields
            out.update(_message(field.kind, _expect_bytes(value, wire, name, number, path), path))
        else:
            decoded = _value(field.kind, wire, value, name, number, here)
            if field.keep_zero or field.kind not in _OMITTED_WHEN_ZERO or decoded not in ("", 0, False):
                out[field.json] = decoded
            else:
                out.pop(field.json, None)
    return out


def _map_entry(field: Field, data: bytes, path: str) -> tuple[str, Any]:
    """A map entry is a message with the key as field 1 and the value as field 2."""
    assert field.map_value is not None
    key, item = "", _value(field.map_value, BYTES, b"", "map entry", 2, path)
    for number, wire, value in _fields(data, "map entry", path):
        if number == 1:
            key = _text(_expect_bytes(value, wire, "map entry", number, path), path)
        elif number == 2:
            item = _value(field.map_value, wire, value, "map entry", number, path)
        else:
            raise FieldError(path, f"unknown field {number} in a map entry")
    return key, item


def _value(kind: str, wire: int, value: int | bytes, message: str, number: int, path: str) -> Any:
    if kind in ("int", "bool"):
        if wire != VARINT or not isinstance(value, int):
            raise FieldError(path, f"field {number} of message {message} has wire type {wire}, not varint")
        return _signed(value) if kind == "int" else bool(value)
    raw = _expect_bytes(value, wire, message, number, path)
    if kind == "str":
        return _text(raw, path)
    if kind == "bytes":
        return base64.b64encode(raw).decode()
    if kind == "quantity":
        return _small(raw, "Quantity", {1: "str"}, path).get(1, "")
    if kind == "intstr":
        parts = _small(raw, "IntOrString", {1: "int", 2: "int", 3: "str"}, path)
        return parts.get(3, "") if parts.get(1, 0) == 1 else parts.get(2, 0)
    if kind == "time":
        parts = _small(raw, "Time", {1: "int", 2: "int"}, path)
        seconds = int(parts.get(1, 0))
        if seconds == 0 and not parts.get(2):
            return None  # Go's zero time, which metav1.Time writes as null
        moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    if kind == "fieldsv1":
        raw_json = _small(raw, "FieldsV1", {1: "raw"}, path).get(1, b"")
        try:
            return orjson.loads(raw_json) if raw_json else {}
        except orjson.JSONDecodeError as exc:
            raise FieldError(path, f"fieldsV1 is not JSON: {exc}") from exc
    return _message(kind, raw, path)


def _small(data: bytes, message: str, layout: dict[int, str], path: str) -> dict[int, Any]:
    """Fields of the tiny wrapper messages (Quantity, IntOrString, Time, FieldsV1) by number."""
    out: dict[int, Any] = {}
    for number, wire, value in _fields(data, message, path):
        kind = layout.get(number)
        if kind is None:
            raise FieldError(path, f"unknown field {number} in message {message}")
        if kind == "int":
            if wire != VARINT or not isinstance(value, int):
                raise FieldError(path, f"field {number} of message {message} is not a varint")
            out[number] = _signed(value)
        else:
            raw = _expect_bytes(value, wire, message, number, path)
            out[number] = raw if kind == "raw" else _text(raw, path)
    return out
