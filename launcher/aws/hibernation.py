"""What EC2 needs to hibernate a warm instance, and the launch template variant that provides it (pure).

EC2 hibernates (``StopInstances`` with ``Hibernate``) only an instance that was launched for it:
``HibernationOptions.Configured`` in its launch template (CreateFleet overrides cannot set it),
an encrypted EBS root volume with room for its RAM besides the OS, a type whose
DescribeInstanceTypes entry says ``HibernationSupported``, and (Linux) at most 150 GiB of RAM.
Anything else is refused (``UnsupportedHibernationConfiguration``).

So the warm fills of a Hibernated pool are launched from a *hibernation variant* of the pool's
warm template: the same content, ``HibernationOptions`` on, and the root volume encrypted and grown
by the largest RAM among the types the fill may get. The RAM is rounded up to a power of two (at
most 150 GiB), so a pool has a handful of variants per architecture rather than one per type
(template names are content hashes). Serving nodes keep the plain template and its small volume.
Instances launched from a variant carry :data:`HIBERNATION_TAG`, so the launcher knows which ones
can hibernate without asking EC2.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from shared.api.nodeclass import EC2NodeClass

MAX_RAM_GIB: Final = 150  # EC2's limit for hibernating a Linux instance
MIB_PER_GIB: Final = 1024
# The root volume of the EKS AMIs when the NodeClass names no size.
DEFAULT_ROOT_GIB: Final = 20
ROOT_DEVICE: Final = "/dev/xvda"  # the EKS AMIs' root device
HIBERNATION_TAG: Final = "jitnode.io/hibernation"
CONFIGURED: Final = "configured"


def can_hibernate(supported: bool, memory_mib: int) -> bool:
    """Whether EC2 can hibernate a type: ``HibernationSupported`` and RAM within the limit."""
    return supported and 0 < memory_mib <= MAX_RAM_GIB * MIB_PER_GIB


def ram_bucket_gib(memory_mib: int) -> int:
    """``memory_mib`` in GiB, rounded up to a power of two and capped at the hibernation limit."""
    gib = max(1, math.ceil(memory_mib / MIB_PER_GIB))
    return min(MAX_RAM_GIB, 1 << (gib - 1).bit_length())


# Every size ram_bucket_gib gives: at most this many hibernation variants per template.
RAM_BUCKETS: Final = tuple(sorted({ram_bucket_gib(gib * MIB_PER_GIB) for gib in range(1, MAX_RAM_GIB + 1)}))


def hibernation_ram_gib(memory_mib: Iterable[int]) -> int | None:
    """The RAM bucket a variant needs for types of these RAM sizes; None when there are none."""
    sizes = list(memory_mib)
    return ram_bucket_gib(max(sizes)) if sizes else None


def root_device_name(nodeclass: EC2NodeClass, mappings: Sequence[Mapping[str, Any]]) -> str | None:
    """The root volume among ``mappings`` (EC2's form): the NodeClass's ``rootVolume``, else the
    AMI's root device, else the first mapping."""
    root = nodeclass.root_volume()
    if root is not None and root.device_name:
        return root.device_name
    names = [str(m.get("DeviceName", "")) for m in mappings]
    if ROOT_DEVICE in names:
        return ROOT_DEVICE
    return names[0] if names else None


def hibernation_variant(data: Mapping[str, Any], nodeclass: EC2NodeClass, ram_gib: int) -> dict[str, Any]:
    """``LaunchTemplateData`` ``data`` made ready for hibernation of up to ``ram_gib`` of RAM:
    ``HibernationOptions`` configured, and its root volume encrypted and ``ram_gib`` larger."""
    out = copy.deepcopy(dict(data))
    mappings: list[dict[str, Any]] = out.get("BlockDeviceMappings") or []
    root = root_device_name(nodeclass, mappings) or ROOT_DEVICE
    mapping = next((m for m in mappings if m.get("DeviceName") == root), None)
    if mapping is None:
        mapping = {"DeviceName": root}
        mappings.insert(0, mapping)
    ebs = mapping.setdefault("Ebs", {"VolumeType": "gp3"})
    ebs["VolumeSize"] = int(ebs.get("VolumeSize") or DEFAULT_ROOT_GIB) + ram_gib
    ebs["Encrypted"] = True
    out["BlockDeviceMappings"] = mappings
    out["HibernationOptions"] = {"Configured": True}
    return out


def is_configured(tags: Mapping[str, str], described: Mapping[str, Any] | None = None) -> bool:
    """Whether an instance was launched ready for hibernation: our tag, or (a DescribeInstances
    entry) its ``HibernationOptions``."""
    options = (described or {}).get("HibernationOptions") or {}
    return tags.get(HIBERNATION_TAG) == CONFIGURED or bool(options.get("Configured"))
