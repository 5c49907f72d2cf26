"""The CRDs and the Python parsers describe the same API.

Walks each CRD's openAPIV3Schema and the parser's declared ``KEYS``/``ENUMS``/``DEFAULTS`` and
requires them equal; applies the schema's defaults the way the API server does and compares with
the parser's defaulting; and validates sample objects with ``jsonschema`` (installed with moto),
requiring the schema to reject what the parser rejects, or, for rules a structural schema cannot
express, a CEL rule to say so. A hypothesis fuzz checks the parser is never looser than the schema.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.api import group, nodeclaim, nodeclass, nodepool
from shared.api.durations import API_DURATION_OR_NEVER_PATTERN
from shared.errors import ValidationError
from tests.shared import test_api_nodeclaim, test_api_nodeclass, test_api_nodepool

CRDS = Path(__file__).resolve().parents[2] / "manifests" / "crds"

KINDS: dict[str, tuple[ModuleType, str, str, Callable[[Mapping[str, Any]], object]]] = {
    "NodePool": (nodepool, "jitnode.io_nodepools.yaml", group.NODEPOOL_PLURAL, nodepool.NodePool.from_api),
    "EC2NodeClass": (
        nodeclass,
        "jitnode.io_ec2nodeclasses.yaml",
        group.NODECLASS_PLURAL,
        nodeclass.EC2NodeClass.from_api,
    ),
    "NodeClaim": (
        nodeclaim,
        "jitnode.io_nodeclaims.yaml",
        group.NODECLAIM_PLURAL,
        nodeclaim.NodeClaim.from_api,
    ),
}
FULL = {
    "NodePool": test_api_nodepool.FULL,
    "EC2NodeClass": test_api_nodeclass.FULL,
    "NodeClaim": test_api_nodeclaim.FULL,
}
MINIMAL = {
    "NodePool": test_api_nodepool.minimal(),
    "EC2NodeClass": test_api_nodeclass.minimal(),
    "NodeClaim": {
        "apiVersion": "jitnode.io/v1",
        "kind": "NodeClaim",
        "metadata": {"name": "c"},
        "spec": {"nodeClassRef": test_api_nodeclaim.REF},
    },
}


@functools.cache
def load(kind: str) -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all((CRDS / KINDS[kind][1]).read_text()) if d]
    assert len(docs) == 1
    crd: dict[str, Any] = docs[0]
    return crd


def schema(kind: str) -> dict[str, Any]:
    version = load(kind)["spec"]["versions"][0]
    result: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return result


def walk(node: Mapping[str, Any], path: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every schema node with its field path (``[]`` for list items); maps are leaves."""
    yield path, node
    for key, child in node.get("properties", {}).items():
        yield from walk(child, f"{path}.{key}" if path else key)
    if "items" in node:
        yield from walk(node["items"], f"{path}[]")


def cel_messages(kind: str) -> list[str]:
    return [
        rule["message"] for _, node in walk(schema(kind)) for rule in node.get("x-kubernetes-validations", [])
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_crd_metadata(kind: str) -> None:
    crd = load(kind)
    _, _, plural, _ = KINDS[kind]
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["metadata"]["name"] == f"{plural}.{group.API_GROUP}"
    spec = crd["spec"]
    assert spec["group"] == group.API_GROUP
    assert spec["scope"] == "Cluster"
    assert spec["names"]["kind"] == kind
    assert spec["names"]["plural"] == plural
    assert spec["names"]["shortNames"]
    [version] = spec["versions"]
    assert version["name"] == group.API_VERSION
    assert version["served"]
    assert version["storage"]
    assert version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    expected = {
        "NodePool": ["NodeClass", "Nodes", "Ready", "Age", "Weight"],
        "NodeClaim": ["Type", "Capacity", "Zone", "Node", "Ready", "Age"],
        "EC2NodeClass": ["Ready", "Age"],
    }[kind]
    assert set(expected) <= set(columns)


def test_all_crds_covered() -> None:
    assert sorted(p.name for p in CRDS.glob("jitnode.io_*.yaml")) == sorted(v[1] for v in KINDS.values())


@pytest.mark.parametrize("kind", KINDS)
def test_fields_agree(kind: str) -> None:
    module = KINDS[kind][0]
    from_schema = {
        path: frozenset(node["properties"]) for path, node in walk(schema(kind)) if "properties" in node
    }
    assert from_schema == dict(module.KEYS)


@pytest.mark.parametrize("kind", KINDS)
def test_enums_agree(kind: str) -> None:
    module = KINDS[kind][0]
    from_schema = {path: tuple(node["enum"]) for path, node in walk(schema(kind)) if "enum" in node}
    assert {k: sorted(v) for k, v in from_schema.items()} == {k: sorted(v) for k, v in module.ENUMS.items()}


@pytest.mark.parametrize("kind", KINDS)
def test_defaults_agree(kind: str) -> None:
    module = KINDS[kind][0]
    from_schema = {path: node["default"] for path, node in walk(schema(kind)) if "default" in node}
    assert from_schema == dict(module.DEFAULTS)


def test_patterns_agree() -> None:
    patterns = {
        kind: {path: node["pattern"] for path, node in walk(schema(kind)) if "pattern" in node}
        for kind in KINDS
    }
    for path, pattern in nodepool.PATTERNS.items():
        assert patterns["NodePool"][path] == pattern, path
    assert patterns["NodeClaim"]["spec.expireAfter"] == API_DURATION_OR_NEVER_PATTERN
    assert patterns["NodeClaim"]["spec.clientToken"] == nodeclaim.CLIENT_TOKEN_PATTERN
    ec2 = patterns["EC2NodeClass"]
    assert ec2["spec.amiSelectorTerms[].alias"] == nodeclass.AMI_ALIAS_PATTERN
    assert ec2["spec.amiSelectorTerms[].id"] == nodeclass.AMI_ID_PATTERN
    assert ec2["spec.subnetSelectorTerms[].id"] == nodeclass.SUBNET_ID_PATTERN
    assert ec2["spec.securityGroupSelectorTerms[].id"] == nodeclass.SECURITY_GROUP_ID_PATTERN
    assert ec2["spec.blockDeviceMappings[].ebs.volumeSize"] == nodeclass.VOLUME_SIZE_PATTERN


def apply_defaults(node: Mapping[str, Any], value: Any) -> Any:
    """Structural defaulting as the API server does it: absent fields get defaults, recursively."""
    if isinstance(value, dict) and "properties" in node:
        out = dict(value)
        for key, child in node["properties"].items():
            if key not in out and "default" in child:
                out[key] = copy.deepcopy(child["default"])
            if key in out:
                out[key] = apply_defaults(child, out[key])
        return out
    if isinstance(value, list) and "items" in node:
        return [apply_defaults(node["items"], item) for item in value]
    return value


def drop_empty(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: drop_empty(v) for k, v in value.items() if v not in ({}, [], None)}
    if isinstance(value, list):
        return [drop_empty(v) for v in value]
    return value


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("sample", ["minimal", "full"])
def test_parser_defaults_equal_schema_defaults(kind: str, sample: str) -> None:
    obj = copy.deepcopy((MINIMAL if sample == "minimal" else FULL)[kind])
    defaulted = apply_defaults(schema(kind), obj)
    parsed = KINDS[kind][3](obj)
    assert drop_empty(parsed.to_api()["spec"]) == drop_empty(defaulted["spec"])  # type: ignore[attr-defined]


@functools.cache
def validator(kind: str) -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(schema(kind))


def schema_accepts(kind: str, obj: Mapping[str, Any]) -> bool:
    return bool(validator(kind).is_valid(obj))


def parser_accepts(kind: str, obj: Mapping[str, Any]) -> bool:
    try:
        KINDS[kind][3](obj)
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize("kind", KINDS)
def test_valid_samples_accepted_by_both(kind: str) -> None:
    for obj in (MINIMAL[kind], FULL[kind]):
        assert schema_accepts(kind, obj)
        assert parser_accepts(kind, obj)


def at(obj: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``obj`` with ``path`` set to ``value`` (deleted if ``...``).

    Paths use dots, ``[i]`` indexes and ``["key.with/dots"]`` for map keys.
    """
    out = copy.deepcopy(obj)
    parts: list[Any] = []
    for quoted, index, plain in re.findall(r'\["([^"]+)"\]|\[(\d+)\]|([^.\[\]]+)', path):
        parts.append(quoted or (int(index) if index else plain))
    target: Any = out
    for part in parts[:-1]:
        target = target[part]
    if value is ...:
        del target[parts[-1]]
    else:
        target[parts[-1]] = value
    return out


# The API server prunes fields a structural schema does not declare; the parser reports them.
PRUNED = "(pruned)"
# (kind, path, value, CEL message fragment when the structural schema can't express the rule).
INVALID: list[tuple[str, str, Any, str | None]] = [
    ("NodePool", "spec.weight", 101, None),
    ("NodePool", "spec.limits.cpu", "1x", None),
    ("NodePool", "spec.disruption.consolidationPolicy", "Never", None),
    ("NodePool", "spec.disruption.consolidateAfter", "1d", None),
    ("NodePool", "spec.disruption.budgets[0].nodes", "101%", None),
    ("NodePool", "spec.disruption.budgets[1].duration", "30s", None),
    ("NodePool", "spec.disruption.budgets[1].reasons[0]", "Bored", None),
    ("NodePool", "spec.disruption.budgets[1].schedule", ..., "'schedule' must be set with 'duration'"),
    ("NodePool", "spec.template.spec.expireAfter", "1.5h", None),
    ("NodePool", "spec.template.spec.terminationGracePeriod", "Never", None),
    ("NodePool", "spec.template.spec.nodeClassRef.kind", "NodeClass", None),
    ("NodePool", "spec.template.spec.nodeClassRef.name", ..., None),
    ("NodePool", "spec.template.spec.requirements[0].operator", "Is", None),
    ("NodePool", "spec.template.spec.requirements[0].minValues", 0, None),
    ("NodePool", "spec.template.spec.requirements[0].minValues", 3, "must have at least that many values"),
    ("NodePool", "spec.template.spec.requirements[1].values", [], "must have a value defined"),
    ("NodePool", "spec.template.spec.requirements[1].key", "jitnode.io/nodepool", "set by jitnode"),
    ("NodePool", 'spec.template.metadata.labels["kubernetes.io/hostname"]', "x", "set by jitnode"),
    ("NodePool", "spec.template.spec.taints[0].effect", "Sometimes", None),
    ("NodePool", "spec.template.spec.taints[0].key", ..., None),
    ("NodePool", "spec.template.spec.unknown", 1, PRUNED),
    ("NodePool", "spec.template", ..., None),
    ("NodePool", "spec.warmPool.state", "Frozen", None),
    ("NodePool", "spec.warmPool.size", -1, None),
    ("NodePool", "spec.warmPool.maxSize", 0, "size must not exceed maxSize"),
    ("EC2NodeClass", "spec.amiFamily", "Ubuntu", None),
    ("EC2NodeClass", "spec.amiSelectorTerms", [], None),
    ("EC2NodeClass", "spec.amiSelectorTerms[0].id", "image-1", None),
    ("EC2NodeClass", "spec.amiSelectorTerms[0].name", "x", "'id' is mutually exclusive"),
    ("EC2NodeClass", "spec.amiSelectorTerms[1]", {"owner": "amazon"}, "expected at least one"),
    (
        "EC2NodeClass",
        "spec.amiSelectorTerms",
        [{"alias": "al2@latest"}, {"id": "ami-1"}],
        "'alias' is mutually exclusive",
    ),
    ("EC2NodeClass", "spec.amiFamily", ..., "amiFamily is required"),
    ("EC2NodeClass", "spec.role", "r", "exactly one of ['role', 'instanceProfile']"),
    ("EC2NodeClass", "spec.subnetSelectorTerms[0].id", "subnet-", None),
    ("EC2NodeClass", "spec.subnetSelectorTerms[1].tags.tier", "", "empty tag keys or values"),
    ("EC2NodeClass", "spec.securityGroupSelectorTerms", ..., None),
    ("EC2NodeClass", 'spec.tags["kubernetes.io/cluster/x"]', "owned", "kubernetes.io/cluster/"),
    ("EC2NodeClass", 'spec.tags["jitnode.io/nodeclaim"]', "x", "reserved for jitnode"),
    ("EC2NodeClass", "spec.blockDeviceMappings[0].ebs.volumeSize", "100GB", None),
    ("EC2NodeClass", "spec.blockDeviceMappings[0].ebs.volumeSize", "65Ti", "between 1Gi and 64Ti"),
    (
        "EC2NodeClass",
        "spec.blockDeviceMappings[1].rootVolume",
        True,
        "only one blockDeviceMappings with rootVolume",
    ),
    ("EC2NodeClass", "spec.blockDeviceMappings[0].ebs.volumeType", "gp4", None),
    ("EC2NodeClass", "spec.metadataOptions.httpTokens", "sometimes", None),
    ("EC2NodeClass", "spec.metadataOptions.httpPutResponseHopLimit", 0, None),
    ("EC2NodeClass", "spec.kubelet.maxPods", -1, None),
    ("EC2NodeClass", "spec.kubelet.kubeReserved.gpu", "1", "valid keys for kubeReserved"),
    ("EC2NodeClass", 'spec.kubelet.evictionHard["nodefs.available"]', "110%", None),
    ("EC2NodeClass", 'spec.kubelet.evictionHard["disk.free"]', "1%", "valid keys for evictionHard"),
    ("EC2NodeClass", "spec.detailedMonitoring", "yes", None),
    ("NodeClaim", "spec.nodeClassRef", ..., None),
    ("NodeClaim", "spec.expireAfter", "soon", None),
    ("NodeClaim", "spec.clientToken", "a" * 65, None),
    ("NodeClaim", "spec.resources.requests.cpu", "a lot", None),
    ("NodeClaim", "spec.resources.limits", {"cpu": "1"}, PRUNED),
    ("NodeClaim", "spec.pods[0]", "", None),
    ("NodeClaim", "status.conditions[0].status", "Yes", None),
    ("NodeClaim", "status.conditions[0].type", ..., None),
]


@pytest.mark.parametrize(
    ("kind", "path", "value", "cel"), INVALID, ids=[f"{k}:{p}" for k, p, _, _ in INVALID]
)
def test_invalid_samples_rejected_by_both(kind: str, path: str, value: Any, cel: str | None) -> None:
    obj = at(FULL[kind], path, value)
    assert not parser_accepts(kind, obj)
    if cel is None:
        assert not schema_accepts(kind, obj), "the structural schema should reject this"
    elif cel == PRUNED:
        declared = {p for p, _ in walk(schema(kind))}
        assert re.sub(r"\[\d+\]", "[]", path) not in declared
    else:
        assert schema_accepts(kind, obj), "structural schema rejects it: drop the CEL note"
        assert any(cel in message for message in cel_messages(kind)), f"no CEL rule mentions {cel!r}"


def leaf_paths(value: Any, path: str = "") -> list[str]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in leaf_paths(v, f'{path}["{k}"]' if path else k)] or [path]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in leaf_paths(v, f"{path}[{i}]")] or [path]
    return [path]


INTERESTING: st.SearchStrategy[object] = (
    st.sampled_from(
        [
            "",
            "x",
            "0",
            "1",
            "10%",
            "101%",
            "Never",
            "720h",
            "1.5h",
            "1Gi",
            "-1",
            "al2@latest",
            "In",
            "NoSchedule",
            "jitnode.io",
            "EC2NodeClass",
            "enabled",
            "gp3",
            "ami-1",
            "sg-1",
            "subnet-1",
            "True",
        ]
    )
    | st.integers(min_value=-2, max_value=102)
    | st.booleans()
    | st.just([])
    | st.just({})
    | st.just(["a"])
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(KINDS)), st.data())
def test_parser_never_looser_than_schema(kind: str, data: st.DataObject) -> None:
    """Whatever the parser accepts, the CRD schema accepts too (spec and status leaves mutated)."""
    obj = FULL[kind]
    paths = [p for p in leaf_paths(obj) if p.startswith(("spec", "status"))]
    path = data.draw(st.sampled_from(paths))
    mutated = at(obj, path, data.draw(INTERESTING))
    if parser_accepts(kind, mutated):
        assert schema_accepts(kind, mutated), path
