"""Which resources the server serves: built-in types plus those defined by CRDs.

A :class:`ResourceType` holds everything the generic handlers need to know about one
group/version/resource: its kind, scope, subresources, the extra field-selector labels it
supports and whether strategic merge patch applies (it does not for custom resources).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
COMMON_FIELDS = frozenset({"metadata.name", "metadata.namespace"})


@dataclass(frozen=True)
class ResourceType:
    """One served group/version/resource."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    singular: str = ""
    subresources: frozenset[str] = frozenset()
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    fields: frozenset[str] = COMMON_FIELDS
    builtin: bool = True
    # Whether create keeps a client-supplied ``.status`` (nodes register with their capacity).
    keep_status_on_create: bool = False
    # Whether DELETE answers with the object (pods, services) rather than a Status.
    returns_deleted_object: bool = False
    verbs: tuple[str, ...] = ALL_VERBS

    @property
    def key(self) -> tuple[str, str]:
        """Storage key: versions of one group/resource share their objects."""
        return (self.group, self.plural)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources

    @property
    def singular_name(self) -> str:
        return self.singular or self.kind.lower()


def _rt(group: str, version: str, plural: str, kind: str, namespaced: bool, **kw: Any) -> ResourceType:
    return ResourceType(group=group, version=version, plural=plural, kind=kind, namespaced=namespaced, **kw)


POD_FIELDS = COMMON_FIELDS | {
    "spec.nodeName",
    "spec.schedulerName",
    "spec.restartPolicy",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName",
}
EVENT_FIELDS = COMMON_FIELDS | {
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
}

BUILTINS: tuple[ResourceType, ...] = (
    _rt(
        "",
        "v1",
        "namespaces",
        "Namespace",
        False,
        subresources=frozenset({"status", "finalize"}),
        short_names=("ns",),
        fields=COMMON_FIELDS | {"status.phase"},
    ),
    _rt(
        "",
        "v1",
        "nodes",
        "Node",
        False,
        subresources=frozenset({"status"}),
        short_names=("no",),
        fields=COMMON_FIELDS | {"spec.unschedulable"},
        keep_status_on_create=True,
    ),
    _rt(
        "",
        "v1",
        "pods",
        "Pod",
        True,
        subresources=frozenset({"status", "binding", "eviction"}),
        short_names=("po",),
        categories=("all",),
        fields=POD_FIELDS,
        returns_deleted_object=True,
    ),
    _rt("", "v1", "bindings", "Binding", True, verbs=("create",)),
    _rt("", "v1", "events", "Event", True, short_names=("ev",), fields=EVENT_FIELDS),
    _rt("", "v1", "configmaps", "ConfigMap", True, short_names=("cm",)),
    _rt("", "v1", "podtemplates", "PodTemplate", True),
    _rt("", "v1", "secrets", "Secret", True, fields=COMMON_FIELDS | {"type"}),
    _rt("", "v1", "serviceaccounts", "ServiceAccount", True, short_names=("sa",)),
    _rt(
        "",
        "v1",
        "services",
        "Service",
        True,
        subresources=frozenset({"status"}),
        short_names=("svc",),
        categories=("all",),
        returns_deleted_object=True,
    ),
    _rt(
        "apps",
        "v1",
        "deployments",
        "Deployment",
        True,
        subresources=frozenset({"status", "scale"}),
        short_names=("deploy",),
        categories=("all",),
    ),
    _rt(
        "apps",
        "v1",
        "replicasets",
        "ReplicaSet",
        True,
        subresources=frozenset({"status", "scale"}),
        short_names=("rs",),
        categories=("all",),
    ),
    _rt(
        "apps",
        "v1",
        "daemonsets",
        "DaemonSet",
        True,
        subresources=frozenset({"status"}),
        short_names=("ds",),
        categories=("all",),
    ),
    _rt(
        "policy",
        "v1",
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        True,
        subresources=frozenset({"status"}),
        short_names=("pdb",),
    ),
    _rt("coordination.k8s.io", "v1", "leases", "Lease", True),
    # RBAC and admission objects are stored, not enforced: the install manifests dry-run here.
    _rt("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
    _rt("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False),
    _rt("rbac.authorization.k8s.io", "v1", "roles", "Role", True),
    _rt("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True),
    _rt(
        "admissionregistration.k8s.io",
        "v1",
        "mutatingwebhookconfigurations",
        "MutatingWebhookConfiguration",
        False,
        categories=("api-extensions",),
    ),
    _rt(
        "admissionregistration.k8s.io",
        "v1",
        "validatingwebhookconfigurations",
        "ValidatingWebhookConfiguration",
        False,
        categories=("api-extensions",),
    ),
    _rt("events.k8s.io", "v1", "events", "Event", True, short_names=("ev",), fields=EVENT_FIELDS),
    _rt(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        False,
        subresources=frozenset({"status"}),
        short_names=("crd", "crds"),
        categories=("api-extensions",),
    ),
)

# Preferred version per group, in discovery order (the core group is served under /api).
GROUP_ORDER = (
    "apps",
    "events.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "admissionregistration.k8s.io",
    "coordination.k8s.io",
    "apiextensions.k8s.io",
)


@dataclass
class Registry:
    """The set of served resources; CRDs add and remove entries at run time."""

    _types: dict[tuple[str, str, str], ResourceType] = field(default_factory=dict)
    _by_crd: dict[str, list[ResourceType]] = field(default_factory=dict)
    # Bumped whenever CRDs change the served set or their schemas (OpenAPI documents are cached by it).
    revision: int = 0

    @classmethod
    def with_builtins(cls) -> Registry:
        registry = cls()
        for rt in BUILTINS:
            registry.add(rt)
        return registry

    def add(self, rt: ResourceType) -> None:
        self._types[(rt.group, rt.version, rt.plural)] = rt

    def get(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._types.get((group, version, plural))

    def by_key(self, key: tuple[str, str]) -> ResourceType | None:
        """Any served version of the resource stored under ``key``."""
        for rt in self._types.values():
            if rt.key == key:
                return rt
        return None

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        for rt in self._types.values():
            if rt.api_version == api_version and rt.kind == kind:
                return rt
        return None

    def __iter__(self) -> Iterator[ResourceType]:
        return iter(list(self._types.values()))

    def groups(self) -> dict[str, list[str]]:
        """Served versions per non-core group, built-in groups first."""
        out: dict[str, list[str]] = {}
        for group in GROUP_ORDER:
            out[group] = []
        for rt in self._types.values():
            if rt.group and rt.version not in out.setdefault(rt.group, []):
                out[rt.group].append(rt.version)
        return {g: v for g, v in out.items() if v}

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return [rt for rt in self._types.values() if rt.group == group and rt.version == version]

    def set_crd(self, crd_name: str, types: Iterable[ResourceType]) -> None:
        """Serve (or re-serve, after an update) the versions a CRD defines."""
        self.remove_crd(crd_name)
        self.revision += 1
        new = list(types)
        for rt in new:
            self.add(rt)
        self._by_crd[crd_name] = new

    def remove_crd(self, crd_name: str) -> list[ResourceType]:
        old = self._by_crd.pop(crd_name, [])
        self.revision += 1
        for rt in old:
            self._types.pop((rt.group, rt.version, rt.plural), None)
        return old
