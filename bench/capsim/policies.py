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
- ``jitnode-stable``: cold, with scale-down stabilisation: consolidation keeps the nodes the
  pods' peak of the last 5 minutes needs (the HPA's default downscale window).
- ``jitnode-predictive``: plus predictive headroom: a buffer per workload of its growth over the
  last 10 minutes, as a rate, times 120 s (the extender's prediction as a buffer source).
- ``jitnode-stable+stopped``: stabilisation and a Stopped pool (size 20, maxSize 40) whose
  starts for real pods are hedged: one spare instance started per instance they wait for.
- ``jitnode-predictive+hibernated``: predictive headroom and a Hibernated pool (size 30,
  maxSize 80) hedged four spares per instance, betting on the fast resumes.
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

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

Trigger = Literal["reaction", "batch", "scan"]
Packing = Literal["planner", "node_groups"]
ScaleDown = Literal["consolidate", "cluster_autoscaler"]
PoolState = Literal["Stopped", "Hibernated", "Running"]
Consolidation = Literal["WhenEmpty", "WhenEmptyOrUnderutilized"]


@dataclass(frozen=True)
class Buffer:
    """A CapacityBuffer per workload: ``percentage`` of its replicas, at least ``replicas`` pods.

    Predictive headroom (``window_s`` > 0) adds a source the extender could feed: the replicas
    the workload gained over the last ``window_s`` as a rate, times ``lead_s`` (how far ahead
    capacity must be bought), plus ``jump`` times the largest single resize up within the
    window (the HPA's noise). The buffer holds the larger of that and the static size.
    """

    percentage: float = 10.0
    replicas: int = 2
    window_s: float = 0.0
    lead_s: float = 0.0
    jump: float = 0.0

    def size(self, workload_replicas: int) -> int:
        return max(self.replicas, -(-int(workload_replicas * self.percentage) // 100))

    def predicted(self, history: Sequence[tuple[float, int]], now: float) -> int:
        """The predictive part, from the workload's desired replicas over time (oldest first,
        the current value last); 0 when off or without history."""
        if self.window_s <= 0 or not history:
            return 0
        since = now - self.window_s
        inside = [(t, n) for t, n in history if t >= since]
        before = [n for t, n in history if t < since]
        start = before[-1] if before else (inside[0][1] if inside else history[-1][1])
        current = history[-1][1]
        rate = max(0, current - start) / self.window_s
        values = ([before[-1]] if before else []) + [n for _, n in inside]
        rise = max((b - a for a, b in itertools.pairwise(values)), default=0)
        return math.ceil(rate * self.lead_s + self.jump * max(0, rise) - 1e-9)


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
    # Hedged starts: for every k parked instances started for pods, start ceil((hedge - 1) * k)
    # more parked ones; pods take whichever is Ready first, and the spare goes back once empty.
    hedge: float = 1.0
    hedge_min_pods: int = 0  # ... only when at least this many real pods wait at once


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
    # Scale-down stabilisation (as the HPA's downscale window): consolidation removes no node
    # that would leave less CPU or memory (Ready and booting nodes) than the pods requested at
    # their peak over the last ``stabilise_s`` seconds. 0 turns it off.
    stabilise_s: float = 0.0
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
STABILISE_S: Final = 300.0  # the HPA's default downscale stabilisation window
PREDICTIVE: Final = Buffer(percentage=0, replicas=0, window_s=600.0, lead_s=120.0)
JITNODE_STABLE: Final = Policy("jitnode-stable", "reaction", stabilise_s=STABILISE_S)
JITNODE_PREDICTIVE: Final = Policy(
    "jitnode-predictive", "reaction", stabilise_s=STABILISE_S, buffer=PREDICTIVE
)
JITNODE_STABLE_STOPPED: Final = Policy(
    "jitnode-stable+stopped",
    "reaction",
    stabilise_s=STABILISE_S,
    warm=WarmPool("Stopped", size=20, max_size=40, hedge=2.0),
)
JITNODE_PREDICTIVE_HIBERNATED: Final = Policy(
    "jitnode-predictive+hibernated",
    "reaction",
    stabilise_s=STABILISE_S,
    buffer=PREDICTIVE,
    warm=WarmPool("Hibernated", size=30, max_size=80, hedge=5.0),
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
    JITNODE_STABLE,
    JITNODE_PREDICTIVE,
    JITNODE_STABLE_STOPPED,
    JITNODE_PREDICTIVE_HIBERNATED,
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
    JITNODE_STABLE,
    JITNODE_PREDICTIVE,
    JITNODE_STABLE_STOPPED,
    JITNODE_PREDICTIVE_HIBERNATED,
)
