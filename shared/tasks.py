"""Stopping a background task the one way every service here does it: cancel, then wait.

Waiting matters: a task that is only cancelled may still be running its ``finally`` blocks
(closing a watch, releasing a Lease) when the caller goes on to close the client it uses.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` (None is allowed: nothing was started) and wait until it has finished.

    The task's own CancelledError is swallowed; any other exception it ends with propagates.
    """
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
