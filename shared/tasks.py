"""Stopping background tasks, and waiting with a deadline, so that a cancel is never lost.

Stopping is done one way everywhere: cancel, then wait. Waiting matters: a task that is only
cancelled may still be running its ``finally`` blocks (closing a watch, releasing a Lease)
when the caller goes on to close the client it uses.

Deadlines use :func:`within`, never ``asyncio.wait_for``: on Python 3.11, ``wait_for`` swallows
a cancellation that arrives while the awaited thing completes (CPython gh-86296). A loop that
waits on an Event with a timeout then goes round again as if nothing happened, and whoever
cancelled it waits forever; the end-to-end suite hit this once, when a launcher stopping at
the same moment as an informer event never finished.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Any, TypeVar

T = TypeVar("T")


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` (None is allowed: nothing was started) and wait until it has finished.

    The task's own CancelledError is swallowed; any other exception it ends with propagates.
    """
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def within(awaitable: Awaitable[T], seconds: float | None) -> T:
    """``await awaitable``, raising TimeoutError after ``seconds`` (None: no deadline).

    A cancellation always propagates, even one that arrives as the awaitable completes.
    """
    async with asyncio.timeout(seconds):
        return await awaitable
