"""The demo's verdict and its one line of JSON (pure).

The line carries what a reader or a CI job needs to judge the run: every pod ran, nothing was
left running on EC2, how long each step took, what was launched and what it cost at the peak.
"""

from __future__ import annotations

from typing import Any

import orjson

from localcluster.demo.timeline import Milestone, Recorder, ordered


def summarize(
    recorder: Recorder,
    *,
    nodes_terminated: int,
    leaked_instances: int | None,
    wall_seconds: float,
    seed_source: str,
    error: str | None = None,
) -> dict[str, Any]:
    """The summary; ``ok`` only if every pod ran, the timeline is whole and nothing leaked."""
    timings = recorder.timings()
    every_pod_ran = (
        recorder.seconds(Milestone.ALL_PODS_RUNNING) is not None
        and recorder.max_pods_running == recorder.replicas
    )
    problems = [error] if error else []
    if not every_pod_ran:
        problems.append(f"only {recorder.max_pods_running} of {recorder.replicas} pods ran")
    if leaked_instances is None:
        problems.append("could not check EC2 for leaked instances")
    elif leaked_instances:
        problems.append(f"{leaked_instances} instance(s) still running")
    if every_pod_ran and not ordered(timings):
        problems.append("scale-up milestones out of order")
    return {
        "ok": not problems,
        "replicas": recorder.replicas,
        "pods_ran": recorder.max_pods_running,
        "timings": timings,
        "instance_types": recorder.instance_types(),
        "nodes_launched": len(recorder.claims),
        "nodes_terminated": nodes_terminated,
        "peak_nodes": recorder.peak_nodes,
        "cost_per_hour_peak": round(recorder.peak_cost_per_hour, 4),
        "leaked_instances": leaked_instances,
        "wall_seconds": round(wall_seconds, 1),
        "seed": seed_source,
        "errors": problems,
    }


def json_line(summary: dict[str, Any]) -> str:
    """The summary as one line of JSON, keys in a stable order."""
    return orjson.dumps(summary, option=orjson.OPT_SORT_KEYS).decode()
