"""cancel_and_wait: the task has really finished (its cleanup ran) when the call returns.
within: a deadline that never loses a cancellation."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from shared.tasks import cancel_and_wait, within


async def test_none_is_nothing_to_stop() -> None:
    await cancel_and_wait(None)


async def test_waits_for_the_tasks_cleanup() -> None:
    cleaned = asyncio.Event()

    async def worker() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            await asyncio.sleep(0.01)  # cleanup that itself awaits
            cleaned.set()

    task = asyncio.create_task(worker())
    await asyncio.sleep(0)
    await cancel_and_wait(task)
    assert task.cancelled()
    assert cleaned.is_set()


async def test_a_failure_other_than_cancellation_propagates() -> None:
    async def broken() -> None:
        raise ValueError("boom")

    task = asyncio.create_task(broken())
    await asyncio.sleep(0)
    with pytest.raises(ValueError, match="boom"):
        await cancel_and_wait(task)


async def test_a_finished_task_is_fine() -> None:
    task = asyncio.create_task(asyncio.sleep(0))
    await task
    await cancel_and_wait(task)
    assert task.done()
    assert not task.cancelled()


async def test_within_returns_the_result_or_times_out() -> None:
    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    assert await within(answer(), 1) == 42
    with pytest.raises(TimeoutError):
        await within(asyncio.Event().wait(), 0.01)


async def test_a_waiting_loop_stops_even_when_the_cancel_meets_the_event() -> None:
    """The shape of every controller loop: wait for a wake-up or a timeout, go round again.

    The wake-up and the cancel arrive in the same loop iteration, as when a launcher stops
    while an informer reports a change. ``asyncio.wait_for`` on 3.11 hands the loop the
    wake-up and drops the cancel, so the loop runs on (and ``stop`` hangs); ``within`` must not.
    """
    wake = asyncio.Event()
    rounds = 0

    async def controller() -> None:
        nonlocal rounds
        while True:
            rounds += 1
            wake.clear()
            with contextlib.suppress(TimeoutError):
                await within(wake.wait(), 30)

    task = asyncio.create_task(controller())
    await asyncio.sleep(0)
    wake.set()
    task.cancel()
    async with asyncio.timeout(2):
        with pytest.raises(asyncio.CancelledError):
            await task
    assert rounds == 1
