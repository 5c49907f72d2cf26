"""The scale benchmark's harness: realistic objects, churn bookkeeping, and a tiny end-to-end run
whose figures must all be produced and plausible (the figures themselves are the bench's job)."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import orjson
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import scale_bench  # noqa: E402
from scale_cluster import Churner  # noqa: E402
from scale_objects import PodFactory, node_object, pending_pod  # noqa: E402

from shared.pendingpods import judge  # noqa: E402


def test_pods_are_realistic_and_bound_and_share_what_replicas_share() -> None:
    factory = PodFactory(nodes=7, now=1_700_000_000.0)
    pods = [factory.running() for _ in range(60)]
    sizes = [len(orjson.dumps(p)) for p in pods]
    assert min(sizes) > 5_000
    assert max(sizes) < 9_000
    first = pods[0]
    assert len(first["spec"]["containers"]) == 2
    assert all(c["env"] and c["livenessProbe"] and c["readinessProbe"] for c in first["spec"]["containers"])
    assert first["metadata"]["managedFields"]
    assert first["status"]["containerStatuses"]
    assert first["spec"]["nodeName"] == node_object(0, 0)["metadata"]["name"]
    assert len({p["metadata"]["name"] for p in pods}) == len({p["metadata"]["uid"] for p in pods}) == 60
    # Replicas of one Deployment share nested values (the API server's memory), not their own parts.
    assert pods[0]["spec"]["containers"] is pods[1]["spec"]["containers"]
    assert pods[0]["metadata"] is not pods[1]["metadata"]
    assert pods[0]["status"] is not pods[1]["status"]


def test_pending_pods_are_what_the_launcher_s_pod_watch_reports() -> None:
    verdict = judge(pending_pod(3, 1_700_000_000.0))
    assert verdict is not None


def test_churn_keeps_the_pool_size_and_updates_write_new_statuses() -> None:
    factory = PodFactory(nodes=5)
    live = [factory.running() for _ in range(300)]
    churner = Churner(factory, list(live))
    kinds = [churner.next_write() for _ in range(3_000)]
    counts = {k: sum(1 for kind, _ in kinds if kind == k) for k in ("create", "update", "delete")}
    assert all(800 < n < 1_200 for n in counts.values()), counts
    assert abs(len(churner.live) - 300) < 150
    update = next(pod for kind, pod in kinds if kind == "update")
    assert update["status"]["containerStatuses"][0]["restartCount"] >= 1


def test_lag_is_the_age_of_the_oldest_unapplied_write() -> None:
    writes = [(10, 100.0), (12, 101.0), (15, 102.0)]
    rvs = [w[0] for w in writes]
    assert scale_bench.oldest_unapplied(writes, rvs, 15, 103.0) == 0.0
    assert scale_bench.oldest_unapplied(writes, rvs, 11, 103.0) == pytest.approx(2.0)
    assert scale_bench.oldest_unapplied(writes, rvs, float("nan"), 103.0) == pytest.approx(3.0)
    assert scale_bench.oldest_unapplied(writes, rvs, 12, 101.5) == 0.0  # rv 15 not written yet


def test_sizes_parse_or_name_the_flag() -> None:
    assert scale_bench.parse_size("5000/150000") == (5_000, 150_000)
    assert scale_bench.parse_size("3/30") == (3, 30)
    for bad in ("3", "a/b", "0/10"):
        with pytest.raises(argparse.ArgumentTypeError, match="--size"):
            scale_bench.parse_size(bad)


@pytest.mark.slow
async def test_a_tiny_run_produces_every_figure() -> None:
    options = scale_bench.Options(
        rates=(100.0,), step=2.0, calls=40, pending=30, kubeconfig=None, sync_timeout=120.0
    )
    (figures,) = await scale_bench.run([(10, 200)], options)
    assert figures["nodes"] == 10
    assert figures["pods"] == 200
    for name in ("extender", "launcher"):
        synced = figures["synced"][name]
        assert 0 < synced.seconds < 120
        assert synced.rss_kib > 50 * 1024  # a Python process with its informers
        assert figures["peak"][name] >= max(synced.rss_kib, figures["end"][name])
        keeping = figures["keeping"][name]
        assert keeping.kept_up > 50, keeping.steps  # 100 writes/s are nothing
        assert keeping.handled > 50, keeping.steps
    for timed in ("p99_before", "p99"):  # before and after the churn
        filter_p99, prioritize_p99 = figures[timed]
        assert 0 < filter_p99 < 1_000
        assert 0 < prioritize_p99 < 1_000
    seconds, pods = figures["plan"]
    assert pods == 30
    assert not math.isnan(seconds)
    assert 0 < seconds < 30


def test_the_issue_targets_name_what_a_run_missed() -> None:
    base = {
        "extender": scale_bench.Synced(1.0, 90 * 1024, 90 * 1024),
        "launcher": scale_bench.Synced(1.0, 140 * 1024, 0),
    }
    pods = 150_000

    def figures(
        rss_mib: float, sync: float, kept_up: float, p99: float, plan: tuple[float, int]
    ) -> dict[str, object]:
        synced = scale_bench.Synced(sync, int(rss_mib * 1024), int(rss_mib * 1024))
        keeping = scale_bench.Keeping(kept_up=kept_up)
        return {
            "pods": pods,
            "synced": {"extender": synced, "launcher": synced},
            "peak": {"extender": synced.peak_kib, "launcher": synced.peak_kib},
            "keeping": {"extender": keeping, "launcher": keeping},
            "p99": (p99, p99),
            "plan": plan,
        }

    assert scale_bench.missed_targets(figures(700, 30, 1_990, 1.5, (0.4, 1_000)), base) == []
    missed = scale_bench.missed_targets(figures(1_100, 75, 400, 2.5, (float("nan"), 0)), base)
    text = " | ".join(missed)
    for expected in ("RSS", "KiB/pod", "first sync", "keeps up at 400", "filter p99", "plan for 0 pods"):
        assert expected in text, text


async def test_the_http_driver_fills_churns_and_pends_through_any_api_server(tmp_path: Path) -> None:
    from scale_cluster import HTTPDriver

    from localcluster.apiserver import APIServer

    async with APIServer(controllers=False) as server:
        kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
        driver = await HTTPDriver.from_kubeconfig(str(kubeconfig))
        try:
            filled = await driver.fill(3, 12)
            assert filled.names == [node_object(i, 0)["metadata"]["name"] for i in range(3)]
            pods = list(server.store.iter(("", "pods")))
            assert len(pods) == 12
            assert all(
                p["status"]["phase"] == "Running" and p["spec"]["nodeName"] in filled.names for p in pods
            )
            churned = await driver.churn(40, 0.5)
            rvs = [rv for rv, _ in churned.writes]
            assert len(rvs) >= 3  # writes happened; their rate depends on the machine, not asserted
            assert rvs == sorted(rvs)
            assert rvs[-1] <= server.store.resource_version
            await driver.pending(4)
            pending = [
                p for p in server.store.iter(("", "pods")) if p["metadata"]["name"].startswith("pending-")
            ]
            assert len(pending) == 4
            assert all(judge(p) is not None for p in pending)
        finally:
            await driver.close()
