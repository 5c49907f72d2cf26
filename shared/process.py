"""Process plumbing both services share: waiting for SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import signal


async def until_terminated() -> None:
    """Return when the process receives SIGTERM (Kubernetes stopping the Pod) or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                loop.remove_signal_handler(sig)
