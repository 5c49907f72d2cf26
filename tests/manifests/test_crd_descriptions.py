"""Every field of the jitnode CRDs has a description, so ``kubectl explain`` has something to say.

Walks each CRD's ``openAPIV3Schema``: the root, every property at every depth, and the items of
arrays whose items are objects. Each must carry a non-empty ``description``; a failure lists the
field paths without one (``[]`` marks array items, as in ``tests/shared/test_crds.py``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

CRDS = Path(__file__).resolve().parents[2] / "manifests" / "crds"
FILES = sorted(p.name for p in CRDS.glob("*.yaml"))
ROOT = "<root>"


def schemas(name: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """``(version, openAPIV3Schema)`` of every version of the CRD in ``name``."""
    for doc in yaml.safe_load_all((CRDS / name).read_text()):
        if doc and doc.get("kind") == "CustomResourceDefinition":
            for version in doc["spec"]["versions"]:
                yield version["name"], version["schema"]["openAPIV3Schema"]


def is_object(node: Mapping[str, Any]) -> bool:
    return node.get("type") == "object" or "properties" in node


def described_nodes(node: Mapping[str, Any], path: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every schema node that needs a description, with its field path (root first)."""
    yield path or ROOT, node
    for key, child in (node.get("properties") or {}).items():
        yield from described_nodes(child, f"{path}.{key}" if path else key)
    items = node.get("items")
    if isinstance(items, Mapping) and is_object(items):
        yield from described_nodes(items, f"{path}[]")


def undescribed(schema: Mapping[str, Any]) -> list[str]:
    return [
        path
        for path, node in described_nodes(schema)
        if not isinstance(node.get("description"), str) or not node["description"].strip()
    ]


def test_crds_found() -> None:
    assert FILES == [
        "autoscaling.x-k8s.io_capacitybuffers.yaml",
        "jitnode.io_ec2nodeclasses.yaml",
        "jitnode.io_nodeclaims.yaml",
        "jitnode.io_nodepools.yaml",
    ]


@pytest.mark.parametrize("name", FILES)
def test_every_field_has_a_description(name: str) -> None:
    versions = list(schemas(name))
    assert versions, f"{name}: no CRD versions with a schema"
    for version, schema in versions:
        paths = [path for path, _ in described_nodes(schema)]
        assert {ROOT, "spec", "status"} <= set(paths), f"{name} {version}: no spec or status in the schema"
        missing = undescribed(schema)
        assert not missing, f"{name} {version}: fields without a description: {', '.join(missing)}"


def test_walk_names_what_is_missing() -> None:
    schema = {
        "description": "root",
        "type": "object",
        "properties": {
            "spec": {
                "description": "spec",
                "type": "object",
                "properties": {
                    "terms": {
                        "description": "terms",
                        "type": "array",
                        "items": {"type": "object", "properties": {"id": {"type": "string"}}},
                    },
                    "names": {"description": "names", "type": "array", "items": {"type": "string"}},
                    "blank": {"description": "  ", "type": "string"},
                },
            },
            "status": {"type": "object"},
        },
    }
    assert undescribed(schema) == ["spec.terms[]", "spec.terms[].id", "spec.blank", "status"]
    assert undescribed({"type": "object"}) == [ROOT]
