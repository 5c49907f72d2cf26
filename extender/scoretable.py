"""Prioritize's numbers for every node as numpy columns, so a call scores 500 nodes at once.

kube-scheduler sends prioritize a few hundred candidates per pod, and the extender must answer
thousands of calls per second on one core: a Python loop over the candidates costs about 4 µs a
node, the vectorised form below well under 1 µs. The arithmetic is exactly
:func:`extender.decisions.score_nodes` (the readable reference; a property test holds them
equal). Slot 0 is a sentinel for unknown names: it scores 0. Pure, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat
from typing import Final

import numpy as np
import numpy.typing as npt

from extender.protocol import MAX_EXTENDER_PRIORITY

_PRICE_WEIGHT: Final = 0.5
FloatArray = npt.NDArray[np.float64]


class ScoreTable:
    """Allocatable, requested, price and expiry per node, by slot (see the module doc)."""

    def __init__(self, capacity: int = 1024) -> None:
        self._slots: dict[str, int] = {}
        self._free: list[int] = []
        self._size = 1  # slot 0: the unknown-node sentinel
        self.alloc_cpu: FloatArray = np.zeros(capacity)
        self.alloc_mem: FloatArray = np.zeros(capacity)
        self.used_cpu: FloatArray = np.zeros(capacity)
        self.used_mem: FloatArray = np.zeros(capacity)
        self.price: FloatArray = np.full(capacity, np.nan)
        self.expires: FloatArray = np.full(capacity, np.inf)
        self.blocked: npt.NDArray[np.bool_] = np.zeros(capacity, dtype=bool)
        self.blocked[0] = True

    def __contains__(self, name: str) -> bool:
        return name in self._slots

    def __len__(self) -> int:
        return len(self._slots)

    def set_node(
        self,
        name: str,
        *,
        alloc_cpu: int,
        alloc_mem: int,
        price_per_unit: float | None,
        expires_at: float | None,
        disrupted: bool,
    ) -> None:
        slot = self._slot(name)
        self.alloc_cpu[slot] = alloc_cpu
        self.alloc_mem[slot] = alloc_mem
        self.price[slot] = np.nan if price_per_unit is None else price_per_unit
        self.expires[slot] = np.inf if expires_at is None else expires_at
        self.blocked[slot] = disrupted

    def set_usage(self, name: str, cpu: int, memory: int) -> None:
        slot = self._slots.get(name)
        if slot is not None:
            self.used_cpu[slot] = cpu
            self.used_mem[slot] = memory

    def remove_node(self, name: str) -> None:
        slot = self._slots.pop(name, None)
        if slot is None:
            return
        self.alloc_cpu[slot] = self.alloc_mem[slot] = self.used_cpu[slot] = self.used_mem[slot] = 0
        self.price[slot] = np.nan
        self.expires[slot] = np.inf
        self.blocked[slot] = True
        self._free.append(slot)

    def _slot(self, name: str) -> int:
        slot = self._slots.get(name)
        if slot is not None:
            return slot
        if self._free:
            slot = self._free.pop()
        else:
            slot = self._size
            self._size += 1
            if slot >= len(self.alloc_cpu):
                self._grow()
        self._slots[name] = slot
        self.used_cpu[slot] = self.used_mem[slot] = 0
        return slot

    def _grow(self) -> None:
        extra = len(self.alloc_cpu)
        self.alloc_cpu = np.concatenate([self.alloc_cpu, np.zeros(extra)])
        self.alloc_mem = np.concatenate([self.alloc_mem, np.zeros(extra)])
        self.used_cpu = np.concatenate([self.used_cpu, np.zeros(extra)])
        self.used_mem = np.concatenate([self.used_mem, np.zeros(extra)])
        self.price = np.concatenate([self.price, np.full(extra, np.nan)])
        self.expires = np.concatenate([self.expires, np.full(extra, np.inf)])
        self.blocked = np.concatenate([self.blocked, np.zeros(extra, dtype=bool)])

    def scores(
        self, names: Sequence[str], pod_cpu: int, pod_memory: int, now: float, expiry_window: float
    ) -> list[int]:
        """0..10 per name, in order (see :func:`extender.decisions.score_nodes`)."""
        if not names:
            return []
        ix = np.fromiter(map(self._slots.get, names, repeat(0)), dtype=np.intp, count=len(names))
        alloc_cpu = self.alloc_cpu[ix]
        alloc_mem = self.alloc_mem[ix]
        cpu = self.used_cpu[ix] + pod_cpu
        mem = self.used_mem[ix] + pod_memory
        with np.errstate(divide="ignore", invalid="ignore"):
            frac_cpu = np.where(alloc_cpu > 0, cpu / alloc_cpu, 0.0)
            frac_mem = np.where(alloc_mem > 0, mem / alloc_mem, 0.0)
        packing = (frac_cpu + frac_mem) / 2
        price = self.price[ix]
        known = ~np.isnan(price)
        weight = np.ones(len(names))
        if known.any():
            cheapest = price[known].min()
            weight[known] = (1.0 - _PRICE_WEIGHT) + _PRICE_WEIGHT * (cheapest / price[known])
        score = np.rint(MAX_EXTENDER_PRIORITY * packing * weight)
        zero = (
            self.blocked[ix]
            | (self.expires[ix] <= now + expiry_window)
            | ((alloc_cpu > 0) & (cpu > alloc_cpu))
            | ((alloc_mem > 0) & (mem > alloc_mem))
            | (packing <= 0.0)
        )
        score[zero] = 0
        result: list[int] = score.astype(np.int64).tolist()
        return result
