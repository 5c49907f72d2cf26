"""Server-side Table output for custom resources: JSONPath cells, ages, the Accept header."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from localcluster.apiserver import table

NOW = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)
CLAIM = {
    "metadata": {
        "name": "default-abc",
        "creationTimestamp": "2026-05-01T11:55:00Z",
        "labels": {"node.kubernetes.io/instance-type": "m5.large"},
    },
    "status": {
        "nodeName": "ip-10-0-0-1",
        "conditions": [{"type": "Launched", "status": "True"}, {"type": "Ready", "status": "Unknown"}],
    },
}
COLUMNS: list[dict[str, Any]] = [
    {"name": "Type", "type": "string", "jsonPath": ".metadata.labels.node\\.kubernetes\\.io/instance-type"},
    {"name": "Node", "type": "string", "jsonPath": ".status.nodeName"},
    {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    {"name": "ID", "type": "string", "jsonPath": ".status.providerID", "priority": 1},
]


def test_rows_follow_the_printer_columns() -> None:
    got = table.table([CLAIM], COLUMNS, {"resourceVersion": "7"}, now=NOW)
    assert got["kind"] == "Table"
    assert [c["name"] for c in got["columnDefinitions"]] == ["Name", "Type", "Node", "Ready", "Age", "ID"]
    assert got["columnDefinitions"][-1]["priority"] == 1
    assert got["rows"][0]["cells"] == ["default-abc", "m5.large", "ip-10-0-0-1", "Unknown", "5m", None]
    assert got["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    assert "object" not in table.table([CLAIM], COLUMNS, {}, include_object="None", now=NOW)["rows"][0]


@pytest.mark.parametrize(
    ("path", "want"),
    [
        ('.status.conditions[?(@.type=="Launched")].status', ["True"]),
        (".status.conditions[*].type", ["Launched", "Ready"]),
        (".status.conditions[1].type", ["Ready"]),
        ('.status.conditions[?(@.type!="Ready")].type', ["Launched"]),
        (".status.missing.deeper", []),
    ],
)
def test_jsonpath(path: str, want: list[str]) -> None:
    assert table.evaluate(CLAIM, path) == want


@pytest.mark.parametrize(
    ("seconds", "want"),
    [
        (-5, "<invalid>"),
        (30, "30s"),
        (150, "2m30s"),
        (900, "15m"),
        (3 * 3600 + 60, "3h1m"),
        (30 * 3600, "30h"),
        (3 * 86400, "3d"),
        (400 * 86400, "400d"),
        (3 * 365 * 86400, "3y"),
    ],
)
def test_human_duration(seconds: int, want: str) -> None:
    assert table.human_duration(seconds) == want


def test_accept_header() -> None:
    assert table.wants_table("application/json;as=Table;v=v1;g=meta.k8s.io,application/json")
    assert not table.wants_table("application/json;as=Table;v=v1beta1;g=meta.k8s.io")
    assert not table.wants_table("application/json")
