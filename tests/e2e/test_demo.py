"""``jitnode demo`` end to end on the local cluster, with short delays.

The real scenario (stack, seed objects, scale-up, scale-down, EC2 check) writes its plain log
and the JSON line to a buffer; the test judges the JSON line and the log's milestones.
"""

from __future__ import annotations

import io
import logging
import re

import orjson
import pytest

from localcluster.demo import DemoOptions
from localcluster.demo.scenario import run_demo
from localcluster.demo.timeline import SCALE_DOWN, SCALE_UP
from localcluster.ec2 import MotoEC2

pytestmark = pytest.mark.slow

FAST = DemoOptions(
    replicas=6,
    boot_delay=0.5,
    container_start_delay=0.1,
    empty_ttl=3.0,
    poll_interval=0.1,
    deadline=120.0,
    scale_up_timeout=60.0,
    drain_timeout=40.0,
    terminate_timeout=20.0,
)


async def test_demo_runs_every_pod_then_removes_every_node(
    moto_server: MotoEC2, caplog: pytest.LogCaptureFixture
) -> None:
    out = io.StringIO()
    caplog.set_level(logging.WARNING)
    summary = await run_demo(FAST, out, live=False, ec2=moto_server)
    # Start-up is ordered (launcher ready and leading, then the extender): no refused stream.
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert not [w for w in warnings if "demand_stream" in w], warnings

    text = out.getvalue()
    lines = text.splitlines()
    assert orjson.loads(lines[-1]) == summary, "the JSON summary is not the last line"
    assert summary["errors"] == [], text
    assert summary["ok"] is True
    assert summary["pods_ran"] == FAST.replicas
    assert summary["nodes_launched"] >= 1
    assert summary["nodes_terminated"] == summary["nodes_launched"]
    assert summary["leaked_instances"] == 0
    assert sum(summary["instance_types"].values()) == summary["nodes_launched"]
    assert summary["cost_per_hour_peak"] > 0
    up = [summary["timings"][m.value] for m in SCALE_UP]
    assert all(t is not None and t >= 0 for t in up), summary["timings"]
    assert up == sorted(up), f"scale-up milestones out of order: {summary['timings']}"
    down = [summary["timings"][m.value] for m in SCALE_DOWN]
    # Nodes go after the deletion (the TTL itself is the disruption tests' business), instances with them.
    assert down[0] is not None
    assert down[0] > 0, summary["timings"]
    assert down[1] >= down[0]
    assert summary["wall_seconds"] < FAST.deadline

    # The plain log tells the story in order, one line per change, no ANSI codes.
    assert "\x1b[" not in text
    milestones = [
        "== first demand",
        "== CreateFleet returned",
        "== first Node Ready",
        "== all pods Running",
        "timeline (seconds since the scale-up):",
        "-- deleting Deployment inflate",
        "== nodes drained and deleted",
        "== instances terminated",
    ]
    positions = [text.find(m) for m in milestones]
    assert all(p >= 0 for p in positions), [m for m, p in zip(milestones, positions, strict=True) if p < 0]
    assert positions == sorted(positions), "milestones out of order in the log"
    created = set(re.findall(r"nodeclaim (\S+): created", text))
    deleted = set(re.findall(r"nodeclaim (\S+): deleted", text))
    assert len(created) == summary["nodes_launched"]
    assert created == deleted
    assert re.search(r"node \S+: Ready", text)
    assert re.search(
        rf"pods: {FAST.replicas} total, 0 pending \(0 unschedulable\), {FAST.replicas} running", text
    )


async def test_demo_reports_failure_when_pods_do_not_run_in_time(moto_server: MotoEC2) -> None:
    # The first CreateFleet waits for the launcher's catalogue (seconds): 0.3 s cannot be enough.
    options = DemoOptions(
        replicas=2, boot_delay=0.0, empty_ttl=1.0, poll_interval=0.1, scale_up_timeout=0.3, deadline=60.0
    )
    out = io.StringIO()
    summary = await run_demo(options, out, live=False, ec2=moto_server)

    assert summary["ok"] is False
    assert any("all 2 pods Running did not happen within" in e for e in summary["errors"]), summary
    assert summary["timings"]["all_pods_running"] is None
    assert orjson.loads(out.getvalue().splitlines()[-1]) == summary
