"""Work a filter call leaves for after its answer: a bounded queue drained by a task of its own.

kube-scheduler waits for filter inside its scheduling cycle, one pod at a time, so whatever the
answer waits for is paid once per pod by the whole cluster. Reading the pod (decoding it, its
requests for prioritize, handing it to shortfall prediction) is not needed for the answer, so
the handler only appends here. aiohttp writes a handler's response in the same step of the
event loop as the handler, and this queue's task is woken for a later step, so the work runs
after the answer is on the wire, in the gaps between calls; it yields after every item so a
call that arrives meanwhile is served first. When the work falls behind (a burst the core
cannot follow) the oldest items are dropped and counted: the newest pods are the ones still
being scheduled. Offering never blocks and never fails the call.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

from prometheus_client import Counter

from shared.logs import get_logger
from shared.tasks import cancel_and_wait

T = TypeVar("T")
_log = get_logger(__name__)


class AfterAnswer(Generic[T]):
    """Items handled by ``handle`` after the answer (see the module doc); started on first use."""

    def __init__(
        self, handle: Callable[[T], None], *, size: int = 4096, dropped: Counter | None = None
    ) -> None:
        self._handle = handle
        self._items: deque[T] = deque()
        self._size = max(1, size)
        self._dropped = dropped
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.handled = 0

    def offer(self, item: T) -> None:
        """Queue ``item``; constant time, drops the oldest item when full."""
        items = self._items
        if len(items) >= self._size:
            items.popleft()
            if self._dropped is not None:
                self._dropped.inc()
        items.append(item)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run(), name="filter-after-answer")
        self._wake.set()

    @property
    def backlog(self) -> int:
        return len(self._items)

    async def run(self) -> None:
        items = self._items
        while True:
            await self._wake.wait()
            self._wake.clear()
            while items:
                item = items.popleft()
                try:
                    self._handle(item)
                except Exception as exc:  # best effort: the answer already stands
                    _log.warning("extender.after_answer_failed", error=repr(exc))
                self.handled += 1
                await asyncio.sleep(0)  # a call waiting to be answered goes first

    async def stop(self) -> None:
        """Cancel the task; items still queued are dropped (the process is going away)."""
        task, self._task = self._task, None
        await cancel_and_wait(task)
        self._items.clear()
