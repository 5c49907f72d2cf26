"""The Deployments' memory is what docs/scale.md says is shipped, and its table is consistent."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from shared.quantity import parse_quantity

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "scale.md"
DEPLOYMENTS = {
    "extender": REPO / "manifests" / "extender" / "deployment.yaml",
    "launcher": REPO / "manifests" / "launcher" / "deployment.yaml",
}
SIZE = re.compile(r"up to ([\d,]+) / ([\d,]+)")


def table() -> list[tuple[int, str, dict[str, tuple[str, str]]]]:
    """Rows of the memory table: (pods, first cell, {service: (request, limit)})."""
    rows = []
    for line in DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        match = SIZE.search(cells[0]) if len(cells) == 5 else None
        if match is None:
            continue
        pods = int(match.group(2).replace(",", ""))
        rows.append((pods, cells[0], {"extender": (cells[1], cells[2]), "launcher": (cells[3], cells[4])}))
    return rows


def container(service: str) -> dict[str, Any]:
    doc = yaml.safe_load(DEPLOYMENTS[service].read_text())
    found: dict[str, Any] = doc["spec"]["template"]["spec"]["containers"][0]
    return found


def shipped(what: str) -> dict[str, tuple[str, str]]:
    rows = [memory for _, label, memory in table() if f"shipped {what}" in label]
    assert len(rows) == 1, f"docs/scale.md marks exactly one row (shipped {what})"
    return rows[0]


def test_the_manifests_ship_the_rows_the_doc_marks_shipped() -> None:
    requests, limits = shipped("requests"), shipped("limits")
    for service in DEPLOYMENTS:
        resources = container(service)["resources"]
        assert resources["requests"]["memory"] == requests[service][0], service
        assert resources["limits"]["memory"] == limits[service][1], service


def test_memory_grows_with_the_cluster_and_requests_stay_under_limits() -> None:
    rows = table()
    assert len(rows) >= 3
    assert [r[0] for r in rows] == sorted(r[0] for r in rows)
    for service in DEPLOYMENTS:
        requests = [parse_quantity(r[2][service][0]) for r in rows]
        limits = [parse_quantity(r[2][service][1]) for r in rows]
        assert requests == sorted(requests), service
        assert limits == sorted(limits), service
        assert all(req <= lim for req, lim in zip(requests, limits, strict=True)), service
