"""NodeClaims by EC2 instance id, kept current from informer events.

An interruption notice names instances; finding the claim by walking every NodeClaim would make
each notice cost as much as the cluster is large. This handler follows the NodeClaim informer
(registered with ``LauncherState.listen`` before it starts) and answers in O(1). The id is the
claim's ``status.instanceID``, else the last part of its ``status.providerID``
(``aws:///us-east-1a/i-0123...``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def instance_id_of(claim: Mapping[str, Any]) -> str | None:
    """The EC2 instance id a raw NodeClaim records, or None before it launched."""
    status = claim.get("status") or {}
    instance_id = status.get("instanceID")
    if isinstance(instance_id, str) and instance_id:
        return instance_id
    provider_id = status.get("providerID")
    if isinstance(provider_id, str) and provider_id.rsplit("/", 1)[-1].startswith("i-"):
        return provider_id.rsplit("/", 1)[-1]
    return None


def _name(claim: Mapping[str, Any]) -> str:
    return str((claim.get("metadata") or {}).get("name") or "")


class ClaimsByInstance:
    """An informer event handler: instance id -> NodeClaim name."""

    def __init__(self) -> None:
        self._by_instance: dict[str, str] = {}
        self._by_claim: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._by_instance)

    def claim(self, instance_id: str) -> str | None:
        return self._by_instance.get(instance_id)

    def on_added(self, obj: Mapping[str, Any]) -> None:
        self._set(_name(obj), instance_id_of(obj))

    def on_modified(self, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
        self._set(_name(new), instance_id_of(new))

    def on_deleted(self, obj: Mapping[str, Any]) -> None:
        self._set(_name(obj), None)

    def _set(self, name: str, instance_id: str | None) -> None:
        previous = self._by_claim.pop(name, None)
        if previous is not None and self._by_instance.get(previous) == name:
            del self._by_instance[previous]
        if instance_id is not None and name:
            self._by_claim[name] = instance_id
            self._by_instance[instance_id] = name
