"""Which pods may share a node: the per-node rules the packer and the merge pass obey (pure).

Some pods limit who runs beside them on one node: replicas that repel each other (pod
anti-affinity selecting themselves: ``PodDemand.exclusive``), replicas spread by hostname
(``maxSkew`` of them at most on a new node), a pod whose anti-affinity selects another workload's
pods (neither may join the other). All of them are :class:`Colocation` rules over *tags*:

- ``tags``: what the pod is, for other pods' rules;
- ``caps``: at most ``n`` pods carrying the tag on one node (the pod carries the tag itself);
- ``repels``: no pod carrying one of these tags on its node (a pod repelling its own tag is
  alone of its kind on a node).

A :class:`NodeTally` sums the rules of the pods on one node, so a fit test is a few set and dict
look-ups. Pods without rules carry no tags and are never asked.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Final

UNLIMITED: Final = 1 << 30


@dataclass(frozen=True)
class Colocation:
    """What a pod asks of the pods on its node (module docstring); hashable, to group shapes."""

    tags: frozenset[str] = frozenset()
    caps: tuple[tuple[str, int], ...] = ()  # (tag, at most this many on a node), sorted
    repels: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.tags or self.repels)

    def __or__(self, other: Colocation) -> Colocation:
        """Both rules at once (a cap named twice keeps the lower count)."""
        caps = dict(self.caps)
        for tag, n in other.caps:
            caps[tag] = min(n, caps.get(tag, n))
        return Colocation(self.tags | other.tags, tuple(sorted(caps.items())), self.repels | other.repels)

    @cached_property
    def cap_of(self) -> dict[str, int]:
        """``caps`` as a map (read on every fit test)."""
        return dict(self.caps)

    @property
    def per_node(self) -> int:
        """How many pods with these rules one otherwise empty node may hold."""
        if self.tags & self.repels:
            return 1
        return min((n for _, n in self.caps), default=UNLIMITED)


NONE: Final = Colocation()


def exclusive(key: str) -> Colocation:
    """One pod of the group ``key`` on a node (``PodDemand.exclusive``)."""
    tag = f"exclusive:{key}"
    return Colocation(frozenset({tag}), ((tag, 1),))


@dataclass
class NodeTally:
    """The rules of the pods on one node, summed (module docstring)."""

    counts: dict[str, int] = field(default_factory=dict)  # tag -> pods carrying it
    limits: dict[str, int] = field(default_factory=dict)  # tag -> the lowest cap any pod here set
    repelled: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, rules: Iterable[tuple[Colocation, int]]) -> NodeTally:
        tally = cls()
        for rule, n in rules:
            tally.add(rule, n)
        return tally

    def copy(self) -> NodeTally:
        return NodeTally(dict(self.counts), dict(self.limits), set(self.repelled))

    def room(self, rules: Colocation) -> int:
        """How many more pods with ``rules`` this node may take (UNLIMITED when none limit it)."""
        if not rules:
            return UNLIMITED
        if any(self.counts.get(tag) for tag in rules.repels) or rules.tags & self.repelled:
            return 0
        room = 1 if rules.tags & rules.repels else UNLIMITED
        caps = rules.cap_of
        for tag in rules.tags:
            limit = min(self.limits.get(tag, UNLIMITED), caps.get(tag, UNLIMITED))
            if limit < UNLIMITED:
                room = min(room, limit - self.counts.get(tag, 0))
        return max(room, 0)

    def add(self, rules: Colocation, n: int = 1) -> None:
        for tag in rules.tags:
            self.counts[tag] = self.counts.get(tag, 0) + n
        for tag, cap in rules.caps:
            self.limits[tag] = min(cap, self.limits.get(tag, cap))
        self.repelled |= rules.repels

    def admits(self, other: NodeTally) -> bool:
        """Whether the pods of both tallies may share one node."""
        if any(self.counts.get(tag) for tag in other.repelled):
            return False
        if any(other.counts.get(tag) for tag in self.repelled):
            return False
        for tag in self.counts.keys() | other.counts.keys():
            limit = min(self.limits.get(tag, UNLIMITED), other.limits.get(tag, UNLIMITED))
            if self.counts.get(tag, 0) + other.counts.get(tag, 0) > limit:
                return False
        return True
