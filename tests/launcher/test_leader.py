"""Leader election: one holder at a time, fast hand-over on release, take-over on expiry."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from kubernetes_asyncio import client

from launcher.leader import LeaderElector, LeaseView, may_acquire
from localcluster.apiserver.testing import running_apiserver


def test_may_acquire_free_own_or_expired_leases_only() -> None:
    assert may_acquire(LeaseView(None, None, None), "a", now=100.0)
    assert may_acquire(LeaseView("a", 99.0, 15), "a", now=100.0)
    assert not may_acquire(LeaseView("b", 99.0, 15), "a", now=100.0)
    assert not may_acquire(LeaseView("b", 85.0, 15), "a", now=100.0)  # expires at exactly 100
    assert may_acquire(LeaseView("b", 84.0, 15), "a", now=100.0)


def _elector(api: client.ApiClient, identity: str) -> LeaderElector:
    return LeaderElector(
        api,
        namespace="default",
        name="jitnode-launcher",
        identity=identity,
        lease_duration=3.0,
        renew_deadline=2.0,
        retry_period=0.1,
    )


def _work(name: str, log: list[str], started: asyncio.Event) -> Callable[[], Coroutine[Any, Any, None]]:
    async def run() -> None:
        log.append(name)
        started.set()
        await asyncio.Event().wait()

    return run


async def test_only_one_candidate_leads_and_release_hands_over_quickly() -> None:
    async with running_apiserver() as (_, api):
        leading: list[str] = []
        first_started, second_started = asyncio.Event(), asyncio.Event()
        first, second = _elector(api, "first"), _elector(api, "second")
        first_task = asyncio.create_task(first.run(_work("first", leading, first_started)))
        await asyncio.wait_for(first_started.wait(), timeout=5)
        second_task = asyncio.create_task(second.run(_work("second", leading, second_started)))
        await asyncio.sleep(0.5)  # several retry periods: the second must not win meanwhile
        assert leading == ["first"]
        assert first.is_leader
        assert not second.is_leader

        loop = asyncio.get_running_loop()
        stopped_at = loop.time()
        first.stop()
        await asyncio.wait_for(first_task, timeout=5)
        await asyncio.wait_for(second_started.wait(), timeout=5)
        # Released, so the hand-over does not wait for the 3 s lease to expire.
        assert loop.time() - stopped_at < 1.5
        assert leading == ["first", "second"]
        second.stop()
        await asyncio.wait_for(second_task, timeout=5)


async def test_a_crashed_leader_is_replaced_after_its_lease_expires() -> None:
    async with running_apiserver() as (_, api):
        crashed = _elector(api, "crashed")
        assert await crashed._try_acquire_or_renew()  # holds the lease, then never renews
        survivor = _elector(api, "survivor")
        leading: list[str] = []
        started = asyncio.Event()
        loop = asyncio.get_running_loop()
        began = loop.time()
        task = asyncio.create_task(survivor.run(_work("survivor", leading, started)))
        await asyncio.wait_for(started.wait(), timeout=8)
        waited = loop.time() - began
        assert 2.0 < waited < 5.0
        survivor.stop()
        await asyncio.wait_for(task, timeout=5)
