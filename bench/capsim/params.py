"""The simulator's numbers, each with where it comes from.

Boot times are triangular distributions (low, mode, high) in seconds from the moment an
instance is asked for (CreateFleet or StartInstances) to its Node being Ready. They vary a lot
with image, instance type and user data, which is why the report sweeps them.

Sources:
- Cold launch: "We typically see new nodes come up in about 30-40s in a ready state" (Karpenter
  maintainer, aws/karpenter-provider-aws#6165, 2024-05-09); issue 14 quotes 28-54 s measured on
  Karpenter's own PRs (not checked here). Default: low 28, mode 35, high 54.
- From stopped: keikoproj/instance-manager#277 measured an EKS node group with an ASG warm pool
  in the Stopped state at 1 m 20 s from scale event to node Ready against 1 m 50 s cold (about
  30 s saved of 110 s, with the autoscaler's own reaction inside both). A stopped instance keeps
  its EBS root (images pulled, first-boot setup done) but boots the OS and kubelet again; the
  default assumes that saves about a third of a 35 s cold boot. Default: 15, 22, 35.
- From hibernated: the RAM image is read back from EBS and processes resume without an OS boot
  (AWS News Blog, "New - Hibernate Your EC2 Instances", 2018); the EC2 user guide warns "It can
  take a few minutes for the instance to enter the running state" ("Start a hibernated Amazon
  EC2 instance"), hence the long tail. Default: 8, 15, 60.
- From warm Running: the instance is booted and joined once; only the kubelet registers again.
  No published figure: an assumption of a few seconds. Default: 2, 4, 8.
- Stopping after the first join (cordon, drain, delete the Node, StopInstances): default 20, 30,
  45 s; hibernating writes RAM to EBS first: 30, 60, 120 s (assumptions, paid at full price).
Costs:
- On-demand prices: the bundled price table (``launcher.aws.pricing``), as the other benches.
- EBS gp3: $0.08 per GB-month in us-east-1 (aws.amazon.com/ebs/pricing); a 20 GiB root volume
  per node (Karpenter's default block device mapping for AL2/AL2023); a hibernated instance
  also keeps a RAM-sized area on its root volume (EC2 hibernation prerequisites).
- "Every time you start your instance, Amazon EC2 charges a one-minute minimum for instance
  usage, and thereafter charges per second" (EC2 StopInstances/StartInstances API reference).
Reaction times:
- jitnode: CreateFleet about 0.4 s after ``kubectl scale`` (measured on a real control plane,
  issue 14).
- Karpenter: a batch closes after 1 s without a new pod or 10 s in all (BATCH_IDLE_DURATION and
  BATCH_MAX_DURATION defaults, Karpenter settings reference).
- Cluster Autoscaler: a scan every 10 s (--scan-interval); scale-down after 10 min unneeded
  (--scale-down-unneeded-time) below 50% utilisation (--scale-down-utilization-threshold), not
  within 10 min of a scale-up (--scale-down-delay-after-add) (Cluster Autoscaler FAQ).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from typing import Final

HOURS_PER_MONTH: Final = 730.0
GIB: Final = 2**30


@dataclass(frozen=True)
class Spread:
    """A triangular distribution of durations in seconds: low, most likely, high."""

    low: float
    mode: float
    high: float

    def __post_init__(self) -> None:
        if not 0 <= self.low <= self.mode <= self.high:
            raise ValueError(f"spread needs 0 <= low <= mode <= high, got {self}")

    def sample(self, rng: random.Random) -> float:
        return rng.triangular(self.low, self.high, self.mode)

    def scaled(self, factor: float) -> Spread:
        return Spread(self.low * factor, self.mode * factor, self.high * factor)

    def __str__(self) -> str:
        return f"{self.low:g}/{self.mode:g}/{self.high:g}s"


@dataclass(frozen=True)
class BootTimes:
    """From asking for an instance to its Node Ready, by where the instance starts from."""

    cold: Spread = Spread(28, 35, 54)
    from_stopped: Spread = Spread(15, 22, 35)
    from_hibernated: Spread = Spread(8, 15, 60)
    from_running: Spread = Spread(2, 4, 8)
    stop: Spread = Spread(20, 30, 45)  # after the first join: drain, delete the Node, stop
    hibernate: Spread = Spread(30, 60, 120)  # the same, writing RAM to EBS first

    def with_cold(self, spread: Spread) -> BootTimes:
        return replace(self, cold=spread)


@dataclass(frozen=True)
class Prices:
    """What storage costs beside the instance-hours (the instance prices come from the catalogue)."""

    ebs_gb_month: float = 0.08  # gp3, us-east-1
    root_gib: float = 20.0
    start_minimum_s: float = 60.0  # EC2 bills at least a minute per start

    def ebs_per_second(self, gib: float) -> float:
        return gib * self.ebs_gb_month / HOURS_PER_MONTH / 3600.0


@dataclass(frozen=True)
class Settings:
    """Everything a run depends on besides the trace and the policy."""

    boot: BootTimes = field(default_factory=BootTimes)
    prices: Prices = field(default_factory=Prices)
    seed: int = 14
