"""The demo's pure parts: snapshots, change lines, milestones, the report, the views, the seed."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from localcluster.demo.cli import HeldBack, configure_demo_logging
from localcluster.demo.prices import price_lookup
from localcluster.demo.report import json_line, summarize
from localcluster.demo.seed import SeedError, load_seed, with_cluster_name, with_empty_ttl
from localcluster.demo.snapshot import ClaimView, NodeView, Snapshot, build_snapshot, changes, claim_phase
from localcluster.demo.timeline import SCALE_UP, Milestone, Recorder, ordered, timeline_lines
from localcluster.demo.view import LiveView, PlainLog, panel_lines
from shared import labels
from shared.logs import get_logger

PRICES = price_lookup({"m5.xlarge": 0.192, "c5.2xlarge": 0.34})


def pod(
    name: str, *, node: str | None = None, phase: str = "Pending", unschedulable: bool = False
) -> dict[str, Any]:
    conditions = (
        [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}] if unschedulable else []
    )
    spec = {"nodeName": node} if node else {}
    return {
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
        "status": {"phase": phase, "conditions": conditions},
    }


def claim(
    name: str, *, instance: str | None = None, itype: str | None = None, **conditions: str
) -> dict[str, Any]:
    claim_labels = {labels.NODEPOOL: "default"}
    if itype:
        claim_labels |= {labels.INSTANCE_TYPE: itype, labels.CAPACITY_TYPE: "on-demand"}
    status: dict[str, Any] = {"conditions": [{"type": k, "status": v} for k, v in conditions.items()]}
    if instance:
        status["instanceID"] = instance
    return {"metadata": {"name": name, "labels": claim_labels}, "status": status}


def node(name: str, *, ready: bool = True, itype: str = "m5.xlarge", managed: bool = True) -> dict[str, Any]:
    node_labels = {labels.INSTANCE_TYPE: itype}
    if managed:
        node_labels[labels.NODEPOOL] = "default"
    return {
        "metadata": {"name": name, "labels": node_labels},
        "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


# Snapshots ------------------------------------------------------------------------------------


def test_snapshot_counts_pods_claims_nodes_and_prices_launched_claims() -> None:
    deleting = pod("gone", node="n1", phase="Running")
    deleting["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    snapshot = build_snapshot(
        [
            pod("a", unschedulable=True),
            pod("b"),
            pod("c", node="n1", phase="Running"),
            pod("d", node="n1", phase="Pending"),
            deleting,
        ],
        [
            claim("default-1", instance="i-1", itype="m5.xlarge", Launched="True", Registered="True"),
            claim("default-2", instance="i-2", itype="c5.2xlarge", Launched="True"),
            claim("default-3"),
        ],
        [node("n1"), node("other", managed=False)],
        PRICES,
    )
    assert (snapshot.pods_total, snapshot.pods_pending, snapshot.pods_unschedulable) == (4, 2, 1)
    assert snapshot.pods_running == 1
    assert snapshot.claims_by_phase() == {"Pending": 1, "Launched": 1, "Registered": 1}
    assert snapshot.instance_types() == {"c5.2xlarge": 1, "m5.xlarge": 1}
    assert [n.name for n in snapshot.nodes] == ["n1"], "nodes jitnode did not launch are not shown"
    assert snapshot.cost_per_hour == round(0.192 + 0.34, 4)
    assert snapshot.launched


def test_claim_phase_follows_conditions_and_deletion() -> None:
    assert claim_phase(claim("x")) == "Pending"
    assert claim_phase(claim("x", instance="i-1")) == "Launched"
    assert claim_phase(claim("x", Launched="True", Registered="True", Initialized="True")) == "Ready"
    terminating = claim("x", Launched="True")
    terminating["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    assert claim_phase(terminating) == "Terminating"


def test_changes_reports_each_transition_once() -> None:
    empty = Snapshot()
    launched = Snapshot(
        pods_total=2,
        pods_pending=2,
        claims=(ClaimView("c1", "Launched", "m5.xlarge", "on-demand", "i-1"),),
        nodes=(NodeView("n1", ready=True, instance_type="m5.xlarge"),),
        cost_per_hour=0.192,
    )
    lines = changes(empty, launched)
    assert "nodeclaim c1: created (Launched)" in lines
    assert "nodeclaim c1: instance i-1 (m5.xlarge, on-demand)" in lines
    assert "node n1: registered (m5.xlarge)" in lines
    assert "node n1: Ready" in lines
    assert "cost: $0.1920/h" in lines
    assert changes(launched, launched) == []
    assert changes(launched, empty) == [
        "pods: 0 total, 0 pending (0 unschedulable), 0 running",
        "nodeclaim c1: deleted",
        "node n1: deleted",
        "cost: $0.0000/h",
    ]


# Milestones -----------------------------------------------------------------------------------


def test_later_evidence_records_every_earlier_milestone() -> None:
    recorder = Recorder(replicas=2)
    recorder.scaled(100.0)
    assert recorder.observe(101.0, Snapshot(pods_total=2, pods_pending=2)) == []
    ready = Snapshot(pods_total=2, pods_running=2, nodes=(NodeView("n1", ready=True),))
    assert recorder.observe(105.0, ready) == list(SCALE_UP)
    assert recorder.timings()["first_demand"] == 5.0
    assert recorder.observe(106.0, ready) == [], "milestones are recorded once"
    recorder.deleted(110.0)
    assert recorder.observe(111.0, Snapshot()) == [Milestone.NODES_DRAINED]
    assert recorder.seconds(Milestone.NODES_DRAINED) == 1.0
    assert ordered(recorder.timings())
    text = "\n".join(timeline_lines(recorder))
    assert "all pods Running" in text
    assert "nodes drained" in text


snapshots = st.builds(
    Snapshot,
    pods_total=st.integers(0, 3),
    pods_unschedulable=st.integers(0, 3),
    pods_running=st.integers(0, 3),
    claims=st.lists(
        st.builds(ClaimView, st.just("c"), st.just("Launched"), instance_id=st.none() | st.just("i"))
    ).map(tuple),
    nodes=st.lists(st.builds(NodeView, st.just("n"), st.booleans())).map(tuple),
)


# No deadline: after the end-to-end tests the first examples can be slow on a busy machine.
@settings(deadline=None)
@given(st.lists(snapshots, max_size=12))
def test_scale_up_milestones_are_always_in_order(seen: list[Snapshot]) -> None:
    recorder = Recorder(replicas=3)
    recorder.scaled(0.0)
    for tick, snapshot in enumerate(seen):
        recorder.observe(float(tick), snapshot)
    times = [recorder.seconds(m) for m in SCALE_UP]
    reached = [t for t in times if t is not None]
    assert times[: len(reached)] == reached, "a later milestone was recorded without an earlier one"
    assert reached == sorted(reached)


# Report ---------------------------------------------------------------------------------------


def _finished_recorder() -> Recorder:
    recorder = Recorder(replicas=1)
    recorder.scaled(0.0)
    recorder.observe(
        1.0,
        Snapshot(
            pods_total=1,
            pods_running=1,
            claims=(ClaimView("c", "Ready", "m5.xlarge", "on-demand", "i-1"),),
            nodes=(NodeView("n", True),),
            cost_per_hour=0.192,
        ),
    )
    return recorder


def test_summary_is_ok_only_when_every_pod_ran_and_nothing_leaked() -> None:
    recorder = _finished_recorder()
    good = summarize(recorder, nodes_terminated=1, leaked_instances=0, wall_seconds=3.0, seed_source="x")
    assert good["ok"]
    assert good["errors"] == []
    assert good["nodes_launched"] == 1
    assert good["instance_types"] == {"m5.xlarge": 1}
    assert good["cost_per_hour_peak"] == 0.192
    assert orjson.loads(json_line(good)) == good
    assert "\n" not in json_line(good)
    leaked = summarize(recorder, nodes_terminated=0, leaked_instances=1, wall_seconds=3.0, seed_source="x")
    assert not leaked["ok"]
    assert "1 instance(s) still running" in leaked["errors"]
    unknown = summarize(
        recorder, nodes_terminated=1, leaked_instances=None, wall_seconds=3.0, seed_source="x"
    )
    assert not unknown["ok"]
    short = Recorder(replicas=3)
    assert not summarize(short, nodes_terminated=0, leaked_instances=0, wall_seconds=1.0, seed_source="x")[
        "ok"
    ]


# Views ----------------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_plain_log_stamps_changes_and_notes() -> None:
    out, clock = io.StringIO(), FakeClock()
    view = PlainLog(out, clock)
    clock.now = 2.5
    view.update(Snapshot(pods_total=1, pods_pending=1))
    view.note("first demand (+0.1 s)")
    view.step("deleting")
    assert out.getvalue().splitlines() == [
        "[   2.5s] pods: 1 total, 1 pending (0 unschedulable), 0 running",
        "[   2.5s] == first demand (+0.1 s)",
        "-- deleting",
    ]


def test_live_view_redraws_the_panel_in_place_within_the_width() -> None:
    out, clock = io.StringIO(), FakeClock()
    view = LiveView(out, replicas=4, clock=clock, width=40)
    view.update(Snapshot(pods_total=4, pods_running=1))
    first = out.getvalue()
    panel_height = len(panel_lines(0.0, Snapshot(), 4, "x"))
    assert "\x1b[A" not in first
    assert first.count("\n") == panel_height
    view.note("first Node Ready (+3.0 s)")
    second = out.getvalue()[len(first) :]
    assert second.startswith(f"\x1b[{panel_height}A\r\x1b[J")
    assert "first Node Ready" in second
    assert all(len(line) < 40 for line in second.split("\x1b[J", 1)[1].splitlines())
    view.close()
    assert out.getvalue().endswith("\x1b[?25h")


def test_panel_shows_progress_types_and_cost() -> None:
    snapshot = Snapshot(
        pods_total=4,
        pods_running=2,
        claims=(ClaimView("c", "Ready", "m5.xlarge", "on-demand", "i-1"),),
        cost_per_hour=0.192,
    )
    text = "\n".join(panel_lines(12.0, snapshot, 4, "scaling"))
    assert "2/4 running [##########----------]" in text
    assert "Ready 1" in text
    assert "m5.xlarge x1" in text
    assert "$0.1920/h" in text


# Seed -----------------------------------------------------------------------------------------

SEED_DIR = Path(__file__).resolve().parents[2] / "examples" / "seed"


def test_seed_is_converted_and_filled_in_for_the_cluster() -> None:
    seed = load_seed("my-cluster", SEED_DIR)
    assert seed.source == "examples/seed (CLUSTER_NAME=my-cluster)"
    spec = seed.nodeclass["spec"]
    tag_terms = [{"tags": {"alpha.eksctl.io/cluster-name": "my-cluster"}}]
    assert spec["subnetSelectorTerms"] == tag_terms
    assert spec["securityGroupSelectorTerms"] == tag_terms
    assert spec["instanceProfile"] == "KarpenterNodeInstanceProfile-my-cluster"
    assert "${" not in orjson.dumps([seed.nodepool, seed.nodeclass]).decode()
    assert seed.nodepool["spec"]["template"]["metadata"]["labels"] == {"intent": "apps"}
    assert seed.nodepool["spec"]["disruption"] == {
        "consolidationPolicy": "WhenEmpty",
        "consolidateAfter": "30s",
    }
    assert seed.deployment["spec"]["replicas"] == 0
    assert seed.deployment["metadata"]["namespace"] == "default"
    container = seed.deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "public.ecr.aws/eks-distro/kubernetes/pause:3.2"
    assert seed.app_label == ("app", "inflate")


def test_empty_ttl_is_applied_without_touching_the_input() -> None:
    pool = load_seed("c", SEED_DIR).nodepool
    changed = with_empty_ttl(pool, 5)
    assert changed["spec"]["disruption"] == {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "5s"}
    assert pool["spec"]["disruption"]["consolidateAfter"] == "30s"


def test_cluster_name_is_filled_in_as_envsubst_does() -> None:
    text = "a: ${CLUSTER_NAME}\nb: $CLUSTER_NAME\nc: ${OTHER}\n"
    assert with_cluster_name(text, "x") == "a: x\nb: x\nc: ${OTHER}\n"


def test_a_broken_seed_is_reported_not_crashed_on(tmp_path: Path) -> None:
    with pytest.raises(SeedError, match="cannot read the seed"):
        load_seed("c", tmp_path)
    (tmp_path / "karpenter-provisioner.yaml").write_text(
        (SEED_DIR / "karpenter-provisioner.yaml").read_text()
    )
    (tmp_path / "inflate.yaml").write_text(yaml.safe_dump({"kind": "Deployment", "metadata": {"name": "x"}}))
    with pytest.raises(SeedError, match="no Deployment named inflate"):
        load_seed("c", tmp_path)
    (tmp_path / "karpenter-provisioner.yaml").write_text("kind: Pod\n")
    with pytest.raises(SeedError, match=r"karpenter-provisioner\.yaml"):
        load_seed("c", tmp_path)


# Logging kept out of the live view ------------------------------------------------------------


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


@pytest.mark.usefixtures("restored_logging")
def test_live_view_holds_warnings_back_until_it_has_closed(capsys: pytest.CaptureFixture[str]) -> None:
    held = configure_demo_logging(None, hold=True)
    assert held is not None
    get_logger("extender.stream").warning("demand_stream.disconnected", error="refused")
    get_logger("extender.stream").info("demand_stream.connected")  # below the demo's level
    assert capsys.readouterr().err == "", "a log line reached the terminal under the live view"
    held.write_out(sys.stderr)
    (line,) = capsys.readouterr().err.splitlines()
    assert orjson.loads(line)["event"] == "demand_stream.disconnected"


@pytest.mark.usefixtures("restored_logging")
def test_held_lines_are_bounded_and_the_rest_counted() -> None:
    held = HeldBack(capacity=3)
    held.setFormatter(logging.Formatter("%(message)s"))
    for n in range(5):
        held.emit(logging.LogRecord("x", logging.WARNING, __file__, 1, f"line {n}", None, None))
    out = io.StringIO()
    held.write_out(out)
    assert out.getvalue().splitlines() == ["(2 earlier log lines not kept)", "line 2", "line 3", "line 4"]


@pytest.mark.usefixtures("restored_logging")
def test_plain_log_passes_warnings_straight_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    assert configure_demo_logging(None, hold=False) is None
    get_logger("x").warning("something.happened")
    assert "something.happened" in capsys.readouterr().err
