"""Process-level settings for a latency-bound service: the event loop and the garbage collector.

The extender answers kube-scheduler within a couple of milliseconds while holding the whole
cluster (every node and pod, as decoded JSON) in memory. Two things in CPython work against
that, and are dealt with here rather than in the request path:

* The default asyncio loop spends a good share of each small request in Python-level
  selector and transport code. uvloop does the same work in C; it is used when installed
  (``loop_factory``) and the service runs unchanged on the standard loop without it.
* The cyclic garbage collector's full collections walk every tracked object: with 5,000 nodes
  and their pods cached, a full pass stalls the loop for tens of milliseconds, and a request
  that allocates many objects (a full NodeList body) sets one off. JSON-decoded objects hold
  no reference cycles and are freed by reference counting anyway, so the long-lived heap is
  moved out of the collector's reach with :func:`gc.freeze` once the caches are loaded, and
  again periodically as watch events replace objects (:class:`HeapFreezer`). Objects frozen
  while live that later become unreachable *and* cyclic are never reclaimed; the extender's
  long-lived state is acyclic, so that cost is bounded by what is in flight at each freeze.
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Final

from shared.logs import get_logger
from shared.tasks import cancel_and_wait

_log = get_logger(__name__)

# Young-generation threshold: a request decoding a few thousand objects should not trigger
# several collections (CPython's default is 700 allocations).
GEN0_THRESHOLD: Final = 20_000


# Set to "asyncio" to run on the standard loop even where uvloop is installed (to compare, or
# to rule uvloop out while debugging).
LOOP_ENV: Final = "JITNODE_EVENT_LOOP"


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop constructor when uvloop is installed, else None (the standard loop)."""
    if os.environ.get(LOOP_ENV, "").lower() == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def run(main: Coroutine[Any, Any, None]) -> None:
    """``asyncio.run`` on the fastest loop available (see the module doc)."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(main)


def tune_collector(gen0: int = GEN0_THRESHOLD) -> None:
    """Raise the young-generation threshold; older generations keep CPython's ratios."""
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(gen0, gen1, gen2)


def freeze_heap() -> float:
    """Collect what is garbage now, then exempt every surviving object from future collections.

    Returns the seconds the pass took (a collection over objects not yet frozen).
    """
    started = time.perf_counter()
    gc.collect()
    gc.freeze()
    return time.perf_counter() - started


class HeapFreezer:
    """Freezes the heap once ``loaded()`` returns (caches synced), then every ``interval`` seconds."""

    def __init__(self, loaded: Callable[[], Awaitable[None]], *, interval: float = 300.0) -> None:
        self.loaded = loaded
        self.interval = interval
        self.freezes = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="heap-freezer")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def run(self) -> None:
        await self.loaded()
        while True:
            took = freeze_heap()
            self.freezes += 1
            _log.info("runtime.heap_frozen", seconds=round(took, 4), frozen=gc.get_freeze_count())
            if self.interval <= 0:
                return
            await asyncio.sleep(self.interval)
