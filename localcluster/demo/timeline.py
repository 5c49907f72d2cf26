"""Milestone timings from the snapshots the demo observed (pure: times are passed in).

Scale-up milestones count from the moment the Deployment was scaled; scale-down ones from the
moment it was deleted. Each is the first observation that proves it happened, so a milestone
missed between two polls is still recorded at the next one, and the scale-up order holds by
construction: a Node registering proves its CreateFleet returned, a claim proves demand.
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field

from localcluster.demo.snapshot import ClaimView, Snapshot


class Milestone(enum.StrEnum):
    FIRST_DEMAND = "first_demand"
    FLEET_RETURNED = "create_fleet_returned"
    FIRST_NODE_READY = "first_node_ready"
    ALL_PODS_RUNNING = "all_pods_running"
    NODES_DRAINED = "nodes_drained"
    INSTANCES_TERMINATED = "instances_terminated"


SCALE_UP: tuple[Milestone, ...] = (
    Milestone.FIRST_DEMAND,
    Milestone.FLEET_RETURNED,
    Milestone.FIRST_NODE_READY,
    Milestone.ALL_PODS_RUNNING,
)
SCALE_DOWN: tuple[Milestone, ...] = (Milestone.NODES_DRAINED, Milestone.INSTANCES_TERMINATED)

LABELS: Mapping[Milestone, str] = {
    Milestone.FIRST_DEMAND: "first demand",
    Milestone.FLEET_RETURNED: "CreateFleet returned",
    Milestone.FIRST_NODE_READY: "first Node Ready",
    Milestone.ALL_PODS_RUNNING: "all pods Running",
    Milestone.NODES_DRAINED: "nodes drained and deleted",
    Milestone.INSTANCES_TERMINATED: "instances terminated",
}


@dataclass
class Recorder:
    """Feeds on ``(time, snapshot)`` pairs and remembers milestones, peaks and what launched."""

    replicas: int
    scaled_at: float | None = None
    deleted_at: float | None = None
    times: dict[Milestone, float] = field(default_factory=dict)
    peak_cost_per_hour: float = 0.0
    peak_nodes: int = 0
    max_pods_running: int = 0
    claims: dict[str, ClaimView] = field(default_factory=dict)  # every launched claim, last seen
    nodes_seen: set[str] = field(default_factory=set)

    def scaled(self, now: float) -> None:
        self.scaled_at = now

    def deleted(self, now: float) -> None:
        self.deleted_at = now

    def mark(self, milestone: Milestone, now: float) -> bool:
        """Record ``milestone`` at ``now`` unless already recorded; True when it is new."""
        if milestone in self.times:
            return False
        self.times[milestone] = now
        return True

    def observe(self, now: float, snapshot: Snapshot) -> list[Milestone]:
        """Update from one snapshot; returns the milestones it reached first."""
        for claim in snapshot.claims:
            if claim.instance_id:
                self.claims[claim.name] = claim
        self.nodes_seen.update(n.name for n in snapshot.nodes)
        self.peak_cost_per_hour = max(self.peak_cost_per_hour, snapshot.cost_per_hour)
        self.peak_nodes = max(self.peak_nodes, len(snapshot.nodes))
        self.max_pods_running = max(self.max_pods_running, snapshot.pods_running)
        reached: list[Milestone] = []
        if self.scaled_at is not None and self.deleted_at is None:
            # Later evidence implies every earlier milestone; record them at once, in order.
            evidence = (
                snapshot.pods_unschedulable > 0 or bool(snapshot.claims),
                snapshot.launched,
                snapshot.nodes_ready > 0,
                self.replicas > 0
                and snapshot.pods_total == self.replicas
                and snapshot.pods_running == self.replicas,
            )
            latest = max((i for i, seen in enumerate(evidence) if seen), default=-1)
            reached.extend(m for m in SCALE_UP[: latest + 1] if self.mark(m, now))
        if (
            self.deleted_at is not None
            and not snapshot.nodes
            and not snapshot.claims
            and self.mark(Milestone.NODES_DRAINED, now)
        ):
            reached.append(Milestone.NODES_DRAINED)
        return reached

    def seconds(self, milestone: Milestone) -> float | None:
        """Seconds from the scale-up (or, for scale-down milestones, the deletion) to ``milestone``."""
        at = self.times.get(milestone)
        origin = self.deleted_at if milestone in SCALE_DOWN else self.scaled_at
        if at is None or origin is None:
            return None
        return round(at - origin, 3)

    def timings(self) -> dict[str, float | None]:
        return {m.value: self.seconds(m) for m in (*SCALE_UP, *SCALE_DOWN)}

    def instance_types(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for claim in self.claims.values():
            if claim.instance_type:
                counts[claim.instance_type] = counts.get(claim.instance_type, 0) + 1
        return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))

    def instance_ids(self) -> set[str]:
        return {c.instance_id for c in self.claims.values() if c.instance_id}


def ordered(timings: Mapping[str, float | None]) -> bool:
    """Whether the scale-up milestones were all reached, in order."""
    values = [timings.get(m.value) for m in SCALE_UP]
    present = [v for v in values if v is not None]
    return len(present) == len(values) and all(a <= b for a, b in itertools.pairwise(present))


def timeline_lines(recorder: Recorder) -> list[str]:
    """The printed timeline: one aligned line per milestone, ``-`` for those never reached."""
    width = max(len(label) for label in LABELS.values())
    lines = ["timeline (seconds since the scale-up):"]
    for milestone in SCALE_UP:
        lines.append(_line(LABELS[milestone], recorder.seconds(milestone), width))
    if recorder.deleted_at is not None:
        lines.append("after deleting the Deployment:")
        for milestone in SCALE_DOWN:
            lines.append(_line(LABELS[milestone], recorder.seconds(milestone), width))
    return lines


def _line(label: str, seconds: float | None, width: int) -> str:
    value = f"{seconds:7.1f} s" if seconds is not None else "      -"
    return f"  {label:<{width}}  {value}"
