"""What a warm pool costs, both ways (pure).

A stopped or hibernated instance is billed only for its EBS volumes; a running one for the
instance (its volumes are small beside it and left out, as the planner's prices leave them out).
Both figures are reported: what the pool costs now, and what the same instances would cost
running, which is what keeping them stopped saves.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from shared.api.warmpool import RUNNING

# gp3 in us-east-1, per GiB-month (https://aws.amazon.com/ebs/pricing/), and AWS's month in hours.
GP3_GIB_MONTH: Final = 0.08
HOURS_PER_MONTH: Final = 730.0
# The root volume size jitnode's EC2NodeClass gives a node when it names none (as Karpenter's
# AL2023 default).
DEFAULT_VOLUME_GIB: Final = 20.0


@dataclass(frozen=True)
class WarmInstanceCost:
    state: str  # Stopped, Hibernated, Running; filling instances count as Running
    price_per_hour: float  # the instance's on-demand price
    volume_gib: float = DEFAULT_VOLUME_GIB


def ebs_per_hour(volume_gib: float) -> float:
    return volume_gib * GP3_GIB_MONTH / HOURS_PER_MONTH


def hourly_cost(instances: Iterable[WarmInstanceCost]) -> tuple[float, float]:
    """(what the instances cost per hour in their state, what they would cost running)."""
    now = running = 0.0
    for instance in instances:
        running += instance.price_per_hour
        now += instance.price_per_hour if instance.state == RUNNING else ebs_per_hour(instance.volume_gib)
    return now, running


def format_dollars(amount: float) -> str:
    """A status decimal string (no exponent, no trailing zeros): 0.0022, 0.192, 0."""
    text = f"{amount:.6f}".rstrip("0").rstrip(".")
    return text or "0"
