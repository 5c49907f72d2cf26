"""cancel_and_wait: the task has really finished (its cleanup ran) when the call returns."""

from __future__ import annotations

import asyncio

import pytest

from shared.tasks import cancel_and_wait


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
