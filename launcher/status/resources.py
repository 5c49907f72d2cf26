"""Each NodePool's node count and summed capacity, kept up to date one event at a time (pure).

Like Karpenter's cluster state, a node counts once it is launched (its NodeClaim has a
providerID), with the Node's capacity once it registered and the claim's estimate before; nodes
being deleted no longer count. Claims and Nodes meet on the providerID. Every update touches one
providerID and its pool's totals, so the cost of an event does not grow with the cluster.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared import labels
from shared.errors import ValidationError
from shared.resources import EMPTY, Resources


@dataclass(frozen=True)
class Part:
    """What one object (a NodeClaim or a Node) says about a providerID."""

    pool: str | None
    capacity: Resources = EMPTY
    deleting: bool = False


def _capacity(raw: object) -> Resources:
    if not isinstance(raw, Mapping):
        return EMPTY
    try:
        return Resources.parse(raw, "capacity")
    except ValidationError:
        return EMPTY


def _part(obj: Mapping[str, Any], capacity: object, provider_id: object) -> tuple[str, Part] | None:
    if not isinstance(provider_id, str) or not provider_id:
        return None
    meta = obj.get("metadata") or {}
    pool = (meta.get("labels") or {}).get(labels.NODEPOOL)
    return provider_id, Part(
        pool=str(pool) if pool else None,
        capacity=_capacity(capacity),
        deleting=bool(meta.get("deletionTimestamp")),
    )


def claim_part(claim: Mapping[str, Any]) -> tuple[str, Part] | None:
    """A raw NodeClaim's part, keyed by its providerID (None before launch)."""
    status = claim.get("status") or {}
    return _part(claim, status.get("capacity"), status.get("providerID"))


def node_part(node: Mapping[str, Any]) -> tuple[str, Part] | None:
    """A raw Node's part, keyed by its providerID."""
    return _part(node, (node.get("status") or {}).get("capacity"), (node.get("spec") or {}).get("providerID"))


def contribution(claim: Part | None, node: Part | None) -> tuple[str, Resources] | None:
    """The pool a providerID counts towards and with what capacity, or None when it does not count."""
    parts = [p for p in (claim, node) if p is not None]
    pool = next((p.pool for p in parts if p.pool), None)
    if pool is None or any(p.deleting for p in parts):
        return None
    capacity = node.capacity if node is not None and node.capacity else (claim.capacity if claim else EMPTY)
    return pool, capacity


class PoolResources:
    """Per pool, the nodes counted and their summed capacity (see the module docstring)."""

    def __init__(self) -> None:
        self._claims: dict[str, Part] = {}
        self._nodes: dict[str, Part] = {}
        self._capacity: dict[str, Resources] = {}
        self._count: dict[str, int] = {}

    def set_claim(self, provider_id: str, part: Part | None) -> set[str]:
        """Record (or with None forget) a claim's part; returns the pools whose totals changed."""
        return self._set(self._claims, provider_id, part)

    def set_node(self, provider_id: str, part: Part | None) -> set[str]:
        return self._set(self._nodes, provider_id, part)

    def totals(self, pool: str) -> tuple[Resources, int]:
        return self._capacity.get(pool, EMPTY), self._count.get(pool, 0)

    def pools(self) -> set[str]:
        return set(self._count)

    def _set(self, table: dict[str, Part], provider_id: str, part: Part | None) -> set[str]:
        before = contribution(self._claims.get(provider_id), self._nodes.get(provider_id))
        if part is None:
            table.pop(provider_id, None)
        else:
            table[provider_id] = part
        after = contribution(self._claims.get(provider_id), self._nodes.get(provider_id))
        if before == after:
            return set()
        if before is not None:
            self._add(before[0], before[1], -1)
        if after is not None:
            self._add(after[0], after[1], 1)
        return {x[0] for x in (before, after) if x is not None}

    def _add(self, pool: str, capacity: Resources, sign: int) -> None:
        count = self._count.get(pool, 0) + sign
        total = self._capacity.get(pool, EMPTY) + capacity * sign
        if count <= 0:
            self._count.pop(pool, None)
            self._capacity.pop(pool, None)
        else:
            self._count[pool] = count
            self._capacity[pool] = total
