"""The time-to-capacity simulator (bench/capacity_sim.py): its policies act as specified, its
money adds up, and a run is a pure function of its inputs. The figures are the bench's job."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

from capsim import policies  # noqa: E402
from capsim.engine import Outcome, simulate  # noqa: E402
from capsim.nodegroups import least_waste  # noqa: E402
from capsim.params import BootTimes, Prices, Settings, Spread  # noqa: E402
from capsim.planning import Planner  # noqa: E402
from capsim.report import table, verdict  # noqa: E402
from capsim.traces import INFLATE, Trace, batch, burst, diurnal, rollout_surge  # noqa: E402

from tests.launcher.planner_fixtures import CATALOGUE  # noqa: E402

COLD = 30.0
FIXED = BootTimes(
    cold=Spread(COLD, COLD, COLD),
    from_stopped=Spread(10, 10, 10),
    from_hibernated=Spread(6, 6, 6),
    from_running=Spread(2, 2, 2),
    stop=Spread(20, 20, 20),
    hibernate=Spread(40, 40, 40),
)
SETTINGS = Settings(boot=FIXED)


@pytest.fixture(scope="module")
def planner() -> Planner:
    """jitnode's planner over the planner tests' small catalogue (fast), the seed's NodePool."""
    return Planner(types=CATALOGUE)


def trickle(pods: int, every: float, start: float = 1.0, hold: float = 600.0) -> Trace:
    """``inflate`` growing by one replica every ``every`` seconds, then kept for ``hold``."""
    steps = tuple((start + i * every, "inflate", i + 1) for i in range(pods))
    return Trace("trickle", "test", start + pods * every + hold, (INFLATE,), steps)


def test_the_seed_pool_keeps_only_types_it_may_launch(planner: Planner) -> None:
    # The seed Provisioner excludes nano..large: t3.micro and m5.large must be gone.
    assert {"t3.micro", "m5.large"}.isdisjoint(planner.info)
    assert "m5.xlarge" in planner.info
    claims = planner.plan((((1000, 3 * 2**29), 3),))
    assert sum(n for claim in claims for _, n in claim.pods) == 3
    assert planner.plan((((1000, 3 * 2**29), 3),)) is claims  # memoised


def test_jitnode_waits_its_reaction_then_the_boot(planner: Planner) -> None:
    outcome = simulate(burst(10), policies.JITNODE_COLD, planner, SETTINGS)
    assert len(outcome.pending_s) == 10
    assert outcome.percentile(50) == pytest.approx(0.4 + COLD)
    assert outcome.pending_s[-1] == pytest.approx(0.4 + COLD)
    assert outcome.cold_launches >= 1
    assert outcome.warm_starts == 0


def test_karpenters_batch_window_delays_the_launch(planner: Planner) -> None:
    # A pod every 0.5 s never leaves Karpenter idle for 1 s: the batch closes at its 10 s max.
    trace = trickle(pods=40, every=0.5)
    karpenter = simulate(trace, policies.KARPENTER, planner, SETTINGS)
    jitnode = simulate(trace, policies.JITNODE_COLD, planner, SETTINGS)
    assert karpenter.pending_s[-1] == pytest.approx(10.0 + COLD)  # the first pod waited longest
    assert jitnode.pending_s[-1] == pytest.approx(0.4 + COLD)
    # A lone pod closes the batch after the 1 s idle time.
    lone = simulate(trickle(pods=1, every=1.0), policies.KARPENTER, planner, SETTINGS)
    assert lone.pending_s == pytest.approx((1.0 + COLD,))


def test_cluster_autoscaler_waits_for_its_scan(planner: Planner) -> None:
    outcome = simulate(burst(10), policies.CLUSTER_AUTOSCALER, planner, SETTINGS)
    assert all(COLD <= wait <= COLD + policies.CLUSTER_AUTOSCALER.scan_s for wait in outcome.pending_s)


@pytest.mark.parametrize(
    ("policy", "start"),
    [
        (policies.JITNODE_WARM_STOPPED, 10.0),
        (policies.JITNODE_WARM_HIBERNATED, 6.0),
        (policies.JITNODE_WARM_RUNNING, 2.0),
    ],
)
def test_a_warm_start_is_faster_than_a_cold_launch(
    planner: Planner, policy: policies.Policy, start: float
) -> None:
    trace = burst(3)  # 3 pods: one node, which the pool's two instances can hold
    warm = simulate(trace, policy, planner, SETTINGS)
    cold = simulate(trace, policies.JITNODE_COLD, planner, SETTINGS)
    assert warm.warm_starts >= 1
    assert warm.cold_launches == 0
    assert warm.pending_s[-1] == pytest.approx(0.4 + start)
    assert cold.pending_s[-1] == pytest.approx(0.4 + COLD)


def test_demand_beyond_the_pool_launches_cold(planner: Planner) -> None:
    outcome = simulate(burst(100), policies.JITNODE_WARM_STOPPED, planner, SETTINGS)
    assert outcome.warm_starts == 2  # the pool's floor
    assert outcome.cold_launches > 0
    assert outcome.pending_s[0] == pytest.approx(0.4 + 10.0)
    assert outcome.pending_s[-1] == pytest.approx(0.4 + COLD)


def test_an_instance_still_filling_serves_when_its_first_boot_ends(planner: Planner) -> None:
    # Two parked instances (3 pods each). The first 3 pods take one; the pool refills it at once
    # (a cold boot, ready at 1.4 + 30 s). The next 6 pods take the other parked one and the one
    # filling, which serves them when its boot ends: sooner than a cold launch would.
    trace = Trace("refill", "test", 600.0, (INFLATE,), ((1.0, "inflate", 3), (5.0, "inflate", 9)))
    outcome = simulate(trace, policies.JITNODE_WARM_STOPPED, planner, SETTINGS)
    assert outcome.cold_launches == 0
    assert outcome.warm_starts == 3
    assert outcome.pending_s == pytest.approx((10.4,) * 6 + (1.4 + COLD - 5.0,) * 3)


def test_a_capacity_buffer_serves_pods_without_waiting_and_is_refilled(planner: Planner) -> None:
    buffered = replace(policies.JITNODE_BUFFER, buffer=policies.Buffer(percentage=0, replicas=2))
    outcome = simulate(burst(2), buffered, planner, SETTINGS)
    assert outcome.pending_s == (0.0, 0.0)  # the buffer's room took them
    assert outcome.cold_launches >= 1  # ... and new room was bought for the displaced buffer
    without = simulate(burst(2), policies.JITNODE_COLD, planner, SETTINGS)
    assert without.pending_s == pytest.approx((0.4 + COLD, 0.4 + COLD))
    assert outcome.cost > without.cost  # headroom is paid for


def test_the_cluster_autoscaler_picks_the_least_wasteful_group(planner: Planner) -> None:
    inflate = (INFLATE.cpu_m, INFLATE.memory)
    groups = ["m5.xlarge", "m5.2xlarge"]
    # 3 pods fill most of one xlarge's CPU; 7 fill one 2xlarge where xlarges would need 3 nodes.
    (few,) = least_waste([inflate] * 3, groups, planner.info)
    assert few.instance_types == ("m5.xlarge",)
    assert few.pods == ((inflate, 3),)
    (many,) = least_waste([inflate] * 7, groups, planner.info)
    assert many.instance_types == ("m5.2xlarge",)
    assert least_waste([(64_000, 1)], groups, planner.info) == []  # no group holds it


def test_buffer_size_is_the_larger_of_replicas_and_percentage() -> None:
    buffer = policies.Buffer(percentage=10, replicas=2)
    assert [buffer.size(n) for n in (0, 10, 21, 100)] == [2, 2, 3, 10]


def test_costs_add_up_for_a_node_that_runs_then_goes(planner: Planner) -> None:
    # One replica from the start for 30 min on one node, then none: the node goes once empty
    # for 30 s (the next 10 s tick); EBS is paid while the instance exists.
    trace = Trace("one", "test", 3600.0, (INFLATE,), ((0.0, "inflate", 1), (1800.0, "inflate", 0)))
    outcome = simulate(trace, policies.JITNODE_COLD, planner, SETTINGS)
    (claim,) = planner.plan((((INFLATE.cpu_m, INFLATE.memory), 1),))
    price = planner.info[claim.instance_types[0]].price
    lived = 1830.0  # removed at the first 10 s tick at least 30 s after 1800
    assert outcome.instance_cost == pytest.approx(price * lived / 3600)
    assert outcome.ebs_cost == pytest.approx(Prices().ebs_per_second(20) * lived)
    assert outcome.cost == pytest.approx(outcome.instance_cost + outcome.ebs_cost)
    assert outcome.dollars_per_day == pytest.approx(outcome.cost * 24)
    # The node's CPU not requested by the pod was idle all along.
    info = planner.info[claim.instance_types[0]]
    assert outcome.idle_vcpu_s == pytest.approx(
        (info.cpu_m - INFLATE.cpu_m) / 1000 * 1800 + info.cpu_m / 1000 * 30
    )


@pytest.mark.parametrize("state", ["Stopped", "Hibernated"])
def test_a_resting_pool_pays_ebs_only(planner: Planner, state: policies.PoolState) -> None:
    policy = replace(policies.JITNODE_WARM_STOPPED, warm=policies.WarmPool(state, size=2))
    idle = Trace("idle", "test", 3600.0, (INFLATE,), ())
    outcome = simulate(idle, policy, planner, SETTINGS)
    assert outcome.instance_cost == 0.0
    assert outcome.idle_vcpu_s == 0.0  # stopped instances are not capacity
    (claim,) = planner.plan((((INFLATE.cpu_m, INFLATE.memory), 10),))[:1]
    ram = planner.info[claim.instance_types[0]].ram_gib if state == "Hibernated" else 0.0
    per_instance = Prices().ebs_per_second(20 + ram) * 3600
    assert outcome.ebs_cost >= 2 * Prices().ebs_per_second(20) * 3600 * 0.999
    if state == "Hibernated":
        assert outcome.ebs_cost > 2 * Prices().ebs_per_second(20) * 3600  # RAM-sized space too
    assert outcome.ebs_cost <= 2 * per_instance * 4  # a handful of instances, not more


def test_a_running_pool_pays_full_price(planner: Planner) -> None:
    idle = Trace("idle", "test", 3600.0, (INFLATE,), ())
    outcome = simulate(idle, policies.JITNODE_WARM_RUNNING, planner, SETTINGS)
    assert outcome.instance_cost > 0
    assert outcome.idle_vcpu_s > 0


def test_a_short_start_is_billed_a_minute(planner: Planner) -> None:
    # A node that lives 40 s (launched for a pod deleted before it is Ready) pays 60 s.
    trace = Trace("blip", "test", 600.0, (INFLATE,), ((1.0, "inflate", 1), (2.0, "inflate", 0)))
    outcome = simulate(trace, policies.JITNODE_COLD, planner, SETTINGS)
    (claim,) = planner.plan((((INFLATE.cpu_m, INFLATE.memory), 1),))
    price = planner.info[claim.instance_types[0]].price
    assert outcome.cold_launches == 1
    assert outcome.instance_cost > price * 60 / 3600 * 0.999


def test_a_rollout_finishes_and_surges_only_as_allowed(planner: Planner) -> None:
    outcome = simulate(rollout_surge(), policies.JITNODE_COLD, planner, SETTINGS)
    assert len(outcome.rollout_s) == 3
    assert all(10.0 < s < 3600.0 for s in outcome.rollout_s)


def test_scale_down_returns_to_the_starting_cost(planner: Planner) -> None:
    # After the burst the nodes go: a day of burst-10 costs little more than its busy part.
    outcome = simulate(burst(10), policies.JITNODE_COLD, planner, SETTINGS)
    ca = simulate(burst(10), policies.CLUSTER_AUTOSCALER, planner, SETTINGS)
    assert outcome.cost < ca.cost  # the Cluster Autoscaler keeps unneeded nodes 10 min


def test_runs_are_deterministic(planner: Planner) -> None:
    trace = batch(3)
    first = simulate(trace, policies.JITNODE_WARM_STOPPED, planner, Settings(seed=3))
    again = simulate(batch(3), policies.JITNODE_WARM_STOPPED, planner, Settings(seed=3))
    assert first == again
    other = simulate(batch(4), policies.JITNODE_WARM_STOPPED, planner, Settings(seed=4))
    assert other != first


def test_traces_are_deterministic_and_well_formed() -> None:
    day = diurnal(14)
    assert day == diurnal(14)
    assert day != diurnal(15)
    assert len(day.steps) == 2 * 24 * 60
    assert all(replicas >= 1 for _, _, replicas in day.steps)
    jobs = batch(14)
    assert all(replicas >= 0 for _, _, replicas in jobs.steps)
    assert jobs.steps[-1][2] == 0  # every job ends
    assert [t for t, _, _ in jobs.steps] == sorted(t for t, _, _ in jobs.steps)


def test_spread_rejects_an_impossible_distribution() -> None:
    with pytest.raises(ValueError, match="low <= mode <= high"):
        Spread(10, 5, 20)


def _outcome(policy: str, p99: float, cost: float) -> Outcome:
    return Outcome("t", policy, 86400.0, (p99,), cost, cost, 0.0, 0.0, 0, 0)


def test_the_verdict_takes_the_fastest_affordable_warm_option() -> None:
    outcomes = [
        _outcome("karpenter", 60.0, 100.0),
        _outcome("warm-a", 15.0, 109.0),  # a quarter of the p99 for 9% more: met
        _outcome("warm-b", 5.0, 150.0),  # faster, but 50% dearer
    ]
    judged = verdict(outcomes, "karpenter", ["warm-a", "warm-b"])
    assert judged.met
    assert judged.best is not None
    assert judged.best.policy == "warm-a"
    assert judged.fastest.policy == "warm-b"
    dear = verdict([outcomes[0], outcomes[2]], "karpenter", ["warm-b"])
    assert not dear.met
    assert dear.best is None
    slow = verdict([outcomes[0], _outcome("warm-c", 30.0, 101.0)], "karpenter", ["warm-c"])
    assert not slow.met  # half the p99 is not a third
    assert "NOT MET" in slow.describe()


def test_every_policy_runs_every_trace_shape_into_the_table(planner: Planner) -> None:
    short = replace(diurnal(14), duration=4 * 3600.0)  # the morning ramp, to stay fast
    outcomes = [simulate(short, policy, planner, SETTINGS) for policy in policies.POLICIES]
    text = table(outcomes)
    for policy in policies.POLICIES:
        assert policy.name in text
    assert all(o.cost > 0 for o in outcomes)
    assert all(len(o.pending_s) > 0 for o in outcomes)
