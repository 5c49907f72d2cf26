"""Provisioning policies as plain settings: when capacity is decided, how it is packed, how it
goes away, and what is kept ready ahead of demand. The engine (``engine``) acts them out.

- ``jitnode-cold``: jitnode as shipped: plans 0.4 s after a pod appears, cold launches.
- ``jitnode-buffer``: plus a ``CapacityBuffer`` per workload (``scalableRef`` to it,
  ``percentage`` 10, ``replicas`` 2: the sim keeps the larger), held as virtual pods.
- ``jitnode-warm-<state>``: plus a warm pool (size 2, maxSize 20) kept in that state, sized by
  the nodes started in the last 10 minutes and filled with the types the planner bought
  recently (the launcher's ``warmpool.sizing``), and refilled by instances consolidation takes
  away (``reuseOnScaleIn``).
- ``jitnode-buffer+stopped``: both: the buffer takes a burst at once, the Stopped pool refills it.
- ``karpenter``: jitnode's planner behind Karpenter's batch window (1 s idle, 10 s at most), cold.
- ``cluster-autoscaler``: a scan every 10 s, node groups of one instance type each (xlarge,
  2xlarge and 4xlarge of the planner's favourite family), least-waste expander, and its
  scale-down rules (10 min unneeded under 50% utilisation, none within 10 min of a scale-up).
- ``eks-mng-warm``: the Cluster Autoscaler over one managed node group (2xlarge) whose ASG has a
  warm pool: Stopped, minSize 2, maxGroupPreparedCapacity 20 (pool = that less the group's
  desired capacity, at least minSize), no reuse on scale-in (the defaults).

jitnode's and Karpenter's packing is the same planner here on purpose: the table then shows what
timing and warm capacity change, not two bin-packers (Karpenter's real packing differs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

Trigger = Literal["reaction", "batch", "scan"]
Packing = Literal["planner", "node_groups"]
ScaleDown = Literal["consolidate", "cluster_autoscaler"]
PoolState = Literal["Stopped", "Hibernated", "Running"]
Consolidation = Literal["WhenEmpty", "WhenEmptyOrUnderutilized"]


@dataclass(frozen=True)
class Buffer:
    """A CapacityBuffer per workload: ``percentage`` of its replicas, at least ``replicas`` pods."""

    percentage: float = 10.0
    replicas: int = 2

    def size(self, workload_replicas: int) -> int:
        return max(self.replicas, -(-int(workload_replicas * self.percentage) // 100))


@dataclass(frozen=True)
class WarmPool:
    """Instances booted and joined once, then kept in ``state`` until demand takes them.

    ``sizing`` "demand": between ``size`` and ``max_size``, the nodes started (warm or cold) in
    the last 10 minutes (jitnode's rule). "asg": an ASG's rule, ``max_size`` (its
    maxGroupPreparedCapacity) less the group's desired capacity, at least ``size`` (its minSize).
    """

    state: PoolState = "Stopped"
    size: int = 2
    max_size: int = 20
    reuse_on_scale_in: bool = True
    sizing: Literal["demand", "asg"] = "demand"


@dataclass(frozen=True)
class Policy:
    name: str
    trigger: Trigger
    packing: Packing = "planner"
    scale_down: ScaleDown = "consolidate"
    reaction_s: float = 0.4  # "reaction": plan this long after a pod appears
    batch_idle_s: float = 1.0  # "batch": close after this long without a new pod ...
    batch_max_s: float = 10.0  # ... or this long in all
    scan_s: float = 10.0  # "scan": look at pending pods this often
    group_sizes: tuple[str, ...] = ("xlarge", "2xlarge", "4xlarge")  # "node_groups": one type each
    # "consolidate": Karpenter's disruption. An empty node goes after ``consolidate_after_s``
    # (the seed's ttlSecondsAfterEmpty, 30 s); WhenEmptyOrUnderutilized also moves the pods off
    # a node they all fit elsewhere from, one node a minute (the seed converts to WhenEmpty).
    consolidation: Consolidation = "WhenEmptyOrUnderutilized"
    consolidate_after_s: float = 30.0
    buffer: Buffer | None = None
    warm: WarmPool | None = None


JITNODE_COLD: Final = Policy("jitnode-cold", "reaction")
JITNODE_BUFFER: Final = Policy("jitnode-buffer", "reaction", buffer=Buffer())
JITNODE_WARM_STOPPED: Final = Policy("jitnode-warm-stopped", "reaction", warm=WarmPool("Stopped"))
JITNODE_WARM_HIBERNATED: Final = Policy("jitnode-warm-hibernated", "reaction", warm=WarmPool("Hibernated"))
JITNODE_WARM_RUNNING: Final = Policy("jitnode-warm-running", "reaction", warm=WarmPool("Running"))
JITNODE_BUFFER_WARM: Final = Policy(
    "jitnode-buffer+stopped", "reaction", buffer=Buffer(), warm=WarmPool("Stopped")
)
KARPENTER: Final = Policy("karpenter", "batch")
CLUSTER_AUTOSCALER: Final = Policy(
    "cluster-autoscaler", "scan", packing="node_groups", scale_down="cluster_autoscaler"
)
EKS_MNG_WARM: Final = Policy(
    "eks-mng-warm",
    "scan",
    packing="node_groups",
    scale_down="cluster_autoscaler",
    group_sizes=("2xlarge",),
    warm=WarmPool("Stopped", size=2, max_size=20, reuse_on_scale_in=False, sizing="asg"),
)

POLICIES: Final = (
    JITNODE_COLD,
    JITNODE_BUFFER,
    JITNODE_WARM_STOPPED,
    JITNODE_WARM_HIBERNATED,
    JITNODE_WARM_RUNNING,
    JITNODE_BUFFER_WARM,
    KARPENTER,
    CLUSTER_AUTOSCALER,
    EKS_MNG_WARM,
)
WARM_OPTIONS: Final = (
    JITNODE_BUFFER,
    JITNODE_WARM_STOPPED,
    JITNODE_WARM_HIBERNATED,
    JITNODE_WARM_RUNNING,
    JITNODE_BUFFER_WARM,
)
