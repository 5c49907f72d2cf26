"""The time-to-capacity simulator (bench/capacity_sim.py): its policies act as specified, its
money adds up, and a run is a pure function of its inputs. The figures are the bench's job."""

from __future__ import annotations

import random
import sys
import zlib
from dataclasses import replace
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

from capsim import explain, policies  # noqa: E402
from capsim.engine import Outcome, Wait, simulate  # noqa: E402
from capsim.nodegroups import least_waste  # noqa: E402
from capsim.params import BootTimes, Prices, Settings, Spread  # noqa: E402
from capsim.planning import Planner, TypeInfo  # noqa: E402
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


def test_stabilisation_keeps_capacity_the_workload_needed_within_its_window(planner: Planner) -> None:
    # inflate 0 -> 3 -> 0 -> 3. Without stabilisation the emptied node goes after 30 s and the
    # second 3 pods wait for a cold boot; a 300 s window keeps it, so they bind at once.
    back_soon = Trace(
        "flap",
        "test",
        1200.0,
        (INFLATE,),
        ((1.0, "inflate", 3), (200.0, "inflate", 0), (400.0, "inflate", 3)),
    )
    cold = simulate(back_soon, policies.JITNODE_COLD, planner, SETTINGS)
    stable = simulate(back_soon, replace(policies.JITNODE_COLD, stabilise_s=300.0), planner, SETTINGS)
    assert cold.pending_s == pytest.approx((0.4 + COLD,) * 6)
    assert stable.pending_s == pytest.approx((0.0,) * 3 + (0.4 + COLD,) * 3)
    assert stable.cold_launches < cold.cold_launches
    # Past the window the node goes: the pods coming back after 900 s wait for a new one.
    back_late = replace(back_soon, steps=((1.0, "inflate", 3), (200.0, "inflate", 0), (900.0, "inflate", 3)))
    late = simulate(back_late, replace(policies.JITNODE_COLD, stabilise_s=300.0), planner, SETTINGS)
    assert late.pending_s == pytest.approx((0.4 + COLD,) * 6)
    assert late.cold_launches == 2


def test_predicted_headroom_is_the_recent_growth_times_the_lead_plus_the_jumps() -> None:
    history = [(0.0, 10), (60.0, 12), (120.0, 13), (180.0, 20)]
    ramp = policies.Buffer(percentage=0, replicas=0, window_s=600.0, lead_s=120.0)
    assert ramp.predicted(history, 180.0) == 2  # 10 replicas in 600 s, 120 s ahead
    assert replace(ramp, jump=1.0).predicted(history, 180.0) == 2 + 7  # the largest resize up: +7
    # A 100 s window starts from the value held at 80 s (12): 8 in 100 s, 120 s ahead: 9.6.
    short = replace(ramp, window_s=100.0, jump=0.5)
    assert short.predicted(history, 180.0) == 14  # ceil(9.6 + 0.5 * 7)
    assert ramp.predicted([(0.0, 20), (60.0, 12)], 60.0) == 0  # shrinking: no headroom
    assert policies.Buffer().predicted(history, 180.0) == 0  # off by default


def test_predictive_headroom_serves_a_steady_ramp_before_it_arrives(planner: Planner) -> None:
    trace = trickle(pods=30, every=60.0)
    predictive = replace(
        policies.JITNODE_COLD,
        buffer=policies.Buffer(percentage=0, replicas=0, window_s=600.0, lead_s=180.0),
    )
    cold = simulate(trace, policies.JITNODE_COLD, planner, SETTINGS)
    ahead = simulate(trace, predictive, planner, SETTINGS)
    waited = sum(1 for s in ahead.pending_s if s > 1.0)
    assert sum(1 for s in cold.pending_s if s > 1.0) >= 8  # each new node's first pod waits
    assert waited <= 2  # only before the ramp has a history
    assert ahead.cost > cold.cost


def test_hedged_starts_serve_the_pods_from_the_first_instance_ready(planner: Planner) -> None:
    # Three parked instances of a type that holds the 3 pods; resumes vary 5-60 s. Hedged x3,
    # all three start and the pods take the first Ready: the least of the first three draws of
    # the (per-kind, per-trace) random stream of Hibernated resumes.
    resume = Spread(5, 20, 60)
    settings = Settings(boot=replace(FIXED, from_hibernated=resume), seed=7)
    pool = policies.WarmPool("Hibernated", size=3, max_size=3)
    plain = replace(policies.JITNODE_WARM_HIBERNATED, warm=pool)
    hedged = replace(plain, warm=replace(pool, hedge=3.0))
    trace = burst(3)
    stream = random.Random(zlib.crc32(f"7/{trace.name}/hibernated".encode()))
    draws = [resume.sample(stream) for _ in range(3)]
    one = simulate(trace, plain, planner, settings)
    three = simulate(trace, hedged, planner, settings)
    assert one.warm_starts == 1
    assert one.pending_s == pytest.approx((0.4 + draws[0],) * 3)
    assert three.warm_starts == 3
    assert three.pending_s == pytest.approx((0.4 + min(draws),) * 3)
    assert min(draws) < draws[0]  # the seed is chosen so that hedging changes the answer
    assert three.instance_cost > one.instance_cost  # each spare start is paid, a minute at least
    # Hedging only bursts of 4 pods or more: these 3 pods start one instance.
    few = simulate(trace, replace(plain, warm=replace(pool, hedge=3.0, hedge_min_pods=4)), planner, settings)
    assert few.warm_starts == 1
    assert few.pending_s == one.pending_s


def test_explain_splits_waits_into_spike_ramp_and_noise() -> None:
    steps = (
        (0.0, "inflate", 2),
        (60.0, "inflate", 5),  # +3, a new 10-minute high: ramp
        (120.0, "inflate", 3),
        (180.0, "inflate", 6),  # +3: 2 regain the high of 60 s (noise), 1 above it (ramp)
        (240.0, "inflate", 9),  # +3 in the spike
        (1000.0, "inflate", 8),
    )
    trace = Trace("t", "test", 1200.0, (INFLATE,), steps)
    spikes = ((240.0, 0.5),)
    assert explain.resizes(trace, spikes) == [
        explain.Resize(60.0, "inflate", 3, 3, False),
        explain.Resize(180.0, "inflate", 3, 1, False),
        explain.Resize(240.0, "inflate", 3, 3, True),
    ]
    waits = (
        [Wait(60.0, "inflate", 0.0)]
        + [Wait(60.0, "inflate", 30.0)] * 2  # 2 of the ramp wait
        + [Wait(180.0, "inflate", 0.0)]
        + [Wait(180.0, "inflate", 30.0)] * 2  # the ramp one, then noise
        + [Wait(240.0, "inflate", 30.0)] * 3
    )
    outcome = replace(_outcome("p", 30.0, 1.0), waits=tuple(waits))
    b = explain.breakdown(outcome, trace, 17.0, spikes)
    assert (b.created, b.over_1s, b.over) == (9, 7, 7)
    assert b.by_cause == {"spike": 3, "ramp": 3, "noise": 1, "other": 0}
    assert b.allowed == 0  # 9 pods: the p99 is the slowest


def test_the_headroom_bound_lets_only_the_allowed_pods_wait() -> None:
    steps = ((0.0, "inflate", 1), (100.0, "inflate", 11), (300.0, "inflate", 1), (500.0, "inflate", 7))
    trace = Trace("t", "test", 1000.0, (INFLATE,), steps)
    spikes = ((100.0, 1.0), (500.0, 1.0))  # two spikes of +10 and +6 pods
    cheap = TypeInfo("c.big", 8000, 16 * 2**30, 110, 16.0, 0.40)  # 8 inflate pods (CPU): $0.05 each
    dear = TypeInfo("m.small", 2000, 8 * 2**30, 110, 8.0, 0.15)  # 2 pods: $0.075 each
    bound = explain.headroom_bound(trace, 3, {t.name: t for t in (cheap, dear)}, spikes)
    assert bound is not None
    assert bound.pods == 7  # 10 - 7 + 0 = 3 wait; with 6, 4 + 0 would
    assert bound.cpu == 7.0
    assert bound.type_name == "c.big"
    assert bound.dollars_per_day == pytest.approx(7 * 0.40 / 8 * 24)
    assert explain.headroom_bound(trace, 3, {"c.big": cheap}, ()) is None


def test_the_share_of_starts_within_a_time_follows_the_triangle() -> None:
    hibernated = Spread(8, 15, 60)
    assert explain.within(hibernated, 8) == 0.0
    assert explain.within(hibernated, 60) == 1.0
    assert explain.within(hibernated, 15) == pytest.approx(7 / 52)
    assert explain.within(hibernated, 16.8) == pytest.approx(1 - 43.2**2 / (52 * 45))
    rng = random.Random(1)
    draws = [hibernated.sample(rng) for _ in range(20000)]
    assert sum(d <= 16.8 for d in draws) / len(draws) == pytest.approx(
        explain.within(hibernated, 16.8), abs=0.01
    )


def test_the_explain_report_counts_waits_and_searches_the_trade_off(planner: Planner) -> None:
    import capacity_sim

    short = replace(diurnal(14), duration=2 * 3600.0)  # the night: no spike, a few waits
    day = [
        simulate(short, policy, planner, SETTINGS) for policy in (policies.KARPENTER, policies.JITNODE_STABLE)
    ]
    space: capacity_sim.Space = ((0.0, 300.0), (("-", None),), (("-", None),))
    text = capacity_sim.explain_report(day, short, planner, SETTINGS, space)
    karpenter = day[0]
    created = len(karpenter.waits)
    assert f"pods created: {created}" in text
    assert "trade-off over 2 configurations" in text
    assert "cheapest within the p99 bound:" in text
    assert "least constant running headroom" not in text  # no spike in the night
