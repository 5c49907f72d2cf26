"""Karpenter's well-known node label keys, and what each becomes under jitnode.

Karpenter describes instances with labels under ``karpenter.sh/`` and ``karpenter.k8s.aws/``;
jitnode has the same ones under ``jitnode.io/`` with the same values (memory in MiB, category
letters, generation numbers), so a requirement keeps its meaning when only its key is renamed.
Keys jitnode cannot plan on have no equivalent: a requirement on them is dropped and reported,
because keeping it would ask for a label no jitnode node ever carries.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from shared import labels

KARPENTER_PREFIXES: Final = ("karpenter.sh/", "karpenter.k8s.aws/")

RENAMED: Final[Mapping[str, str]] = {
    "karpenter.sh/capacity-type": labels.CAPACITY_TYPE,
    "karpenter.sh/provisioner-name": labels.NODEPOOL,
    "karpenter.sh/nodepool": labels.NODEPOOL,
    "karpenter.k8s.aws/instance-family": labels.INSTANCE_FAMILY,
    "karpenter.k8s.aws/instance-size": labels.INSTANCE_SIZE,
    "karpenter.k8s.aws/instance-category": labels.INSTANCE_CATEGORY,
    "karpenter.k8s.aws/instance-generation": labels.INSTANCE_GENERATION,
    "karpenter.k8s.aws/instance-cpu": labels.INSTANCE_CPU,
    "karpenter.k8s.aws/instance-memory": labels.INSTANCE_MEMORY,
}

# Deprecated Kubernetes aliases Karpenter accepted and normalised to the stable keys.
DEPRECATED_ALIASES: Final[Mapping[str, str]] = {
    "beta.kubernetes.io/instance-type": labels.INSTANCE_TYPE,
    "failure-domain.beta.kubernetes.io/zone": labels.ZONE,
    "failure-domain.beta.kubernetes.io/region": labels.REGION,
    "beta.kubernetes.io/arch": labels.ARCH,
    "beta.kubernetes.io/os": labels.OS,
}

# Capacity types jitnode can launch; Karpenter v1 also has "reserved" (capacity reservations).
CAPACITY_TYPES: Final = frozenset({labels.CAPACITY_TYPE_ON_DEMAND, labels.CAPACITY_TYPE_SPOT})


@dataclass(frozen=True)
class KeyMapping:
    """Where a label key goes: ``key`` is None when jitnode has no equivalent."""

    key: str | None
    renamed: bool
    reason: str = ""


def map_label_key(key: str) -> KeyMapping:
    """The jitnode key for a Karpenter (or any) label key; keys of other owners pass unchanged."""
    if key in RENAMED:
        return KeyMapping(RENAMED[key], renamed=True)
    if key in DEPRECATED_ALIASES:
        return KeyMapping(DEPRECATED_ALIASES[key], renamed=True)
    if key.startswith(KARPENTER_PREFIXES):
        return KeyMapping(None, renamed=False, reason=f"label {key!r} has no jitnode equivalent")
    return KeyMapping(key, renamed=False)
