"""Demand merged from every extender replica and the launcher's own pod watch, by pod uid.

What the planner plans for. A pod reported by several sources is one demand: the report that
has actually failed scheduling beats a prediction, then the earlier one wins.

Each source (an extender replica) is level-triggered: its Snapshot replaces everything it said
before, then Upserts and Withdraws with increasing sequence numbers amend it (stale or repeated
sequence numbers are ignored). A pod's demand is present while any source reports it. A source
whose stream drops keeps its last picture for a grace period, so a launcher or network blip
does not make demand flicker; after the grace period, or when it reconnects with a fresh
Snapshot, the old picture goes. Pure bookkeeping with an asyncio condition for waiters; the
clock is passed in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from shared.demand import Heartbeat, Message, PodDemand, Snapshot, Upsert, Withdraw

# When sources disagree about one pod, the one that has actually failed scheduling wins.
_REASON_RANK = {"unschedulable": 0, "predicted": 1}
# The launcher's own pod watch (:mod:`launcher.demand.podwatch`): merged after the extenders, so
# on a tie an extender's report (usually the earlier signal) is the one a plan is credited to.
OWN_WATCH = "launcher/pod-watch"


@dataclass(slots=True)
class SourceState:
    """What one extender replica reports, and whether its stream is up."""

    demands: dict[str, PodDemand] = field(default_factory=dict)
    last_seq: int = -1
    connections: int = 0
    disconnected_at: float | None = None
    last_heard: float = 0.0


class DemandBook:
    """Merged demand (see the module doc); :meth:`current` is what the planner reads."""

    def __init__(self, grace_period: float = 30.0) -> None:
        self.grace_period = grace_period
        self._sources: dict[str, SourceState] = {}
        self._merged: dict[str, PodDemand] = {}
        self._origin: dict[str, str] = {}
        self._version = 0
        # Set and replaced on every change: waiters hold the event of the version they saw.
        self._changed = asyncio.Event()

    # Reads --------------------------------------------------------------------------------

    @property
    def version(self) -> int:
        """Increases on every change of :meth:`current`."""
        return self._version

    def current(self) -> Mapping[str, PodDemand]:
        """Pending demand by pod uid (read-only; a new mapping after each change)."""
        return MappingProxyType(self._merged)

    def sources(self) -> Mapping[str, SourceState]:
        return MappingProxyType(self._sources)

    def origin(self, uid: str) -> str | None:
        """The source whose report of ``uid`` the merged demand holds (for metrics and logs)."""
        return self._origin.get(uid)

    async def changed(self, since: int | None = None) -> int:
        """Wait until the version is past ``since`` (default: the current one); return it."""
        target = self._version if since is None else since
        while self._version <= target:
            await self._changed.wait()
        return self._version

    # Writes from the stream server ---------------------------------------------------------

    def connected(self, source: str, now: float) -> None:
        state = self._sources.setdefault(source, SourceState())
        state.connections += 1
        state.disconnected_at = None
        state.last_heard = now

    def disconnected(self, source: str, now: float) -> None:
        state = self._sources.get(source)
        if state is None:
            return
        state.connections = max(0, state.connections - 1)
        if state.connections == 0:
            state.disconnected_at = now

    def apply(self, message: Message, now: float) -> bool:
        """Apply one message from its source; True when merged demand changed."""
        state = self._sources.setdefault(message.source, SourceState())
        state.last_heard = now
        if isinstance(message, Snapshot):
            state.last_seq = message.seq
            state.demands = {d.uid: d for d in message.demands}
            return self._remerge()
        if message.seq <= state.last_seq:
            return False  # a repeat or a reordering: the snapshot already covered it
        state.last_seq = message.seq
        if isinstance(message, Upsert):
            state.demands[message.demand.uid] = message.demand
            return self._remerge()
        if isinstance(message, Withdraw):
            if state.demands.pop(message.uid, None) is None:
                return False
            return self._remerge()
        assert isinstance(message, Heartbeat)
        return False

    def expire(self, now: float) -> list[str]:
        """Drop sources disconnected for longer than the grace period; their names."""
        gone = [
            name
            for name, state in self._sources.items()
            if state.disconnected_at is not None and now - state.disconnected_at >= self.grace_period
        ]
        for name in gone:
            del self._sources[name]
        if gone:
            self._remerge()
        return gone

    def _remerge(self) -> bool:
        merged: dict[str, PodDemand] = {}
        origin: dict[str, str] = {}
        for name, state in sorted(self._sources.items(), key=lambda item: item[0] == OWN_WATCH):
            for uid, demand in state.demands.items():
                held = merged.get(uid)
                if held is None or _preferred(demand, held):
                    merged[uid] = demand
                    origin[uid] = name
        self._origin = origin
        if merged == self._merged:
            return False
        self._merged = merged
        self._version += 1
        self._notify()
        return True

    def _notify(self) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()


def _preferred(candidate: PodDemand, held: PodDemand) -> bool:
    rank_c = _REASON_RANK.get(candidate.reason, 2)
    rank_h = _REASON_RANK.get(held.reason, 2)
    if rank_c != rank_h:
        return rank_c < rank_h
    return candidate.first_seen < held.first_seen
