"""Which pods belong with a pod, for PodTopologySpread's default constraints.

Default constraints carry no selector of their own: kube-scheduler's ``helper.DefaultSelector``
builds one per pod from the Services whose selector matches the pod and from the pod's
controlling ReplicaSet, StatefulSet or ReplicationController. A pod nothing selects (a bare
pod, a Job's) gets no default spreading at all. :class:`WorkloadSelectors` keeps just those
selectors, fed by the scheduler's informers, so the lookup is a few dict reads per cycle. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from shared.podaffinity import label_selector
from shared.requirements import Requirements

Obj = Mapping[str, Any]

REPLICA_SET: Final = ("apps/v1", "ReplicaSet")
STATEFUL_SET: Final = ("apps/v1", "StatefulSet")
REPLICATION_CONTROLLER: Final = ("v1", "ReplicationController")
_SET_BASED: Final = frozenset({REPLICA_SET, STATEFUL_SET})
CONTROLLERS: Final = frozenset({REPLICA_SET, STATEFUL_SET, REPLICATION_CONTROLLER})


@dataclass(frozen=True, slots=True)
class ControllerRef:
    """The pod's controlling owner reference (the first with ``controller: true``)."""

    api_version: str
    kind: str
    name: str


def controller_of(meta: Obj) -> ControllerRef | None:
    """``metav1.GetControllerOf``: the first owner reference marked as the controller."""
    for ref in meta.get("ownerReferences") or []:
        if isinstance(ref, Mapping) and ref.get("controller") is True:
            return ControllerRef(str(ref.get("apiVersion")), str(ref.get("kind")), str(ref.get("name")))
    return None


def _meta(obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or "default"), str(meta.get("name") or "")


def _string_map(raw: object) -> dict[str, str] | None:
    """A map selector (Service, ReplicationController); None for a nil one, which selects nothing."""
    if not isinstance(raw, Mapping):
        return None
    return {str(k): str(v) for k, v in raw.items()}


class WorkloadSelectors:
    """Selectors of Services (by namespace) and of controllers (by kind, namespace and name)."""

    def __init__(self) -> None:
        self._services: dict[str, dict[str, dict[str, str]]] = {}
        self._controllers: dict[tuple[str, str, str, str], Requirements | None] = {}

    def set_service(self, service: Obj) -> None:
        namespace, name = _meta(service)
        selector = _string_map((service.get("spec") or {}).get("selector"))
        if selector is None:
            self.delete_service(service)
            return
        self._services.setdefault(namespace, {})[name] = selector

    def delete_service(self, service: Obj) -> None:
        namespace, name = _meta(service)
        in_namespace = self._services.get(namespace)
        if in_namespace is not None:
            in_namespace.pop(name, None)
            if not in_namespace:
                del self._services[namespace]

    def set_controller(self, kind: tuple[str, str], obj: Obj) -> None:
        """A ReplicaSet or StatefulSet (``spec.selector`` a LabelSelector) or a
        ReplicationController (a map); an unparsable selector counts as none."""
        namespace, name = _meta(obj)
        raw = (obj.get("spec") or {}).get("selector")
        selector: Requirements | None
        if kind in _SET_BASED:
            try:
                selector = label_selector(raw, "spec.selector")
            except ValueError:
                selector = None
        else:
            labels = _string_map(raw)
            selector = Requirements.from_labels(labels) if labels is not None else None
        self._controllers[(*kind, namespace, name)] = selector

    def delete_controller(self, kind: tuple[str, str], obj: Obj) -> None:
        namespace, name = _meta(obj)
        self._controllers.pop((*kind, namespace, name), None)

    def default_selector(
        self, namespace: str, labels: Mapping[str, str], controller: ControllerRef | None
    ) -> Requirements | None:
        """``helper.DefaultSelector``; None when it is empty (no default constraints apply).

        The matching Services' selectors are merged, then the controller's selector, when it is
        known, is added. A controller selector that is null or empty adds nothing.
        """
        merged: dict[str, str] = {}
        for selector in self._services.get(namespace, {}).values():
            if all(labels.get(k) == v for k, v in selector.items()):
                merged.update(selector)
        requirements = Requirements.from_labels(merged)
        if controller is not None:
            kind = (controller.api_version, controller.kind)
            if kind in CONTROLLERS:
                owner = self._controllers.get((*kind, namespace, controller.name))
                if owner is not None:
                    requirements = requirements & owner
        return requirements or None
