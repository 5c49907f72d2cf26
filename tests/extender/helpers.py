"""Builders for the plain dicts the API sends (nodes, pods), shared by the extender tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any


def node(
    name: str,
    cpu: str = "4",
    memory: str = "16Gi",
    pods: str = "110",
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    taints: list[dict[str, str]] | None = None,
    unschedulable: bool = False,
) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if taints:
        spec["taints"] = taints
    if unschedulable:
        spec["unschedulable"] = True
    return {
        "metadata": {
            "name": name,
            "uid": f"uid-{name}",
            "resourceVersion": "1",
            "labels": {"kubernetes.io/hostname": name, **(labels or {})},
            "annotations": annotations or {},
        },
        "spec": spec,
        "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": pods}},
    }


def pod(
    name: str,
    cpu: str = "1",
    memory: str = "1Gi",
    node_name: str = "",
    namespace: str = "default",
    node_selector: dict[str, str] | None = None,
    phase: str = "Pending",
    unschedulable: bool = False,
    tolerations: list[dict[str, Any]] | None = None,
    rv: str = "1",
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "containers": [
            {"name": "c", "image": "pause", "resources": {"requests": {"cpu": cpu, "memory": memory}}}
        ],
        "schedulerName": "default-scheduler",
    }
    if node_name:
        spec["nodeName"] = node_name
    if node_selector:
        spec["nodeSelector"] = node_selector
    if tolerations:
        spec["tolerations"] = tolerations
    status: dict[str, Any] = {"phase": phase}
    if unschedulable:
        status["conditions"] = [
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/3 nodes are available: 3 Insufficient cpu.",
                "lastTransitionTime": "2026-11-25T05:00:00Z",
            }
        ]
    return {
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}", "resourceVersion": rv},
        "spec": spec,
        "status": status,
    }


async def eventually(check: Callable[[], object], within: float = 5.0, step: float = 0.01) -> None:
    """Poll ``check`` until it is truthy; fail the test after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        if check():
            return
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {within}s: {check}")
        await asyncio.sleep(step)


async def eventually_async(
    check: Callable[[], Awaitable[object]], within: float = 10.0, step: float = 0.05
) -> None:
    """:func:`eventually` for a check that has to await (an API call)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        if await check():
            return
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {within}s: {check}")
        await asyncio.sleep(step)
